"""The audit export bundle: entries, checkpoints, witness files, key, report (and its lift
figures as ``lift.json``), manifest and its signature.

Streams: entries go from a server-side cursor straight into the zip (``ZipFile.open(name,
"w")``), hashed while written, so memory stays constant whatever the number of entries. Two
passes over the entries: JSON Lines (while the evidence report is counted), then CSV.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from compliance import crypto
from compliance.audit.codes import AuditCode, code_name
from compliance.audit.hashing import FIELDS, GENESIS, canonical_json, format_time
from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.selectors.evidence import (
    EvidenceStats,
    lift_evidence,
    report_render,
    seq_range,
)
from compliance.audit.selectors.rows import iter_rows
from compliance.audit.selectors.status import chain_status
from compliance.audit.selectors.witness import witness_files
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.audit.services.checkpoints import checkpoint_sign
from compliance.conf import compliance_settings

BUNDLE_FORMAT = "compliance-audit-bundle/v1"
VERIFIER = Path(__file__).resolve().parent.parent / "bundle" / "verify_bundle.py"
CSV_COLUMNS = [*FIELDS[:4], "code_name", *FIELDS[4:], "hash"]
_FLUSH = 2000


def verify_commands(*, bundle_name: str) -> dict[str, str]:
    """The commands VERIFY.md gives, in order (``audit_export`` prints the same ones): run from
    the folder holding the zip; the first one changes into the unpacked ``bundle`` folder."""
    return {
        "unpack": f"unzip {bundle_name} -d bundle && cd bundle",
        "openssl": (
            "openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in manifest.json "
            "-sigfile manifest.sig"
        ),
        "hashes": (
            "python3 -c \"import hashlib,json,sys;m=json.load(open('manifest.json'));"
            "ok=[print(n,r) or r=='OK' for n,f in sorted(m['files'].items()) for r in ['OK' "
            "if hashlib.sha256(open(n,'rb').read()).hexdigest()==f['sha256'] else 'DIFFERS']];"
            'sys.exit(0 if all(ok) else 1)"'
        ),
        "verifier": "python3 verify_bundle.py .",
    }


@dataclass
class ExportResult:
    path: Path
    entries: int
    chains: dict
    manifest_sha256: str
    files: dict = field(default_factory=dict)


class _HashingWriter:
    """Writes bytes to a zip member and hashes them on the way."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        self.name = name
        self.handle = archive.open(name, "w", force_zip64=True)
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.handle.write(data)

    def close(self) -> dict:
        self.handle.close()
        return {"sha256": self.digest.hexdigest(), "bytes": self.size}


def _lift_json(lift: list[dict], stats: EvidenceStats) -> bytes:
    """The report's lift figures, machine-readable: current figures per segment (aggregates of
    the control database) and the review decisions of the period (from the chain)."""
    body = {"segments": lift, "review_decisions": stats.review_decisions}
    return json.dumps(body, indent=2, sort_keys=True).encode()


def audit_export(
    *,
    start: datetime,
    end: datetime,
    out: Path | str,
    actor: Actor,
    aliases: list[str] | None = None,
) -> ExportResult:
    """Write the bundle of entries with ``start <= occurred_at < end`` to ``out`` (a zip).

    For each chain (every database by default) a fresh checkpoint is signed first (which also
    verifies the chain since the previous checkpoint and refuses to bless a damaged one, and
    witnesses the checkpoint once committed), then the contiguous run of entries from the first
    to the last one inside the period is written, with the hash of the entry before it as the
    anchor, and the witness files of the checkpoints inside that run (``witness/<chain>/``).
    Records ``AUDIT_EXPORTED`` in the control chain afterwards.
    """
    aliases = aliases or list(settings.DATABASES)
    out = Path(out)
    created_at = timezone.now()
    chains: dict[str, dict] = {}
    for alias in aliases:
        checkpoint_sign(using=alias, actor=actor, force=True)
        chains[alias] = _chain_span(alias=alias, start=start, end=end)
    statuses = [chain_status(using=alias) for alias in aliases]
    stats = EvidenceStats()
    files: dict[str, dict] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        files["entries.jsonl"] = _write_jsonl(archive, chains, stats)
        files["entries.csv"] = _write_csv(archive, chains)
        lift = lift_evidence()
        report = report_render(stats=stats, start=start, end=end, chains=statuses, lift=lift)
        small = [
            ("lift.json", _lift_json(lift, stats)),
            ("checkpoints.json", _checkpoints_json(chains)),
            *_witness_files(chains),
            ("public_key.pem", crypto.public_key_pem()),
            ("report.html", report.encode()),
            ("verify_bundle.py", VERIFIER.read_bytes()),
            ("VERIFY.md", _verify_md(created_at, start, end, aliases, out.name).encode()),
        ]
        for name, data in small:
            files[name] = _write_small(archive, name, data)
        manifest = json.dumps(
            {
                "format": BUNDLE_FORMAT,
                "created_at": format_time(created_at),
                "period": {"from": format_time(start), "to": format_time(end)},
                "key_id": crypto.key_id(),
                "chains": chains,
                "files": files,
            },
            indent=2,
            sort_keys=True,
        ).encode()
        archive.writestr("manifest.json", manifest)
        archive.writestr("manifest.sig", crypto.sign(message=manifest))
    manifest_sha = hashlib.sha256(manifest).hexdigest()
    total = sum(info["count"] for info in chains.values())
    _record(actor=actor, start=start, end=end, chains=chains, total=total, sha=manifest_sha)
    return ExportResult(
        path=out, entries=total, chains=chains, manifest_sha256=manifest_sha, files=files
    )


def _chain_span(*, alias: str, start: datetime, end: datetime) -> dict:
    """The run of entries of chain ``alias`` in the period: first and last seq, count, the hash
    before the first (anchor) and the last hash."""
    span = seq_range(using=alias, start=start, end=end)
    if span is None:
        return {"first_seq": 0, "last_seq": 0, "count": 0}
    first, last = span
    anchor = GENESIS
    if first > 1:
        before = AuditEvent.objects.using(alias).filter(seq=first - 1).first()
        if before is not None:
            anchor = before.hash
        else:  # pruned by retention: the signed checkpoint at that size anchors the rest
            anchor = (
                AuditCheckpoint.objects.using(alias)
                .filter(chain_id=alias, size=first - 1)
                .values_list("head_hash", flat=True)
                .first()
            ) or GENESIS
    return {
        "first_seq": first,
        "last_seq": last,
        "count": last - first + 1,
        "anchor_hash": anchor,
        "last_hash": AuditEvent.objects.using(alias).get(seq=last).hash,
    }


def _verify_md(
    created_at: datetime, start: datetime, end: datetime, aliases: list[str], bundle_name: str
) -> str:
    return render_to_string(
        "audit/VERIFY.md",
        {
            "created_at": format_time(created_at),
            "period_from": format_time(start),
            "period_to": format_time(end),
            "chains": ", ".join(aliases),
            "key_id": crypto.key_id(),
            "bundle_name": bundle_name,
            "commands": verify_commands(bundle_name=bundle_name),
        },
    )


def _record(
    *, actor: Actor, start: datetime, end: datetime, chains: dict, total: int, sha: str
) -> None:
    """``AUDIT_EXPORTED`` in the control chain: the period, each chain's range, the manifest's
    hash."""
    audit_append(
        using="default",
        entries=[
            AuditEntry(
                code=AuditCode.AUDIT_EXPORTED,
                actor=actor,
                object_type="audit_bundle",
                object_id=sha[:16],
                payload={
                    "from": format_time(start),
                    "to": format_time(end),
                    "chains": {a: [c["first_seq"], c["last_seq"]] for a, c in chains.items()},
                    "entries": total,
                    "manifest_sha256": sha,
                },
            )
        ],
    )


def _write_small(archive: zipfile.ZipFile, name: str, data: bytes) -> dict:
    writer = _HashingWriter(archive, name)
    writer.write(data)
    return writer.close()


def _chain_rows(chains: dict):
    for alias, info in chains.items():
        if info["count"]:
            yield from (
                (alias, row)
                for row in iter_rows(
                    using=alias, start_seq=info["first_seq"], end_seq=info["last_seq"]
                )
            )


def _write_jsonl(archive: zipfile.ZipFile, chains: dict, stats: EvidenceStats) -> dict:
    writer = _HashingWriter(archive, "entries.jsonl")
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    names: dict[int, str] = {}
    buffer: list[str] = []
    feed = stats.feed
    for alias, row in _chain_rows(chains):
        feed(alias, row)
        code = row[2]
        name = names.get(code) or names.setdefault(code, code_name(code))
        buffer.append(
            dumps(
                {
                    "chain_id": alias,
                    "seq": row[0],
                    "occurred_at": row[1],
                    "code": code,
                    "code_name": name,
                    "actor_type": row[3],
                    "actor_id": row[4],
                    "subject_token": row[5],
                    "object_type": row[6],
                    "object_id": row[7],
                    "payload": row[8],
                    "hash": row[9],
                }
            )
        )
        if len(buffer) >= _FLUSH:
            buffer.append("")
            writer.write("\n".join(buffer).encode())
            buffer.clear()
    if buffer:
        buffer.append("")
        writer.write("\n".join(buffer).encode())
    return writer.close()


def _write_csv(archive: zipfile.ZipFile, chains: dict) -> dict:
    writer = _HashingWriter(archive, "entries.csv")
    text = io.StringIO()
    rows = csv.writer(text, lineterminator="\n")
    rows.writerow(CSV_COLUMNS)
    names: dict[int, str] = {}
    pending = 0
    for alias, row in _chain_rows(chains):
        code = row[2]
        name = names.get(code) or names.setdefault(code, code_name(code))
        rows.writerow(
            (
                alias,
                row[0],
                row[1],
                code,
                name,
                row[3],
                row[4],
                row[5],
                row[6],
                row[7],
                canonical_json(row[8]),
                row[9],
            )
        )
        pending += 1
        if pending >= _FLUSH:
            writer.write(text.getvalue().encode())
            text.seek(0)
            text.truncate()
            pending = 0
    writer.write(text.getvalue().encode())
    return writer.close()


def _witness_files(chains: dict) -> list[tuple[str, bytes]]:
    """``(name in the bundle, exact bytes)`` of the witness files of each exported chain whose
    checkpoint lies in the exported range (from the anchor's size to the last entry), as
    ``witness/<chain_id>/<file>``; empty without a witness directory."""
    root = compliance_settings.AUDIT_WITNESS_DIR
    if not root:
        return []
    found = []
    for alias, info in chains.items():
        if not info["count"]:
            continue
        for name, path in witness_files(root=Path(root), chain_id=alias):
            data = path.read_bytes()
            try:
                size = int(json.loads(data)["size"])
            except (ValueError, KeyError, TypeError):
                size = None  # carried as it is: the verifier names what is wrong with it
            if size is None or info["first_seq"] - 1 <= size <= info["last_seq"]:
                found.append((f"witness/{alias}/{name}", data))
    return found


def _checkpoints_json(chains: dict) -> bytes:
    listed = []
    for alias, info in chains.items():
        queryset = AuditCheckpoint.objects.using(alias).filter(chain_id=alias)
        if info["count"]:
            queryset = queryset.filter(size__gte=info["first_seq"] - 1)
        for cp in queryset.order_by("size", "id"):
            listed.append(
                {
                    "chain_id": cp.chain_id,
                    "size": cp.size,
                    "head_hash": cp.head_hash,
                    "signed_at": format_time(cp.signed_at),
                    "key_id": cp.key_id,
                    "signature": cp.signature,
                }
            )
    return json.dumps(listed, indent=1).encode()
