"""Evidence report (from audit entries only) and the read-only admin browser."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.audit.services.append import AuditEntry, audit_append
from compliance.roles import AUDITOR, PRIVACY_OFFICER, SUPPORT_AGENT, roles_sync
from tests.audit.helpers import ACTOR, append

pytestmark = pytest.mark.django_db(databases="__all__")


def seed_conventions() -> None:
    """Entries following the shared payload conventions of consent, DSAR and segments."""
    consent = [
        ("web", "granted"),
        ("web", "granted"),
        ("web", "withdrawn"),
        ("crm", "denied"),
    ]
    audit_append(
        using="eu",
        entries=[
            AuditEntry(
                code=AuditCode.CONSENT_RECORDED,
                actor=ACTOR,
                object_type="consent_event",
                object_id=str(i),
                payload={
                    "purpose": "storage",
                    "source": src,
                    "decision": d,
                    "method": "api",
                    "jurisdiction": "FR",
                },
            )
            for i, (src, d) in enumerate(consent)
        ],
    )
    dsar = [
        (AuditCode.REQUEST_OPENED, {"request_type": "access", "regulation": "gdpr"}),
        (AuditCode.REQUEST_OPENED, {"request_type": "access", "regulation": "gdpr"}),
        (AuditCode.REQUEST_OPENED, {"request_type": "erasure", "regulation": "gdpr"}),
        (
            AuditCode.REQUEST_STATUS_CHANGED,
            {
                "request_type": "access",
                "from": "processing",
                "to": "completed",
                "on_time": True,
                "due_at": "2026-01-01T00:00:00Z",
            },
        ),
        (
            AuditCode.REQUEST_STATUS_CHANGED,
            {
                "request_type": "access",
                "from": "processing",
                "to": "completed",
                "on_time": False,
                "due_at": "2026-01-01T00:00:00Z",
            },
        ),
    ]
    audit_append(
        using="us",
        entries=[
            AuditEntry(
                code=c, actor=ACTOR, object_type="privacy_request", object_id=str(i), payload=p
            )
            for i, (c, p) in enumerate(dsar)
        ],
    )
    audit_append(
        using="default",
        entries=[
            AuditEntry(
                code=AuditCode.SEGMENT_STATUS_CHANGED,
                actor=ACTOR,
                object_type="segment",
                object_id="b2b",
                payload={"from": "draft", "to": "approved", "fields": ["status"]},
            ),
            AuditEntry(
                code=AuditCode.SEGMENT_REVIEWED,
                actor=ACTOR,
                object_type="segment",
                object_id="b2b",
                payload={"fields": ["last_reviewed"]},
            ),
        ],
    )


def staff(username: str, group: str | None = None, superuser: bool = False) -> Client:
    roles_sync()
    user = User.objects.create_user(username, password="pw", is_staff=True, is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


def test_report_is_computed_from_the_chains():
    from datetime import UTC, datetime

    from compliance.audit.selectors.evidence import evidence_stats, report_render
    from compliance.audit.selectors.status import chain_status

    seed_conventions()
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    stats = evidence_stats(aliases=["default", "eu", "us"], start=start, end=end)
    context = stats.context()
    assert context["consent_decisions"] == ["denied", "granted", "withdrawn"]
    web = next(r for r in context["consent_rows"] if r["source"] == "web")
    assert web["cells"] == [0, 2, 1] and web["total"] == 3
    access = next(r for r in context["dsar_rows"] if r["type"] == "access")
    assert (access["opened"], access["closed"], access["on_time"], access["rate"]) == (
        2,
        2,
        1,
        "50%",
    )
    assert context["dsar_on_time_rate"] == "50%"
    assert context["segments_reviewed"] == 1
    assert context["segment_transitions"] == [{"from": "draft", "to": "approved", "count": 1}]
    html = report_render(
        stats=stats,
        start=start,
        end=end,
        chains=[chain_status(using=a) for a in ("default", "eu", "us")],
    )
    assert "<svg" in html
    for external in ("<script", "<link", "src=", "href=", "url("):
        assert external not in html  # self-contained: no CDN, nothing fetched
    for control in ("A.5.34", "A.8.15", "CC7.2", "P5.1", "DSP-", "AU-9", "AU-10"):
        assert control in html


def test_admin_is_read_only_for_everyone_including_superusers():
    from django.contrib import admin as django_admin

    from compliance.audit.admin import AuditEventAdmin

    append("eu", 2)
    client = staff("root", superuser=True)
    model_admin = AuditEventAdmin(AuditEvent, django_admin.site)
    request = type("R", (), {"user": User.objects.get(username="root")})()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    event = AuditEvent.objects.using("eu").get(seq=1)
    url = f"/admin/audit/auditevent/{event.pk}/change/?_changelist_filters=db%3Deu"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # view only
    assert client.post(url, {"code": 999}).status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert (
        client.post(
            f"/admin/audit/auditevent/{event.pk}/delete/?_changelist_filters=db%3Deu",
            {"post": "yes"},
        ).status_code
        == 403
    )
    assert AuditEvent.objects.using("eu").count() == 2


def test_admin_browses_any_chain_with_filters_and_status():
    append("eu", 3)
    audit_append(
        using="eu",
        entries=[AuditEntry(code=AuditCode.SUBJECT_ERASED, actor=ACTOR, subject_token="needle")],
    )
    append("us", 1)
    client = staff("auditor", AUDITOR)
    page = client.get("/admin/audit/auditevent/?db=eu")
    assert page.status_code == 200
    text = page.content.decode()
    assert ">Chain eu</h2>" in text and "Entries: <strong>4</strong>" in text
    assert "whole" in text and "Evidence report" in text
    assert page.context["cl"].result_count == 4
    page = client.get("/admin/audit/auditevent/?db=eu&code=703")
    assert [e.seq for e in page.context["cl"].result_list] == [4]
    page = client.get("/admin/audit/auditevent/?db=eu&q=needle")
    assert [e.subject_token for e in page.context["cl"].result_list] == ["needle"]
    page = client.get("/admin/audit/auditevent/?db=eu&actor_type=user")
    assert page.context["cl"].result_count == 0
    page = client.get("/admin/audit/auditevent/?db=us")
    assert page.context["cl"].result_count == 1
    page = client.get(
        "/admin/audit/auditevent/?db=eu&occurred_at__gte=2000-01-01+00%3A00%3A00%2B00%3A00"
    )
    assert page.context["cl"].result_count == 4


def test_report_and_bundle_need_the_export_permission_and_are_audited():
    seed_conventions()
    support = staff("support", SUPPORT_AGENT)
    assert support.get("/admin/audit/auditevent/report/").status_code == 403
    assert support.get("/admin/audit/auditevent/export/?download=1").status_code == 403
    officer = staff("officer", PRIVACY_OFFICER)
    page = officer.get("/admin/audit/auditevent/report/?from=2000-01-01&to=2100-01-01")
    assert page.status_code == 200
    assert "Consent decisions by source" in page.content.decode()
    viewed = AuditEvent.objects.using("default").get(code=AuditCode.EVIDENCE_REPORT_VIEWED)
    assert viewed.actor_type == "user"
    assert viewed.actor_id == str(User.objects.get(username="officer").pk)
    assert viewed.payload == {
        "from": "2000-01-01T00:00:00.000000Z",
        "to": "2100-01-02T00:00:00.000000Z",
    }
    response = officer.get(
        "/admin/audit/auditevent/export/?download=1&from=2000-01-01&to=2100-01-01&db=us"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert "manifest.sig" in archive.namelist()
        assert "access" in archive.read("report.html").decode()
    exported = AuditEvent.objects.using("default").get(code=AuditCode.AUDIT_EXPORTED)
    assert exported.payload["chains"] == {"us": [1, 6]}
    bad = officer.get("/admin/audit/auditevent/report/?from=nope&to=2100-01-01")
    assert "from: not a date" in bad.content.decode()
