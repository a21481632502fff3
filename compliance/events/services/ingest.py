"""Consent-gated event ingest: ``events_ingest`` is the one write path of ``Event``.

For a batch of validated events (``compliance.events.parsing.EventInput``):

1. every identifier is blind-indexed; one query on the control database's suppression mirror
   finds suppressed (erased) identifiers, one more there finds known subjects (no region is
   asked before the batch's own);
2. a consent signal carried by an event (TCF string or GPC) is recorded first through the
   consent service, then counts like any other record;
3. per region, in one transaction: subjects and their data keys are loaded (one query each,
   keys unwrapped once per subject), consent is evaluated with ``can_process_bulk`` (one call
   per source and jurisdiction present in the batch), allowed events are encrypted and
   ``bulk_create``-d, rejection counters move and one ``EVENT_BATCH_INGESTED`` audit entry per
   source is appended (counts only) - all or nothing.

Unknown subjects: an event whose identifiers are unknown is evaluated as a subject with no
record in its jurisdiction's region (so it fails closed wherever consent is required). Only if
that allows it, or if the event carries a consent signal to record, is the subject created
(``subject_resolve``); a rejected event of an unknown person creates nothing.

Stitching: an event of a known subject that carries identifiers not linked yet links them to
that subject, and an event whose identifiers belong to two known subjects of one region merges
them (``compliance.consent.services.stitching.subject_resolve_many``: a merge never turns a
withdrawal into a grant); identifiers of subjects in different regions are refused
(``identity_conflict``). A new subject is created with all the event's identifiers.

Consent is evaluated when the event is stored (after the batch's signals are recorded), not at
the event's own time: storing it is the processing being gated.

Steps 1 and the unknown/stitching rules live in ``compliance.events.services.resolution``;
outcome types, rejection counters and the batch audit entry in ``...outcomes``.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance import crypto
from compliance.audit.services.append import (
    Actor,
    AuditEntry,
    audit_append,
    audit_append_sql,
    audit_collecting,
    audit_head_lock_sql,
)
from compliance.consent.selectors.evaluation import StateRow, can_process_bulk
from compliance.db.batch import statements_run
from compliance.db.vendor import is_postgresql
from compliance.events.parsing import EventInput
from compliance.events.services.outcomes import (
    ACCEPTED,
    REASON_ERASED,
    REASON_SIGNAL_UNREADABLE,
    REASON_TRACKING_PLAN,
    REJECTED,
    BatchItem,
    EventOutcome,
    IngestResult,
    outcomes_writes,
)
from compliance.events.services.resolution import batch_subjects_resolve
from compliance.events.services.signals import SignalRecorder, SignalUnreadable
from compliance.events.sql import (
    EventRow,
    batch_reads,
    events_insert,
    events_insert_sql,
    events_inserted_ids,
    subjects_keys,
)
from compliance.models import Subject
from compliance.plans.services.enforcement import batch_plans_check
from compliance.regions import region_alias
from compliance.services.subjects import identifier_blind_index

#: how many times a region's transaction is retried when a concurrent batch stored the same
#: client event id first (the unique constraint decides; the retry reports it as a duplicate)
_ATTEMPTS = 3


def properties_aad(*, subject_id: UUID) -> bytes:
    """Associated data binding an event's encrypted properties to its subject."""
    return f"event-properties:{subject_id}".encode()


def events_ingest(
    *, events: Sequence[EventInput], actor: Actor, received_at: datetime | None = None
) -> IngestResult:
    """Store each allowed event in its subject's region; say per event why not otherwise.

    ``events`` must come from ``event_batch_parse`` (or be built as valid ``EventInput``).
    Returns one ``EventOutcome`` per event, in order. Queries per batch do not grow with the
    number of events for known subjects; creating a new subject costs a few queries each.
    """
    now = received_at or timezone.now()
    batch_id = uuid.uuid4().hex
    items = [
        BatchItem(
            index=i,
            event=event,
            indexes=tuple(identifier_blind_index(identifier=x) for x in event.identifiers),
        )
        for i, event in enumerate(events)
    ]
    batch_plans_check(items=items)
    recorder = SignalRecorder(actor=actor)
    batch_subjects_resolve(items=items, recorder=recorder, at=now, actor=actor)
    by_region: dict[str, list[BatchItem]] = defaultdict(list)
    for item in items:
        by_region[item.region].append(item)
    for region in sorted(by_region):
        _ingest_region(
            region=region,
            items=by_region[region],
            at=now,
            batch_id=batch_id,
            recorder=recorder,
            actor=actor,
        )
    return IngestResult(
        batch_id=batch_id,
        received_at=now,
        outcomes=tuple(item.outcome for item in items),  # type: ignore[misc]
        violations=tuple(item.violations for item in items),
    )


# --- one region -----------------------------------------------------------------------------


def _ingest_region(
    *,
    region: str,
    items: list[BatchItem],
    at: datetime,
    batch_id: str,
    recorder: SignalRecorder,
    actor: Actor,
) -> None:
    """Everything a region does for the batch, in one transaction (retried on a duplicate
    client event id stored concurrently: the retry sees it and reports a duplicate)."""
    alias = region_alias(region=region)
    before = [(item.outcome, item.subject_id) for item in items]
    for attempt in range(_ATTEMPTS):
        for item, (outcome, subject_id) in zip(items, before, strict=True):
            item.outcome, item.subject_id, item.duplicate_of = outcome, subject_id, None
        try:
            with transaction.atomic(using=alias):
                rows, head = _decide(
                    alias=alias, region=region, items=items, at=at, recorder=recorder
                )
                statements, entries = outcomes_writes(
                    alias=alias, items=items, at=at, batch_id=batch_id, actor=actor
                )
                # the last round trip: it may end the transaction (``statements_run``)
                ids = _stored(
                    alias=alias,
                    events=[row for _, row in rows],
                    statements=statements,
                    entries=entries,
                    head=head,
                )
            _ids_given(items=items, accepted=[item for item, _ in rows], ids=ids)
            return
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise


def _stored(
    *,
    alias: str,
    events: list[EventRow],
    statements: list[tuple[str, list]],
    entries: list[AuditEntry],
    head: tuple[int, str] | None,
) -> list[int]:
    """Insert ``events``, run ``statements`` (the counters' upserts) and append ``entries`` to
    the audit chain; the events' ids, in order. PostgreSQL: ONE round trip when the batch's
    reads locked the chain head (``head``), which also ends the region's transaction when it is
    the outermost one (COMMIT sent with it); else the head is locked last in it and the entries
    appended in a second. Elsewhere one write after the other."""
    if not is_postgresql(alias):
        ids = events_insert(alias=alias, events=events) if events else []
        statements_run(using=alias, statements=statements)
        audit_append(using=alias, entries=entries)
        return ids
    insert = [events_insert_sql(events=events)] if events else []
    if head is None:
        last = [audit_head_lock_sql(using=alias)]
    else:
        last = [audit_append_sql(using=alias, entries=entries, head=head)] if entries else []
    found = statements_run(
        using=alias, statements=[*insert, *statements, *last], commit=head is not None
    )
    if head is None:
        audit_append(using=alias, entries=entries, head=tuple(found[-1][0]))
    return events_inserted_ids(rows=found[0]) if events else []


def _decide(
    *, alias: str, region: str, items: list[BatchItem], at: datetime, recorder: SignalRecorder
) -> tuple[list[tuple[BatchItem, EventRow]], tuple[int, str] | None]:
    """Every item's outcome, nothing stored yet but its signals: the accepted ones (their
    ``event_id`` still unknown) with the row each will store, in order; and the audit chain
    head if the reads locked it (PostgreSQL, no signal in the batch), else ``None``."""
    pending = [item for item in items if item.outcome is None]
    rows: list[tuple[BatchItem, EventRow]] = []
    head = None
    if pending:
        with_ids = [i for i in pending if i.event.client_event_id is not None]
        # the state rows too, unless a signal of the batch is recorded before evaluation
        signalled = any(item.event.consent_signal is not None for item in pending)
        # the chain head is locked with the reads, so that the writes append the batch's
        # entry in their own round trip; not if a signal is recorded first (its recording
        # appends to the chain, and locks the head itself), nor inside a caller's
        # ``audit_collected`` block (which appends everything at its end)
        early_lock = not signalled and is_postgresql(alias) and not audit_collecting(using=alias)
        reads = batch_reads(
            alias=alias,
            subject_ids={item.subject_id for item in pending},
            client_ids={(i.event.source, i.event.client_event_id) for i in with_ids},
            states=not signalled,
            head_lock=audit_head_lock_sql(using=alias) if early_lock else None,
        )
        head = reads.head
        keys = _data_keys(alias=alias, region=region, items=pending, subjects=reads.subjects)
        pending = _without_duplicates(items=pending, stored=reads.stored)
        _record_signals(alias=alias, items=pending, at=at, recorder=recorder)
        # evaluated now (not at ``at``): signals recorded just above must count; the state
        # rows read above answer only if no subject was merged away (else: read again)
        merged = any(survivor for _, survivor, _ in reads.subjects)
        _evaluate(
            region=region,
            items=[item for item in pending if item.outcome is None],
            states=None if merged else reads.states,
        )
        for item in pending:  # consent first: a plan refuses more, never allows more
            if item.outcome is None and item.plan_refused:
                item.reject(REASON_TRACKING_PLAN)
        for item in pending:
            if item.outcome is None:
                rows.append((item, _event_row(item=item, data_key=keys[item.subject_id], at=at)))
                item.outcome = EventOutcome(index=item.index, status=ACCEPTED, reason=item.reason)
    _duplicates_answered(items=items)
    return rows, head


def _ids_given(*, items: list[BatchItem], accepted: list[BatchItem], ids: list[int]) -> None:
    """The stored events' ``ids`` into the ``accepted`` items' outcomes (and their in-batch
    duplicates')."""
    for item, event_id in zip(accepted, ids, strict=True):
        item.outcome = EventOutcome(
            index=item.index, status=ACCEPTED, reason=item.reason, event_id=event_id
        )
    _duplicates_answered(items=items)


def _duplicates_answered(*, items: list[BatchItem]) -> None:
    """An in-batch duplicate gets the first event's outcome, as a duplicate."""
    by_index = {item.index: item for item in items}
    for item in items:
        if item.duplicate_of is not None:
            first = by_index[item.duplicate_of].outcome
            item.outcome = EventOutcome(
                index=item.index,
                status=first.status,
                reason=first.reason if first.status == REJECTED else "duplicate",
                event_id=first.event_id,
                duplicate=True,
            )


def _event_row(*, item: BatchItem, data_key: bytes, at: datetime) -> EventRow:
    event = item.event
    plaintext = json.dumps(event.properties, separators=(",", ":"), ensure_ascii=False).encode()
    return EventRow(
        subject_id=item.subject_id,
        source=event.source,
        name=event.name,
        purpose=event.purpose,
        jurisdiction=event.jurisdiction or "",
        occurred_at=event.occurred_at,
        received_at=at,
        properties_encrypted=crypto.encrypt(
            data_key=data_key, plaintext=plaintext, aad=properties_aad(subject_id=item.subject_id)
        ),
        consent_event_ids=list(item.consent_ids),
        client_event_id=event.client_event_id,
    )


def _data_keys(
    *, alias: str, region: str, items: list[BatchItem], subjects: list[tuple]
) -> dict[UUID, bytes]:
    """Follow merges to the surviving subject and unwrap each subject's key once.

    ``subjects``: ``sql.subjects_keys`` of the items' subjects, read already; a merge chain
    costs one query per hop. An event whose subject row or key is gone (erased) is rejected
    ``subject_erased``.
    """
    merged_into: dict[UUID, UUID | None] = {}  # subject rows that exist -> their survivor
    wrapped: dict[UUID, bytes] = {}
    for hop in range(5):
        for subject_id, survivor, key in subjects:
            merged_into[subject_id] = survivor
            if key is not None:
                wrapped[subject_id] = key
        lookup = {m for m in merged_into.values() if m and m not in merged_into}
        if not lookup or hop == 4:  # five reads at most, each one used
            break
        subjects = subjects_keys(alias=alias, subject_ids=lookup)
    for item in items:
        for _ in range(5):
            if not merged_into.get(item.subject_id):
                break
            item.subject_id = merged_into[item.subject_id]
    needed: dict[UUID, bytes] = {}
    for item in items:
        if item.subject_id not in wrapped:
            item.reject(REASON_ERASED)
        else:
            needed[item.subject_id] = wrapped[item.subject_id]
    return crypto.data_keys_unwrap(region=region, wrapped=needed)


def _without_duplicates(
    *, items: list[BatchItem], stored: dict[tuple[str, str], int]
) -> list[BatchItem]:
    """Drop events whose client id is stored already (``stored``, read by ``sql.batch_reads``:
    accepted, ``duplicate``) or appears earlier in the batch (they get the first one's
    outcome)."""
    first: dict[tuple[str, str], int] = {}
    fresh = []
    for item in items:
        if item.outcome is not None:
            continue
        key = (item.event.source, item.event.client_event_id)
        if item.event.client_event_id is None:
            fresh.append(item)
        elif key in stored:
            item.outcome = EventOutcome(
                index=item.index,
                status=ACCEPTED,
                reason="duplicate",
                event_id=stored[key],
                duplicate=True,
            )
        elif key in first:
            item.duplicate_of = first[key]
        else:
            first[key] = item.index
            fresh.append(item)
    return fresh


def _record_signals(
    *, alias: str, items: list[BatchItem], at: datetime, recorder: SignalRecorder
) -> None:
    """Record each distinct signal of a subject once per batch, before evaluation.

    The capture time is the event's time (never later than reception). An undecodable
    signal rejects its events ``unreadable_signal`` and records nothing."""
    signalled = [item for item in items if item.event.consent_signal is not None]
    if not signalled:
        return
    subjects = Subject.objects.using(alias).in_bulk({item.subject_id for item in signalled})
    done: dict[tuple, bool] = {}
    for item in signalled:
        event = item.event
        captured_at = min(event.occurred_at, at)
        key = (item.subject_id, event.consent_signal, event.source, event.jurisdiction, captured_at)
        if key not in done:
            try:
                recorder.record(
                    subject=subjects[item.subject_id],
                    signal=event.consent_signal,
                    source=event.source,
                    jurisdiction=event.jurisdiction,
                    captured_at=captured_at,
                )
                done[key] = True
            except SignalUnreadable:
                done[key] = False
        if not done[key]:
            item.reject(REASON_SIGNAL_UNREADABLE)


def _evaluate(*, region: str, items: list[BatchItem], states: list[StateRow] | None) -> None:
    """``can_process_bulk`` once per (source, jurisdiction) present in the batch; ``states``:
    every state row of the items' subjects, read in this transaction (else they are read)."""
    groups: dict[tuple[str, str | None], list[BatchItem]] = defaultdict(list)
    for item in items:
        groups[(item.event.source, item.event.jurisdiction)].append(item)
    for (source, jurisdiction), group in groups.items():
        decisions = can_process_bulk(
            region=region,
            subject_ids=sorted({item.subject_id for item in group}, key=str),
            purposes=sorted({item.event.purpose for item in group}),
            source=source,
            jurisdiction=jurisdiction,
            survivors=True,  # ``_data_keys`` followed the merges in this transaction
            states=states,
        )
        for item in group:
            decision = decisions[(item.subject_id, item.event.purpose)]
            if decision.allowed:
                item.consent_ids, item.reason = tuple(decision.event_ids), decision.reason
            else:
                item.reject(decision.reason)
