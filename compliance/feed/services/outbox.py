"""Writing the outbox: one row per membership enter/exit and per consent change.

Callers (the consent ledger, ``memberships_apply`` and its exits) call these functions inside
their own region transaction, so a change and its outbox row commit or roll back together.
Delivery to webhooks is scheduled once per transaction, on commit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import connections, transaction

from compliance.feed.models import Change, ChangeKind

#: exit reasons that mean "the basis to process this person is gone": sent as ``retract``
RETRACT_REASONS = frozenset(
    {"consent_withdrawn", "consent_expired", "objection", "restriction", "erasure"}
)
#: advisory lock key serialising outbox writers (arbitrary constant, "feed" in ASCII)
OUTBOX_LOCK = 0x66656564
#: from this many rows, PostgreSQL writes the outbox with COPY
COPY_THRESHOLD = 200
TABLE = Change._meta.db_table
_COPY_SQL = (
    f"COPY {TABLE} (change_id, kind, subject_id, segment_key, purpose, source, decision, "
    "reason, ref_id, occurred_at) FROM STDIN"
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


def exit_kind(*, reason: str) -> str:
    """``retract`` for exits that remove the basis to process the person, else ``exit``."""
    return ChangeKind.RETRACT if reason in RETRACT_REASONS else ChangeKind.EXIT


def _serialise(using: str) -> None:
    """PostgreSQL: one outbox writer per region database from here to commit, so ids are
    handed out in commit order (SQLite's write lock does the same)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [OUTBOX_LOCK])


def changes_record(*, using: str, changes: Sequence[ChangeInput]) -> int:
    """Append ``changes`` to the outbox of region database ``using`` in the caller's
    transaction (opens one if there is none) and schedule delivery when it commits.
    PostgreSQL: ``COPY`` from ``COPY_THRESHOLD`` rows. Returns the number of rows written."""
    if not changes:
        return 0
    with transaction.atomic(using=using):
        _serialise(using)
        if connections[using].vendor == "postgresql" and len(changes) >= COPY_THRESHOLD:
            _copy(using=using, changes=changes)
        else:
            Change.objects.using(using).bulk_create(
                [
                    Change(
                        kind=c.kind,
                        subject_id=c.subject_id,
                        segment_key=c.segment_key,
                        purpose=c.purpose,
                        source=c.source,
                        decision=c.decision,
                        reason=c.reason,
                        ref_id=c.ref_id,
                        occurred_at=c.occurred_at,
                    )
                    for c in changes
                ],
                batch_size=2000,
            )
        schedule_delivery(using=using)
    return len(changes)


def _copy(*, using: str, changes: Sequence[ChangeInput]) -> None:
    uuid4 = uuid.uuid4
    null = "\\N"
    stamps: dict[datetime, str] = {}
    # every value is a UUID, a slug, an int or an ISO time: nothing needs escaping
    lines = [
        f"{uuid4()}\t{c.kind}\t{c.subject_id}\t{c.segment_key}\t{c.purpose}\t{c.source}"
        f"\t{c.decision}\t{c.reason}\t{null if c.ref_id is None else c.ref_id}\t"
        f"{stamps.get(c.occurred_at) or stamps.setdefault(c.occurred_at, c.occurred_at.isoformat())}"
        "\n"
        for c in changes
    ]
    with connections[using].cursor() as cursor:
        with cursor.cursor.copy(_COPY_SQL) as copy:
            for start in range(0, len(lines), 5000):
                copy.write("".join(lines[start : start + 5000]))


def membership_changes_record(
    *,
    using: str,
    segment_key: str,
    entered: Iterable[tuple[int, UUID]] = (),
    exited: Iterable[tuple[int, UUID]] = (),
    reason: str,
    at: datetime,
) -> int:
    """Outbox rows for membership stays ``(membership id, subject id)`` that entered or exited
    ``segment_key`` with ``reason`` at ``at``; exits with a ``RETRACT_REASONS`` reason are
    ``retract`` changes. PostgreSQL, from ``COPY_THRESHOLD`` rows: ONE ``INSERT ... SELECT``
    from two arrays per kind (the change ids are drawn by the database, ``gen_random_uuid()``),
    so no per-row Python object or text is built."""
    kind = exit_kind(reason=reason)
    entered = entered if isinstance(entered, Sequence) else list(entered)
    exited = exited if isinstance(exited, Sequence) else list(exited)
    total = len(entered) + len(exited)
    if not total:
        return 0
    if connections[using].vendor == "postgresql" and total >= COPY_THRESHOLD:
        with transaction.atomic(using=using):
            _serialise(using)
            with connections[using].cursor() as cursor:
                for change_kind, stays in ((ChangeKind.ENTER, entered), (kind, exited)):
                    if not stays:
                        continue
                    cursor.execute(
                        f"INSERT INTO {TABLE} (change_id, kind, subject_id, segment_key, purpose, "
                        "source, decision, reason, ref_id, occurred_at) "
                        "SELECT gen_random_uuid(), %s, t.sid, %s, '', '', '', %s, t.ref, %s "
                        "FROM unnest(%s::text::uuid[], %s::text::bigint[]) "
                        "WITH ORDINALITY AS t(sid, ref, i) ORDER BY t.i",
                        [
                            str(change_kind),
                            segment_key,
                            reason,
                            at,
                            "{" + ",".join([str(sid) for _, sid in stays]) + "}",
                            "{" + ",".join([str(pk) for pk, _ in stays]) + "}",
                        ],
                    )
            schedule_delivery(using=using)
        return total
    rows = [
        ChangeInput(ChangeKind.ENTER, sid, at, segment_key=segment_key, reason=reason, ref_id=pk)
        for pk, sid in entered
    ]
    rows.extend(
        ChangeInput(kind, sid, at, segment_key=segment_key, reason=reason, ref_id=pk)
        for pk, sid in exited
    )
    return changes_record(using=using, changes=rows)


def membership_stays_exited(
    *, using: str, stays: Iterable[tuple[int, UUID, str]], reason: str, at: datetime
) -> int:
    """Outbox rows for exited stays ``(membership id, subject id, segment key)`` of several
    segments (consent follow-through, erasure, restriction)."""
    kind = exit_kind(reason=reason)
    return changes_record(
        using=using,
        changes=[
            ChangeInput(kind, sid, at, segment_key=key, reason=reason, ref_id=pk)
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
    from compliance.feed.selectors.subscriptions import subscriptions_for_region

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
    from compliance.feed.tasks import deliver

    def send() -> None:
        deliver.apply_async(kwargs={"region": using})

    send.feed_delivery_for = using
    transaction.on_commit(send, using=using)
