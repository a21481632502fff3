"""Secrets kept by the toolkit (API clients' callback secrets, webhook secrets) are encrypted
at rest: the database holds only sealed text, the code sees the plaintext."""

from __future__ import annotations

import pytest
from django.db import connections

from compliance import crypto
from compliance.audit.services.append import Actor
from compliance.fields import PREFIX, seal, unseal
from compliance.models import ApiClient

pytestmark = pytest.mark.django_db(databases="__all__")


def raw(table: str, column: str, pk) -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_api_client_callback_secret_is_sealed_in_the_database():
    client = ApiClient.objects.create(
        name="c", token_prefix="p", token_hash="h" * 64, scopes=[], callback_secret="s3cret-value"
    )
    stored = raw("compliance_apiclient", "callback_secret", client.pk)
    assert stored.startswith(PREFIX) and "s3cret-value" not in stored
    assert ApiClient.objects.get(pk=client.pk).callback_secret == "s3cret-value"


def test_webhook_secret_is_sealed_and_still_signs():
    from compliance.feed.services.subscriptions import subscription_create

    subscription, secret = subscription_create(
        name="crm",
        url="http://127.0.0.1:9/hook",
        event_types=["retract"],
        actor=Actor.system("test"),
    )
    stored = raw(subscription._meta.db_table, "secret", subscription.pk)
    assert stored.startswith(PREFIX) and secret not in stored
    assert type(subscription).objects.get(pk=subscription.pk).secret == secret


def test_sealed_values_are_bound_to_their_column_and_legacy_values_pass():
    sealed = seal(plaintext="x", aad="compliance.ApiClient.callback_secret")
    assert unseal(stored=sealed, aad="compliance.ApiClient.callback_secret") == "x"
    with pytest.raises(crypto.DecryptionError):
        unseal(stored=sealed, aad="feed.Subscription.secret")
    assert unseal(stored="plain-legacy", aad="any") == "plain-legacy"
