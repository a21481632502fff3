"""The segments app's vendor-specific SQL: the only module of the app that asks which database
it talks to. PostgreSQL gets one statement per lookup over a whole batch (subjects passed as ONE
``uuid[]`` text parameter, ``unnest ... WITH ORDINALITY`` so rows name subjects by position and
no UUID is parsed back) and ``COPY`` for new stays; other databases (SQLite, the embedded
default) get the ORM in chunks. Closing stays is not here: it goes through the guard function
``compliance.db_guards.stays_close``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from uuid import UUID

from django.db import connections

from compliance.events.models import Event
from compliance.models import Subject, SubjectDirectory, SubjectKey
from segments.models import SegmentMembership

TABLE = SegmentMembership._meta.db_table
#: subjects per ORM query (SQLite's variable limit)
CHUNK = 10_000
#: rows per ``COPY`` write
COPY_CHUNK = 5_000
#: rows name the caller's subjects by position (1-based) in the ``ids`` array parameter
_IDS = "unnest(%(ids)s::text::uuid[]) WITH ORDINALITY AS t(id, i)"


def _is_pg(alias: str) -> bool:
    return connections[alias].vendor == "postgresql"


def _chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rows(alias: str, sql: str, params: dict) -> list[tuple]:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def uuid_array(texts: Sequence[str]) -> str:
    """A PostgreSQL array literal of formatted UUIDs: one text parameter (psycopg's
    per-element array dumper costs several microseconds per UUID)."""
    return "{" + ",".join(texts) + "}"


def subject_texts(*, alias: str, subject_ids: Sequence[UUID]) -> list[str] | None:
    """The ids formatted once for the batch statements of ``alias`` (PostgreSQL), or ``None``
    where the ORM path needs no text."""
    return list(map(str, subject_ids)) if _is_pg(alias) else None


def directory_regions(*, subject_ids: Sequence[UUID]) -> dict[UUID, str]:
    """subject id -> region, from the control directory (one query on PostgreSQL)."""
    if not subject_ids:
        return {}
    if _is_pg("default"):
        ids = list(subject_ids)
        rows = _rows(
            "default",
            f"SELECT DISTINCT t.i, d.region FROM {_IDS} "
            f"JOIN {SubjectDirectory._meta.db_table} d ON d.subject_id = t.id",
            {"ids": uuid_array(list(map(str, ids)))},
        )
        return {ids[i - 1]: region for i, region in rows}
    found: dict[UUID, str] = {}
    for chunk in _chunks(subject_ids):
        found.update(
            SubjectDirectory.objects.filter(subject_id__in=chunk).values_list(
                "subject_id", "region"
            )
        )
    return found


def segment_lock(*, alias: str, segment_key: str) -> None:
    """Serialise writers of ``segment_key``'s stays until the transaction ends (PostgreSQL
    advisory lock; SQLite's write lock does it elsewhere)."""
    if _is_pg(alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"segment-members:{segment_key}"]
            )


def subject_columns(
    *, alias: str, ids: Sequence[UUID], segment_key: str, texts: Sequence[str] | None
) -> tuple[list[str | None], list[bool], list[bool]]:
    """Per position of ``ids``: audit token (``None`` when the subject is not in ``alias``),
    merged?, active member of ``segment_key``? ``texts`` are the ids as ``subject_texts``
    formatted them. One query on PostgreSQL, which also takes a ``FOR KEY SHARE`` lock on the
    subject rows until the caller's transaction ends: consent writers lock the subject ``FOR
    UPDATE``, so a withdrawal either commits before our consent check reads it, or waits for
    our commit and then sees (and exits) the stays we wrote."""
    n = len(ids)
    tokens: list[str | None] = [None] * n
    merged = [False] * n
    member = [False] * n
    if not n:
        return tokens, merged, member
    if texts is None:
        return _subject_columns_orm(alias, ids, segment_key, (tokens, merged, member))
    rows = _rows(
        alias,
        f"SELECT t.i, s.audit_token, s.merged_into IS NOT NULL, EXISTS (SELECT 1 FROM "
        f"{TABLE} m WHERE m.segment_key = %(key)s AND m.exited_at IS NULL "
        f"AND m.subject_id = t.id) FROM {_IDS} "
        # locks taken in id order, like every multi-subject FOR UPDATE (no deadlock)
        f"JOIN {Subject._meta.db_table} s ON s.id = t.id ORDER BY s.id FOR KEY SHARE OF s",
        {"ids": uuid_array(texts), "key": segment_key},
    )
    for i, token, is_merged, is_member in rows:
        tokens[i - 1] = token
        if is_merged:
            merged[i - 1] = True
        if is_member:
            member[i - 1] = True
    return tokens, merged, member


def _subject_columns_orm(alias: str, ids: Sequence[UUID], segment_key: str, columns):
    tokens, merged, member = columns
    found: dict[UUID, tuple[str, bool]] = {}
    members: set[UUID] = set()
    for chunk in _chunks(ids):
        for sid, token, merged_into in (
            Subject.objects.using(alias)
            .filter(pk__in=chunk)
            .values_list("id", "audit_token", "merged_into")
        ):
            found[sid] = (token, merged_into is not None)
        members.update(
            SegmentMembership.objects.using(alias)
            .filter(segment_key=segment_key, exited_at__isnull=True, subject_id__in=chunk)
            .values_list("subject_id", flat=True)
        )
    for i, sid in enumerate(ids):
        known = found.get(sid)
        if known is not None:
            tokens[i], merged[i] = known
            member[i] = sid in members
    return tokens, merged, member


def stays_insert(
    *,
    alias: str,
    key: str,
    at: datetime,
    reason: str,
    subject_ids: Sequence[UUID],
    texts: Sequence[str] | None,
    events: Sequence[list[int]],
    arms: Sequence[str],
) -> list[int]:
    """Insert new stays of ``key`` (one per subject, ``events`` the consent event ids of each,
    ``arms`` its holdout arm); returns their ids in order. PostgreSQL: ids drawn in one query,
    rows streamed with COPY (text format; ``texts`` are the subject ids already formatted);
    elsewhere ``bulk_create``."""
    if not subject_ids:
        return []
    if texts is None:
        objs = [
            SegmentMembership(
                subject_id=sid,
                segment_key=key,
                entered_at=at,
                entered_reason=reason,
                consent_event_ids=ev,
                arm=arm,
            )
            for sid, ev, arm in zip(subject_ids, events, arms, strict=True)
        ]
        SegmentMembership.objects.using(alias).bulk_create(objs, batch_size=2000)
        return [obj.pk for obj in objs]
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [TABLE, len(subject_ids)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        columns = (
            "id, subject_id, segment_key, entered_at, entered_reason, exited_at, "
            "exited_reason, consent_event_ids, arm"
        )
        # ints, UUIDs, a slug key and reason, an ISO time, JSON lists of ints: nothing to escape
        middle = f"\t{key}\t{at.isoformat()}\t{reason}\t\\N\t\t["
        with cursor.cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
            for start in range(0, len(ids), COPY_CHUNK):
                stop = start + COPY_CHUNK
                copy.write(
                    "".join(
                        [
                            f"{pk}\t{text}{middle}{','.join(map(str, ev))}]\t{arm}\n"
                            for pk, text, ev, arm in zip(
                                ids[start:stop],
                                texts[start:stop],
                                events[start:stop],
                                arms[start:stop],
                                strict=True,
                            )
                        ]
                    )
                )
    return ids


def stays_in_arm(*, alias: str, ids: Sequence[int], arm: str) -> set[int]:
    """Which of the stays ``ids`` are in ``arm`` (the outbox and audit entries of exits carry
    the arm of the stay they close)."""
    found: set[int] = set()
    if not ids:
        return found
    if _is_pg(alias):
        found.update(
            pk
            for (pk,) in _rows(
                alias,
                f"SELECT id FROM {TABLE} WHERE id = ANY(%(ids)s::text::bigint[]) AND arm = %(arm)s",
                {"ids": "{" + ",".join(map(str, ids)) + "}", "arm": arm},
            )
        )
        return found
    for chunk in _chunks(ids):
        found.update(
            SegmentMembership.objects.using(alias)
            .filter(id__in=chunk, arm=arm)
            .values_list("id", flat=True)
        )
    return found


#: rows fetched per round trip by the streaming reads below
FETCH = 5_000

_FIRSTS = {
    # DISTINCT ON keeps each stay's earliest event; the day count is whole days from entry
    "postgresql": """
        SELECT DISTINCT ON (m.id) m.arm, to_char(m.entered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
            floor(extract(epoch FROM e.occurred_at - m.entered_at) / 86400)::int, e.id,
            e.subject_id{values}
        FROM {stays} m JOIN {events} e ON e.subject_id = m.subject_id{joins}
        WHERE m.segment_key = %s AND e.name = %s AND e.purpose = %s
            AND e.occurred_at > m.entered_at
        ORDER BY m.id, e.occurred_at, e.id
    """,
    "sqlite": """
        SELECT arm, entered_day, day, event_id, subject_id{outer} FROM (
            SELECT m.arm AS arm, substr(m.entered_at, 1, 10) AS entered_day,
                CAST(julianday(e.occurred_at) - julianday(m.entered_at) AS INTEGER) AS day,
                e.id AS event_id, e.subject_id AS subject_id{values},
                row_number() OVER (PARTITION BY m.id ORDER BY julianday(e.occurred_at), e.id)
                    AS rank
            FROM {stays} m JOIN {events} e ON e.subject_id = m.subject_id{joins}
            WHERE m.segment_key = %s AND e.name = %s AND e.purpose = %s
                AND julianday(e.occurred_at) > julianday(m.entered_at)
        ) WHERE rank = 1
    """,
}


def lift_first_conversions(
    *, alias: str, segment_key: str, event_name: str, purpose: str, with_values: bool
) -> Iterator[tuple]:
    """Each stay of ``segment_key`` that has an event ``event_name`` for ``purpose`` after
    its entry, with its first such event: ``(arm, entry day "YYYY-MM-DD" UTC, whole days from
    entry, event id, subject id)``, and with ``with_values`` also ``(subject region, wrapped
    data key or None, the event's encrypted properties)``. Streams in ``FETCH`` rows."""
    connection = connections[alias]
    values = joins = outer = ""
    if with_values:
        values = (
            ", s.region AS region, k.wrapped_key AS wrapped_key, e.properties_encrypted AS blob"
        )
        joins = (
            f" JOIN {Subject._meta.db_table} s ON s.id = e.subject_id"
            f" LEFT JOIN {SubjectKey._meta.db_table} k ON k.subject_id = e.subject_id"
        )
        outer = ", region, wrapped_key, blob"
    sql = _FIRSTS[connection.vendor].format(
        stays=SegmentMembership._meta.db_table,
        events=Event._meta.db_table,
        values=values,
        joins=joins,
        outer=outer,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [segment_key, event_name, purpose])
        while rows := cursor.fetchmany(FETCH):
            for arm, day, days, event_id, subject_id, *rest in rows:
                yield (arm, day, days, event_id, as_uuid(subject_id), *rest)


def as_uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
