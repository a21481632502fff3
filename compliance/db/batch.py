"""``statements_run``: several statements of one transaction in one round trip.

PostgreSQL with client-side binding (Django's default cursor) accepts several statements in
one ``execute``: they are sent as one string, run in order, and ``nextset`` reads each one's
result. An error stops the string where it happens and raises at once, as one statement
would; the caller's transaction is then aborted as usual. SQLite's driver runs one statement
per call, so there they run one after the other (same results, one round trip each: a file).

``commit=True`` ends the caller's transaction in the same round trip, where that is safe:
COMMIT goes last in the string when the transaction is the caller's own (its outermost
``atomic`` block commits on exit and no block inside it holds a savepoint; a block inside a
caller's, or a test's, transaction holds one, and nothing is committed early there). The
outermost block's exit then finds the transaction ended (psycopg sends no COMMIT on an idle
connection) and runs the ``on_commit`` callbacks as after any commit; a failed COMMIT (a
deferred constraint) raises from this call, as it would from the block's exit.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections
from psycopg.pq import ExecStatus

from compliance.db.vendor import is_postgresql


def statements_run(
    *, using: str, statements: Sequence[tuple[str, list]], commit: bool = False
) -> list[list[tuple]]:
    """Run ``statements`` (SQL with ``%s`` placeholders, params) in order on ``using``; each
    one's rows in order (``[]`` for a statement that answers none).

    ``commit``: these are the last statements of the caller's transaction (PostgreSQL: COMMIT
    is sent with them when that transaction is the caller's own; see the module's docs). The
    caller must not write on ``using`` after them, nor run code that can fail before its block
    ends: the transaction may be committed already."""
    if not statements:
        return []
    connection = connections[using]
    with connection.cursor() as cursor:
        # one statement per call where the driver takes no more
        if not is_postgresql(using):
            found = []
            for sql, params in statements:
                cursor.execute(sql, params)
                found.append(cursor.fetchall() if cursor.description else [])
            return found
        sql = "; ".join(sql for sql, _ in statements)
        if commit and _outermost(connection):
            sql += "; COMMIT"
        cursor.execute(sql, [param for _, params in statements for param in params])
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


def _outermost(connection) -> bool:
    """Whether the connection's transaction is one the caller owns: its outermost ``atomic``
    block commits on exit, no block inside it holds a savepoint (blocks entered with
    ``savepoint=False`` join it), and it is not doomed to roll back."""
    return (
        connection.in_atomic_block
        and connection.commit_on_exit
        and not any(connection.savepoint_ids)
        and not connection.needs_rollback
    )
