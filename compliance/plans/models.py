"""Tracking plans (global: configuration, like ``EventSource``) and instrumentation counters
(regional: counts of what each region received, never a value or an identifier).

* ``TrackingPlan`` is one immutable version of a source's plan: the events it may send (name,
  description, owner, JSON Schema draft 2020-12 of the properties), the identifier types it
  may send and the enforcement mode. A change is a new version
  (``compliance.plans.services.plans.tracking_plan_publish``); the current plan of a source is
  its highest version.
* ``InstrumentationCount`` counts, per day, source, event name, kind and JSON path, what the
  region received: ``received``/``accepted``/``refused``/``violating`` totals (path empty)
  and one row per violation type and path.
"""

from __future__ import annotations

from django.db import models

from compliance.residency import GlobalModel, RegionalModel


class Mode(models.TextChoices):
    FLAG = "flag", "Flag: accept, record violations"
    OMIT = "omit", "Omit: accept, drop unplanned properties, record"
    BLOCK = "block", "Block: refuse unplanned events and violations, record"


class ViolationType(models.TextChoices):
    UNPLANNED_EVENT = "unplanned_event", "Unplanned event"
    REQUIRED_MISSING = "required_missing", "Required property missing"
    DATATYPE_MISMATCH = "datatype_mismatch", "Data type mismatch"
    ADDITIONAL_PROPERTY = "additional_property", "Additional property"
    INVALID_VALUE = "invalid_value", "Invalid value"
    IDENTIFIER_TYPE_NOT_ALLOWED = "identifier_type_not_allowed", "Identifier type not allowed"


class TrackingPlan(GlobalModel):
    """One version of a source's tracking plan; never changed once saved."""

    source = models.ForeignKey(
        "consent.EventSource", on_delete=models.PROTECT, related_name="tracking_plans"
    )
    version = models.PositiveIntegerField()
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.FLAG)
    #: ``[{"name", "description", "owner", "schema"}]``, sorted by name
    events = models.JSONField(default=list)
    identifier_types = models.JSONField(default=list)
    #: SHA-256 of the canonical JSON of ``{"mode", "events", "identifier_types"}``
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True, help_text="the actor's label")

    class Meta:
        ordering = ["source__key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["source", "version"], name="plans_source_version")
        ]

    def __str__(self) -> str:
        return f"{self.source_id and self.source.key} v{self.version} ({self.mode})"


class InstrumentationCount(RegionalModel):
    """How many events of a source and name a region received on a day, by kind and path.

    ``kind`` is ``received``, ``accepted``, ``refused`` or ``violating`` (``path`` empty), or a
    violation type with the JSON path it concerns. No subject, value or identifier.
    """

    day = models.DateField()
    source = models.CharField(max_length=64)
    event = models.CharField(max_length=200)
    kind = models.CharField(max_length=32)
    path = models.CharField(max_length=200, blank=True, default="")
    count = models.PositiveBigIntegerField(default=0)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "source", "event", "kind", "path"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source", "event", "kind", "path"], name="plans_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.source}/{self.event}: {self.kind} {self.path} x{self.count}"
