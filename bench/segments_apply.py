"""100,000 consented enters into one segment: ``memberships_apply`` vs plain ``bulk_create``.

``python -m bench segments_apply [N] [--no-pghistory]``

* setup (not timed): N subjects in ``eu`` (subject rows and control directory rows) with
  consent granted to the segment's purposes (consent events and their state projection, written
  with COPY), an active ``behavioral`` segment (purposes audience_segmentation + measurement);
* baseline: ``SegmentMembership.objects.using("eu").bulk_create`` of the same N rows - no
  consent check, no audit, no idempotence check (the write path is opened so the guard trigger
  lets it through; the trigger is statement-level, one check per statement);
* audited: ``memberships_apply(segment=..., enters=[N subject ids], ...)`` - directory lookup,
  subject lookup, enter blockers, idempotence check, ``can_process_bulk``, membership rows
  (COPY), N MEMBERSHIP_ENTERED audit events (hash chain) in one transaction;
* pghistory reference: ``bulk_create`` of the same N rows into a copy of the membership table
  (same columns and indexes, ``bench/pghistory_app``) tracked by a django-pghistory
  ``InsertEvent`` trigger (one event row per membership, written by the database; no consent
  check, no hash chain). It needs django-pghistory installed; the bench then re-executes itself
  with ``DJANGO_SETTINGS_MODULE=bench.pghistory_settings`` (the product settings plus pgtrigger,
  pghistory and the bench app), so one command prints all three side by side;
* the table is truncated between runs, so each inserts into the same empty table and indexes;
* database floor: COPY of ready-made text buffers of exactly the rows the audited path writes per
  enter (a membership row, an audit entry, an outbox row) into the same three tables and indexes,
  timed with no Python work inside, in one transaction that is rolled back. Whatever the code
  around it, an implementation that writes these rows cannot be faster than this, so
  ``baseline / floor`` is the best ratio this schema allows on this machine. The same buffers
  also go into scratch twins of the tables with only their primary keys and unique indexes, the
  ceiling even if every lookup index were dropped;
* the time spent in the enter blockers (``compliance.hooks``; the DSAR restriction blocker) is
  printed separately: it belongs to the audited path and is included in its figure.

Target (issue 5): audited rows/s >= 2.0 x baseline rows/s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import os
import pstats
import secrets
import sys
import time
import uuid

from bench import bench_databases, copy_rows, guards_off, machine


def _seed(n: int, purposes: list[str]) -> list[uuid.UUID]:
    from django.db import connections, transaction
    from django.utils import timezone

    from compliance.consent.models import ConsentEvent, ConsentState
    from compliance.models import Subject, SubjectDirectory

    now = timezone.now()
    ids = [uuid.uuid4() for _ in range(n)]
    copy_rows(
        "eu",
        Subject._meta.db_table,
        ["id", "region", "audit_token", "created_at"],
        ((sid, "eu", secrets.token_hex(16), now) for sid in ids),
    )
    copy_rows(
        "default",
        SubjectDirectory._meta.db_table,
        ["blind_index", "identifier_type", "region", "subject_id", "created_at"],
        ((secrets.token_hex(32), "email", "eu", sid, now) for sid in ids),
    )
    with transaction.atomic(using="eu"):
        with connections["eu"].cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [ConsentEvent._meta.db_table, n * len(purposes)],
            )
            event_ids = [row[0] for row in cursor.fetchall()]
        pairs = [(sid, p) for sid in ids for p in purposes]
        copy_rows(
            "eu",
            ConsentEvent._meta.db_table,
            [
                "id",
                "subject_id",
                "purpose",
                "purpose_version",
                "source",
                "scope",
                "jurisdiction",
                "lawful_basis",
                "decision",
                "method",
                "captured_at",
                "received_at",
                "collection_point",
                "actor_type",
                "actor_id",
                "raw_signal",
                "decoder_version",
            ],
            (
                (
                    eid,
                    sid,
                    p,
                    1,
                    "web",
                    "global",
                    "FR",
                    "consent",
                    "granted",
                    "ui",
                    now,
                    now,
                    "",
                    "system",
                    "bench",
                    "",
                    "",
                )
                for eid, (sid, p) in zip(event_ids, pairs, strict=True)
            ),
        )
        copy_rows(
            "eu",
            ConsentState._meta.db_table,
            [
                "subject_id",
                "purpose",
                "source",
                "decision",
                "lawful_basis",
                "jurisdiction",
                "event_id",
                "captured_at",
                "updated_at",
            ],
            (
                (sid, p, "", "granted", "consent", "FR", eid, now, now)
                for eid, (sid, p) in zip(event_ids, pairs, strict=True)
            ),
        )
    for alias in ("eu", "default"):
        with connections[alias].cursor() as cursor:
            cursor.execute("ANALYZE")
    return ids


def _truncate_memberships() -> None:
    from django.db import connections

    with connections["eu"].cursor() as cursor:
        cursor.execute("TRUNCATE segments_segmentmembership")
        cursor.execute("VACUUM ANALYZE segments_segmentmembership")


def _database_floor(ids: list[uuid.UUID], segment_key: str) -> dict[str, float]:
    """Seconds to COPY ready buffers of one membership row, one audit entry and one outbox row
    per id into the real tables (same indexes and triggers), rolled back afterwards."""
    from django.db import connections, transaction
    from django.utils import timezone

    _truncate_memberships()
    now = timezone.now().isoformat()
    with connections["eu"].cursor() as cursor:
        cursor.execute("SELECT coalesce(max(seq), 0) FROM audit_auditevent")
        seq = cursor.fetchone()[0]
    first = 1  # the membership table is empty (truncated)
    buffers = {
        "memberships": (
            "segments_segmentmembership (id, subject_id, segment_key, entered_at, "
            "entered_reason, exited_at, exited_reason, consent_event_ids, arm)",
            "".join(
                f"{first + i}\t{sid}\t{segment_key}\t{now}\tcriteria\t\\N\t\t[1, 2]\ttreatment\n"
                for i, sid in enumerate(ids)
            ),
        ),
        "audit": (
            "audit_auditevent (seq, occurred_at, code, actor_type, actor_id, subject_token, "
            "object_type, object_id, payload, hash)",
            "".join(
                f"{seq + 1 + i}\t{now}\t201\tsystem\tbench\t{secrets.token_hex(16)}\tsegment\t"
                f'{segment_key}\t{{"reason": "criteria", "membership_id": {first + i}, '
                f'"arm": "treatment"}}\t'
                f"{secrets.token_hex(32)}\n"
                for i in range(len(ids))
            ),
        ),
        "outbox": (
            "feed_change (change_id, kind, subject_id, segment_key, purpose, source, decision, "
            "reason, ref_id, occurred_at, arm)",
            "".join(
                f"{uuid.uuid4()}\tenter\t{sid}\t{segment_key}\t\t\t\tcriteria\t"
                f"{first + i}\t{now}\ttreatment\n"
                for i, sid in enumerate(ids)
            ),
        ),
    }
    seconds: dict[str, float] = {}
    with transaction.atomic(using="eu"):
        with connections["eu"].cursor() as cur:
            for name, (target, text) in buffers.items():
                data = text.encode()
                table, columns = target.split(" ", 1)
                # a scratch twin with only the primary key and unique indexes: what the rows
                # cost with no lookup index at all (dropped with the rollback)
                cur.execute(f"CREATE TABLE lean_{table} (LIKE {table} INCLUDING ALL)")
                cur.execute(
                    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE i.indrelid = %s::regclass AND NOT i.indisunique",
                    [f"lean_{table}"],
                )
                for (index,) in cur.fetchall():
                    cur.execute(f'DROP INDEX "{index}"')
                for key, into in ((name, table), (f"{name}_lean", f"lean_{table}")):
                    started = time.perf_counter()
                    with cur.cursor.copy(f"COPY {into} {columns} FROM STDIN") as copy:
                        copy.write(data)
                    seconds[key] = time.perf_counter() - started
        transaction.set_rollback(True, using="eu")  # measured only: nothing stays
    seconds["total"] = sum(seconds[name] for name in buffers)
    seconds["total_lean"] = sum(seconds[f"{name}_lean"] for name in buffers)
    return seconds


PGHISTORY_SETTINGS = "bench.pghistory_settings"


def _with_pghistory(argv) -> bool:
    """True when this process runs with the pghistory bench settings; otherwise re-execute the
    same command with them (when django-pghistory is installed) and never return."""
    from django.conf import settings

    if "bench.pghistory_app" in settings.INSTALLED_APPS:
        return True
    if importlib.util.find_spec("pghistory") is None:
        print("django-pghistory is not installed: the pghistory reference is skipped")
        return False
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": PGHISTORY_SETTINGS}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "bench", "segments_apply", *argv], env)


class _BlockerClock:
    """Wraps the registered enter blockers to time them (bench instrumentation only)."""

    def __init__(self):
        from compliance import hooks

        self.seconds = 0.0
        self._hooks = hooks
        self._saved = list(hooks._ENTER_BLOCKERS)
        hooks._ENTER_BLOCKERS[:] = [self._timed(b) for b in self._saved]

    def _timed(self, blocker):
        def timed(**kwargs):
            started = time.perf_counter()
            try:
                return blocker(**kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed

    def restore(self) -> None:
        self._hooks._ENTER_BLOCKERS[:] = self._saved


def _pghistory_run(ids, segment_key: str) -> float:
    from django.db import connections, transaction
    from django.utils import timezone

    from bench.pghistory_app.models import TrackedMembership

    with connections["eu"].cursor() as cursor:
        cursor.execute(f"TRUNCATE {TrackedMembership._meta.db_table}")
        cursor.execute(f"TRUNCATE {TrackedMembership.pgh_event_model._meta.db_table}")
    now = timezone.now()
    rows = [
        TrackedMembership(
            subject_id=sid,
            segment_key=segment_key,
            entered_at=now,
            entered_reason="criteria",
            consent_event_ids=[],
        )
        for sid in ids
    ]
    started = time.perf_counter()
    with transaction.atomic(using="eu"):
        TrackedMembership.objects.using("eu").bulk_create(rows)
    seconds = time.perf_counter() - started
    events = TrackedMembership.pgh_event_model.objects.using("eu").count()
    assert events == len(ids), f"pghistory wrote {events} events for {len(ids)} rows"
    return seconds


#: phase -> the function whose cumulative time measures it (``--profile``)
PHASES = {
    "directory lookup (control DB)": "directory_regions",
    "subject + active-stay lookup": "subject_columns",
    "enter blockers": "enter_blocked",
    "consent (consent_gate_positions)": "consent_gate_positions",
    "membership rows (ids + COPY)": "stays_insert",
    "audit (hash + COPY)": "audit_append_uniform",
    "outbox (INSERT ... SELECT)": "membership_changes_record",
    "whole call": "memberships_apply",
}


def _print_phases(profiler) -> None:
    stats = pstats.Stats(profiler).stats
    cumulative: dict[str, float] = {}
    for (_, _, name), (_, _, _, cum, _) in stats.items():
        cumulative[name] = max(cumulative.get(name, 0.0), cum)
    print("phases under cProfile (cumulative seconds, profiler overhead included):")
    for label, name in PHASES.items():
        print(f"  {label:<36} {cumulative.get(name, 0.0):6.2f}s")


def main(argv) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench segments_apply")
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--no-pghistory", action="store_true", help="skip the pghistory run")
    parser.add_argument(
        "--uuid",
        action="store_true",
        help="pass bare subject ids (adds the control-directory lookup) instead of SubjectRef",
    )
    parser.add_argument(
        "--profile", action="store_true", help="run the audited call under cProfile (phases)"
    )
    args = parser.parse_args(argv)
    from django.db import connections

    pghistory = not args.no_pghistory and _with_pghistory(argv)

    if connections["eu"].vendor != "postgresql":
        print("segments_apply measures COPY paths: run it with DATABASE_URL* on PostgreSQL")
        return 2

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from compliance.audit.services.append import Actor
    from compliance.roles import PRIVACY_OFFICER
    from segments.models import SegmentMembership
    from segments.services.definitions import (
        segment_activate,
        segment_approve,
        segment_create,
    )
    from segments.services.memberships import SubjectRef, memberships_apply

    n = args.n
    with bench_databases():
        officer = get_user_model().objects.create_user("bench-officer", is_staff=True)
        officer.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
        officer = get_user_model().objects.get(pk=officer.pk)
        segment = segment_create(
            key="bench-buyers",
            name="Bench buyers",
            layers=["behavioral"],
            owner=officer,
            motion="campaign",
            measurement_metric="conversion",
            control_group_share="0.1",
            user=officer,
        )
        segment = segment_activate(
            segment=segment_approve(segment=segment, user=officer), user=officer
        )
        started = time.perf_counter()
        ids = _seed(n, list(segment.required_purposes))
        print(f"seeded {n:,} consented subjects in {time.perf_counter() - started:.1f}s")

        # --- baseline: plain bulk_create, no checks, no audit --------------------------
        _truncate_memberships()
        now = timezone.now()
        rows = [
            SegmentMembership(
                subject_id=sid,
                segment_key=segment.key,
                entered_at=now,
                entered_reason="criteria",
                consent_event_ids=[],
            )
            for sid in ids
        ]
        started = time.perf_counter()
        with guards_off("eu"):
            SegmentMembership.objects.using("eu").bulk_create(rows)
        baseline = time.perf_counter() - started
        assert SegmentMembership.objects.using("eu").count() == n

        # --- audited path ------------------------------------------------------------------
        _truncate_memberships()
        from compliance.audit.models import AuditEvent

        audit_before = AuditEvent.objects.using("eu").count()
        # the caller knows the region (the API's natural shape); --uuid adds the directory lookup
        enters = ids if args.uuid else [SubjectRef(sid, "eu") for sid in ids]
        clock = _BlockerClock()
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        try:
            if profiler:
                profiler.enable()
            result = memberships_apply(
                segment=segment, enters=enters, exits=[], actor=Actor.system("bench")
            )
        finally:
            if profiler:
                profiler.disable()
            clock.restore()
        audited = time.perf_counter() - started
        if profiler:
            _print_phases(profiler)
        assert len(result.entered) == n, result.refused and list(result.refused.items())[:3]
        assert SegmentMembership.objects.using("eu").count() == n
        assert AuditEvent.objects.using("eu").count() - audit_before == n
        sample = SegmentMembership.objects.using("eu").first()
        assert len(sample.consent_event_ids) == len(segment.required_purposes)
        held_out = SegmentMembership.objects.using("eu").filter(arm="control").count()
        share = float(segment.control_group_share)
        assert abs(held_out / n - share) < 5 * (share * (1 - share) / n) ** 0.5, held_out

        floor = _database_floor(ids, segment.key)
        tracked = _pghistory_run(ids, segment.key) if pghistory else None

        b_rate, a_rate = n / baseline, n / audited
        print(f"machine: {machine()}")
        print(f"rows: {n:,} into one segment (purposes: {', '.join(segment.required_purposes)})")
        print(
            f"enters passed as: {'bare UUIDs' if args.uuid else 'SubjectRef(subject_id, region)'}"
        )
        print(f"holdout: {held_out:,} control stays (share {segment.control_group_share})")
        print(
            f"baseline bulk_create (no checks, no audit): {baseline:7.2f}s {b_rate:>10,.0f} rows/s"
        )
        print(
            f"memberships_apply (consent+rows+audit):     {audited:7.2f}s {a_rate:>10,.0f} rows/s"
        )
        if tracked is not None:
            print(
                f"pghistory InsertEvent trigger + bulk_create: {tracked:7.2f}s "
                f"{n / tracked:>10,.0f} rows/s"
            )
        blockers = clock.seconds
        print(
            f"  of which enter blockers (DSAR restriction): {blockers:7.2f}s "
            f"({blockers / audited:.0%} of the audited time)"
        )
        print(
            f"database floor, COPY of ready buffers (no Python, rolled back): "
            f"{floor['total']:.2f}s = memberships {floor['memberships']:.2f}s + audit "
            f"{floor['audit']:.2f}s + outbox {floor['outbox']:.2f}s"
        )
        print(
            f"  same rows, tables with only primary keys and unique indexes: "
            f"{floor['total_lean']:.2f}s = memberships {floor['memberships_lean']:.2f}s + audit "
            f"{floor['audit_lean']:.2f}s + outbox {floor['outbox_lean']:.2f}s"
        )
        print(
            f"best ratio these rows allow (baseline / database floor): "
            f"{baseline / floor['total']:.2f}x with the schema's indexes, "
            f"{baseline / floor['total_lean']:.2f}x with no lookup index at all"
        )
        ratio = a_rate / b_rate
        verdict = "MET" if ratio >= 2.0 else "NOT MET"
        print(f"ratio audited/baseline: {ratio:.2f}x (target >= 2.0x: {verdict})")
        if tracked is not None:
            print(f"ratio pghistory/baseline: {baseline / tracked:.2f}x")
            print(f"ratio audited/pghistory: {tracked / audited:.2f}x")
        print(
            json.dumps(
                {
                    "n": n,
                    "baseline_s": round(baseline, 3),
                    "audited_s": round(audited, 3),
                    "enter_blockers_s": round(blockers, 3),
                    "pghistory_s": round(tracked, 3) if tracked is not None else None,
                    "floor_s": {k: round(v, 3) for k, v in floor.items()},
                    "ratio": round(ratio, 2),
                }
            )
        )
    return 0
