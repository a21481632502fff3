"""Whether this process can serve: each database answers and is fully migrated, and the
Celery broker answers. For ``/readyz``.

Each check runs in its own thread with its own connection (closed afterwards) and is given
``READY_TIMEOUT`` seconds; a check still running then counts as down. Answers name the database
alias and say what is wrong in a few words (the exception's class, the number of unapplied
migrations), never a host, URL or credential.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from compliance.conf import compliance_settings
from config.celery import app


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def database_ready(*, alias: str) -> Check:
    """``alias`` answers ``SELECT 1`` and has no unapplied migration."""
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # the failure is the answer
        return Check(alias, False, f"not reachable: {exc.__class__.__name__}")
    finally:
        connection.close()
    if plan:
        return Check(alias, False, f"{len(plan)} unapplied migration(s)")
    return Check(alias, True, "reachable and migrated")


def broker_ready(*, timeout: float) -> Check:
    """The broker accepts a connection and a channel."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            conn.default_channel  # noqa: B018  (Redis: a PING)
    except Exception as exc:
        return Check("broker", False, f"not reachable: {exc.__class__.__name__}")
    return Check("broker", True, "reachable")


def readiness() -> dict:
    """``{"ready": bool, "databases": {alias: {...}}, "broker": {...}}``."""
    timeout = compliance_settings.READY_TIMEOUT
    aliases = list(settings.DATABASES)
    pool = ThreadPoolExecutor(max_workers=len(aliases) + 1, thread_name_prefix="readyz")
    futures = {alias: pool.submit(database_ready, alias=alias) for alias in aliases}
    futures["broker"] = pool.submit(broker_ready, timeout=timeout)
    deadline = time.monotonic() + timeout
    checks: dict[str, Check] = {}
    for name, future in futures.items():
        try:
            checks[name] = future.result(timeout=max(deadline - time.monotonic(), 0.0))
        except FutureTimeout:
            checks[name] = Check(name, False, f"no answer within {timeout:g} s")
    pool.shutdown(wait=False, cancel_futures=True)
    body = {
        "databases": {a: {"ok": checks[a].ok, "detail": checks[a].detail} for a in aliases},
        "broker": {"ok": checks["broker"].ok, "detail": checks["broker"].detail},
    }
    return {"ready": all(c.ok for c in checks.values()), **body}
