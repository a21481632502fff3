"""Helpers for consent tests: subjects, API clients, recording shortcuts."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest
from rest_framework.test import APIClient

from compliance.api.auth import token_hash
from compliance.audit.models import AuditEvent
from compliance.audit.services.append import Actor
from compliance.consent.services.record import consent_record
from compliance.models import ApiClient
from compliance.services.subjects import subject_resolve

ACTOR = Actor.system("test")
_counter = itertools.count()


def make_subject(jurisdiction: str = "FR", *, email: str | None = None):
    value = email or f"person{next(_counter)}-{jurisdiction.lower()}@example.org"
    return subject_resolve(
        identifier_type="email", value=value, jurisdiction=jurisdiction, actor=ACTOR
    )


def record(
    subject,
    purpose: str,
    decision: str,
    *,
    source: str = "web",
    jurisdiction: str | None = "FR",
    captured_at: datetime | None = None,
    **kwargs,
):
    return consent_record(
        subject=subject,
        purpose=purpose,
        decision=decision,
        source=source,
        actor=ACTOR,
        jurisdiction=jurisdiction,
        captured_at=captured_at,
        **kwargs,
    )


def audit_codes(alias: str) -> list[int]:
    return list(AuditEvent.objects.using(alias).order_by("seq").values_list("code", flat=True))


def api_client(*scopes: str, name: str | None = None) -> APIClient:
    token = f"ctk_test_{next(_counter)}"
    ApiClient.objects.create(
        name=name or f"client-{token}", token_hash=token_hash(token), scopes=list(scopes)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def hook_calls():
    """Record every ``consent_basis_lost`` call made during the test."""
    from compliance import hooks

    calls: list[dict] = []

    def handler(**kwargs):
        calls.append(kwargs)

    hooks.on_consent_basis_lost(handler)
    yield calls
    hooks._CONSENT_LOSS_HANDLERS.remove(handler)
