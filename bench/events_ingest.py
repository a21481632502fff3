"""Consent-gated event ingest vs plain ``bulk_create`` of the same events, same database.

``python -m bench events_ingest [--events 20000] [--batch 1000] [--subjects 1000]``

Setup (not timed): ``--subjects`` EU subjects created through ``subject_resolve``, each with a
recorded ``measurement`` grant (``consent_record``). Then, batch by batch, interleaved so both
sides see the same table sizes and machine load:

* **gated**: ``events_ingest`` (service level): blind indexes, suppression and directory
  look-ups, subject and key loading, duplicate check on client event ids, ``can_process_bulk``,
  AES-GCM encryption of properties, ``bulk_create``, rejection counters, audit entry;
* **baseline**: ``Event.objects.bulk_create`` of the same events with the subject ids already
  known, properties as plain JSON, no consent check, no audit, in a transaction.

* **planned** (issue 18): the gated path for a source (``ios_app``) whose tracking plan has
  20 events in ``block`` mode: every event is also checked against its JSON Schema (draft
  2020-12, compiled once per plan version) and the instrumentation counters move.

Also printed (information only): the gated path plus request parsing
(``event_batch_parse`` of the JSON-decoded body), i.e. everything the API view does.
Targets: gated events/s >= 0.5 x baseline events/s; planned events/s >= 0.5 x baseline.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

from django.db import transaction

from bench import bench_databases, machine, seed_granted
from compliance.audit.services.append import Actor
from compliance.consent.models import EventSource
from compliance.events.models import Event
from compliance.events.parsing import event_batch_parse
from compliance.events.services.ingest import events_ingest
from compliance.plans.documents import plan_document_parse
from compliance.plans.services.plans import tracking_plan_publish


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench events_ingest")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--subjects", type=int, default=1_000)
    args = parser.parse_args(argv)
    with bench_databases():
        return _run(args)


def _run(args) -> int:
    actor = Actor.system("bench")
    started = time.perf_counter()
    emails = [f"bench{i}@example.org" for i in range(args.subjects)]
    subject_of = {email: s.pk for email, s in seed_granted(emails=emails).items()}
    _publish_plan(actor=actor)
    setup = time.perf_counter() - started

    base_time = datetime.now(UTC) - timedelta(hours=1)

    def raw_event(i: int, prefix: str, source: str = "web") -> dict:
        return {
            "source": source,
            "identifiers": [{"type": "email", "value": emails[i % len(emails)]}],
            "event": "page_view",
            "properties": {"path": f"/products/{i % 97}", "referrer": "search", "n": i},
            "time": (base_time + timedelta(milliseconds=i)).isoformat(),
            "purpose": "measurement",
            "jurisdiction": "FR",
            "id": f"{prefix}-{i}",
        }

    batches = [
        range(start, min(start + args.batch, args.events))
        for start in range(0, args.events, args.batch)
    ]
    timings = {"gated": 0.0, "baseline": 0.0, "parse": 0.0, "api_level": 0.0, "planned": 0.0}
    accepted = planned_accepted = 0
    for number, batch in enumerate(batches):
        # baseline: the same events, subjects known, no checks, no encryption
        rows_raw = [raw_event(i, "base") for i in batch]
        t0 = time.perf_counter()
        rows = [
            Event(
                subject_id=subject_of[r["identifiers"][0]["value"]],
                source=r["source"],
                name=r["event"],
                purpose=r["purpose"],
                jurisdiction=r["jurisdiction"],
                occurred_at=datetime.fromisoformat(r["time"]),
                received_at=datetime.now(UTC),
                properties_encrypted=json.dumps(r["properties"]).encode(),
                client_event_id=r["id"],
            )
            for r in rows_raw
        ]
        with transaction.atomic(using="eu"):
            Event.objects.using("eu").bulk_create(rows, batch_size=1000)
        timings["baseline"] += time.perf_counter() - t0

        # gated: parse (timed separately) then the service
        body = {"events": [raw_event(i, "gated" if number % 2 else "gate") for i in batch]}
        t0 = time.perf_counter()
        parsed = event_batch_parse(data=body)
        t1 = time.perf_counter()
        result = events_ingest(events=parsed, actor=actor)
        t2 = time.perf_counter()
        timings["parse"] += t1 - t0
        timings["gated"] += t2 - t1
        timings["api_level"] += t2 - t0
        accepted += result.accepted

        # planned: the same events from a source with a 20-event plan in block mode
        body = {"events": [raw_event(i, "plan", source="ios_app") for i in batch]}
        parsed = event_batch_parse(data=body)
        t0 = time.perf_counter()
        result = events_ingest(events=parsed, actor=actor)
        timings["planned"] += time.perf_counter() - t0
        planned_accepted += result.accepted

    n = sum(len(b) for b in batches)
    stored = Event.objects.using("eu").count()
    base_rate = n / timings["baseline"]
    gated_rate = n / timings["gated"]
    api_rate = n / timings["api_level"]
    planned_rate = n / timings["planned"]
    print(f"machine: {machine()}")
    print(f"setup: {args.subjects} subjects with a recorded grant in {setup:.1f}s")
    print(f"events: {n} in batches of {args.batch}; gated accepted {accepted}; rows {stored}")
    print(f"baseline bulk_create:        {base_rate:10.0f} events/s ({timings['baseline']:.2f}s)")
    print(f"gated events_ingest:         {gated_rate:10.0f} events/s ({timings['gated']:.2f}s)")
    print(f"gated + parsing (info):      {api_rate:10.0f} events/s ({timings['api_level']:.2f}s)")
    ratio = gated_rate / base_rate
    print(
        f"ratio gated/baseline: {ratio:.2f} (target >= 0.5): {'met' if ratio >= 0.5 else 'NOT met'}"
    )
    print(f"ratio gated+parsing/baseline (info): {api_rate / base_rate:.2f}")
    print(
        f"planned (20-event plan, block): {planned_rate:7.0f} events/s "
        f"({timings['planned']:.2f}s); accepted {planned_accepted}"
    )
    ratio = planned_rate / base_rate
    print(
        f"ratio planned/baseline: {ratio:.2f} (target >= 0.5): {'met' if ratio >= 0.5 else 'NOT met'}"
    )
    print(f"ratio planned/gated (info): {planned_rate / gated_rate:.2f}")
    if accepted != n or planned_accepted != n:
        print("ERROR: not every gated event was accepted")
        return 1
    return 0


def _publish_plan(*, actor: Actor) -> None:
    """A 20-event plan for ``ios_app`` in ``block`` mode; ``page_view`` is what is sent."""
    page_view = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "maxLength": 500},
            "referrer": {"enum": ["search", "direct", "social", "email"]},
            "n": {"type": "integer", "minimum": 0},
        },
        "required": ["path"],
    }
    events = [{"name": "page_view", "schema": page_view}] + [
        {
            "name": f"event_{k:02}",
            "description": "a planned event not sent by the bench",
            "schema": {
                "type": "object",
                "properties": {"value": {"type": "number"}, "label": {"type": "string"}},
                "required": ["value"],
            },
        }
        for k in range(19)
    ]
    document = plan_document_parse(
        data={"mode": "block", "events": events, "identifier_types": ["email"]}
    )
    tracking_plan_publish(
        source=EventSource.objects.get(key="ios_app"), document=document, actor=actor
    )
