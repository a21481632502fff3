"""Vendor-specific SQL of the change feed's outbox: the writers' lock, and writes on PostgreSQL
(COPY from ``COPY_THRESHOLD`` rows, else one ``INSERT ... SELECT`` from column arrays); the ORM
on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from django.db import connections

from compliance.db.vendor import is_postgresql
from compliance.feed.models import Change, ChangeKind

#: advisory lock key serialising outbox writers (arbitrary constant, "feed" in ASCII)
OUTBOX_LOCK = 0x66656564
#: from this many rows, PostgreSQL writes the outbox with COPY
COPY_THRESHOLD = 200
TABLE = Change._meta.db_table
_COPY_SQL = (
    f"COPY {TABLE} (change_id, kind, subject_id, segment_key, purpose, source, decision, "
    "reason, ref_id, occurred_at, arm) FROM STDIN"
)


def outbox_lock(*, using: str) -> None:
    """One outbox writer per region database from here to commit, so ids are handed out in
    commit order: PostgreSQL takes a transaction advisory lock (SQLite's write lock does the
    same by itself)."""
    if is_postgresql(using):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [OUTBOX_LOCK])


def changes_insert(*, using: str, changes: Sequence, lock: bool = False) -> None:
    """Insert ``changes`` (``ChangeInput``), in order; with ``lock``, take ``outbox_lock``
    first. PostgreSQL: COPY from ``COPY_THRESHOLD``, below it ONE ``INSERT`` from column arrays
    (which takes the lock itself); the ORM elsewhere."""
    if is_postgresql(using):
        if len(changes) >= COPY_THRESHOLD:
            if lock:
                outbox_lock(using=using)
            _copy(using=using, changes=changes)
        else:
            _insert_arrays(using=using, changes=changes, lock=lock)
        return
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
                arm=c.arm,
            )
            for c in changes
        ],
        batch_size=2000,
    )


def stays_insert(
    *,
    using: str,
    segment_key: str,
    groups: Sequence[tuple[str, Sequence[tuple[int, UUID, str]]]],
    reason: str,
    at: datetime,
) -> bool:
    """PostgreSQL, from ``COPY_THRESHOLD`` stays: for each ``(kind, stays)`` group of
    ``(membership id, subject id, arm)``, ONE ``INSERT ... SELECT`` from three arrays (the
    change ids drawn by the database, ``gen_random_uuid()``), so no per-row Python object or
    text is built. Returns ``False`` (nothing written) otherwise: the caller writes
    ``ChangeInput`` rows."""
    if sum(len(stays) for _, stays in groups) < COPY_THRESHOLD or not is_postgresql(using):
        return False
    with connections[using].cursor() as cursor:
        for kind, stays in groups:
            if not stays:
                continue
            cursor.execute(
                f"INSERT INTO {TABLE} (change_id, kind, subject_id, segment_key, purpose, "
                "source, decision, reason, ref_id, occurred_at, arm) "
                "SELECT gen_random_uuid(), %s, t.sid, %s, '', '', '', %s, t.ref, %s, t.arm "
                "FROM unnest(%s::text::uuid[], %s::text::bigint[], %s::text[]) "
                "WITH ORDINALITY AS t(sid, ref, arm, i) ORDER BY t.i",
                [
                    str(kind),
                    segment_key,
                    reason,
                    at,
                    "{" + ",".join([str(sid) for _, sid, _ in stays]) + "}",
                    "{" + ",".join([str(pk) for pk, _, _ in stays]) + "}",
                    "{" + ",".join([arm for _, _, arm in stays]) + "}",
                ],
            )
    return True


def consent_changes_from_sql(*, ledger: str) -> tuple[str, list]:
    """PostgreSQL: the outbox rows of ``consent_changes_record`` (kind ``consent``: purpose,
    source, decision, the method as reason, the event as ``ref_id``, received time) from the
    ledger rows of the relation ``ledger`` (a CTE of just-inserted ``ConsentEvent`` rows), in
    id order, ``outbox_lock`` taken first; and its params. The caller schedules delivery."""
    return (
        f"INSERT INTO {TABLE} (change_id, kind, subject_id, segment_key, purpose, source, "
        "decision, reason, ref_id, occurred_at, arm) SELECT gen_random_uuid(), %s, l.subject_id, "
        "'', l.purpose, l.source, l.decision, l.method, l.id, l.received_at, NULL "
        f"FROM {ledger} l, (SELECT pg_advisory_xact_lock(%s)) AS lock ORDER BY l.id",
        [str(ChangeKind.CONSENT), OUTBOX_LOCK],
    )


def _insert_arrays(*, using: str, changes: Sequence, lock: bool) -> None:
    columns = [
        [str(uuid.uuid4()) for _ in changes],
        [str(c.kind) for c in changes],
        [str(c.subject_id) for c in changes],
        [c.segment_key for c in changes],
        [c.purpose for c in changes],
        [c.source for c in changes],
        [c.decision for c in changes],
        [c.reason for c in changes],
        [c.ref_id for c in changes],
        [c.occurred_at for c in changes],
        [c.arm or None for c in changes],
    ]
    # the lock as a one-row relation joined to the rows: taken before any row (and id) exists
    locked = ", (SELECT pg_advisory_xact_lock(%s)) AS lock" if lock else ""
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (change_id, kind, subject_id, segment_key, purpose, source, "
            "decision, reason, ref_id, occurred_at, arm) SELECT t.change_id, t.kind, t.sid, "
            "t.segment_key, t.purpose, t.source, t.decision, t.reason, t.ref, t.at, t.arm "
            "FROM unnest(%s::uuid[], %s::text[], %s::text[]::uuid[], %s::text[], %s::text[], "
            "%s::text[], %s::text[], %s::text[], %s::bigint[], %s::timestamptz[], %s::text[]) "
            "WITH ORDINALITY AS t(change_id, kind, sid, segment_key, purpose, source, decision, "
            f"reason, ref, at, arm, i){locked} ORDER BY t.i",
            [*columns, OUTBOX_LOCK] if lock else columns,
        )


def _copy(*, using: str, changes: Sequence) -> None:
    uuid4 = uuid.uuid4
    null = "\\N"
    stamps: dict[datetime, str] = {}
    # every value is a UUID, a slug, an int or an ISO time: nothing needs escaping
    lines = [
        f"{uuid4()}\t{c.kind}\t{c.subject_id}\t{c.segment_key}\t{c.purpose}\t{c.source}"
        f"\t{c.decision}\t{c.reason}\t{null if c.ref_id is None else c.ref_id}\t"
        f"{stamps.get(c.occurred_at) or stamps.setdefault(c.occurred_at, c.occurred_at.isoformat())}"
        f"\t{c.arm or null}\n"
        for c in changes
    ]
    with connections[using].cursor() as cursor:
        with cursor.cursor.copy(_COPY_SQL) as copy:
            for start in range(0, len(lines), 5000):
                copy.write("".join(lines[start : start + 5000]))
