"""API clients: hashed bearer tokens with scopes, optionally acting as a staff user."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from compliance.fields import SealedTextField
from compliance.residency import GlobalModel


class ApiClient(GlobalModel):
    """A support tool or collecting system. Only the token's SHA-256 is stored."""

    name = models.CharField(max_length=100, unique=True)
    token_prefix = models.CharField(max_length=12, db_index=True, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    #: a token tied to a staff user acts as that person (approvals need a privacy officer)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    #: secret for signing status callbacks and webhooks to this client (HMAC-SHA256)
    callback_secret = SealedTextField(editable=False, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API client"

    def __str__(self) -> str:
        return self.name

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
