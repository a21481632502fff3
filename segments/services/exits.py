"""Bulk exits: many subjects leave every segment they are in, set-based and audited.

``memberships_exit_subjects`` is for jobs that remove many people at once (bulk DSAR erasure,
retention): one ``UPDATE ... RETURNING`` per chunk of subjects closes every active stay
(``exited_at``/``exited_reason``, the same history rows ``memberships_apply`` keeps) and one
``audit_append`` writes one ``MEMBERSHIP_EXITED`` per closed stay (payload
``{"reason", "membership_id"}``, object ``segment``/segment key, the subject's audit token).

Each closed stay is also written to the change feed's outbox (``exit``, or ``retract`` for
reasons such as ``erasure``: downstream recipients must drop the person), AFTER the audit
append, as the feed requires (lock order: audit chain head, then outbox).

``memberships_close`` is the same without the audit and outbox writes: it returns the closed stays and their
audit entries so that a caller that writes many kinds of events (bulk erasure) can append them
all in one call, then call ``memberships_closed_publish`` to write the outbox rows. It must run
inside the caller's region transaction with a write path open that may change memberships
(``membership_service``, ``erasure`` or ``retention``; PostgreSQL's trigger refuses anything
else).

Stays closed concurrently by someone else are not closed twice: the statement only touches rows
still active, and row locks serialise it with ``memberships_apply``.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from segments.models import ExitReason, SegmentMembership
from segments.services.memberships import MembershipInputError

TABLE = SegmentMembership._meta.db_table
#: subjects per statement
CHUNK = 5_000


def _uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _closed_stays(
    alias: str, subject_ids: list[UUID], reason: str, at: datetime
) -> list[tuple[int, UUID, str]]:
    """Close the active stays of ``subject_ids``: sorted ``(membership id, subject, key)``."""
    closed: list[tuple[int, UUID, str]] = []
    for start in range(0, len(subject_ids), CHUNK):
        chunk = subject_ids[start : start + CHUNK]
        closed.extend(stays_close(using=alias, at=at, reason=reason, subject_ids=chunk))
    return sorted(closed)


@dataclass
class ClosedStays:
    """Stays closed by ``memberships_close``: ``(membership id, subject id, segment key)``
    sorted, and one ``MEMBERSHIP_EXITED`` entry each (not appended yet)."""

    reason: str
    at: datetime
    stays: list[tuple[int, UUID, str]] = field(default_factory=list)
    entries: list[AuditEntry] = field(default_factory=list)


def memberships_close(
    *,
    alias: str,
    subject_ids: Sequence[UUID],
    reason: str,
    actor: Actor,
    at: datetime | None = None,
    tokens: dict[UUID, str] | None = None,
) -> ClosedStays:
    """Close every active stay of ``subject_ids`` in the caller's transaction (write path
    open); return the stays and one ``MEMBERSHIP_EXITED`` entry per stay, NOT appended, and no
    outbox row written: the caller appends the entries, then calls
    ``memberships_closed_publish``. ``tokens`` (subject id -> audit token) saves a query."""
    if reason not in ExitReason.values:
        raise MembershipInputError(f"unknown exit reason {reason!r}")
    closed = ClosedStays(reason=reason, at=at or timezone.now())
    ids = list(dict.fromkeys(_uuid(s) for s in subject_ids))
    if not ids:
        return closed
    closed.stays = _closed_stays(alias, ids, reason, closed.at)
    if not closed.stays:
        return closed
    if tokens is None:
        wanted = list({sid for _, sid, _ in closed.stays})
        tokens = dict(
            Subject.objects.using(alias).filter(pk__in=wanted).values_list("id", "audit_token")
        )
    closed.entries = [
        AuditEntry(
            code=AuditCode.MEMBERSHIP_EXITED,
            actor=actor,
            subject_token=tokens.get(sid, ""),
            object_type="segment",
            object_id=key,
            payload={"reason": reason, "membership_id": pk},
        )
        for pk, sid, key in closed.stays
    ]
    return closed


def memberships_closed_publish(*, alias: str, closed: ClosedStays) -> int:
    """Write the change-feed outbox rows of ``closed`` (``exit``, or ``retract`` for reasons
    that remove the basis, e.g. ``erasure``) in the caller's transaction. Call it AFTER the
    transaction's audit append (the feed's lock order). Returns the rows written."""
    return membership_stays_exited(
        using=alias, stays=closed.stays, reason=closed.reason, at=closed.at
    )


def memberships_exit_subjects(
    *, region: str, subject_ids: Sequence[UUID], reason: str, actor: Actor
) -> int:
    """Close every active stay of every subject in ``subject_ids`` (one region), one audited
    ``MEMBERSHIP_EXITED`` each and one change-feed row each (``exit``/``retract``, written
    after the audit append), in one transaction (joins the caller's and keeps a write path it
    opened). Returns the number of stays closed."""
    alias = region_alias(region=region)
    with transaction.atomic(using=alias):
        now = timezone.now()
        closed = memberships_close(
            alias=alias, subject_ids=subject_ids, reason=reason, actor=actor, at=now
        )
        if closed.entries:
            audit_append(using=alias, entries=closed.entries, at=now)
            memberships_closed_publish(alias=alias, closed=closed)
    return len(closed.stays)
