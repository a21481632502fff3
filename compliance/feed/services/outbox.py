"""Writing the outbox: one row per membership enter/exit and per consent change.

Callers (the consent ledger, ``memberships_apply`` and its exits) call these functions inside
their own region transaction, so a change and its outbox row commit or roll back together.
Delivery to webhooks is scheduled once per transaction, on commit.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from celery import current_app
from django.db import connections, transaction

from compliance.feed import sql
from compliance.feed.models import ChangeArm, ChangeKind
from compliance.feed.selectors.subscriptions import subscriptions_for_region

#: exit reasons that mean "the basis to process this person is gone": sent as ``retract``
RETRACT_REASONS = frozenset(
    {"consent_withdrawn", "consent_expired", "objection", "restriction", "erasure"}
)


@dataclass(frozen=True)
class ChangeInput:
    kind: str
    subject_id: UUID
    occurred_at: datetime
    segment_key: str = ""
    purpose: str = ""
    source: str = ""
    decision: str = ""
    reason: str = ""
    ref_id: int | None = None
    #: the stay's holdout arm (membership changes only)
    arm: str | None = None


def exit_kind(*, reason: str) -> str:
    """``retract`` for exits that remove the basis to process the person, else ``exit``."""
    return ChangeKind.RETRACT if reason in RETRACT_REASONS else ChangeKind.EXIT


def changes_record(*, using: str, changes: Sequence[ChangeInput]) -> int:
    """Append ``changes`` to the outbox of region database ``using`` in the caller's
    transaction (opens one if there is none) and schedule delivery when it commits.
    PostgreSQL: ``COPY`` from ``sql.COPY_THRESHOLD`` rows. Returns the number of rows written."""
    if not changes:
        return 0
    # no savepoint: no caller recovers from a failed outbox write inside its own transaction
    with transaction.atomic(using=using, savepoint=False):
        sql.changes_insert(using=using, changes=changes, lock=True)
        schedule_delivery(using=using)
    return len(changes)


def membership_changes_record(
    *,
    using: str,
    segment_key: str,
    entered: Iterable[tuple[int, UUID, str]] = (),
    exited: Iterable[tuple[int, UUID, str]] = (),
    reason: str,
    at: datetime,
) -> int:
    """Outbox rows for membership stays ``(membership id, subject id, arm)`` that entered or
    exited ``segment_key`` with ``reason`` at ``at``; exits with a ``RETRACT_REASONS`` reason are
    ``retract`` changes. PostgreSQL, from ``sql.COPY_THRESHOLD`` rows: one ``INSERT ...
    SELECT`` from arrays per kind (``sql.stays_insert``)."""
    kind = exit_kind(reason=reason)
    entered = entered if isinstance(entered, Sequence) else list(entered)
    exited = exited if isinstance(exited, Sequence) else list(exited)
    total = len(entered) + len(exited)
    if not total:
        return 0
    groups = ((ChangeKind.ENTER, entered), (kind, exited))
    with transaction.atomic(using=using, savepoint=False):  # as in changes_record
        sql.outbox_lock(using=using)
        if not sql.stays_insert(
            using=using, segment_key=segment_key, groups=groups, reason=reason, at=at
        ):
            changes = [
                ChangeInput(
                    change, sid, at, segment_key=segment_key, reason=reason, ref_id=pk, arm=arm
                )
                for change, stays in groups
                for pk, sid, arm in stays
            ]
            sql.changes_insert(using=using, changes=changes)
        schedule_delivery(using=using)
    return total


def membership_stays_exited(
    *,
    using: str,
    stays: Iterable[tuple[int, UUID, str]],
    reason: str,
    at: datetime,
    control: Collection[int] = (),
) -> int:
    """Outbox rows for exited stays ``(membership id, subject id, segment key)`` of several
    segments (consent follow-through, erasure, restriction); the stays whose ids are in
    ``control`` are in the control arm, the others in treatment."""
    kind = exit_kind(reason=reason)
    return changes_record(
        using=using,
        changes=[
            ChangeInput(
                kind,
                sid,
                at,
                segment_key=key,
                reason=reason,
                ref_id=pk,
                arm=ChangeArm.CONTROL if pk in control else ChangeArm.TREATMENT,
            )
            for pk, sid, key in stays
        ],
    )


def consent_changes_record(*, using: str, events: Sequence) -> int:
    """Outbox rows for recorded ``ConsentEvent`` rows (purpose, source, decision; no signal)."""
    return changes_record(
        using=using,
        changes=[
            ChangeInput(
                ChangeKind.CONSENT,
                e.subject_id,
                e.received_at,
                purpose=e.purpose,
                source=e.source,
                decision=e.decision,
                reason=e.method,
                ref_id=e.pk,
            )
            for e in events
        ],
    )


# --- scheduling delivery ---------------------------------------------------------------------
#: the name ``feed.tasks.deliver`` is registered under
DELIVER_TASK = "feed.deliver"
_SUBSCRIBED: dict[str, tuple[float, bool]] = {}
_SUBSCRIBED_TTL = 5.0


def subscriptions_changed() -> None:
    """Forget the cached "does this region have active subscriptions" answers."""
    _SUBSCRIBED.clear()


def _region_subscribed(region: str) -> bool:
    cached = _SUBSCRIBED.get(region)
    now = time.monotonic()
    if cached and now - cached[0] < _SUBSCRIBED_TTL:
        return cached[1]
    answer = bool(subscriptions_for_region(region=region))
    _SUBSCRIBED[region] = (now, answer)
    return answer


def schedule_delivery(*, using: str) -> None:
    """Send ``feed.deliver`` for the region when the current transaction commits (once per
    transaction), if the region has active webhook subscriptions."""
    connection = connections[using]
    if not connection.in_atomic_block:
        return
    for _, func, _ in connection.run_on_commit:
        if getattr(func, "feed_delivery_for", None) == using:
            return
    if not _region_subscribed(using):
        return

    def send() -> None:
        # by name: tasks import services, not the reverse (feed.tasks imports the feed services)
        current_app.send_task(DELIVER_TASK, kwargs={"region": using})

    send.feed_delivery_for = using
    transaction.on_commit(send, using=using)
