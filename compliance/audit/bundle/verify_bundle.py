#!/usr/bin/env python3
"""Verify an audit evidence bundle offline. Needs only Python 3.9+ and ``cryptography``.

    python3 verify_bundle.py BUNDLE.zip      (or a directory holding the extracted files)

Checks, in order: the Ed25519 signature of ``manifest.json`` (``manifest.sig``, raw 64 bytes)
with ``public_key.pem``; the SHA-256 of every file listed in the manifest (and that nothing
unlisted was added); every chain in ``entries.jsonl`` recomputed from its anchor; every
checkpoint's signature, and that the recomputed head equals each checkpoint inside the range;
the witness files (``witness/``): signatures, links, and heads equal to the entries.
Exit code 0 when everything holds, 1 otherwise (the first failure is printed); 3 when the
``cryptography`` package is missing (one line says so; VERIFY.md step 1 needs no package).
"""

import hashlib
import json
import os
import sys
import zipfile

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
except ImportError:  # main() says so in one line; VERIFY.md step 1 needs no package
    InvalidSignature = serialization = None

GENESIS = "0" * 64
CHECKPOINT_FORMAT = "compliance-audit-checkpoint/v1"
UNHASHED = {"manifest.json", "manifest.sig"}
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_entry(entry):
    """The bytes an entry's hash covers (after the previous hash): the compact, key-sorted
    UTF-8 JSON of its fields in this order. The toolkit's own copy is ``hashing.canonical``."""
    return _encode(
        [
            entry["chain_id"],
            entry["seq"],
            entry["occurred_at"],
            entry["code"],
            entry["actor_type"],
            entry["actor_id"],
            entry["subject_token"],
            entry["object_type"],
            entry["object_id"],
            entry["payload"],
        ]
    ).encode()


class BundleError(Exception):
    pass


class Bundle:
    def __init__(self, path):
        self.path = path
        self.zip = zipfile.ZipFile(path) if os.path.isfile(path) else None

    def names(self):
        if self.zip is not None:
            return [n for n in self.zip.namelist() if not n.endswith("/")]
        found = []  # sub-folders too (witness/<chain>/...), as zip-style names
        for root, _dirs, files in os.walk(self.path):
            relative = os.path.relpath(root, self.path).replace(os.sep, "/")
            found.extend(name if relative == "." else f"{relative}/{name}" for name in files)
        return sorted(found)

    def open(self, name):
        if self.zip is not None:
            return self.zip.open(name)
        return open(os.path.join(self.path, name), "rb")

    def read(self, name):
        with self.open(name) as handle:
            return handle.read()


def sha256_of(bundle, name):
    digest = hashlib.sha256()
    with bundle.open(name) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_signature(public_key, signature, message):
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def key_id_of(public_key):
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def checkpoint_message(cp):
    return "\n".join(
        [
            CHECKPOINT_FORMAT,
            cp["chain_id"],
            str(cp["size"]),
            cp["head_hash"],
            cp["signed_at"],
            cp["key_id"],
        ]
    ).encode()


def verify(path, out=print):
    bundle = Bundle(path)
    names = set(bundle.names())
    for required in ("manifest.json", "manifest.sig", "public_key.pem"):
        if required not in names:
            raise BundleError(f"{required} is missing from the bundle")
    manifest_bytes = bundle.read("manifest.json")
    public_key = serialization.load_pem_public_key(bundle.read("public_key.pem"))
    if not verify_signature(public_key, bundle.read("manifest.sig"), manifest_bytes):
        raise BundleError("manifest.sig is not a valid signature of manifest.json")
    out("manifest.json: signature valid")
    manifest = json.loads(manifest_bytes)
    if manifest.get("key_id") != key_id_of(public_key):
        raise BundleError("public_key.pem does not match the key id named in the manifest")
    files = manifest["files"]
    if "public_key.pem" not in files:
        raise BundleError("the manifest does not cover public_key.pem")
    for name in sorted(names - UNHASHED):
        if name not in files:
            raise BundleError(f"{name} is in the bundle but not in the manifest")
    for name, expected in sorted(files.items()):
        if name not in names:
            raise BundleError(f"{name} is listed in the manifest but missing")
        if sha256_of(bundle, name) != expected["sha256"]:
            raise BundleError(f"{name}: SHA-256 differs from the manifest")
    out(f"{len(files)} files: SHA-256 as in the manifest")

    checkpoints = json.loads(bundle.read("checkpoints.json"))
    at_size = {}
    for cp in checkpoints:
        if cp["key_id"] != manifest["key_id"] or not verify_signature(
            public_key, bytes.fromhex(cp["signature"]), checkpoint_message(cp)
        ):
            raise BundleError(
                f"checkpoint of chain {cp['chain_id']} at size {cp['size']}: invalid signature"
            )
        at_size.setdefault(cp["chain_id"], {}).setdefault(cp["size"], []).append(cp)
    out(f"{len(checkpoints)} checkpoints: signatures valid")

    chains = manifest["chains"]
    state = {}
    for chain_id, info in chains.items():
        if info["count"]:
            state[chain_id] = [bytes.fromhex(info["anchor_hash"]), info["first_seq"], 0]
            for cp in at_size.get(chain_id, {}).get(info["first_seq"] - 1, []):
                if cp["head_hash"] != info["anchor_hash"]:
                    raise BundleError(f"chain {chain_id}: anchor differs from checkpoint")
    with bundle.open("entries.jsonl") as handle:
        for number, line in enumerate(handle, 1):
            entry = json.loads(line)
            chain_id = entry["chain_id"]
            if chain_id not in state:
                raise BundleError(f"entries.jsonl line {number}: unknown chain {chain_id}")
            current = state[chain_id]
            prev, expected = current[0], current[1]
            seq = entry["seq"]
            if seq != expected:
                raise BundleError(
                    f"chain {chain_id}: entry #{expected} expected at line {number}, found #{seq}"
                )
            digest = hashlib.sha256(prev + canonical_entry(entry)).digest()
            if digest.hex() != entry["hash"]:
                raise BundleError(
                    f"chain {chain_id}: entry #{seq} (line {number}) does not match its hash"
                )
            for cp in at_size.get(chain_id, {}).get(seq, []):
                if cp["head_hash"] != entry["hash"]:
                    raise BundleError(
                        f"chain {chain_id}: recomputed head at #{seq} differs from the "
                        f"checkpoint signed {cp['signed_at']}"
                    )
            current[0], current[1], current[2] = digest, seq + 1, current[2] + 1
    for chain_id, info in chains.items():
        if not info["count"]:
            continue
        prev, expected, count = state[chain_id]
        if count != info["count"] or expected - 1 != info["last_seq"]:
            raise BundleError(
                f"chain {chain_id}: {count} entries up to #{expected - 1}, the manifest says "
                f"{info['count']} up to #{info['last_seq']}"
            )
        if prev.hex() != info["last_hash"]:
            raise BundleError(f"chain {chain_id}: last hash differs from the manifest")
        inside = sum(
            len(cps)
            for size, cps in at_size.get(chain_id, {}).items()
            if info["first_seq"] - 1 <= size <= info["last_seq"]
        )
        out(
            f"chain {chain_id}: entries #{info['first_seq']}..#{info['last_seq']} "
            f"({count}) recomputed from the anchor; {inside} signed checkpoint(s) inside matched"
        )
    verify_witness(bundle, manifest, public_key, out)
    out("BUNDLE VERIFIED")


WITNESS_FORMAT = "compliance-audit-witness/v1"


def verify_witness(bundle, manifest, public_key, out=print):
    """The witness files, ``witness/<chain_id>/<number>.json`` (copied byte for byte from the
    witness outside the database; their SHA-256 is in the manifest like every file): each is a
    validly signed checkpoint of its chain, names the previous file (name and SHA-256) where
    that one is in the bundle too, and its head equals the exported entry at its size (the
    anchor for the size just before the first exported entry). Called after the entries were
    recomputed, so the hashes stored in entries.jsonl are the recomputed ones."""
    by_chain = {}
    for name in sorted(manifest["files"]):
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "witness":
            by_chain.setdefault(parts[1], []).append(name)
    wanted = {}
    for chain_id, names in sorted(by_chain.items()):
        info = manifest["chains"].get(chain_id) or {}
        if not info.get("count"):
            raise BundleError(f"{names[0]}: chain {chain_id} has no exported entries")
        previous = None
        for name in names:
            data = bundle.read(name)
            doc = json.loads(data)
            if doc.get("format") != WITNESS_FORMAT or doc.get("chain_id") != chain_id:
                raise BundleError(f"{name}: not a witness file of chain {chain_id}")
            if doc["key_id"] != manifest["key_id"] or not verify_signature(
                public_key, bytes.fromhex(doc["signature"]), checkpoint_message(doc)
            ):
                raise BundleError(f"{name}: invalid checkpoint signature")
            if previous is not None and doc["number"] == previous[1] + 1:
                link = doc.get("previous") or {}
                if (
                    link.get("file") != previous[0].rsplit("/", 1)[1]
                    or link.get("sha256") != hashlib.sha256(previous[2]).hexdigest()
                ):
                    raise BundleError(f"{name} does not link to {previous[0]} as it is")
            previous = (name, doc["number"], data)
            size = doc["size"]
            if size == info["first_seq"] - 1:
                if doc["head_hash"] != info["anchor_hash"]:
                    raise BundleError(f"{name}: the anchor differs from the witnessed head")
            elif info["first_seq"] <= size <= info["last_seq"]:
                wanted.setdefault(chain_id, {}).setdefault(size, []).append(
                    (name, doc["head_hash"])
                )
            else:
                raise BundleError(f"{name}: size {size} is outside the exported entries")
    if wanted:
        with bundle.open("entries.jsonl") as handle:
            for line in handle:
                entry = json.loads(line)
                sizes = wanted.get(entry["chain_id"])
                for name, head in (sizes or {}).pop(entry["seq"], []):
                    if head != entry["hash"]:
                        raise BundleError(
                            f"chain {entry['chain_id']}: entry #{entry['seq']} is not the head "
                            f"witnessed in {name}: the chain was rewritten after it was witnessed"
                        )
        for chain_id, sizes in wanted.items():
            if sizes:
                raise BundleError(f"chain {chain_id}: witnessed size(s) {sorted(sizes)} not found")
    for chain_id, names in sorted(by_chain.items()):
        out(f"chain {chain_id}: {len(names)} witnessed checkpoint(s) match the entries")


def main(argv):
    if len(argv) != 1:
        print("usage: python3 verify_bundle.py BUNDLE.zip|DIRECTORY", file=sys.stderr)
        return 2
    if serialization is None:
        print(
            "verify_bundle.py needs the Python package 'cryptography' (pip install "
            "cryptography); without it, follow step 1 of VERIFY.md (openssl)",
            file=sys.stderr,
        )
        return 3
    if not os.path.exists(argv[0]):
        print(
            f"VERIFICATION FAILED: {argv[0]} does not exist (run from the folder holding it, "
            "or give its path)",
            file=sys.stderr,
        )
        return 1
    try:
        verify(argv[0])
    except (BundleError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        print(f"VERIFICATION FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
