"""Erasure cost follows the person, not the table; bulk erasure throughput per worker.

``python -m bench dsar_erasure`` (PostgreSQL; seeding uses COPY). In one run, on throwaway
databases:

1. seed the ``eu`` region with 100,000 subjects (subject, key, identity, directory row) and
   100,000 segment memberships; erase target subjects that each hold 50 memberships and 200
   events, through ``request_erase_run`` (the worker's code path, no broker), and time it;
2. add memberships up to 1,000,000 and erase more target subjects the same way;
3. single-request erasure: erase ``PER_REQUEST`` seeded subjects one request each, sequentially
   (one worker, ``request_erase_run``, at 1,000,000 memberships): ms per request (target <= 30)
   and statements per request, beside the plain SQL deletes of ``PER_REQUEST`` other seeded
   subjects (one ``DELETE`` per table, no audit);
4. bulk: erase 1,000 other seeded subjects (10 memberships each) with ONE
   ``requests_erase_bulk`` call (what the ``dsar.requests_erase_bulk`` job runs; batches of 500):
   subjects/second, and the ratio to the per-request rate measured in the same run.

Prints the ratio of the per-request time at 1,000,000 to the one at 100,000 (target <= 1.5)
the single-request time (target <= 30 ms) and the bulk rate (target >= 500 subjects/s per
worker).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

from bench import copy_rows, guards_off, seed_subjects

SUBJECTS = 100_000
MEMBERSHIPS_SMALL = 100_000
MEMBERSHIPS_LARGE = 1_000_000
TARGETS_PER_PHASE = 9
TARGET_MEMBERSHIPS = 50
TARGET_EVENTS = 200
BULK = 1_000
PER_REQUEST = 200


def _seed_subjects(now) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(SUBJECTS)]
    seed_subjects(alias="eu", region="eu", ids=ids, now=now, wrapped_key=lambda _: os.urandom(60))
    copy_rows(
        "eu",
        "compliance_identity",
        ["subject_id", "identifier_type", "blind_index", "value_encrypted", "created_at"],
        ((sid, "email", secrets.token_hex(32), os.urandom(48), now) for sid in ids),
    )
    copy_rows(
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
        copy_rows(
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


def _phase(label: str, now, results: dict, *, sql: bool = False) -> None:
    from django.db import connections

    with connections["eu"].cursor() as cursor:
        # a table at rest, as in production: the COPY just seeded leaves hint bits and the
        # visibility map to the first readers, which made the first erasures of a phase slow
        cursor.execute("VACUUM ANALYZE")
    targets = [_make_target(now) for _ in range(TARGETS_PER_PHASE)]
    requests = [_erasure_request(t, now) for t in targets]
    times = [_erase(r) for r in requests[:-1]]
    with _captured(sql):  # the last request's statements with ``--sql-phase``
        times.append(_erase(requests[-1]))
    results[label] = statistics.median(times)
    print(
        f"  {label}: median {results[label] * 1000:.1f} ms per request "
        f"(runs: {', '.join(f'{t * 1000:.0f}' for t in times)} ms)"
    )


def _plain_delete(subject_id: uuid.UUID) -> None:
    """The baseline: what a user would otherwise write, one indexed DELETE per table (as the
    table owner, behind the guards), no audit, no proof."""
    from django.db import connections

    from compliance.personal_data import personal_data_models

    with guards_off("eu"), connections["eu"].cursor() as cursor:
        for entry in personal_data_models():
            column = entry.model._meta.get_field(entry.subject_field).column
            cursor.execute(
                f"DELETE FROM {entry.model._meta.db_table} WHERE {column} = %s", [subject_id]
            )
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "DELETE FROM compliance_subjectdirectory WHERE subject_id = %s", [subject_id]
        )


def _statements(label: str, captured: list[dict]) -> None:
    """Print each captured statement with its time (``--sql``)."""
    for query in captured:
        print(f"  {label} {float(query['time']) * 1000:6.2f} ms  {query['sql'][:160]}")


@contextlib.contextmanager
def _captured(on: bool) -> Iterator[None]:
    """Print the block's statements with their times when ``on`` (``--sql-bulk``,
    ``--sql-phase``)."""
    if not on:
        yield
        return
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections["eu"]) as eu:
        with CaptureQueriesContext(connections["default"]) as default:
            yield
    _statements("eu", eu.captured_queries)
    _statements("default", default.captured_queries)


@contextlib.contextmanager
def _profiled(on: bool) -> Iterator[None]:
    """cProfile the block when ``on`` (``--profile``, ``--profile-bulk``): the top functions
    by own time, then by cumulative time."""
    if not on:
        yield
        return
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(45)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(70)


def _single(erased, plain, now, results: dict, *, sql: bool = False, profile: bool = False) -> None:
    """Single-request erasure at 1,000,000 memberships: ``request_erase_run`` one request at a
    time (worker time per request, statements per request) against the plain deletes of
    other seeded subjects holding the same rows."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    requests = [_erasure_request(sid, now) for sid in erased]
    first = _erase(requests[0])  # warm: statements are counted on the second request
    with CaptureQueriesContext(connections["eu"]) as eu:
        with CaptureQueriesContext(connections["default"]) as default:
            second = _erase(requests[1])
    if sql:
        _statements("eu", eu.captured_queries)
        _statements("default", default.captured_queries)
    cpu = time.process_time()
    with _profiled(profile):
        times = [first, second] + [_erase(r) for r in requests[2:]]
    cpu = (time.process_time() - cpu) / (len(requests) - 2)
    results["single"] = statistics.mean(times)
    start = time.perf_counter()
    for sid in plain:
        _plain_delete(sid)
    baseline = (time.perf_counter() - start) / len(plain)
    print(
        f"single-request erasure at {MEMBERSHIPS_LARGE:,} memberships: {len(requests)} requests "
        f"(10 memberships each) one at a time: mean {results['single'] * 1000:.1f} ms, median "
        f"{statistics.median(times) * 1000:.1f} ms per request "
        f"({len(eu.captured_queries)} region + {len(default.captured_queries)} control statements "
        f"per request; target <= 30 ms): {'met' if results['single'] <= 0.030 else 'NOT met'}"
    )
    print(
        f"  plain deletes of the same rows (no audit, no proof): {baseline * 1000:.2f} ms per "
        f"subject; erasure / plain = {results['single'] / baseline:.1f}x"
    )
    print(
        f"  of which the worker's own CPU: {cpu * 1000:.1f} ms per request (the rest: waiting on "
        "the databases)"
    )
    print(f"per-request: {1 / results['single']:.1f} subjects/s per worker")


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
        _phase("at 100,000 memberships", now, results, sql="--sql-phase" in argv)
        t0 = time.perf_counter()
        _seed_memberships(ids, MEMBERSHIPS_SMALL, MEMBERSHIPS_LARGE, now)
        print(f"seeded up to {MEMBERSHIPS_LARGE:,} memberships in {time.perf_counter() - t0:.1f}s")
        _phase("at 1,000,000 memberships", now, results, sql="--sql-phase" in argv)
        ratio = results["at 1,000,000 memberships"] / results["at 100,000 memberships"]
        print(
            f"ratio 1,000,000 / 100,000: {ratio:.2f} (target <= 1.5): "
            f"{'met' if ratio <= 1.5 else 'NOT met'}"
        )

        _single(
            ids[:PER_REQUEST],
            ids[PER_REQUEST + BULK : PER_REQUEST * 2 + BULK],
            now,
            results,
            sql="--sql" in argv,
            profile="--profile" in argv,
        )
        single_rate = 1 / results["single"]

        from compliance.dsar.services.bulk import requests_erase_bulk

        bulk = [_erasure_request(sid, now) for sid in ids[PER_REQUEST : PER_REQUEST + BULK]]
        start = time.perf_counter()
        with _profiled("--profile-bulk" in argv), _captured("--sql-bulk" in argv):
            result = requests_erase_bulk(region="eu", request_ids=[r.pk for r in bulk])
        elapsed = time.perf_counter() - start
        assert len(result.completed) == BULK, (result.rejected, list(result.skipped.items())[:3])
        rate = BULK / elapsed
        print(
            f"bulk: {BULK:,} subjects (10 memberships each, {result.batches} batches) erased by "
            f"one requests_erase_bulk call in {elapsed:.1f}s = {rate:.0f} subjects/s per worker "
            f"(target >= 500): {'met' if rate >= 500 else 'NOT met'}; "
            f"{rate / single_rate:.0f}x the per-request rate"
        )
    return 0
