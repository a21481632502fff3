"""Consent models: global configuration (purposes, sources, notices) and the regional ledger.

* ``Purpose``, ``EventSource``, ``NoticeVersion`` are GLOBAL (control database, no personal data).
* ``ConsentEvent`` is REGIONAL and append-only (PostgreSQL: the runtime role has no UPDATE or
  DELETE, and triggers refuse them but for the erasure and retention guard functions of
  ``compliance.db_guards``).
* ``ConsentState`` is REGIONAL: a projection rebuilt only from events by
  ``compliance.consent.services.projection``; never edit it by hand.
"""

from __future__ import annotations

import hashlib

from django.db import models

from compliance.residency import GlobalModel, RegionalModel


class LawfulBasis(models.TextChoices):
    """GDPR Art. 6(1)(a)-(f), plus the US state-law opt-out model."""

    CONSENT = "consent", "(a) consent"
    CONTRACT = "contract", "(b) contract"
    LEGAL_OBLIGATION = "legal_obligation", "(c) legal obligation"
    VITAL_INTERESTS = "vital_interests", "(d) vital interests"
    PUBLIC_TASK = "public_task", "(e) public task"
    LEGITIMATE_INTERESTS = "legitimate_interests", "(f) legitimate interests"
    US_OPT_OUT = "us_opt_out", "US opt-out (allowed unless opted out)"


class Decision(models.TextChoices):
    GRANTED = "granted", "granted"
    DENIED = "denied", "denied"
    WITHDRAWN = "withdrawn", "withdrawn"
    OBJECTED = "objected", "objected"
    OPTED_OUT = "opted_out", "opted out"
    EXPIRED = "expired", "expired"
    #: a signal that decoded but failed validation: recorded as evidence, never as a grant
    INVALID_SIGNAL = "invalid_signal", "invalid signal"


NEGATIVE_DECISIONS = frozenset(
    {
        Decision.DENIED,
        Decision.WITHDRAWN,
        Decision.OBJECTED,
        Decision.OPTED_OUT,
        Decision.EXPIRED,
        Decision.INVALID_SIGNAL,
    }
)


class Method(models.TextChoices):
    UI = "ui", "user interface"
    API = "api", "API"
    IMPORT = "import", "import"
    TCF_STRING = "tcf_string", "TCF string"
    GPC_HEADER = "gpc_header", "Sec-GPC header"
    EXPIRY = "expiry", "expiry job"
    MERGE = "merge", "subject merge"


class Scope(models.TextChoices):
    GLOBAL = "global", "applies everywhere"
    SOURCE = "source", "applies only to its source"


CONSENT_MODE_TYPES = (
    "ad_storage",
    "ad_user_data",
    "ad_personalization",
    "analytics_storage",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
)


class Purpose(GlobalModel):
    """Why data is processed. ``consent_required_in`` lists jurisdictions (``FR``, ``GB``,
    ``US-CA``, or ``*`` for everywhere) where only consent can be the basis."""

    key = models.SlugField(max_length=64, unique=True)
    version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    lawful_bases = models.JSONField(default=list, help_text="allowed LawfulBasis values")
    consent_required_in = models.JSONField(default=list, blank=True)
    default_expiry_days = models.PositiveIntegerField(null=True, blank=True)
    tcf_purposes = models.JSONField(default=list, blank=True)
    tcf_special_features = models.JSONField(default=list, blank=True)
    consent_mode_types = models.JSONField(default=list, blank=True)
    gpc_effect = models.BooleanField(default=False, help_text="Sec-GPC: 1 opts out of it")
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"


class EventSource(GlobalModel):
    """A collecting system. ``consent_scope`` says whether its decisions apply everywhere."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    channel = models.CharField(max_length=32)
    consent_scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.GLOBAL)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class NoticeVersion(GlobalModel):
    """The exact notice text shown when consent was asked; ``sha256`` is computed on save."""

    purposes = models.JSONField(default=list, help_text="purpose keys this notice covers")
    locale = models.CharField(max_length=16, default="en")
    text = models.TextField()
    sha256 = models.CharField(max_length=64, editable=False)
    published_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-published_at", "-id"]

    def save(self, *args, **kwargs):
        self.sha256 = hashlib.sha256(self.text.encode()).hexdigest()
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"notice {self.pk} ({self.locale}, {self.sha256[:12]})"


class ConsentEvent(RegionalModel):
    """One decision or signal, append-only. ``source``/``purpose`` hold global keys."""

    subject_id = models.UUIDField()
    purpose = models.CharField(max_length=64)
    purpose_version = models.PositiveIntegerField()
    source = models.CharField(max_length=64)
    scope = models.CharField(max_length=8, choices=Scope.choices)
    jurisdiction = models.CharField(max_length=16, blank=True)
    lawful_basis = models.CharField(max_length=32, choices=LawfulBasis.choices)
    decision = models.CharField(max_length=16, choices=Decision.choices)
    method = models.CharField(max_length=16, choices=Method.choices)
    captured_at = models.DateTimeField()
    received_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    notice_version_id = models.BigIntegerField(null=True, blank=True)
    collection_point = models.CharField(max_length=200, blank=True)
    actor_type = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=64, blank=True)
    raw_signal = models.TextField(blank=True)
    decoder_version = models.CharField(max_length=32, blank=True)
    #: for method "merge": the id of the copied event of the merged subject
    copied_from = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subject_id", "purpose", "captured_at"])]

    def __str__(self) -> str:
        return f"{self.purpose} {self.decision} ({self.source}, {self.captured_at:%Y-%m-%d})"


class ConsentState(RegionalModel):
    """Latest event per subject, purpose and scope (``source`` is ``""`` for global scope)."""

    subject_id = models.UUIDField()
    purpose = models.CharField(max_length=64)
    source = models.CharField(max_length=64, blank=True)
    decision = models.CharField(max_length=16, choices=Decision.choices)
    lawful_basis = models.CharField(max_length=32, choices=LawfulBasis.choices)
    jurisdiction = models.CharField(max_length=16, blank=True)
    event_id = models.BigIntegerField()
    captured_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject_id", "purpose", "source"], name="consent_state_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.purpose}/{self.source or '*'}: {self.decision}"
