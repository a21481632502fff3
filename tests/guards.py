"""Seeding behind the guards, as the table owner would (tests only).

``owner_bypass(alias)`` opens a transaction on ``alias`` in which, on PostgreSQL, no trigger
fires (``session_replication_role = replica``: superuser only, which the test role is, and the
runtime role never is). On SQLite (no triggers) it is a plain transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connections, transaction


@contextlib.contextmanager
def owner_bypass(alias: str) -> Iterator[None]:
    with transaction.atomic(using=alias):
        connection = connections[alias]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
        yield
