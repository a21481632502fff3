"""Segment definitions (global, control database) and memberships (regional, with history).

* ``Segment`` holds no personal data: who owns it, what changes when someone enters (motion),
  how the effect is measured, its layers, the consent purposes it needs and its review status.
  Definitions change only through ``segments.services.definitions`` (audited on ``default``).
* ``SegmentMembership`` is one stay of one subject in one segment: entered at/why, exited
  at/why (``NULL`` while active), and the consent events that allowed the entry. Exited rows
  are kept as history until retention or erasure removes them. Rows change only through
  ``segments.services.memberships`` (on PostgreSQL a trigger refuses any other writer).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from compliance.residency import GlobalModel, RegionalModel


class Layer(models.TextChoices):
    FIRMOGRAPHIC = "firmographic", "Firmographic"
    TECHNOGRAPHIC = "technographic", "Technographic"
    BEHAVIORAL = "behavioral", "Behavioral"
    INTENT = "intent", "Intent"
    DEMOGRAPHIC = "demographic", "Demographic"
    ENGAGEMENT = "engagement", "Engagement"


#: Consent purposes a layer needs by default (editable per segment). Firmographic data describes
#: the company (size, industry), not the person: putting a *person* into a segment still profiles
#: them, so it needs ``audience_segmentation`` like every other layer. Technographic data is read
#: from the device (storage access), behavioral/intent/engagement come from tracked events whose
#: use in segments is also measured.
LAYER_PURPOSES: dict[str, tuple[str, ...]] = {
    Layer.FIRMOGRAPHIC: ("audience_segmentation",),
    Layer.TECHNOGRAPHIC: ("storage", "audience_segmentation"),
    Layer.BEHAVIORAL: ("audience_segmentation", "measurement"),
    Layer.INTENT: ("audience_segmentation", "measurement"),
    Layer.DEMOGRAPHIC: ("audience_segmentation",),
    Layer.ENGAGEMENT: ("audience_segmentation", "measurement"),
}


def default_purposes(layers) -> list[str]:
    """Required purposes derived from ``layers`` (sorted, no duplicates)."""
    return sorted({purpose for layer in layers for purpose in LAYER_PURPOSES.get(layer, ())})


class Motion(models.TextChoices):
    CAMPAIGN = "campaign", "Campaign"
    SALES_PLAY = "sales_play", "Sales play"
    AD_AUDIENCE = "ad_audience", "Ad audience"
    WEB_EXPERIENCE = "web_experience", "Web experience"


class Origin(models.TextChoices):
    MANUAL = "manual", "Manual"
    RULE = "rule", "Rule"
    AI_SUGGESTED = "ai_suggested", "AI suggested"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    RETIRED = "retired", "Retired"


class Segment(GlobalModel):
    """A segment definition. Status changes only through the governance service."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_segments",
    )
    motion = models.CharField(max_length=32, choices=Motion.choices, blank=True)
    motion_detail = models.TextField(blank=True, help_text="what changes when someone enters")
    measurement_metric = models.CharField(max_length=200, blank=True)
    control_group_share = models.DecimalField(
        max_digits=4, decimal_places=3, null=True, blank=True, help_text="0 < share < 1"
    )
    #: the measurement plan's outcome (issue #17): the event that counts as a conversion, the
    #: property holding its value, and how long after entry a conversion still counts
    conversion_event = models.CharField(max_length=200, blank=True)
    value_property = models.CharField(max_length=200, blank=True)
    attribution_window_days = models.PositiveIntegerField(default=90)
    #: the holdout salt, drawn (and audited) when the segment is first activated; arms are
    #: ``segments.holdout.holdout_arm(salt, subject, control_group_share)`` while it stands
    holdout_salt = models.CharField(max_length=64, blank=True, editable=False)
    layers = models.JSONField(default=list)
    required_purposes = models.JSONField(default=list)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.MANUAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="proposed_segments",
    )
    proposed_by_client = models.ForeignKey(
        "compliance.ApiClient", null=True, blank=True, on_delete=models.PROTECT
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approved_segments",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    last_reviewed_at = models.DateTimeField(null=True, blank=True)
    review_interval_days = models.PositiveIntegerField(default=90)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        permissions = [
            ("approve_segment", "Can approve segments"),
            ("activate_segment", "Can activate or pause segments"),
            ("review_segment", "Can mark segments reviewed"),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def review_due_at(self):
        """When the next review is due: last review (or approval, or creation) + interval."""
        start = self.last_reviewed_at or self.approved_at or self.created_at
        return start + timedelta(days=self.review_interval_days) if start else None


class ReviewDecision(models.TextChoices):
    """What a review decided on the lift since the previous review."""

    ITERATE = "iterate", "Iterate: it lifted, build on it"
    KEEP = "keep", "Keep as it is"
    CUT = "cut", "Cut: it did not lift"


class SegmentReview(GlobalModel):
    """One review of a segment, written by ``segment_review`` with its audit entry: who, when,
    the decision (blank when none was recorded) and the lift figures it was made on
    (``segments.selectors.lift.lift_figures`` since the previous review: aggregates only,
    never a subject). ``note`` is the reviewer's own text: kept here, not in the audit log."""

    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="reviews")
    reviewed_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    decision = models.CharField(max_length=8, choices=ReviewDecision.choices, blank=True)
    note = models.TextField(blank=True)
    lift = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-reviewed_at", "-id"]

    def __str__(self) -> str:
        return f"review of {self.segment_id} at {self.reviewed_at:%Y-%m-%d}: {self.decision or '-'}"


class ExitReason(models.TextChoices):
    CRITERIA = "criteria", "No longer meets the criteria"
    MANUAL = "manual", "Removed by hand"
    CONSENT_WITHDRAWN = "consent_withdrawn", "Consent withdrawn or refused"
    CONSENT_EXPIRED = "consent_expired", "Consent expired"
    OBJECTION = "objection", "Objection"
    RESTRICTION = "restriction", "Processing restricted"
    ERASURE = "erasure", "Erasure"
    RETENTION = "retention", "Retention period over"
    MERGED = "merged", "Merged into another subject (the person goes on as the survivor)"


ENTER_REASONS = ("criteria", "manual")


class Arm(models.TextChoices):
    """The holdout arm of a stay: control members are profiled but never activated."""

    TREATMENT = "treatment", "Treatment"
    CONTROL = "control", "Control (held out)"


class SegmentMembership(RegionalModel):
    """One stay of a subject in a segment; ``exited_at`` is ``NULL`` while it lasts."""

    subject_id = models.UUIDField()
    segment_key = models.CharField(max_length=64)
    entered_at = models.DateTimeField()
    entered_reason = models.CharField(max_length=16)
    exited_at = models.DateTimeField(null=True, blank=True)
    exited_reason = models.CharField(max_length=24, blank=True, choices=ExitReason.choices)
    arm = models.CharField(
        max_length=10, choices=Arm.choices, default=Arm.TREATMENT, db_default=Arm.TREATMENT
    )
    #: ids of the ConsentEvent rows that allowed the entry (same region)
    consent_event_ids = models.JSONField(default=list)

    class Meta:
        ordering = ["entered_at", "id"]
        # lookups by segment always ask for active stays (the partial unique index below);
        # lookups by subject (history, erasure, consent exits) use ``seg_member_subj_time``
        indexes = [
            models.Index(fields=["subject_id", "entered_at"], name="seg_member_subj_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["segment_key", "subject_id"],
                condition=Q(exited_at__isnull=True),
                name="seg_member_one_active",
            )
        ]

    def __str__(self) -> str:
        state = "active" if self.exited_at is None else f"exited ({self.exited_reason})"
        return f"{self.subject_id} in {self.segment_key}: {state}"


class LiftComputation(GlobalModel):
    """When a region last computed the lift aggregates of a segment (control database)."""

    segment_key = models.CharField(max_length=64)
    region = models.CharField(max_length=16)
    computed_at = models.DateTimeField()
    horizon_days = models.PositiveIntegerField()
    stays = models.PositiveBigIntegerField(default=0)
    conversions = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment_key", "region"], name="lift_run_one")
        ]

    def __str__(self) -> str:
        return f"lift of {self.segment_key} in {self.region} at {self.computed_at:%Y-%m-%d %H:%M}"


class LiftPeriod(models.TextChoices):
    ALL = "all", "Since activation"
    SINCE_REVIEW = "since_review", "Since the last review"


class LiftAggregate(GlobalModel):
    """Aggregates of one arm's stays of a segment in one region over one period (control
    database). No subject, no event, no single value:

    * ``units``: stays that entered in the period; ``ages``: ``{"d": stays entered d whole
      days before the computation}`` (how many have lived through a window);
    * ``cycles``: ``{"d": stays whose first conversion came d whole days after entry}`` for
      ``0 <= d < horizon``: any attribution window up to the horizon is a sum over it;
    * ``valued``, ``value_sum``, ``value_sum_squares``: the conversions within the segment's
      ``value_window_days`` that carried a value; left empty (``None``) when fewer than
      ``segments.services.lift.MIN_VALUED`` did, so no sum stands for one person's value.
    """

    segment_key = models.CharField(max_length=64)
    region = models.CharField(max_length=16)
    period = models.CharField(max_length=16, choices=LiftPeriod.choices)
    since = models.DateTimeField(null=True, blank=True)
    arm = models.CharField(max_length=10, choices=Arm.choices)
    units = models.PositiveBigIntegerField(default=0)
    ages = models.JSONField(default=dict)
    cycles = models.JSONField(default=dict)
    value_window_days = models.PositiveIntegerField()
    valued = models.PositiveBigIntegerField(null=True, blank=True)
    value_sum = models.FloatField(null=True, blank=True)
    value_sum_squares = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["segment_key", "region", "period", "arm"]
        constraints = [
            models.UniqueConstraint(
                fields=["segment_key", "region", "period", "arm"], name="lift_aggregate_one"
            )
        ]

    def __str__(self) -> str:
        return f"{self.segment_key} {self.region} {self.period} {self.arm}: {self.units}"
