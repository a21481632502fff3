"""Bench-only middleware (``bench.api_settings``): counts, per database alias, the statements a
request runs, the savepoint statements among them and the connections it opens, and returns
them in ``X-Bench-Statements``, ``X-Bench-Savepoints`` and ``X-Bench-Connections``
(``default=4;eu=19;us=1``).

Statements are counted by ``connection.execute_wrapper``: everything sent through Django's
cursors, savepoints included (``SAVEPOINT``, ``RELEASE SAVEPOINT``, ``ROLLBACK TO SAVEPOINT`` go
through ``cursor.execute``). Not seen: ``BEGIN`` (implicit in psycopg) and ``COMMIT`` /
``ROLLBACK`` (``connection.commit()``), ``COPY`` and the connection set-up and health-check
queries, which use the raw connection. Connections: ``connection_created`` signals during the
request (persistent connections are opened by the first request of a worker, or after
``DB_CONN_MAX_AGE``).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter

from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created

SAVEPOINT_SQL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
HEADERS = {
    "statements": "X-Bench-Statements",
    "savepoints": "X-Bench-Savepoints",
    "connections": "X-Bench-Connections",
}


class DatabaseCountMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.current = threading.local()  # sync workers: one request per thread at a time
        connection_created.connect(self._connection_created, weak=False)

    def _connection_created(self, sender, connection, **kwargs) -> None:
        counts = getattr(self.current, "counts", None)
        if counts is not None:
            counts[connection.alias]["connections"] += 1

    def __call__(self, request):
        aliases = list(settings.DATABASES)
        counts = {alias: Counter() for alias in aliases}
        self.current.counts = counts
        try:
            with contextlib.ExitStack() as stack:
                for alias in aliases:
                    stack.enter_context(connections[alias].execute_wrapper(_counter(counts[alias])))
                response = self.get_response(request)
        finally:
            self.current.counts = None
        for key, header in HEADERS.items():
            response[header] = ";".join(f"{alias}={counts[alias][key]}" for alias in aliases)
        return response


def _counter(counts: Counter):
    def wrapper(execute, sql, params, many, context):
        counts["statements"] += 1
        if isinstance(sql, str) and sql.lstrip().upper().startswith(SAVEPOINT_SQL):
            counts["savepoints"] += 1
        return execute(sql, params, many, context)

    return wrapper
