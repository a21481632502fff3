"""``pipelined(using=...)``: writes whose answer nobody reads go out together.

On PostgreSQL the block runs in psycopg's pipeline mode: each statement is sent at once and its
result read only when a later statement's rows are fetched or the block ends, so N such writes
cost one round trip instead of N. Elsewhere the block changes nothing.

Only for plain writes: inside the block an error surfaces at the next read or at the block's
end (the transaction is aborted either way and rolls back), and a row count is not known when
the statement returns. So no ``try``/``except`` around a statement, no ``update()`` whose
count is used and no ``COPY`` (psycopg refuses it in pipeline mode), inside.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connections


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
