"""What happened to each event of an ingested batch: outcomes, rejection counters, audit.

``EventOutcome`` per event, ``IngestResult`` per batch; ``BatchItem`` is the working record of
one event while ``events_ingest`` decides it. ``outcomes_writes`` is what the outcomes write:
the per-day rejection and instrumentation counters' upserts and one ``EVENT_BATCH_INGESTED``
audit entry per source (counts only).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db import connections

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry
from compliance.events.models import RejectionCount
from compliance.events.parsing import EventInput
from compliance.plans.checking import Violation
from compliance.plans.services.enforcement import counters_sql

ACCEPTED = "accepted"
REJECTED = "rejected"
#: rejection reasons of the ingest itself; every other reason is the consent decision's
REASON_SUPPRESSED = "subject_suppressed"
REASON_ERASED = "subject_erased"
REASON_IDENTITY_CONFLICT = "identity_conflict"
REASON_SIGNAL_UNREADABLE = "unreadable_signal"
#: consent allowed the event but its source's tracking plan (``block`` mode) refuses it
REASON_TRACKING_PLAN = "tracking_plan"


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What happened to the event at ``index`` of the batch."""

    index: int
    status: str  # "accepted" | "rejected"
    reason: str  # consent basis reason when accepted ("granted", ...), why not when rejected
    event_id: int | None = None
    duplicate: bool = False


@dataclass(frozen=True)
class IngestResult:
    """A batch's outcomes, one per event in order, with counts."""

    batch_id: str
    received_at: datetime
    outcomes: tuple[EventOutcome, ...]
    #: per event, in order: its tracking plan's violations (``None``: its source has no plan)
    violations: tuple[tuple[Violation, ...] | None, ...] = ()

    @property
    def accepted(self) -> int:
        return sum(1 for o in self.outcomes if o.status == ACCEPTED)

    @property
    def rejected(self) -> int:
        return sum(1 for o in self.outcomes if o.status == REJECTED)

    def rejections(self) -> dict[str, int]:
        return dict(Counter(o.reason for o in self.outcomes if o.status == REJECTED))


@dataclass(slots=True)
class BatchItem:
    index: int
    event: EventInput
    indexes: tuple[str, ...]
    region: str = ""
    subject_id: UUID | None = None
    outcome: EventOutcome | None = None
    #: the deciding consent events and the basis reason, once allowed
    consent_ids: tuple[int, ...] = field(default_factory=tuple)
    reason: str = ""
    #: index of an earlier event of the batch with the same source and client event id
    duplicate_of: int | None = None
    #: what the source's tracking plan found (``None``: no plan), and whether it refuses the
    #: event (``block``)
    violations: tuple[Violation, ...] | None = None
    plan_refused: bool = False
    #: its identifiers were stitched: linked to a known subject, or two subjects merged
    stitched: bool = False

    def reject(self, reason: str) -> None:
        self.outcome = EventOutcome(index=self.index, status=REJECTED, reason=reason)


def outcomes_writes(
    *, alias: str, items: list[BatchItem], at: datetime, batch_id: str, actor: Actor
) -> tuple[list[tuple[str, list]], list[AuditEntry]]:
    """What the batch's outcomes write, for the caller to send with the events' insert: the
    statements (SQL, params) that move the rejection and instrumentation counters (one upsert
    each, none when there is nothing to count) and one audit entry per source (counts only).
    Reads no event id: accepted outcomes may not have theirs yet."""
    per_source: dict[str, dict] = defaultdict(
        lambda: {"accepted": 0, "duplicates": 0, "rejected": Counter()}
    )
    for item in items:
        tally = per_source[item.event.source]
        if item.outcome.duplicate:
            tally["duplicates"] += 1
        elif item.outcome.status == ACCEPTED:
            tally["accepted"] += 1
        else:
            tally["rejected"][item.outcome.reason] += 1
    rejections = _rejections_sql(
        alias=alias,
        day=at.date(),
        counts={
            (source, reason): count
            for source, tally in per_source.items()
            for reason, count in tally["rejected"].items()
        },
        at=at,
    )
    entries = []
    for source, tally in sorted(per_source.items()):
        payload = {
            "source": source,
            "accepted": tally["accepted"],
            "rejected": dict(sorted(tally["rejected"].items())),
        }
        if tally["duplicates"]:
            payload["duplicates"] = tally["duplicates"]
        entries.append(
            AuditEntry(
                code=AuditCode.EVENT_BATCH_INGESTED,
                actor=actor,
                object_type="event_batch",
                object_id=batch_id,
                payload=payload,
            )
        )
    counters = counters_sql(alias=alias, items=items, at=at)
    return [s for s in (rejections, counters) if s is not None], entries


_REJECTIONS = RejectionCount._meta.db_table
#: the same text on PostgreSQL and SQLite 3.24+: a concurrent batch never loses an increment
_REJECTIONS_UPSERT = (
    f"INSERT INTO {_REJECTIONS} (day, source, reason, count, updated_at) VALUES {{rows}} "
    "ON CONFLICT (day, source, reason) DO UPDATE SET "
    f"count = {_REJECTIONS}.count + excluded.count, updated_at = excluded.updated_at"
)


def _rejections_sql(
    *, alias: str, day, counts: dict[tuple[str, str], int], at
) -> tuple[str, list] | None:
    """The upsert that adds ``(source, reason) -> count`` to the day's rejection counters (ONE
    statement, counters in key order: concurrent batches lock them in the same order)."""
    if not counts:
        return None
    ops = connections[alias].ops
    params: list = []
    for (source, reason), count in sorted(counts.items()):
        params += [
            ops.adapt_datefield_value(day),
            source,
            reason,
            count,
            ops.adapt_datetimefield_value(at),
        ]
    rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(counts))
    return _REJECTIONS_UPSERT.replace("{rows}", rows), params
