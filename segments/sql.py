"""Vendor-specific SQL of the segments app (PostgreSQL and SQLite), in one place.

Domain code calls these functions and never branches on the database vendor itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

from django.db import connections

from compliance.events.models import Event
from compliance.models import Subject, SubjectKey
from segments.models import SegmentMembership

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
                yield (arm, day, days, event_id, _uuid(subject_id), *rest)


def _uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
