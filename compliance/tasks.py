"""Compliance Celery tasks: thin (load, call a service, retry)."""

from __future__ import annotations

import socket

from celery import shared_task
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
