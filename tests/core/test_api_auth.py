"""Bearer-token authentication: one indexed query per request, no decryption, revocation at
once (issue 19: the cost of one API request)."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.test import APIRequestFactory

from compliance.api.auth import ApiTokenAuthentication, token_generate, token_hash
from compliance.models import ApiClient

pytestmark = pytest.mark.django_db(databases="__all__")


def _client(**fields) -> tuple[ApiClient, str]:
    token = token_generate()
    client = ApiClient.objects.create(
        name=f"auth-{token[-6:]}",
        token_prefix=token[:12],
        token_hash=token_hash(token),
        scopes=["requests:read"],
        callback_secret="s" * 64,
        last_used_at=timezone.now(),  # fresh: the request writes nothing
        **fields,
    )
    return client, token


def _authenticate(token: str):
    request = APIRequestFactory().get("/api/v1/requests/", HTTP_AUTHORIZATION=f"Bearer {token}")
    return ApiTokenAuthentication().authenticate(request)


def test_one_indexed_query_without_ordering_or_the_sealed_secret():
    client, token = _client()
    with CaptureQueriesContext(connections["default"]) as queries:
        user, found = _authenticate(token)
    assert found.pk == client.pk and user is None
    [query] = queries.captured_queries
    sql = query["sql"]
    assert "ORDER BY" not in sql and "callback_secret" not in sql
    assert '"token_hash" =' in sql
    for alias in ("eu", "us"):  # nothing asked of the regions
        with CaptureQueriesContext(connections[alias]) as regional:
            _authenticate(token)
        assert regional.captured_queries == []


def test_the_secret_is_still_there_for_whoever_needs_it():
    client, token = _client()
    _, found = _authenticate(token)
    assert found.callback_secret == "s" * 64  # loaded on access (callbacks load their own)


def test_revocation_takes_effect_at_the_next_request():
    client, token = _client()
    assert _authenticate(token)[1].pk == client.pk
    ApiClient.objects.filter(pk=client.pk).update(is_active=False)
    with pytest.raises(exceptions.AuthenticationFailed, match="Unknown or revoked"):
        _authenticate(token)
    with pytest.raises(exceptions.AuthenticationFailed, match="Unknown or revoked"):
        _authenticate("ctk_not-a-token")
