"""``pipelined(using=...)``: writes whose answer nobody reads go out together.

On PostgreSQL the block runs in psycopg's pipeline mode: each statement is sent at once and its
result read only when a later statement's rows are fetched or the block ends, so N such writes
cost one round trip instead of N. Elsewhere the block changes nothing.

Only for plain writes: inside the block an error surfaces at the next read or at the block's
end (the transaction is aborted either way and rolls back), and a row count is not known when
the statement returns. So no ``try``/``except`` around a statement and no ``update()`` whose
count is used, inside. ``COPY`` is impossible in pipeline mode: the audit chain's and the
outbox's bulk paths ask ``in_pipeline`` and write their one ``INSERT`` from arrays instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connections
from psycopg import pq


@contextlib.contextmanager
def pipelined(*, using: str) -> Iterator[None]:
    """Send the statements of the block on ``using`` pipelined (PostgreSQL; see the module)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def in_pipeline(*, using: str) -> bool:
    """Whether statements on ``using`` are pipelined now (then ``COPY`` is not possible)."""
    connection = connections[using]
    raw = connection.connection
    return (
        raw is not None
        and connection.vendor == "postgresql"
        and raw.pgconn.pipeline_status != pq.PipelineStatus.OFF
    )
