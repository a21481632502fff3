"""Erasure cost follows the person, not the table; bulk erasure throughput per worker.

``python -m bench dsar_erasure`` (PostgreSQL; seeding uses COPY). In one run, on throwaway
databases:

1. seed the ``eu`` region with 100,000 subjects (subject, key, identity, directory row) and
   100,000 segment memberships; erase target subjects that each hold 50 memberships and 200
   events, through ``request_erase_run`` (the worker's code path, no broker), and time it;
2. add memberships up to 1,000,000 and erase more target subjects the same way;
3. per-request baseline: erase ``PER_REQUEST`` seeded subjects one request each, sequentially
   (one worker, ``request_erase_run``): subjects/second;
4. bulk: erase 1,000 other seeded subjects (10 memberships each) with ONE
   ``requests_erase_bulk`` call (what the ``dsar.requests_erase_bulk`` job runs; batches of 500):
   subjects/second, and the ratio to the per-request rate measured in the same run.

Prints the ratio of the per-request time at 1,000,000 to the one at 100,000 (target <= 1.5)
and the bulk rate (target >= 100 subjects/s per worker).
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
import uuid
from datetime import timedelta

from bench import guards_off

SUBJECTS = 100_000
MEMBERSHIPS_SMALL = 100_000
MEMBERSHIPS_LARGE = 1_000_000
TARGETS_PER_PHASE = 5
TARGET_MEMBERSHIPS = 50
TARGET_EVENTS = 200
BULK = 1_000
PER_REQUEST = 200


def _copy(alias: str, table: str, columns: list[str], rows) -> None:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _seed_subjects(now) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(SUBJECTS)]
    _copy(
        "eu",
        "compliance_subject",
        ["id", "region", "audit_token", "created_at"],
        ((sid, "eu", secrets.token_hex(16), now) for sid in ids),
    )
    _copy(
        "eu",
        "compliance_subjectkey",
        ["subject_id", "wrapped_key", "key_version", "created_at"],
        ((sid, os.urandom(60), "v1", now) for sid in ids),
    )
    _copy(
        "eu",
        "compliance_identity",
        ["subject_id", "identifier_type", "blind_index", "value_encrypted", "created_at"],
        ((sid, "email", secrets.token_hex(32), os.urandom(48), now) for sid in ids),
    )
    _copy(
        "default",
        "compliance_subjectdirectory",
        ["blind_index", "identifier_type", "region", "subject_id", "created_at"],
        ((secrets.token_hex(32), "email", "eu", sid, now) for sid in ids),
    )
    return ids


def _seed_memberships(ids, start: int, stop: int, now) -> None:

    from segments.models import SegmentMembership

    table = SegmentMembership._meta.db_table
    # seeding bypasses memberships_apply: as the table owner, behind the guards
    with guards_off("eu"):
        _copy(
            "eu",
            table,
            [
                "subject_id",
                "segment_key",
                "entered_at",
                "entered_reason",
                "exited_at",
                "exited_reason",
                "consent_event_ids",
            ],
            (
                (ids[i % SUBJECTS], f"seg-{i // SUBJECTS}", now, "criteria", None, "", "[]")
                for i in range(start, stop)
            ),
        )


def _make_target(now) -> uuid.UUID:
    from compliance.audit.services.append import Actor
    from compliance.events.models import Event
    from compliance.services.subjects import subject_resolve
    from segments.models import SegmentMembership

    subject = subject_resolve(
        identifier_type="email",
        value=f"target-{uuid.uuid4().hex[:10]}@example.fr",
        jurisdiction="FR",
        actor=Actor.system("bench"),
    )


    with guards_off("eu"):
        _memberships = [
            SegmentMembership(
                subject_id=subject.pk,
                segment_key=f"target-{j}",
                entered_at=now,
                entered_reason="criteria",
            )
            for j in range(TARGET_MEMBERSHIPS)
        ]
        SegmentMembership.objects.using("eu").bulk_create(_memberships)
    Event.objects.using("eu").bulk_create(
        [
            Event(
                subject_id=subject.pk,
                source="web",
                name="page_view",
                purpose="measurement",
                occurred_at=now - timedelta(minutes=j),
                received_at=now,
                properties_encrypted=os.urandom(64),
            )
            for j in range(TARGET_EVENTS)
        ]
    )
    return subject.pk


def _erasure_request(subject_id: uuid.UUID, now):
    from compliance.dsar.models import PrivacyRequest, Status
    from compliance.models import Subject

    subject = Subject.objects.using("eu").get(pk=subject_id)
    return PrivacyRequest.objects.using("eu").create(
        type="erasure",
        regulation="gdpr",
        status=Status.PROCESSING,
        region="eu",
        subject_id=subject_id,
        subject_token=subject.audit_token,
        verification_method="id_document",
        received_at=now,
        due_at=now + timedelta(days=30),
        started_at=now,
        heartbeat_at=now,
    )


def _erase(request) -> float:
    from compliance.dsar.services.erasure import request_erase_run

    start = time.perf_counter()
    done = request_erase_run(region="eu", request_id=request.pk)
    elapsed = time.perf_counter() - start
    assert done.status == "completed", done.failure_reason
    return elapsed


def _phase(label: str, now, results: dict) -> None:
    from django.db import connections

    with connections["eu"].cursor() as cursor:
        cursor.execute("ANALYZE")
    targets = [_make_target(now) for _ in range(TARGETS_PER_PHASE)]
    requests = [_erasure_request(t, now) for t in targets]
    times = [_erase(r) for r in requests]
    results[label] = statistics.median(times)
    print(
        f"  {label}: median {results[label] * 1000:.1f} ms per request "
        f"(runs: {', '.join(f'{t * 1000:.0f}' for t in times)} ms)"
    )


def main(argv) -> int:
    from django.db import connections
    from django.utils import timezone

    from bench import bench_databases, machine

    if connections["eu"].vendor != "postgresql":
        print("dsar_erasure needs PostgreSQL (set DATABASE_URL, DATABASE_URL_EU, DATABASE_URL_US)")
        return 2
    print(f"machine: {machine()}")
    results: dict[str, float] = {}
    with bench_databases():
        now = timezone.now()
        t0 = time.perf_counter()
        ids = _seed_subjects(now)
        _seed_memberships(ids, 0, MEMBERSHIPS_SMALL, now)
        print(
            f"seeded {SUBJECTS:,} subjects and {MEMBERSHIPS_SMALL:,} memberships "
            f"in {time.perf_counter() - t0:.1f}s"
        )
        _phase("at 100,000 memberships", now, results)
        t0 = time.perf_counter()
        _seed_memberships(ids, MEMBERSHIPS_SMALL, MEMBERSHIPS_LARGE, now)
        print(f"seeded up to {MEMBERSHIPS_LARGE:,} memberships in {time.perf_counter() - t0:.1f}s")
        _phase("at 1,000,000 memberships", now, results)
        ratio = results["at 1,000,000 memberships"] / results["at 100,000 memberships"]
        print(
            f"ratio 1,000,000 / 100,000: {ratio:.2f} (target <= 1.5): "
            f"{'met' if ratio <= 1.5 else 'NOT met'}"
        )

        singles = [_erasure_request(sid, now) for sid in ids[:PER_REQUEST]]
        start = time.perf_counter()
        for request in singles:
            _erase(request)
        single_rate = PER_REQUEST / (time.perf_counter() - start)
        print(
            f"per-request: {PER_REQUEST:,} subjects (10 memberships each) erased one request at "
            f"a time: {single_rate:.1f} subjects/s per worker"
        )

        from compliance.dsar.services.bulk import requests_erase_bulk

        bulk = [_erasure_request(sid, now) for sid in ids[PER_REQUEST : PER_REQUEST + BULK]]
        start = time.perf_counter()
        result = requests_erase_bulk(region="eu", request_ids=[r.pk for r in bulk])
        elapsed = time.perf_counter() - start
        assert len(result.completed) == BULK, (result.rejected, list(result.skipped.items())[:3])
        rate = BULK / elapsed
        print(
            f"bulk: {BULK:,} subjects (10 memberships each, {result.batches} batches) erased by "
            f"one requests_erase_bulk call in {elapsed:.1f}s = {rate:.0f} subjects/s per worker "
            f"(target >= 100): {'met' if rate >= 100 else 'NOT met'}; "
            f"{rate / single_rate:.0f}x the per-request rate"
        )
    return 0
