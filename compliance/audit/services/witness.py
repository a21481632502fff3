"""The witness: every signed checkpoint also goes where the database roles cannot write.

**Directory** (``COMPLIANCE_AUDIT_WITNESS_DIR``, default ``<VAR_DIR>/witness``): one file per
checkpoint and chain, ``<dir>/<chain_id>/<shard>/<number>.json`` (``number`` counts from 1 per
chain, twelve digits; ``shard`` is ``number // 10000``, eight digits). Each file names the
previous one and the SHA-256 of its bytes, in the spirit of CloudTrail's chained digest files,
so a witness file removed or edited in the middle breaks the links. A file is created with
``O_CREAT | O_EXCL`` (two writers can never both take number ``n``: the loser takes ``n + 1``),
read-only, and fsynced with its directory before the call returns. The content is the signed
checkpoint and nothing else (no personal data)::

    {"format": "compliance-audit-witness/v1", "chain_id": "eu", "number": 7, "size": 1234,
     "head_hash": "...", "signed_at": "...Z", "key_id": "...", "signature": "...",
     "previous": {"file": "000000000006.json", "sha256": "..."}}

**HTTP** (``COMPLIANCE_AUDIT_WITNESS_URL``, optional): the same document is POSTed as JSON with
the headers ``X-Audit-Witness-Key-Id`` and ``X-Audit-Witness-Signature`` (base64 of the Ed25519
signature of the exact body bytes); any status other than 2xx is an error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from compliance import crypto
from compliance.audit.hashing import format_time
from compliance.audit.models import AuditCheckpoint
from compliance.conf import compliance_settings
from compliance.errors import InternalError

WITNESS_FORMAT = "compliance-audit-witness/v1"
SHARD = 10_000
SIGNATURE_HEADER = "X-Audit-Witness-Signature"
KEY_ID_HEADER = "X-Audit-Witness-Key-Id"


class WitnessError(InternalError):
    """A checkpoint could not be written to a witness (it stays signed in the database)."""


@dataclass(frozen=True)
class WitnessFile:
    number: int
    path: Path
    data: bytes

    @property
    def name(self) -> str:
        return self.path.name


def file_name(number: int) -> str:
    return f"{number:012d}.json"


def file_path(*, root: Path, chain_id: str, number: int) -> Path:
    return root / chain_id / f"{number // SHARD:08d}" / file_name(number)


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict:
    """The signed statement a witness keeps (the fields of ``signing.checkpoint_message``)."""
    return {
        "format": WITNESS_FORMAT,
        "chain_id": checkpoint.chain_id,
        "size": checkpoint.size,
        "head_hash": checkpoint.head_hash,
        "signed_at": format_time(checkpoint.signed_at),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


def witness_latest(*, root: Path, chain_id: str) -> WitnessFile | None:
    """The newest witness file of ``chain_id`` under ``root`` (highest number), or ``None``."""
    chain_dir = root / chain_id
    if not chain_dir.is_dir():
        return None
    shards = sorted((p for p in chain_dir.iterdir() if p.is_dir()), reverse=True)
    for shard in shards:
        names = sorted((n for n in os.listdir(shard) if n.endswith(".json")), reverse=True)
        if names:
            path = shard / names[0]
            return WitnessFile(number=int(names[0][:-5]), path=path, data=path.read_bytes())
    return None


def witness_record(*, checkpoint: AuditCheckpoint) -> WitnessFile | None:
    """Write ``checkpoint`` to every configured witness: the directory (returns its file), then
    the HTTP witness. Raises ``WitnessError`` when a configured witness did not take it."""
    written = None
    if compliance_settings.AUDIT_WITNESS_DIR:
        written = witness_write_file(
            root=Path(compliance_settings.AUDIT_WITNESS_DIR), checkpoint=checkpoint
        )
    if compliance_settings.AUDIT_WITNESS_URL:
        document = checkpoint_document(checkpoint)
        if written is not None:
            document = json.loads(written.data)
        witness_post(url=compliance_settings.AUDIT_WITNESS_URL, document=document)
    return written


def witness_write_file(*, root: Path, checkpoint: AuditCheckpoint) -> WitnessFile:
    """Append ``checkpoint`` to the chain of files of its chain under ``root``: exclusive create
    of the next number, linked to the previous file, fsynced (file, then directory)."""
    for _attempt in range(100):
        latest = witness_latest(root=root, chain_id=checkpoint.chain_id)
        number = latest.number + 1 if latest else 1
        document = checkpoint_document(checkpoint)
        document["number"] = number
        document["previous"] = (
            {"file": latest.name, "sha256": hashlib.sha256(latest.data).hexdigest()}
            if latest
            else None
        )
        data = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()
        path = file_path(root=root, chain_id=checkpoint.chain_id, number=number)
        try:
            _create_exclusive(path, data)
        except FileExistsError:
            continue  # another writer took this number: link to its file instead
        except OSError as exc:
            raise WitnessError(f"witness directory {root}: {exc}") from exc
        return WitnessFile(number=number, path=path, data=data)
    raise WitnessError(f"witness directory {root}: no free file number after 100 attempts")


def _create_exclusive(path: Path, data: bytes) -> None:
    created = []
    parent = path.parent
    while not parent.exists():  # new chain or shard directories: fsync their parents too
        created.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    for directory in [path.parent, *(d.parent for d in created)]:
        _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def witness_post(*, url: str, document: dict) -> None:
    """POST ``document`` to the HTTP witness, signed (see the module docstring)."""
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            KEY_ID_HEADER: crypto.key_id(),
            SIGNATURE_HEADER: base64.b64encode(crypto.sign(message=body)).decode(),
        },
    )
    try:
        with urllib.request.urlopen(
            request, timeout=compliance_settings.AUDIT_WITNESS_TIMEOUT
        ) as r:
            status = r.status
    except OSError as exc:  # URLError, HTTPError (non-2xx), timeouts
        raise WitnessError(f"HTTP witness {url}: {exc}") from exc
    if not 200 <= status < 300:
        raise WitnessError(f"HTTP witness {url}: status {status}")
