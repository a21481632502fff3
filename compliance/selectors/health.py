"""Health of each database and of the broker, for the landing page and ``/health/``.

Says whether each part answers, never how to reach it: no host names, URLs or credentials.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections

from compliance.db.vendor import vendor_name
from compliance.models import WorkerHeartbeat
from compliance.regions import region_alias, regions
from config.celery import app


@dataclass(frozen=True)
class Part:
    name: str
    kind: str
    ok: bool
    detail: str
    extra: dict = field(default_factory=dict)


def database_health(*, alias: str) -> Part:
    connection = connections[alias]
    role = "control (no personal data)" if alias == "default" else f"region {alias}"
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure is the answer, not an error page
        return Part(alias, vendor_name(alias), False, f"{role}: {exc.__class__.__name__}")
    ms = (time.monotonic() - started) * 1000
    return Part(alias, vendor_name(alias), True, f"{role}: answered in {ms:.0f} ms")


def broker_health() -> Part:
    scheme = settings.CELERY_BROKER_URL.split("://", 1)[0]
    waiting: dict[str, int] = {}
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            for queue in app.conf.task_queues:
                # declare as the workers do (idempotent): a passive declare of an empty queue
                # fails on Redis, where an empty queue does not exist
                waiting[queue.name] = queue.bind(channel).queue_declare().message_count
    except Exception as exc:
        return Part("broker", scheme, False, f"not reachable: {exc.__class__.__name__}")
    total = sum(waiting.values())
    return Part("broker", scheme, True, f"{total} task(s) waiting", {"waiting": waiting})


def worker_seen() -> dict[str, str]:
    """Per region, when a worker last ran the heartbeat job (every 5 minutes under beat)."""
    seen = {}
    for region in regions():
        try:
            last = WorkerHeartbeat.objects.using(region_alias(region=region)).first()
        except Exception:
            last = None
        seen[region] = last.seen_at.isoformat(timespec="seconds") if last else ""
    return seen


def health_status() -> dict:
    parts = [database_health(alias=alias) for alias in settings.DATABASES]
    parts.append(broker_health())
    return {
        "ok": all(p.ok for p in parts),
        "parts": parts,
        "workers_seen": worker_seen(),
    }
