"""The landing page at ``/`` and ``/health/``: each database and the configured broker."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db(databases="__all__")


def test_health_lists_every_database_and_the_broker_up():
    response = Client().get("/health/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True
    parts = {p["name"]: p for p in body["parts"]}
    assert set(parts) == {*settings.DATABASES, "broker"}
    assert all(p["ok"] for p in parts.values())
    assert set(parts["broker"]["extra"]["waiting"]) == {
        "compliance.control",
        *(f"compliance.{r}" for r in settings.COMPLIANCE_REGIONS),
    }
    assert "://" not in response.content.decode()  # no URLs, hosts or credentials


def test_health_says_503_when_the_broker_does_not_answer(monkeypatch):
    from compliance.selectors import health

    def down():
        return health.Part("broker", "redis", False, "not reachable: OperationalError")

    monkeypatch.setattr(health, "broker_health", down)
    response = Client().get("/health/")
    assert response.status_code == 503 and response.json()["ok"] is False


def test_landing_page_links_and_health_table():
    page = Client().get("/").content.decode()
    for href in ('href="/admin/"', 'href="/api/docs/"', 'href="/api/schema/"', 'href="/health/"'):
        assert href in page
    assert page.count('data-ok="true"') == len(settings.DATABASES) + 1
