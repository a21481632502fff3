"""Whose events are these? The subjects of an ingested batch, before any region is written.

``batch_subjects_resolve`` gives each ``BatchItem`` its region and subject, or rejects it:
erased identifiers (``subject_suppressed``), identifiers of subjects in two regions
(``identity_conflict``), unreadable signals of unknown people, and unknown people whom the
consent rules would refuse as "no record" (nothing is created for them). Known subjects cost
two queries per batch; linking, merging and creating cost a few queries each.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from uuid import UUID

from compliance.audit.services.append import Actor
from compliance.consent.selectors.evaluation import can_process_bulk
from compliance.consent.services.stitching import CrossRegionMergeError, subject_resolve_many
from compliance.events.services.outcomes import (
    REASON_IDENTITY_CONFLICT,
    REASON_SIGNAL_UNREADABLE,
    REASON_SUPPRESSED,
    REASON_TRACKING_PLAN,
    BatchItem,
)
from compliance.events.services.signals import SignalRecorder, SignalUnreadable
from compliance.regions import region_for_country
from compliance.selectors.rows import directory_subjects
from compliance.services.subjects import (
    SubjectSuppressedError,
    subject_resolve,
)
from compliance.services.suppressions import suppressed_unlisted


def batch_subjects_resolve(
    *, items: list[BatchItem], recorder: SignalRecorder, at: datetime, actor: Actor
) -> None:
    """Set ``region`` and ``subject_id`` of every item, or reject it (see module docs)."""
    all_indexes = sorted({bi for item in items for bi in item.indexes})
    directory = directory_subjects(blind_indexes=all_indexes)
    suppressed = suppressed_unlisted(blind_indexes=all_indexes, listed=directory)
    _assign_subjects(items=items, suppressed=suppressed, directory=directory)
    _stitch_known(items=items, directory=directory, actor=actor)
    _create_signalled_subjects(
        items=items, directory=directory, recorder=recorder, at=at, actor=actor
    )
    _gate_unknown_subjects(items=items, directory=directory, at=at, actor=actor)


def _assign_subjects(
    *, items: list[BatchItem], suppressed: dict[str, str], directory: dict[str, tuple[str, UUID]]
) -> None:
    for item in items:
        erased = [suppressed[bi] for bi in item.indexes if bi in suppressed]
        if erased:
            item.region = erased[0]
            item.reject(REASON_SUPPRESSED)
            continue
        known = sorted({directory[bi] for bi in item.indexes if bi in directory}, key=str)
        if known:
            # with two known people, the first is provisional: _stitch_known merges them
            item.region, item.subject_id = known[0]
        else:
            item.region = region_for_country(country=item.event.jurisdiction)


def _stitch_known(
    *, items: list[BatchItem], directory: dict[str, tuple[str, UUID]], actor: Actor
) -> None:
    """Link unlinked identifiers of known subjects and merge known subjects that one event
    shows to be one person (a few queries per such event; none for the common case)."""
    for item in items:
        if item.outcome is not None or item.subject_id is None:
            continue
        if all(directory.get(bi) == (item.region, item.subject_id) for bi in item.indexes):
            continue
        _stitch(item=item, directory=directory, actor=actor)


def _stitch(*, item: BatchItem, directory: dict[str, tuple[str, UUID]], actor: Actor) -> None:
    """Resolve all of the event's identifiers to one subject (linking, merging, creating)."""
    try:
        subject = subject_resolve_many(
            identifiers=[(x.type, x.value) for x in item.event.identifiers],
            jurisdiction=item.event.jurisdiction,
            actor=actor,
        )
    except SubjectSuppressedError:
        item.reject(REASON_SUPPRESSED)
        return
    except CrossRegionMergeError:
        item.reject(REASON_IDENTITY_CONFLICT)
        return
    subject_id = subject.merged_into or subject.pk
    item.stitched = True
    for index in item.indexes:
        directory[index] = (subject.region, subject_id)
    item.region, item.subject_id = subject.region, subject_id


def _resolve_new(*, item: BatchItem, directory: dict[str, tuple[str, UUID]], actor: Actor) -> None:
    """Create (or find, if created meanwhile) the subject of an unknown event."""
    known = next((directory[bi] for bi in item.indexes if bi in directory), None)
    if known is not None:
        item.region, item.subject_id = known
        return
    if len(item.event.identifiers) > 1:
        _stitch(item=item, directory=directory, actor=actor)
        return
    first = item.event.identifiers[0]
    try:
        subject = subject_resolve(
            identifier_type=first.type,
            value=first.value,
            jurisdiction=item.event.jurisdiction,
            actor=actor,
        )
    except SubjectSuppressedError:
        item.reject(REASON_SUPPRESSED)
        return
    directory[item.indexes[0]] = (subject.region, subject.pk)
    item.region, item.subject_id = subject.region, subject.pk


def _create_signalled_subjects(
    *,
    items: list[BatchItem],
    directory: dict[str, tuple[str, UUID]],
    recorder: SignalRecorder,
    at: datetime,
    actor: Actor,
) -> None:
    """Unknown subjects whose event carries a readable consent signal are created to record
    it; an unreadable signal rejects the event before anything is created."""
    for item in items:
        event = item.event
        if item.outcome is not None or item.subject_id is not None or not event.consent_signal:
            continue
        try:
            recorder.prepare(
                signal=event.consent_signal,
                source=event.source,
                jurisdiction=event.jurisdiction,
                captured_at=min(event.occurred_at, at),
            )
        except SignalUnreadable:
            item.reject(REASON_SIGNAL_UNREADABLE)
            continue
        _resolve_new(item=item, directory=directory, actor=actor)


def _gate_unknown_subjects(
    *, items: list[BatchItem], directory: dict[str, tuple[str, UUID]], at: datetime, actor: Actor
) -> None:
    """Evaluate still-unknown subjects as "no record"; create only those that are allowed."""
    groups: dict[tuple[str, str, str | None], list[BatchItem]] = defaultdict(list)
    for item in items:
        if item.outcome is not None or item.subject_id is not None:
            continue
        created = next((directory[bi] for bi in item.indexes if bi in directory), None)
        if created is not None:  # created earlier in this batch
            item.region, item.subject_id = created
            continue
        groups[(item.region, item.event.source, item.event.jurisdiction)].append(item)
    for (region, source, jurisdiction), group in groups.items():
        nobody = uuid.uuid4()  # a subject id with no record at all
        decisions = can_process_bulk(
            region=region,
            subject_ids=[nobody],
            purposes=sorted({item.event.purpose for item in group}),
            source=source,
            jurisdiction=jurisdiction,
            at=at,
        )
        for item in group:
            decision = decisions[(nobody, item.event.purpose)]
            if decision.allowed and item.plan_refused:
                item.reject(REASON_TRACKING_PLAN)  # consent checked; nobody is created
            elif decision.allowed:
                _resolve_new(item=item, directory=directory, actor=actor)
            else:
                item.reject(decision.reason)
