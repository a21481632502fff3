"""Tracking plans at the ingest path: check a batch's events, then count what happened.

``batch_plans_check`` runs before consent is evaluated and never decides alone that an event
is stored: it records each event's violations on its ``BatchItem``, drops unplanned
properties (``omit``) and marks events the plan refuses (``block``); the ingest still
evaluates consent for every event and refuses a plan-refused event only once consent has been
evaluated (``compliance.events.services.ingest``). A plan can refuse more, never allow more.

``counters_sql`` is the statement that adds the batch's counts to the region's
``InstrumentationCount`` rows, which the ingest runs in the region's transaction: no value, no
identifier, only names, kinds and paths.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from compliance.plans.checking import event_check
from compliance.plans.selectors.plans import current_plans
from compliance.plans.sql import counts_add_sql

if TYPE_CHECKING:
    from compliance.events.services.outcomes import BatchItem

RECEIVED = "received"
ACCEPTED = "accepted"
REFUSED = "refused"
VIOLATING = "violating"
#: events whose identifiers were linked to a known subject or merged two subjects
STITCHED = "stitched"
TOTAL_KINDS = (RECEIVED, ACCEPTED, REFUSED, VIOLATING, STITCHED)
MAX_EVENT_NAME = 200


def batch_plans_check(*, items: Sequence[BatchItem]) -> None:
    """Check every event of a source that has a plan (one query for the batch's plans)."""
    plans = current_plans(sources={item.event.source for item in items})
    if not plans:
        return
    for item in items:
        plan = plans.get(item.event.source)
        if plan is None:
            continue
        event = item.event
        check = event_check(
            plan=plan,
            name=event.name,
            properties=event.properties,
            identifier_types=[identifier.type for identifier in event.identifiers],
        )
        item.violations = check.violations
        item.plan_refused = check.refused
        if check.properties is not event.properties:
            item.event = dataclasses.replace(event, properties=check.properties)


def counters_sql(
    *, alias: str, items: Sequence[BatchItem], at: datetime
) -> tuple[str, list] | None:
    """The statement (SQL, params; ``None``: nothing to count) that counts received, accepted,
    refused, violating and stitched events (identifiers linked or subjects merged across
    sources) and each violation by type and path, per source and event name, on ``at``'s day
    (duplicates of stored events are not counted again)."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for item in items:
        if item.outcome is None or item.outcome.duplicate:
            continue
        key = (item.event.source, item.event.name[:MAX_EVENT_NAME])
        counts[(*key, RECEIVED, "")] += 1
        counts[(*key, ACCEPTED if item.outcome.status == "accepted" else REFUSED, "")] += 1
        if item.stitched:
            counts[(*key, STITCHED, "")] += 1
        if item.violations:
            counts[(*key, VIOLATING, "")] += 1
            for violation in item.violations:
                counts[(*key, violation.type, violation.path)] += 1
    day = at.date()
    return counts_add_sql(
        alias=alias,
        rows=[
            (day, source, event, kind, path, count, at)
            for (source, event, kind, path), count in sorted(counts.items())
        ],
    )
