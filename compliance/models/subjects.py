"""Subjects and their identifiers (regional). Nothing here is readable without the subject key."""

from __future__ import annotations

import secrets
import uuid

from django.db import models

from compliance.residency import RegionalModel


def _new_token() -> str:
    return secrets.token_hex(16)


class IdentifierType(models.TextChoices):
    EMAIL = "email", "E-mail"
    USER_ID = "user_id", "User id"
    ANONYMOUS_ID = "anonymous_id", "Anonymous id"
    CRM_ID = "crm_id", "CRM id"
    DEVICE_ID = "device_id", "Device id"
    PHONE = "phone", "Phone"


class Subject(RegionalModel):
    """A person, known only by a random id. ``audit_token`` is what audit rows name."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    region = models.CharField(max_length=16)
    audit_token = models.CharField(max_length=32, unique=True, default=_new_token, editable=False)
    #: set when this subject was merged into another (stitching); the survivor holds the data
    merged_into = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        # "who was merged into X" (consent follow-through, erasure, re-merges); few rows
        indexes = [
            models.Index(
                fields=["merged_into"],
                condition=models.Q(merged_into__isnull=False),
                name="subject_merged_into",
            )
        ]

    def __str__(self) -> str:
        return f"subject {self.id} ({self.region})"


class SubjectKey(RegionalModel):
    """The subject's data key wrapped by the region key. Deleting it crypto-shreds the subject."""

    subject = models.OneToOneField(
        Subject, on_delete=models.CASCADE, primary_key=True, related_name="key"
    )
    wrapped_key = models.BinaryField()
    key_version = models.CharField(max_length=8, default="v1")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"data key of {self.subject_id}"


class Identity(RegionalModel):
    """One identifier of a subject: encrypted value plus blind index for lookup."""

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="identities")
    identifier_type = models.CharField(max_length=16, choices=IdentifierType.choices)
    blind_index = models.CharField(max_length=64, unique=True)
    value_encrypted = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        indexes = [models.Index(fields=["subject", "identifier_type"])]

    def __str__(self) -> str:
        return f"{self.identifier_type} of {self.subject_id}"


class Suppression(RegionalModel):
    """Blind index of an erased identifier: re-ingestion of that person is refused."""

    blind_index = models.CharField(max_length=64, unique=True)
    identifier_type = models.CharField(max_length=16, choices=IdentifierType.choices)
    reason = models.CharField(max_length=32, default="erasure")
    request_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"suppressed {self.identifier_type} ({self.reason})"
