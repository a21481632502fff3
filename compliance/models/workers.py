"""Worker heartbeats, written by each region's workers into that region's database."""

from __future__ import annotations

from django.db import models

from compliance.residency import RegionalModel


class WorkerHeartbeat(RegionalModel):
    """Last time a worker of this region ran the heartbeat task (shows the region is served)."""

    hostname = models.CharField(max_length=255)
    region = models.CharField(max_length=16)
    nonce = models.CharField(max_length=64, blank=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return f"{self.hostname} ({self.region})"
