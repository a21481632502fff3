"""What the officer pages show: the queue across regions, the request page, the audited
subject lookup, the segment review queue, the dashboard, and no resource from another host."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.consent.models import NoticeVersion
from compliance.dsar.models import PrivacyRequest
from compliance.officer.selectors import queue_requests
from segments.models import Segment
from segments.services.memberships import memberships_apply
from tests.admin.helpers import PASSWORD, ROLE_USERS, external_urls
from tests.factories import (
    ACTOR,
    ConsentFactory,
    PrivacyRequestFactory,
    SegmentFactory,
    StaffFactory,
    SubjectFactory,
)

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def officer(client):
    user = StaffFactory(username="po", group=ROLE_USERS["officer"], password=PASSWORD)
    client.force_login(user)
    return user


def test_front_page_is_the_queue_for_officers_only(client, officer):
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"] == "/admin/officer/queue/"
    assert "Site administration" in client.get("/admin/?apps=1").content.decode()
    client.force_login(StaffFactory(username="aud", group=ROLE_USERS["auditor"], password=PASSWORD))
    page = client.get("/admin/")
    assert page.status_code == 200 and "Site administration" in page.content.decode()


def test_queue_reads_every_region_sorted_by_due_date_with_badges(client, officer):
    late = PrivacyRequestFactory(email="late@example.fr", overdue=True)
    us = PrivacyRequestFactory(email="us@example.com", jurisdiction="US-CA", regulation="ccpa")
    soon = PrivacyRequestFactory(email="soon@example.fr")
    PrivacyRequest.objects.using("eu").filter(pk=soon.pk).update(
        due_at=timezone.now() + timedelta(days=3)
    )
    assert {late.region, us.region} == {"eu", "us"}
    rows = queue_requests()
    assert [r.pk for r in rows] == [late.pk, soon.pk, us.pk]
    assert [r.badge for r in rows] == ["overdue", "due_soon", ""]
    page = client.get("/admin/officer/queue/").content.decode()
    assert page.index(str(late.pk)) < page.index(str(soon.pk)) < page.index(str(us.pk))
    assert "1 overdue" in page and "1 due within 7 days" in page
    only_us = client.get("/admin/officer/queue/?region=us").content.decode()
    assert str(us.pk) in only_us and str(late.pk) not in only_us
    assert str(late.pk) not in client.get("/admin/officer/queue/?type=access").content.decode()
    bogus = client.get("/admin/officer/queue/?status=nope&regulation=gdpr").content.decode()
    assert str(late.pk) in bogus and str(us.pk) not in bogus
    assert external_urls(page) == []


def test_request_page_shows_the_dry_run_and_approval_is_audited(client, officer):
    r = PrivacyRequestFactory(email="dry@example.fr")
    page = client.get(f"/admin/officer/requests/{r.pk}/").content.decode()
    assert "Erasure dry run" in page and "Identities" in page
    assert 'id="approve-button"' in page
    # an erasure is approved only through the confirmation step: the plain POST leads there
    response = client.post(f"/admin/officer/requests/{r.pk}/approve/")
    confirm = f"/admin/officer/requests/{r.pk}/approve/confirm/"
    assert response.status_code == 302 and response["Location"] == confirm
    assert PrivacyRequest.objects.using("eu").get(pk=r.pk).status == "awaiting_approval"
    reference = str(r.pk).replace("-", "")[:8].upper()
    response = client.post(confirm, {"reference": reference}, follow=True)
    assert "approved" in response.content.decode()
    assert PrivacyRequest.objects.using("eu").get(pk=r.pk).status == "processing"
    event = AuditEvent.objects.using("eu").filter(object_id=str(r.pk)).order_by("-seq").first()
    assert event.code == AuditCode.REQUEST_STATUS_CHANGED and event.actor_id == str(officer.pk)
    assert event.payload["to"] == "processing"


def test_reject_needs_a_reason_and_service_errors_are_messages(client, officer):
    r = PrivacyRequestFactory(email="why@example.fr")
    page = client.post(f"/admin/officer/requests/{r.pk}/reject/", {"reason": " "}, follow=True)
    assert "A reason is needed" in page.content.decode()
    assert PrivacyRequest.objects.using("eu").get(pk=r.pk).status == "awaiting_approval"
    client.post(f"/admin/officer/requests/{r.pk}/extend/", {"reason": "complex"})
    again = client.post(f"/admin/officer/requests/{r.pk}/extend/", {"reason": "x"}, follow=True)
    assert again.status_code == 200 and "already extended" in again.content.decode()
    extended = PrivacyRequest.objects.using("eu").get(pk=r.pk)
    assert extended.extended and extended.extension_reason == "complex"
    assert (
        client.get("/admin/officer/requests/00000000-0000-0000-0000-000000000000/").status_code
        == 404
    )


def test_subject_lookup_shows_the_person_and_audits_the_view(client, officer):
    subject = SubjectFactory(email="lookup@example.fr")
    notice = NoticeVersion.objects.create(
        purposes=["measurement"], text="We measure visits to improve the site.", locale="en"
    )
    ConsentFactory(subject=subject, purpose="measurement", source="web")
    from compliance.consent.services.record import consent_record

    consent_record(
        subject=subject,
        purpose="measurement",
        decision="withdrawn",
        source="ios_app",
        actor=ACTOR,
        jurisdiction="FR",
        notice_version_id=notice.pk,
    )
    author = StaffFactory(username="author", group=ROLE_USERS["officer"], password=PASSWORD)
    seg = SegmentFactory(user=author, key="m-seg", status="active", layers=["firmographic"])
    ConsentFactory(subject=subject, purpose="audience_segmentation")
    applied = memberships_apply(segment=seg, enters=[subject.pk], exits=[], actor=ACTOR)
    assert not applied.refused
    before = AuditEvent.objects.using("eu").count()
    page = client.post(
        "/admin/officer/subjects/", {"identifier_type": "email", "value": " Lookup@Example.fr "}
    ).content.decode()
    assert "lookup@example.fr" in page  # decrypted identifier
    assert "ios_app" in page and "withdrawn" in page and "We measure visits" in page
    assert "m-seg" in page
    viewed = AuditEvent.objects.using("eu").order_by("-seq").first()
    assert AuditEvent.objects.using("eu").count() == before + 1
    assert viewed.code == AuditCode.PERSONAL_DATA_VIEWED
    assert viewed.subject_token == subject.audit_token and viewed.actor_id == str(officer.pk)
    assert viewed.payload == {
        "view": "subject_lookup",
        "shown": ["identifiers", "consent", "memberships", "requests"],
    }
    assert "example" not in str(viewed.payload) and viewed.object_id == ""
    missing = client.post(
        "/admin/officer/subjects/", {"identifier_type": "email", "value": "nobody@example.fr"}
    ).content.decode()
    assert "Nobody holds this identifier" in missing
    assert AuditEvent.objects.using("eu").count() == before + 1
    bad = client.post("/admin/officer/subjects/", {"identifier_type": "email", "value": "nope"})
    assert bad.status_code == 200 and "errornote" in bad.content.decode()


def test_segment_review_lists_overdue_and_ai_suggestions_and_shows_refusals(client, officer):
    author = StaffFactory(username="author", group=ROLE_USERS["officer"], password=PASSWORD)
    stale = SegmentFactory(user=author, key="stale", status="active")
    Segment.objects.filter(pk=stale.pk).update(
        last_reviewed_at=timezone.now() - timedelta(days=200)
    )
    suggestion = SegmentFactory(user=officer, status="draft", key="ai-idea", origin="ai_suggested")
    page = client.get("/admin/officer/segments/").content.decode()
    assert "stale" in page and "ai-idea" in page
    refused = client.post(f"/admin/officer/segments/{suggestion.key}/approve/", follow=True)
    assert refused.status_code == 200
    assert "someone other than its proposer" in refused.content.decode()
    assert Segment.objects.get(key="ai-idea").status == "draft"
    client.post("/admin/officer/segments/stale/review/")
    assert (
        "stale"
        not in client.get("/admin/officer/segments/")
        .content.decode()
        .split('id="ai-suggested"')[0]
        .split('id="review-overdue"')[1]
    )


def test_dashboard_charts_chains_and_evidence_links(client, officer):
    PrivacyRequestFactory(email="dash@example.fr")
    ConsentFactory(
        subject=SubjectFactory(email="c@example.fr"), purpose="measurement", source="crm"
    )
    page = client.get("/admin/officer/dashboard/").content.decode()
    assert page.count("<svg") >= 5 and "crm" in page
    assert "Audit chains" in page and "whole" in page
    assert "/admin/audit/auditevent/report/?from=" in page
    assert "/admin/audit/auditevent/export/?from=" in page and "download=1" in page
    assert external_urls(page) == []
    client.force_login(StaffFactory(username="sa", group=ROLE_USERS["support"], password=PASSWORD))
    support_page = client.get("/admin/officer/dashboard/").content.decode()
    assert "evidence-bundle" not in support_page and "Audit chains" in support_page


@pytest.mark.parametrize(
    "url",
    [
        "/admin/officer/queue/",
        "/admin/officer/subjects/",
        "/admin/officer/segments/",
        "/admin/officer/dashboard/",
        "/admin/?apps=1",
        "/admin/dsar/privacyrequest/",
    ],
)
def test_no_page_loads_anything_from_another_host(client, officer, url):
    response = client.get(url)
    assert response.status_code == 200
    assert external_urls(response.content.decode()) == []
