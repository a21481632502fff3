"""SQL of the plans app: the counters' upsert (one multi-row ``INSERT ... ON CONFLICT ... DO
UPDATE``, the same text on PostgreSQL and SQLite 3.24+), which the ingest sends with its other
writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from django.db import connections

from compliance.plans.models import InstrumentationCount

_TABLE = InstrumentationCount._meta.db_table
UPSERT = (
    f"INSERT INTO {_TABLE} (day, source, event, kind, path, count, last_seen_at) "
    "VALUES {rows} "
    "ON CONFLICT (day, source, event, kind, path) DO UPDATE SET "
    f"count = {_TABLE}.count + excluded.count, last_seen_at = excluded.last_seen_at"
)


def counts_add_sql(
    *, alias: str, rows: Sequence[tuple[date, str, str, str, str, int, datetime]]
) -> tuple[str, list] | None:
    """The statement (SQL, params) that adds each row's count to its counter (created at that
    count if absent), ``None`` for no row: ONE statement (rows of the same counter summed
    first, counters in key order so that concurrent batches lock them in the same order);
    concurrent batches never lose an increment."""
    if not rows:
        return None
    summed: dict[tuple, list] = {}
    for day, source, event, kind, path, count, seen in rows:
        held = summed.setdefault((day, source, event, kind, path), [0, seen])
        held[0] += count
        held[1] = max(held[1], seen)
    connection = connections[alias]
    params: list = []
    for (day, source, event, kind, path), (count, seen) in sorted(summed.items()):
        params += [
            connection.ops.adapt_datefield_value(day),
            source,
            event,
            kind,
            path,
            count,
            connection.ops.adapt_datetimefield_value(seen),
        ]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(summed))
    return UPSERT.replace("{rows}", values), params
