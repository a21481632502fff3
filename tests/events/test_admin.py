"""Rejection counters are visible in the admin, one region at a time."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.events.conftest import api_client, event, new_email, post
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def test_rejection_counts_listed_per_region():
    email = new_email()
    SubjectFactory(jurisdiction="FR", email=email)
    post(api_client("events:write"), [event(email, source="crm")])
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw-12345678")
    browser = Client()
    browser.force_login(admin)

    eu = browser.get("/admin/events/rejectioncount/?region=eu")
    us = browser.get("/admin/events/rejectioncount/?region=us")

    assert eu.status_code == 200 and us.status_code == 200
    assert "no_record" in eu.content.decode() and "crm" in eu.content.decode()
    assert "no_record" not in us.content.decode()
