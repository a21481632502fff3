"""The membership table's columns and indexes, tracked by a django-pghistory insert trigger
(one event row, a snapshot of the new row, per inserted membership; no context, no hash)."""

from __future__ import annotations

import pghistory
from django.db import models
from django.db.models import Q

from compliance.residency import REGIONAL, RegionalModel


@pghistory.track(
    pghistory.InsertEvent(),
    context_field=None,
    obj_field=None,
    model_name="TrackedMembershipEvent",
    attrs={"residency": REGIONAL},
)
class TrackedMembership(RegionalModel):
    subject_id = models.UUIDField()
    segment_key = models.CharField(max_length=64)
    entered_at = models.DateTimeField()
    entered_reason = models.CharField(max_length=16)
    exited_at = models.DateTimeField(null=True, blank=True)
    exited_reason = models.CharField(max_length=24, blank=True)
    consent_event_ids = models.JSONField(default=list)

    class Meta:
        indexes = [
            models.Index(fields=["subject_id", "entered_at"], name="pgh_member_subj_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["segment_key", "subject_id"],
                condition=Q(exited_at__isnull=True),
                name="pgh_member_one_active",
            )
        ]
