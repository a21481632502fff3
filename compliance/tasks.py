"""Compliance Celery tasks: thin (load, call a service, retry)."""

from __future__ import annotations

import os
import socket

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from compliance.models import WorkerHeartbeat
from compliance.regions import region_alias
from compliance.tasking import RegionalTask


@shared_task(base=RegionalTask, name="compliance.worker_heartbeat")
def worker_heartbeat(*, region: str, nonce: str = "") -> None:
    """Record that a worker of ``region`` is alive (in that region's database)."""
    WorkerHeartbeat.objects.using(region_alias(region=region)).create(
        hostname=socket.gethostname(), region=region, nonce=nonce, seen_at=timezone.now()
    )


@shared_task(name="compliance.broker_probe", acks_late=True, reject_on_worker_lost=True)
def broker_probe(*, token: str, region: str | None = None) -> None:
    """Append ``token`` to ``var/broker-probe/<pid>.log`` (one line per run): lets the broker
    stress test count how often each message was processed. Touches no database."""
    folder = settings.VAR_DIR / "broker-probe"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{os.getpid()}.log", "a") as handle:
        handle.write(f"{token}\n")
