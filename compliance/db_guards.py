"""Database-level guards on PostgreSQL, and the one way through them.

Tables that must only change through a service (consent events: append-only; memberships:
only through ``memberships_apply``; audit rows: never) carry triggers that read the
transaction-local setting ``compliance.write_path``. A service opens the path for its own
transaction with ``write_path(using=alias, path="erasure")``; anything else (ORM or raw SQL
from elsewhere) is refused or captured by the trigger. On SQLite (embedded default) there are
no triggers: the services are the only writers, and tests say so.

Paths in use: ``erasure`` (DSAR erasure may delete consent events and memberships),
``membership_service`` (``memberships_apply``), ``retention`` (retention jobs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connections

SETTING = "compliance.write_path"
PATHS = frozenset({"erasure", "membership_service", "retention"})


@contextlib.contextmanager
def write_path(*, using: str, path: str) -> Iterator[None]:
    """Open ``path`` for the current transaction on ``using`` (must be inside ``atomic``)."""
    if path not in PATHS:
        raise ValueError(f"unknown write path {path!r}; known: {', '.join(sorted(PATHS))}")
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("write_path() must be used inside transaction.atomic(using=...)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, path])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, '', true)", [SETTING])


def postgresql_only(sql: str):
    """A ``RunPython`` function running ``sql`` on PostgreSQL aliases only (the guards' triggers
    do not exist on SQLite)."""

    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, None)

    return run
