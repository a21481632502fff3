"""Core admin: regional pages read the chosen region's database; API clients audited."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.models import ApiClient
from compliance.roles import AUDITOR, PRIVACY_OFFICER
from tests.factories import StaffFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def test_subject_changelist_and_change_page_per_region(client):
    client.force_login(StaffFactory(username="po", group=PRIVACY_OFFICER))
    eu = SubjectFactory(email="e@example.fr", jurisdiction="FR")
    us = SubjectFactory(email="u@example.com", jurisdiction="US-CA")
    page = client.get("/admin/compliance/subject/?region=eu").content.decode()
    assert str(eu.pk) in page and str(us.pk) not in page
    page = client.get("/admin/compliance/subject/?region=us").content.decode()
    assert str(us.pk) in page and str(eu.pk) not in page
    change = client.get(
        f"/admin/compliance/subject/{eu.pk}/change/?_changelist_filters={quote('region=eu')}"
    )
    assert change.status_code == 200 and str(eu.pk) in change.content.decode()
    assert "e@example.fr" not in change.content.decode()


def test_auditor_cannot_add_api_client_and_officer_creation_is_audited(client):
    client.force_login(StaffFactory(username="aud", group=AUDITOR))
    assert client.get("/admin/compliance/apiclient/add/").status_code == 403
    client.force_login(StaffFactory(username="po", group=PRIVACY_OFFICER))
    response = client.post(
        "/admin/compliance/apiclient/add/",
        {"name": "crm", "scopes": '["consent:write"]', "is_active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    assert "shown once" in response.content.decode()
    assert ApiClient.objects.get(name="crm").scopes == ["consent:write"]
    event = AuditEvent.objects.using("default").get(code=AuditCode.API_CLIENT_CHANGED)
    assert event.payload == {"created": True, "scopes": ["consent:write"], "active": True}
    bad = client.post(
        "/admin/compliance/apiclient/add/", {"name": "x", "scopes": '["root"]', "is_active": "on"}
    )
    assert bad.status_code == 200 and "Unknown scopes: root" in bad.content.decode()
    assert not ApiClient.objects.filter(name="x").exists()
