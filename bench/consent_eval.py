"""Consent evaluation in bulk: ``can_process_bulk`` for N subjects (target: 100,000 in < 2 s).

Seeds N subjects' consent ledger and state in the ``eu`` database (COPY on PostgreSQL,
``bulk_create`` elsewhere): 55 % global grants, 15 % global withdrawals after a grant,
10 % source-scoped grants (crm) over a global denial, 5 % expired grants, 15 % nothing.
Then, in one run:

* baseline: the plain read a user would otherwise write - the state rows of those subjects
  for the purpose (``values_list``), no rules applied;
* the fetch ``can_process_bulk`` does, alone (``compliance.consent.sql.state_rows``: one
  query, the ids as one ``uuid[]`` parameter);
* ``can_process_bulk(region="eu", subject_ids=N ids, purposes=[1 purpose], source="crm")``;
* the same for three purposes.

Usage: ``python -m bench consent_eval [--subjects 100000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import io
import time
import uuid
from datetime import timedelta

from django.db import connections
from django.utils import timezone

from bench import bench_databases, machine
from compliance.consent.models import ConsentEvent, ConsentState
from compliance.consent.selectors.evaluation import can_process_bulk
from compliance.consent.sql import state_rows


def main(argv) -> int:
    parser = argparse.ArgumentParser(prog="bench consent_eval")
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with bench_databases():
        return _run(subjects=args.subjects, repeat=args.repeat)


def _run(*, subjects: int, repeat: int) -> int:
    ids = [uuid.uuid4() for _ in range(subjects)]
    start = time.perf_counter()
    _seed(ids=ids, now=timezone.now())
    seed_s = time.perf_counter() - start
    vendor = connections["eu"].vendor
    print(f"machine: {machine()}")
    print(f"seeded {subjects:,} subjects ({vendor}) in {seed_s:.1f}s")

    def best(fn) -> float:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    baseline = best(
        lambda: list(
            ConsentState.objects.using("eu")
            .filter(subject_id__in=ids, purpose="measurement", source__in=["", "crm"])
            .values_list("subject_id", "source", "decision", "event_id", "captured_at")
        )
    )
    fetch = best(
        lambda: state_rows(
            alias="eu", subject_ids=ids, purposes=["measurement"], scopes=["", "crm"]
        )
    )
    one = best(
        lambda: can_process_bulk(
            region="eu", subject_ids=ids, purposes=["measurement"], source="crm"
        )
    )
    three = best(
        lambda: can_process_bulk(
            region="eu",
            subject_ids=ids,
            purposes=["measurement", "storage", "email_marketing"],
            source="crm",
        )
    )
    result = can_process_bulk(region="eu", subject_ids=ids, purposes=["measurement"], source="crm")
    allowed = sum(1 for d in result.values() if d.allowed)
    print(f"baseline (plain state read, no rules): {baseline:.3f}s")
    print(f"state fetch alone (one query, ids as one uuid[], no rules): {fetch:.3f}s")
    print(
        f"can_process_bulk 1 purpose:  {one:.3f}s  {subjects / one:,.0f} subjects/s  "
        f"ratio vs baseline {one / baseline:.2f}x  (allowed {allowed:,} of {subjects:,})"
    )
    print(
        f"can_process_bulk 3 purposes: {three:.3f}s  {subjects * 3 / three:,.0f} decisions/s  "
        f"ratio vs baseline {three / baseline:.2f}x"
    )
    target = 2.0
    met = one < target
    print(
        f"target: {subjects:,} subjects in < {target:.0f}s for one purpose: {'MET' if met else 'NOT MET'}"
    )
    return 0


def _seed(*, ids, now) -> None:
    """Events and state rows for ``ids`` in the eu database."""
    rows_events = []
    rows_state = []
    event_id = 0
    long_ago = now - timedelta(days=500)
    recent = now - timedelta(days=10)
    expiry = timedelta(days=395)

    def add(sid, purpose, source, scope, decision, captured):
        nonlocal event_id
        event_id += 1
        expires = captured + expiry if decision == "granted" else None
        rows_events.append((event_id, sid, purpose, source, scope, decision, captured, expires))
        key = source if scope == "source" else ""
        rows_state.append((sid, purpose, key, decision, event_id, captured, expires))

    for i, sid in enumerate(ids):
        bucket = i % 20
        for purpose in ("measurement", "storage", "email_marketing"):
            if bucket < 11:
                add(sid, purpose, "web", "global", "granted", recent)
            elif bucket < 14:
                add(sid, purpose, "web", "global", "withdrawn", recent)
            elif bucket < 16:
                add(sid, purpose, "web", "global", "denied", long_ago)
                add(sid, purpose, "crm", "source", "granted", recent)
            elif bucket < 17:
                add(sid, purpose, "web", "global", "granted", long_ago)
    alias = "eu"
    connection = connections[alias]
    if connection.vendor == "postgresql":
        _copy(connection, rows_events, rows_state, now)
    else:
        _bulk(alias, rows_events, rows_state, now)


def _copy(connection, rows_events, rows_state, now) -> None:
    def tsv(rows) -> str:
        buf = io.StringIO()
        for row in rows:
            buf.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
        return buf.getvalue()

    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY consent_consentevent (id, subject_id, purpose, source, scope, decision, "
            "captured_at, expires_at, purpose_version, jurisdiction, lawful_basis, method, "
            "received_at, collection_point, actor_type, actor_id, raw_signal, decoder_version) "
            "FROM STDIN"
        ) as copy:
            copy.write(
                tsv(
                    (*r, 1, "FR", "consent", "import", now, "", "system", "bench", "", "")
                    for r in rows_events
                )
            )
        with raw.copy(
            "COPY consent_consentstate (subject_id, purpose, source, decision, event_id, "
            "captured_at, expires_at, lawful_basis, jurisdiction, updated_at) FROM STDIN"
        ) as copy:
            copy.write(tsv((*r, "consent", "FR", now) for r in rows_state))
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('consent_consentevent', 'id'), %s)",
            [len(rows_events)],
        )
        cursor.execute("ANALYZE consent_consentstate")


def _bulk(alias, rows_events, rows_state, now) -> None:
    ConsentEvent.objects.using(alias).bulk_create(
        [
            ConsentEvent(
                id=e, subject_id=s, purpose=p, source=src, scope=sc, decision=d, captured_at=c,
                expires_at=x, purpose_version=1, jurisdiction="FR", lawful_basis="consent",
                method="import", received_at=now, actor_type="system", actor_id="bench",
            )
            for e, s, p, src, sc, d, c, x in rows_events
        ],
        batch_size=5000,
    )  # fmt: skip
    ConsentState.objects.using(alias).bulk_create(
        [
            ConsentState(
                subject_id=s, purpose=p, source=k, decision=d, event_id=e, captured_at=c,
                expires_at=x, lawful_basis="consent", jurisdiction="FR",
            )
            for s, p, k, d, e, c, x in rows_state
        ],
        batch_size=5000,
    )  # fmt: skip
