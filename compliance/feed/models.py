"""Change feed: the regional outbox, webhook subscriptions, delivery cursors and receipts."""

from __future__ import annotations

import uuid

from django.db import models

from compliance.fields import SealedTextField
from compliance.residency import GlobalModel, RegionalModel


class ChangeKind(models.TextChoices):
    ENTER = "enter", "segment enter"
    EXIT = "exit", "segment exit"
    #: an exit because the basis to process the person is gone (consent withdrawn, objection,
    #: expiry, restriction, erasure): downstream audiences must drop the person
    RETRACT = "retract", "retract (drop the person)"
    CONSENT = "consent", "consent change"


#: the outbox rows erasure keeps: an erased person's ``retract`` changes with reason
#: ``erasure`` (random subject id, segment key, kind, reason; no identifier). They tell
#: recipients to drop the person (GDPR Art. 17(2)/19) and are removed by
#: ``compliance.feed.services.notices.erasure_notices_purge`` once delivered.
ERASURE_NOTICE = {"kind": "retract", "reason": "erasure"}
ERASURE_NOTICE_WHY = "erasure notices pending delivery to webhook subscribers and pull consumers"


class ChangeArm(models.TextChoices):
    """The holdout arm of a membership change (``segments.holdout``); consent changes have none."""

    TREATMENT = "treatment", "Treatment"
    CONTROL = "control", "Control (held out)"


class SubscriptionArm(models.TextChoices):
    """Which arm's membership changes a subscription receives. Control members are never
    activated: only measurement tools opt in to them."""

    TREATMENT = "treatment", "Treatment only (activation)"
    CONTROL = "control", "Control only (measurement)"
    ALL = "all", "Both arms (measurement)"


class Change(RegionalModel):
    """One outbox row, written in the same region transaction as the change it describes.

    Feed order is ``id`` order, which is commit order: writers of a region's outbox are
    serialised from their outbox insert to their commit (PostgreSQL: a transaction-level
    advisory lock; SQLite: the database write lock), so a reader that has seen ``id`` N will
    never see a row with a smaller id commit later.
    """

    change_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=8, choices=ChangeKind.choices)
    subject_id = models.UUIDField()
    segment_key = models.CharField(max_length=64, blank=True)
    purpose = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=64, blank=True)
    decision = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=24, blank=True)
    #: the membership id (enter/exit/retract) or consent event id (consent)
    ref_id = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    #: the stay's holdout arm (enter/exit/retract); ``NULL`` for consent changes and for
    #: membership changes written before arms existed (those were all treatment)
    arm = models.CharField(max_length=10, choices=ChangeArm.choices, null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["subject_id"], name="feed_change_subject"),
            models.Index(fields=["occurred_at"], name="feed_change_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.segment_key or self.purpose} ({self.occurred_at:%Y-%m-%d %H:%M})"


class Subscription(GlobalModel):
    """A webhook receiving the feed. ``secret`` signs every request (HMAC-SHA256) and is shown
    once, when created or rotated; the admin shows only ``secret_hint``."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    #: change kinds to send (``ChangeKind`` values)
    event_types = models.JSONField(default=list)
    #: segment keys whose enters/exits/retracts are sent; empty = every segment
    segments = models.JSONField(default=list, blank=True)
    #: regions whose changes are sent; empty = every region
    regions = models.JSONField(default=list, blank=True)
    #: why the recipient receives the data (shown to people in their access report, Art. 15(1)(c))
    purpose = models.CharField(max_length=300, blank=True)
    #: the holdout arm whose membership changes are sent: ``treatment`` (default; activation),
    #: ``control`` or ``all`` (measurement tools). Consent changes go to every arm setting.
    arm = models.CharField(
        max_length=10, choices=SubscriptionArm.choices, default=SubscriptionArm.TREATMENT
    )
    secret = SealedTextField(editable=False)  # encrypted at rest
    secret_hint = models.CharField(max_length=12, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "webhook subscription"

    def __str__(self) -> str:
        return self.name


class DeliveryState(RegionalModel):
    """Where a subscription's delivery stands in this region: cursor, lease and retry state."""

    subscription_id = models.BigIntegerField(unique=True)
    cursor_id = models.BigIntegerField(default=0)
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    delivered = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"subscription {self.subscription_id} @ {self.cursor_id}"


class DeliveryReceipt(RegionalModel):
    """The response to one webhook request: status, time, attempt. Never the response body."""

    subscription_id = models.BigIntegerField()
    batch_id = models.UUIDField()
    first_change_id = models.BigIntegerField()
    last_change_id = models.BigIntegerField()
    count = models.PositiveIntegerField()
    attempt = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)
    duration_ms = models.PositiveIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["subscription_id", "sent_at"], name="feed_receipt_sub")]

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def __str__(self) -> str:
        return f"{self.status_code or self.error} x{self.count} (attempt {self.attempt})"
