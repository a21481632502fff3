"""Retention rules: per data category and region, a maximum age (global, no personal data)."""

from __future__ import annotations

from django.db import models

from compliance.residency import GlobalModel


class Category(models.TextChoices):
    BEHAVIORAL_EVENTS = "behavioral_events", "behavioral events"
    EXITED_MEMBERSHIPS = "exited_memberships", "exited segment memberships"
    CONSENT_EVENTS = "consent_events", "consent events of erased or inactive subjects"
    EXPORT_PACKAGES = "export_packages", "access/portability export packages"
    REQUEST_RECORDS = "request_records", "request records after closure"
    AUDIT_ENTRIES = "audit_entries", "audit entries beyond the legal minimum"
    FEED_CHANGES = "feed_changes", "change-feed outbox rows every subscriber has received"


class RetentionRule(GlobalModel):
    """Rows of ``category`` in ``region`` older than ``max_age_days`` are removed by the
    region's retention job. ``last_*`` fields are written by the job (shown in the admin)."""

    category = models.CharField(max_length=24, choices=Category.choices)
    region = models.CharField(max_length=16)
    max_age_days = models.PositiveIntegerField()
    is_active = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_removed = models.BigIntegerField(default=0, editable=False)
    total_removed = models.BigIntegerField(default=0, editable=False)
    last_result = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["region", "category"]
        constraints = [
            models.UniqueConstraint(fields=["category", "region"], name="retention_rule_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()} in {self.region}: {self.max_age_days} days"
