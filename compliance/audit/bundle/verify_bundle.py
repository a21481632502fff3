#!/usr/bin/env python3
"""Verify an audit evidence bundle offline. Needs only Python 3.9+ and ``cryptography``.

    python3 verify_bundle.py BUNDLE.zip      (or a directory holding the extracted files)

Checks, in order: the Ed25519 signature of ``manifest.json`` (``manifest.sig``, raw 64 bytes)
with ``public_key.pem``; the SHA-256 of every file listed in the manifest (and that nothing
unlisted was added); every chain in ``entries.jsonl`` recomputed from its anchor; every
checkpoint's signature, and that the recomputed head equals each checkpoint inside the range.
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


class BundleError(Exception):
    pass


class Bundle:
    def __init__(self, path):
        self.path = path
        self.zip = zipfile.ZipFile(path) if os.path.isfile(path) else None

    def names(self):
        if self.zip is not None:
            return [n for n in self.zip.namelist() if not n.endswith("/")]
        return sorted(os.listdir(self.path))

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
            canon = _encode(
                [
                    chain_id,
                    seq,
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
            digest = hashlib.sha256(prev + canon).digest()
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
    out("BUNDLE VERIFIED")


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
