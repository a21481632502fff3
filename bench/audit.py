"""Audit log benchmark: audited append vs plain bulk_create, verify rate, export memory.

    python -m bench audit [--append N] [--export N]

1. append N (default 100,000) events with ``audit_append`` in batches of 1,000, and the same
   rows with a plain ``AuditEvent.objects.bulk_create`` (no hashing, no lock) into a scratch
   table copy on the same database; ratio of rows per second (target >= 0.8 on PostgreSQL);
2. ``chain_verify`` rate on the chain (target >= 200,000 entries/s);
3. generate M (default 1,000,000) valid entries fast (hash in Python, COPY on PostgreSQL), with a
   signed, witnessed checkpoint every ``--checkpoint-every`` entries (default 1,000: a chain
   that moves by about 1,000 entries between two per-minute checkpoints), then verify the chain
   without and with the witness directory, alternating, best of five each (target: with the
   witness >= 0.9x the rate without), then ``audit_export`` them in a child process and report
   its peak RSS (target < 200 MB).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import bench_databases, machine

BATCH = 1000


def _entries(count: int, offset: int = 0):
    from compliance.audit.services.append import Actor, AuditEntry

    actor = Actor.system("bench")
    return [
        AuditEntry(
            code=201 if i % 3 else 101,
            actor=actor,
            subject_token=f"{i:032x}",
            object_type="segment",
            object_id=f"seg-{i % 50}",
            payload={"reason": "criteria", "membership_id": offset + i},
        )
        for i in range(count)
    ]


def _plain_model():
    """The same columns as AuditEvent, in a scratch table, as a plain Django model."""
    from django.db import models

    from compliance.residency import PerDatabaseModel

    class Meta:
        app_label = "audit"
        db_table = "bench_audit_plain"
        managed = False

    fields = {
        "__module__": __name__,
        "Meta": Meta,
        "seq": models.BigIntegerField(unique=True),
        "occurred_at": models.DateTimeField(),
        "code": models.PositiveIntegerField(),
        "actor_type": models.CharField(max_length=16),
        "actor_id": models.CharField(max_length=64, blank=True),
        "subject_token": models.CharField(max_length=64, blank=True),
        "object_type": models.CharField(max_length=64, blank=True),
        "object_id": models.CharField(max_length=64, blank=True),
        "payload": models.JSONField(default=dict),
        "hash": models.CharField(max_length=64),
    }
    return type("BenchPlainAuditEvent", (PerDatabaseModel,), fields)


def bench_append(total: int, alias: str) -> dict:
    from django.db import connections, transaction
    from django.utils import timezone

    from compliance.audit.services.append import audit_append

    batches = [_entries(BATCH, b * BATCH) for b in range(total // BATCH)]
    # baseline: the same rows, plain bulk_create, no hashing, into a scratch copy of the table
    with connections[alias].cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_audit_plain")
        if connections[alias].vendor == "postgresql":
            cursor.execute("CREATE TABLE bench_audit_plain (LIKE audit_auditevent INCLUDING ALL)")
        else:
            cursor.execute(
                "CREATE TABLE bench_audit_plain AS SELECT * FROM audit_auditevent WHERE 0"
            )

    Plain = _plain_model()
    start = time.perf_counter()
    seq = 0
    for batch in batches:
        now = timezone.now()
        rows = []
        for entry in batch:
            seq += 1
            rows.append(
                Plain(
                    seq=seq,
                    occurred_at=now,
                    code=int(entry.code),
                    actor_type=entry.actor.kind,
                    actor_id=entry.actor.id,
                    subject_token=entry.subject_token,
                    object_type=entry.object_type,
                    object_id=entry.object_id,
                    payload=dict(entry.payload),
                    hash="",
                )
            )
        with transaction.atomic(using=alias):
            Plain.objects.using(alias).bulk_create(rows, batch_size=2000)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    for batch in batches:
        with transaction.atomic(using=alias):
            audit_append(using=alias, entries=batch)
    audited = time.perf_counter() - start
    with connections[alias].cursor() as cursor:
        cursor.execute("DROP TABLE bench_audit_plain")
    return {
        "rows": total,
        "plain_rows_per_s": total / plain,
        "audited_rows_per_s": total / audited,
        "ratio": plain / audited,
    }


def bench_verify(alias: str, witness: str | None = None) -> dict:
    from compliance.audit.selectors.verification import chain_verify

    result = chain_verify(using=alias, witness=witness)
    assert result.ok, result.first_finding
    return {
        "entries": result.entries,
        "seconds": result.seconds,
        "rate": result.entries / result.seconds,
        "checkpoints": result.checkpoints,
        "recorded": result.recorded,
        "witnessed": result.witnessed,
        "witness_seconds": result.witness_seconds,
    }


def bench_verify_witness(alias: str, witness: str, rounds: int = 5) -> dict:
    """``chain_verify`` without and with the witness, alternating, best of ``rounds`` each (on a
    shared machine one run can take twice as long as the next), and the witness's own part:
    reading its files alone."""
    from compliance.audit.selectors.witness import witness_read

    plain, witnessed = [], []
    for _ in range(rounds):
        plain.append(bench_verify(alias))
        witnessed.append(bench_verify(alias, witness))
    best_plain = min(plain, key=lambda r: r["seconds"])
    best_witness = min(witnessed, key=lambda r: r["seconds"])
    began = time.perf_counter()
    files = len(witness_read(root=Path(witness), chain_id=alias).checkpoints)
    # what the witness adds to a run (reading, checking signatures not already checked, claims),
    # timed inside chain_verify; the walk itself takes the same claims' sizes either way
    extra = min(r["witness_seconds"] for r in witnessed)
    return {
        "plain": best_plain,
        "witness": best_witness,
        "ratio": best_witness["rate"] / best_plain["rate"],
        # each round runs both back to back: the median of the rounds' own ratios is the
        # figure least moved by a load spike that hits one run (the best-of ratio is not)
        "paired_median_ratio": statistics.median(
            p["seconds"] / w["seconds"] for p, w in zip(plain, witnessed, strict=True)
        ),
        "all_seconds": {
            "plain": [r["seconds"] for r in plain],
            "witness": [r["seconds"] for r in witnessed],
        },
        "witness_read_seconds": time.perf_counter() - began,
        "witness_files": files,
        "witness_part_seconds": extra,
        "ratio_from_part": best_plain["seconds"] / (best_plain["seconds"] + extra),
    }


def _verify_mode() -> str:
    from compliance.audit.selectors import walk as fast

    accelerator = "orjson" if fast.orjson is not None else "stdlib json"
    return (
        f"PostgreSQL COPY walk, up to {fast.PARALLEL_WORKERS} processes from "
        f"{fast.PARALLEL_MIN:,} entries, {accelerator}"
    )


def generate(alias: str, count: int, start: datetime, checkpoint_every: int = 0) -> float:
    """Append ``count`` valid entries quickly (big batches; COPY on PostgreSQL); with
    ``checkpoint_every``, sign (and witness) a checkpoint after every that many entries."""
    from django.db import transaction

    from compliance.audit.services.append import audit_append
    from compliance.audit.services.checkpoints import checkpoint_sign

    began = time.perf_counter()
    chunk = min(50_000, checkpoint_every) if checkpoint_every else 50_000
    for offset in range(0, count, chunk):
        with transaction.atomic(using=alias):
            audit_append(
                using=alias,
                entries=_entries(min(chunk, count - offset), offset),
                at=start + timedelta(seconds=offset // chunk),
            )
        if checkpoint_every:
            checkpoint_sign(using=alias)
    return time.perf_counter() - began


def _export_child(alias: str, out: str, queue) -> None:
    import django
    from django.db import connections

    django.setup()
    from compliance.audit.services.append import Actor
    from compliance.audit.services.export import audit_export

    connections.close_all()
    began = time.perf_counter()
    result = audit_export(
        start=datetime(2000, 1, 1, tzinfo=UTC),
        end=datetime(2100, 1, 1, tzinfo=UTC),
        out=out,
        actor=Actor.system("bench"),
        aliases=[alias],
    )
    seconds = time.perf_counter() - began
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put(
        {
            "entries": result.entries,
            "seconds": seconds,
            "peak_mb": peak_kb / 1024,
            "bytes": Path(out).stat().st_size,
        }
    )


def bench_export(alias: str) -> dict:
    from django.conf import settings

    out = Path(tempfile.mkdtemp(prefix="bench-audit-")) / "bundle.zip"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    # the child uses the same (test) databases: pass their names through the settings copy
    names = {a: settings.DATABASES[a]["NAME"] for a in settings.DATABASES}
    process = context.Process(target=_export_child_with_names, args=(names, alias, str(out), queue))
    process.start()
    result = queue.get(timeout=900)
    process.join()
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["parent_peak_mb"] = baseline_kb / 1024
    out.unlink()
    return result


def _export_child_with_names(names, alias, out, queue):
    from django.conf import settings

    for key, name in names.items():
        settings.DATABASES[key]["NAME"] = name
    _export_child(alias, out, queue)


def main(argv) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench audit")
    parser.add_argument("--append", type=int, default=100_000)
    parser.add_argument("--export", type=int, default=1_000_000)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    args = parser.parse_args(argv)
    alias = "eu"
    from django.conf import settings

    witness_dir = tempfile.mkdtemp(prefix="bench-audit-witness-")
    settings.COMPLIANCE_AUDIT_WITNESS_DIR = witness_dir
    with bench_databases():
        print(f"machine: {machine()}  date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        t0 = time.perf_counter()
        append = bench_append(args.append, alias)
        print(
            f"append {append['rows']:,} in batches of {BATCH}: audit_append "
            f"{append['audited_rows_per_s']:,.0f} rows/s, plain bulk_create "
            f"{append['plain_rows_per_s']:,.0f} rows/s -> ratio {append['ratio']:.2f} "
            f"(target >= 2.5)"
        )
        verify = bench_verify(alias)
        print(
            f"audit_verify: {verify['entries']:,} entries in {verify['seconds']:.2f}s -> "
            f"{verify['rate']:,.0f} entries/s (target >= 200,000)"
        )
        extra = args.export - verify["entries"]
        if extra > 0:
            seconds = generate(
                alias, extra, datetime(2025, 1, 1, tzinfo=UTC), args.checkpoint_every
            )
            print(
                f"generated {extra:,} more entries in {seconds:.1f}s, a signed and witnessed "
                f"checkpoint every {args.checkpoint_every:,}"
            )
        both = bench_verify_witness(alias, witness_dir)
        verify, witnessed = both["plain"], both["witness"]
        print(
            f"audit_verify: {verify['entries']:,} entries in {verify['seconds']:.2f}s -> "
            f"{verify['rate']:,.0f} entries/s (target >= 200,000; {_verify_mode()}; "
            f"{verify['checkpoints']:,} checkpoints, {verify['recorded']:,} recorded in the chain)"
        )
        print(
            f"audit_verify --witness: {witnessed['entries']:,} entries and "
            f"{witnessed['witnessed']:,} witness files in {witnessed['seconds']:.2f}s -> "
            f"{witnessed['rate']:,.0f} entries/s -> {both['ratio']:.2f}x without the witness "
            f"(best of 5 each, alternating); median of the 5 back-to-back pairs: "
            f"{both['paired_median_ratio']:.2f}x (target >= 0.9x)"
        )
        spread = both["all_seconds"]
        print(
            f"  runs without: {', '.join(f'{x:.2f}s' for x in spread['plain'])}; with: "
            f"{', '.join(f'{x:.2f}s' for x in spread['witness'])}; reading the "
            f"{both['witness_files']:,} witness files alone: {both['witness_read_seconds']:.3f}s"
        )
        print(
            f"  the witness's part of a run (timed inside chain_verify): "
            f"{both['witness_part_seconds']:.3f}s -> {both['ratio_from_part']:.3f}x of the best "
            "run without it (the side-by-side ratio above moves with the machine's load)"
        )
        export = bench_export(alias)
        print(
            f"audit_export: {export['entries']:,} entries in {export['seconds']:.1f}s, "
            f"bundle {export['bytes'] / 1e6:.0f} MB, child peak RSS {export['peak_mb']:.0f} MB "
            f"(target < 200 MB; parent process peak {export['parent_peak_mb']:.0f} MB)"
        )
        print(f"total {time.perf_counter() - t0:.0f}s")
        print(json.dumps({"append": append, "verify": both, "export": export}))
    shutil.rmtree(witness_dir, ignore_errors=True)
    return 0
