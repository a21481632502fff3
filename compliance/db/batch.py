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

With prepared statements on (``DB_PREPARED_STATEMENTS``: the connection's ``prepare_threshold``
is set), the statements go instead as server-side prepared statements in one pipeline (COMMIT
last when it goes; a statement alone goes without a pipeline): still one round trip, but
PostgreSQL parses and plans each one once per connection instead of on every call, and the
parameters are bound, not quoted into the text. Django's execute wrappers and query log see
one statement per round trip either way: the statements joined by ``; ``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import psycopg
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
        ends = commit and _outermost(connection)
        sql = "; ".join(sql for sql, _ in statements) + ("; COMMIT" if ends else "")
        params = [param for _, params in statements for param in params]
        if connection.connection.prepare_threshold is not None and _PIPELINES:
            prepared = _Prepared(connection=connection.connection, statements=statements, ends=ends)
            logged = (
                connection.make_debug_cursor(prepared).debug_sql(sql, params)
                if connection.queries_logged
                else nullcontext()
            )
            with logged:  # execute wrappers, error translation and the query log as usual
                connection.make_cursor(prepared).execute(sql, params)
            return prepared.found
        cursor.execute(sql, params)
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


_PIPELINES = psycopg.Pipeline.is_supported()


class _Prepared:
    """What Django's cursor wrapper runs for one round trip of prepared statements:
    ``execute`` sends ``statements`` (and COMMIT when it ``ends`` the transaction), each
    prepared on its first use on the connection, in one pipeline (one statement alone goes
    without: a pipeline costs more than it saves there); ``found`` then holds each statement's
    rows. The joined text ``execute`` gets is for the wrappers and the log only."""

    def __init__(
        self, *, connection: psycopg.Connection, statements: Sequence[tuple[str, list]], ends: bool
    ) -> None:
        self.connection, self.statements, self.ends = connection, statements, ends
        self.found: list[list[tuple]] = []

    def execute(self, sql: str, params: list) -> None:
        connection = self.connection
        cursors = [psycopg.Cursor(connection) for _ in self.statements]
        if len(cursors) == 1 and not self.ends:
            cursors[0].execute(*self.statements[0], prepare=True)
        else:  # a failing statement raises when the pipeline ends, and the rest do not run
            with connection.pipeline():
                for cursor, (statement, values) in zip(cursors, self.statements, strict=True):
                    cursor.execute(statement, values, prepare=True)
                if self.ends:
                    connection.execute("COMMIT")
        self.found = [
            cursor.fetchall() if cursor.pgresult.status == ExecStatus.TUPLES_OK else []
            for cursor in cursors
        ]


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
