"""Closing segment stays: the ONE path every exit takes, set-based and audited.

``memberships_close`` closes the open stays selected by subjects, segment keys and/or stay ids
(``compliance.db_guards.stays_close``: on PostgreSQL the guard function
``segments_stays_close``; the statement only touches rows still open, and row locks serialise
it with ``memberships_apply``, so a stay is never closed twice) and returns them with one
``MEMBERSHIP_EXITED`` audit entry each (payload ``{"reason", "membership_id", "arm"}``, object
``segment``/segment key, the subject's audit token), NOT appended yet: a caller that writes
many kinds of events (bulk erasure, ``memberships_apply``) appends them in one call with its
own, then calls ``memberships_closed_publish`` to write the change feed's outbox rows (``exit``,
or ``retract`` for reasons such as ``erasure``: downstream recipients must drop the person)
AFTER the audit append, as the feed requires (lock order: audit chain head, then outbox).
It runs inside the caller's region transaction; on PostgreSQL every stay closed must be
audited before that transaction commits, or the commit is refused.

``memberships_exit_subjects`` is the whole exit in one call (close, append, publish, one
transaction): DSAR erasure and restriction (``memberships_exit_all``), consent follow-through
(``memberships_exit_for_purposes``) and retention use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.db_guards import stays_close
from compliance.feed.services.outbox import membership_stays_exited
from compliance.models import Subject
from compliance.regions import region_alias
from segments import sql
from segments.holdout import CONTROL, TREATMENT
from segments.models import ExitReason, SegmentMembership
from segments.services.errors import MembershipInputError

#: subjects (or stay ids) per statement
CHUNK = 5_000

Stay = tuple[int, UUID, str]  # (membership id, subject id, segment key)


def _uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class ClosedStays:
    """Stays closed by ``memberships_close``: ``(membership id, subject id, segment key)``
    sorted, one ``MEMBERSHIP_EXITED`` entry each (not appended yet), and the ids of those
    that were in the control arm (the others were treatment)."""

    reason: str
    at: datetime
    stays: list[Stay] = field(default_factory=list)
    entries: list[AuditEntry] = field(default_factory=list)
    control: set[int] = field(default_factory=set)

    def arm(self, stay_id: int) -> str:
        return CONTROL if stay_id in self.control else TREATMENT


def memberships_close(
    *,
    alias: str,
    subject_ids: Sequence[UUID] | None = None,
    reason: str,
    actor: Actor,
    at: datetime | None = None,
    tokens: Mapping[UUID, str] | None = None,
    segment_keys: Sequence[str] | None = None,
    stay_ids: Sequence[int] | None = None,
) -> ClosedStays:
    """Close the open stays of ``subject_ids`` - only those in ``segment_keys`` and/or among
    ``stay_ids`` when given (at least one of ``subject_ids`` and ``stay_ids``) - in the
    caller's transaction; return the stays and one ``MEMBERSHIP_EXITED`` entry per stay, NOT
    appended, and no outbox row written: the caller appends the entries, then calls
    ``memberships_closed_publish``. ``tokens`` (subject id -> audit token) saves a query.
    Raises ``MembershipInputError`` for an unknown reason or no selection."""
    if reason not in ExitReason.values:
        raise MembershipInputError(f"unknown exit reason {reason!r}")
    if subject_ids is None and stay_ids is None:
        raise MembershipInputError("closing stays needs subject ids or stay ids")
    closed = ClosedStays(reason=reason, at=at or timezone.now())
    if subject_ids is not None:
        subject_ids = list(dict.fromkeys(_uuid(s) for s in subject_ids))
    closed.stays = _close(
        alias,
        reason=reason,
        at=closed.at,
        subject_ids=subject_ids,
        segment_keys=None if segment_keys is None else list(dict.fromkeys(segment_keys)),
        stay_ids=None if stay_ids is None else list(stay_ids),
    )
    if not closed.stays:
        return closed
    closed.control = sql.stays_in_arm(
        alias=alias, ids=[pk for pk, _, _ in closed.stays], arm=CONTROL
    )
    if tokens is None:
        wanted = list({sid for _, sid, _ in closed.stays})
        tokens = dict(
            Subject.objects.using(alias).filter(pk__in=wanted).values_list("id", "audit_token")
        )
    closed.entries = [
        AuditEntry(
            code=AuditCode.MEMBERSHIP_EXITED,
            actor=actor,
            subject_token=tokens.get(sid) or "",
            object_type="segment",
            object_id=key,
            payload={"reason": reason, "membership_id": pk, "arm": closed.arm(pk)},
        )
        for pk, sid, key in closed.stays
    ]
    return closed


def _close(
    alias: str,
    *,
    reason: str,
    at: datetime,
    subject_ids: list[UUID] | None,
    segment_keys: list[str] | None,
    stay_ids: list[int] | None,
) -> list[Stay]:
    """The guarded statements of ``memberships_close``: one per chunk of subjects (or of stay
    ids). Several segment keys are first resolved to the ids of their open stays."""
    if segment_keys is not None and len(segment_keys) != 1:
        stay_ids = _open_stay_ids(alias, subject_ids, segment_keys, stay_ids)
        subject_ids, segment_keys = None, None
    key = segment_keys[0] if segment_keys else None
    closed: list[Stay] = []
    if subject_ids is not None:
        for chunk in _chunks(subject_ids):
            closed.extend(
                stays_close(
                    using=alias,
                    at=at,
                    reason=reason,
                    subject_ids=chunk,
                    segment_key=key,
                    ids=stay_ids,
                )
            )
    else:
        for chunk in _chunks(stay_ids):
            closed.extend(
                stays_close(using=alias, at=at, reason=reason, segment_key=key, ids=chunk)
            )
    return sorted(closed)


def _open_stay_ids(
    alias: str,
    subject_ids: list[UUID] | None,
    segment_keys: list[str],
    stay_ids: list[int] | None,
) -> list[int]:
    """Ids of the open stays in ``segment_keys`` (of ``subject_ids``, among ``stay_ids``, when
    given); the close statement checks again that each is still open."""
    if not segment_keys:
        return []
    rows = SegmentMembership.objects.using(alias).filter(
        exited_at__isnull=True, segment_key__in=segment_keys
    )
    if stay_ids is not None:
        rows = rows.filter(id__in=stay_ids)
    if subject_ids is None:
        return list(rows.values_list("id", flat=True))
    found: list[int] = []
    for chunk in _chunks(subject_ids):
        found.extend(rows.filter(subject_id__in=chunk).values_list("id", flat=True))
    return found


def memberships_closed_publish(*, alias: str, closed: ClosedStays) -> int:
    """Write the change-feed outbox rows of ``closed`` (``exit``, or ``retract`` for reasons
    that remove the basis, e.g. ``erasure``; each with its stay's arm) in the caller's
    transaction. Call it AFTER the transaction's audit append (the feed's lock order).
    Returns the rows written."""
    return membership_stays_exited(
        using=alias,
        stays=closed.stays,
        reason=closed.reason,
        at=closed.at,
        control=closed.control,
    )


def on_subject_merged(*, region: str, survivor_id: UUID, merged_id: UUID, actor: Actor) -> int:
    """``compliance.hooks.subject_merged`` handler: close every open stay of the merged
    subject (reason ``merged``, audited, an ``exit`` on the change feed) in the merge's
    transaction. The person goes on as the survivor: a later entry is the survivor's, in the
    survivor's arm, so one person never holds stays in both arms of a segment."""
    return memberships_exit_subjects(
        region=region, subject_ids=[merged_id], reason=ExitReason.MERGED, actor=actor
    )


def memberships_exit_subjects(
    *,
    region: str,
    subject_ids: Sequence[UUID],
    reason: str,
    actor: Actor,
    segment_keys: Sequence[str] | None = None,
) -> int:
    """Close every open stay of every subject in ``subject_ids`` (one region; only in
    ``segment_keys`` when given), one audited ``MEMBERSHIP_EXITED`` each and one change-feed
    row each (``exit``/``retract``, written after the audit append), in one transaction (joins
    the caller's). Returns the number of stays closed."""
    alias = region_alias(region=region)
    with transaction.atomic(using=alias):
        now = timezone.now()
        closed = memberships_close(
            alias=alias,
            subject_ids=subject_ids,
            reason=reason,
            actor=actor,
            at=now,
            segment_keys=segment_keys,
        )
        if closed.entries:
            audit_append(using=alias, entries=closed.entries, at=now)
            memberships_closed_publish(alias=alias, closed=closed)
    return len(closed.stays)
