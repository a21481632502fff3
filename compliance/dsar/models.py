"""Data subject requests: the request (regional), its directory row (global), legal holds,
restrictions, the destroyed-keys ledger, erasure steps and encrypted packages.

Change state only through ``compliance.dsar.services``: every transition is audited there.
"""

from __future__ import annotations

import uuid

from django.db import models

from compliance.errors import InternalError
from compliance.residency import GlobalModel, RegionalModel


class RequestType(models.TextChoices):
    ACCESS = "access", "Access"
    PORTABILITY = "portability", "Portability"
    ERASURE = "erasure", "Erasure"
    RESTRICTION = "restriction", "Restriction"
    OBJECTION = "objection", "Objection"


class Regulation(models.TextChoices):
    GDPR = "gdpr", "GDPR"
    UK_GDPR = "uk_gdpr", "UK GDPR"
    CCPA = "ccpa", "CCPA/CPRA"


class Status(models.TextChoices):
    RECEIVED = "received", "Received"
    VERIFYING = "verifying", "Verifying"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.REJECTED, Status.CANCELLED, Status.FAILED})


class PrivacyRequest(RegionalModel):
    """One data subject request, stored in the subject's region.

    Identifiers are kept only as blind indexes (``identifier_indexes``); the package job reads
    the decrypted values from the subject's ``Identity`` rows. ``subject_id`` is null when no
    data is held, and is cleared (with the blind indexes) when the subject is erased.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=16, choices=RequestType.choices)
    regulation = models.CharField(max_length=8, choices=Regulation.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    region = models.CharField(max_length=16)
    subject_id = models.UUIDField(null=True, blank=True, db_index=True)
    #: the subject's audit token while the request runs (cleared after erasure)
    subject_token = models.CharField(max_length=32, blank=True)
    #: [{"type": ..., "blind_index": ...}] - never plaintext
    identifier_indexes = models.JSONField(default=list)
    verification_method = models.CharField(max_length=32)
    jurisdiction = models.CharField(max_length=8, blank=True)
    callback_url = models.URLField(max_length=500, blank=True)
    #: the client's own reference for the request (its ticket id), set at opening; filterable
    external_reference = models.CharField(max_length=100, blank=True, db_index=True)
    #: ApiClient pk (global model: plain column, no foreign key); null when opened by staff
    client_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    #: objection only: purpose keys objected to
    purposes = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField()
    due_at = models.DateTimeField()
    extended = models.BooleanField(default=False)
    extension_reason = models.TextField(blank=True)
    approved_by = models.CharField(max_length=64, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    failure_reason = models.TextField(blank=True)
    result_counts = models.JSONField(default=dict, blank=True)
    #: erasure: the subjects reached (the person plus every subject merged into it)
    erasure_subjects = models.JSONField(default=list, blank=True)
    receipt = models.JSONField(null=True, blank=True)
    receipt_signature = models.CharField(max_length=128, blank=True)
    #: "", "due_soon" or "overdue" - set by the daily deadline job
    due_flag = models.CharField(max_length=10, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["status", "due_at"])]
        permissions = [("approve_privacyrequest", "Can approve, reject and extend requests")]

    def __str__(self) -> str:
        return f"{self.type} request {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class RequestDirectory(GlobalModel):
    """Control-side row: request id -> region, with the client's idempotency key."""

    request_id = models.UUIDField(primary_key=True)
    region = models.CharField(max_length=16)
    client_id = models.BigIntegerField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    #: keyed hash (HMAC) of the request body, to tell a retry from a different request
    body_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "request directory"
        constraints = [
            models.UniqueConstraint(
                fields=["client_id", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="dsar_directory_unique_idempotency",
            )
        ]

    def __str__(self) -> str:
        return f"{self.request_id} -> {self.region}"


class LegalHold(RegionalModel):
    """While active, erasure of the subject is refused with this reason."""

    subject_id = models.UUIDField(db_index=True)
    reason = models.TextField()
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"legal hold on {self.subject_id} ({'active' if self.active else 'released'})"


class Restriction(RegionalModel):
    """Restriction of processing: the subject left every segment and may not enter any."""

    subject_id = models.UUIDField(db_index=True)
    request_id = models.UUIDField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"restriction of {self.subject_id} ({'active' if self.active else 'lifted'})"


class AppendOnlyError(InternalError):
    """The destroyed-keys ledger is append-only."""


class DestroyedKey(RegionalModel):
    """Append-only ledger of destroyed subject keys; replayed after a backup restore."""

    subject_id = models.UUIDField(unique=True)
    destroyed_at = models.DateTimeField()
    request_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["destroyed_at"]

    def __str__(self) -> str:
        return f"key of {self.subject_id} destroyed {self.destroyed_at:%Y-%m-%d}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("the destroyed-keys ledger is append-only")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("the destroyed-keys ledger is append-only")


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"


class ErasureStep(RegionalModel):
    """One step of an erasure; ``rows`` grows with each committed batch (resume point)."""

    request_id = models.UUIDField()
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=8, choices=StepStatus.choices, default=StepStatus.PENDING)
    rows = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["request_id", "name"], name="dsar_step_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status}, {self.rows} rows)"


class Package(RegionalModel):
    """An access/portability zip, AES-GCM encrypted under a per-package key that is wrapped by
    the region key. Downloadable only through the API or admin until ``expires_at``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request_id = models.UUIDField(unique=True)
    subject_id = models.UUIDField(null=True, blank=True, db_index=True)
    ciphertext = models.BinaryField()
    wrapped_key = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"package of {self.request_id}"


class CallbackAttempt(RegionalModel):
    """One try to deliver a status callback: which event, which attempt, the answer's status
    code (``None``: no answer) and time. Never the response body, never the URL's secrets."""

    request_id = models.UUIDField(db_index=True)
    #: the callback's id: the same on every retry, so receivers can deduplicate
    event_id = models.UUIDField()
    attempt = models.PositiveIntegerField()
    #: the request status this callback announces
    status = models.CharField(max_length=20)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["sent_at", "id"]

    def __str__(self) -> str:
        return f"callback {self.event_id} attempt {self.attempt} ({self.status_code or self.error})"
