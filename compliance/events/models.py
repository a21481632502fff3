"""Events app models: consent-gated behavioral events and rejection counters (both regional)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from compliance.residency import RegionalModel


class Event(RegionalModel):
    """One behavioral event, stored only because processing was allowed when it arrived.

    ``properties_encrypted`` is AES-256-GCM under the subject's data key (associated data
    ``event-properties:<subject_id>``), so erasing the subject's key crypto-shreds it.
    ``consent_event_ids`` are the ``ConsentEvent`` ids that allowed it (the consent app's
    deciding events; empty for a basis that needs no record, e.g. an opt-out regime).
    ``client_event_id`` is the optional id sent by the collecting system, unique per source:
    a retried event is reported as a duplicate instead of being stored twice.
    """

    subject_id = models.UUIDField()
    source = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    purpose = models.CharField(max_length=64)
    jurisdiction = models.CharField(max_length=16, blank=True, default="")
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    properties_encrypted = models.BinaryField()
    consent_event_ids = models.JSONField(default=list)
    client_event_id = models.CharField(max_length=128, null=True, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(fields=["subject_id", "occurred_at"], name="events_subject_time"),
            models.Index(fields=["received_at"], name="events_received"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "client_event_id"],
                condition=Q(client_event_id__isnull=False),
                name="events_client_id_unique_per_source",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} from {self.source} ({self.occurred_at:%Y-%m-%d %H:%M})"


class RejectionCount(RegionalModel):
    """How many events of a source were rejected for a reason on a day, in this region.

    Counts only, no subject and no identifier. Kept in the region database so that the
    counter moves in the same transaction as the region's events and its
    ``EVENT_BATCH_INGESTED`` audit entry (the counts and the audit chain always agree).
    """

    day = models.DateField()
    source = models.CharField(max_length=64)
    reason = models.CharField(max_length=64)
    count = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "source", "reason"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source", "reason"], name="events_rejection_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.source}: {self.reason} x{self.count}"
