"""Fast, streaming reads of raw chain rows (no model instances), for verify and export.

Each row is a tuple ``(seq, occurred_at, code, actor_type, actor_id, subject_token,
object_type, object_id, payload, hash)`` where ``occurred_at`` is already in the canonical
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` form and ``payload`` a dict. PostgreSQL streams through a
server-side cursor (constant memory); SQLite cursors are lazy already.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

from django.db import connections, transaction

COLUMNS = (
    "seq",
    "occurred_at",
    "code",
    "actor_type",
    "actor_id",
    "subject_token",
    "object_type",
    "object_id",
    "payload",
    "hash",
)
_PG_TIME = "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_FETCH = 5000
_names = itertools.count()


def _where(start_seq: int | None, end_seq: int | None) -> tuple[str, list]:
    clauses, params = [], []
    if start_seq is not None:
        clauses.append("seq >= %s")
        params.append(start_seq)
    if end_seq is not None:
        clauses.append("seq <= %s")
        params.append(end_seq)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def iter_rows(
    *, using: str, start_seq: int | None = None, end_seq: int | None = None, limit: int = 0
) -> Iterator[tuple]:
    """Rows of the chain of ``using`` with ``start_seq <= seq <= end_seq``, by seq."""
    connection = connections[using]
    where, params = _where(start_seq, end_seq)
    tail = f" ORDER BY seq{f' LIMIT {int(limit)}' if limit else ''}"
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT seq, {_PG_TIME}, code, actor_type, actor_id, subject_token, object_type, "
            f"object_id, payload, hash FROM audit_auditevent{where}{tail}"
        )
        yield from _iter_postgresql(using=using, sql=sql, params=params)
        return
    sql = (
        "SELECT seq, occurred_at || '', code, actor_type, actor_id, subject_token, object_type, "
        f"object_id, payload, hash FROM audit_auditevent{where}{tail}"
    ).replace("%s", "?")
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, params)
        loads = json.loads
        while True:
            batch = cursor.fetchmany(_FETCH)
            if not batch:
                return
            for row in batch:
                yield (
                    row[0],
                    sqlite_time(row[1]),
                    row[2],
                    row[3],
                    row[4],
                    row[5],
                    row[6],
                    row[7],
                    loads(row[8]),
                    row[9],
                )
    finally:
        cursor.close()


def sqlite_time(value: str) -> str:
    """Django's SQLite text ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC) -> canonical form."""
    if len(value) == 19:
        value += ".000000"
    return value[:10] + "T" + value[11:26] + "Z"


def _iter_postgresql(*, using: str, sql: str, params: list) -> Iterator[tuple]:
    connection = connections[using]
    with transaction.atomic(using=using):
        connection.ensure_connection()
        cursor = connection.connection.cursor(name=f"audit_rows_{next(_names)}")
        cursor.itersize = _FETCH
        try:
            cursor.execute(sql, params)
            loads = json.loads
            while True:
                batch = cursor.fetchmany(_FETCH)
                if not batch:
                    return
                for row in batch:
                    payload = row[8]
                    if isinstance(payload, str):  # Django's psycopg setup loads jsonb as text
                        payload = loads(payload)
                    yield (*row[:8], payload, row[9])
        finally:
            cursor.close()
