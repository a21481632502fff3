"""``statements_run``: several statements of one transaction in one round trip.

PostgreSQL with client-side binding (Django's default cursor) accepts several statements in
one ``execute``: they are sent as one string, run in order, and ``nextset`` reads each one's
result. An error stops the string where it happens and raises at once, as one statement
would; the caller's transaction is then aborted as usual. SQLite's driver runs one statement
per call, so there they run one after the other (same results, one round trip each: a file).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections
from psycopg.pq import ExecStatus

from compliance.db.vendor import is_postgresql


def statements_run(*, using: str, statements: Sequence[tuple[str, list]]) -> list[list[tuple]]:
    """Run ``statements`` (SQL with ``%s`` placeholders, params) in order on ``using``; each
    one's rows in order (``[]`` for a statement that answers none)."""
    if not statements:
        return []
    with connections[using].cursor() as cursor:
        # one statement per call where the driver takes no more
        if not is_postgresql(using):
            found = []
            for sql, params in statements:
                cursor.execute(sql, params)
                found.append(cursor.fetchall() if cursor.description else [])
            return found
        cursor.execute(
            "; ".join(sql for sql, _ in statements),
            [param for _, params in statements for param in params],
        )
        # the results are read from psycopg's cursor itself: every statement has run, so no
        # error can come any more, and Django's wrapper (and ``description``, which builds a
        # ``Column`` per field) cost more than reading ten rows
        raw = cursor.cursor
        found = []
        for number in range(len(statements)):
            if number:
                raw.nextset()
            found.append(raw.fetchall() if raw.pgresult.status == ExecStatus.TUPLES_OK else [])
        return found
