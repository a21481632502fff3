"""Helpers for consent tests: API clients, audit codes, the consent-loss hook (subjects and
decisions come from ``tests.factories``)."""

from __future__ import annotations

import itertools

import pytest
from rest_framework.test import APIClient

from compliance.api.auth import token_hash
from compliance.audit.models import AuditEvent
from compliance.audit.services.append import Actor
from compliance.models import ApiClient

ACTOR = Actor.system("test")
_counter = itertools.count()


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
