"""The request desk in the admin: intake through ``request_open``, the request page (masked
identifiers, filed by, assignee, timeline with usernames, notes, dry run in words, steps that
match the progress), the confirmation step of an erasure and the certificate."""

from __future__ import annotations

import pytest
from django.test import Client

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.dsar.models import PrivacyRequest, RequestDirectory
from compliance.dsar.services.erasure import request_erase_run
from compliance.dsar.services.report import short_reference
from compliance.officer.desk import mask
from compliance.officer.models import RequestNote
from compliance.roles import roles_sync
from tests.admin.helpers import PASSWORD, ROLE_USERS
from tests.factories import (
    ConsentFactory,
    PrivacyRequestFactory,
    SegmentFactory,
    StaffFactory,
    SubjectFactory,
)

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def users():
    roles_sync()
    return {
        role: StaffFactory(username=name, group=ROLE_USERS[role], password=PASSWORD)
        for role, name in (("officer", "olga"), ("support", "sven"), ("auditor", "aldo"))
    }


def login(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def _intake(client: Client, **extra):
    body = {
        "type": "access",
        "regulation": "gdpr",
        "identifier_type_1": "email",
        "identifier_value_1": "walk-in@example.fr",
        "verification_method": "id_document",
        "jurisdiction": "fr",
        "notes": "Called the hotline; ID checked by Sven.",
        "intake_token": "tok-1",
        **extra,
    }
    return client.post("/admin/officer/requests/new/", body)


def test_support_agent_opens_a_request_through_the_service_idempotently(users):
    SubjectFactory(email="walk-in@example.fr")
    client = login("sven")
    form = client.get("/admin/officer/requests/new/")
    assert form.status_code == 200 and 'name="intake_token"' in form.content.decode()
    response = _intake(client)
    assert response.status_code == 302
    (opened,) = PrivacyRequest.objects.using("eu").all()
    assert response["Location"] == f"/admin/officer/requests/{opened.pk}/"
    assert opened.jurisdiction == "FR" and opened.verification_method == "id_document"
    assert opened.client_id is None and opened.subject_id is not None
    # the same form submitted twice opens one request (the form's token is the key)
    again = _intake(client)
    assert again["Location"] == response["Location"]
    assert PrivacyRequest.objects.using("eu").count() == 1
    assert RequestDirectory.objects.get(request_id=opened.pk).idempotency_key.startswith("admin:")
    opened_event = AuditEvent.objects.using("eu").get(
        code=AuditCode.REQUEST_OPENED, object_id=str(opened.pk)
    )
    assert (opened_event.actor_type, opened_event.actor_id) == ("user", str(users["support"].pk))
    (note,) = RequestNote.objects.using("eu").filter(request_id=opened.pk)
    assert note.author_username == "sven" and "hotline" in note.text
    page = client.get(response["Location"]).content.decode()
    assert "sven (in the admin)" in page
    assert "w******@e******.fr" in page and "walk-in@example.fr" not in page
    assert "Called the hotline" in page


def test_intake_validation_is_the_services(users):
    client = login("olga")
    bad = _intake(client, identifier_value_1="not-an-email", intake_token="tok-2")
    assert (
        bad.status_code == 200
        and "errornote" in bad.content.decode()
        or "errorlist" in (bad.content.decode())
    )
    objection = _intake(client, type="objection", intake_token="tok-3")
    assert "names the purposes" in objection.content.decode()
    assert PrivacyRequest.objects.using("eu").count() == 0
    assert login("aldo").get("/admin/officer/requests/new/").status_code == 403


def test_request_page_timeline_notes_assignee_and_usernames(users):
    r = PrivacyRequestFactory(email="tl@example.fr")
    officer = login("olga")
    officer.post(f"/admin/officer/requests/{r.pk}/notes/", {"text": "Checked the ID by phone."})
    officer.post(f"/admin/officer/requests/{r.pk}/assign/", {"assignee": users["support"].pk})
    officer.post(f"/admin/officer/requests/{r.pk}/extend/", {"reason": "complex"})
    page = officer.get(f"/admin/officer/requests/{r.pk}/").content.decode()
    timeline = page[page.index('id="timeline"') : page.index('id="request-work"')]
    for text in (
        "opened",
        "status received → verifying",
        "internal note",
        "Checked the ID by phone.",
        "assigned to sven",
        "deadline extended",
    ):
        assert text in timeline, text
    assert timeline.count(">olga<") == 3 and "user:" not in page
    assert 'id="request-assignee">sven' in page
    assert short_reference(r.pk) in page
    note = AuditEvent.objects.using("eu").get(code=AuditCode.REQUEST_NOTE_ADDED)
    assert "Checked" not in str(note.payload)  # the audit holds the note's id, not its text
    # the dry run in words: verbose names, the kept request row not among what goes
    preview = page[page.index('id="erasure-preview"') : page.index('id="timeline"')]
    goes = preview[: preview.index("What is kept")]
    assert "Identities" in goes and "Subjects" in goes
    for hidden in ("PrivacyRequest", "privacy requests", "feed.Change", "SubjectKey"):
        assert hidden not in goes, hidden
    assert "privacy requests" in preview[preview.index("What is kept") :]
    # auditors read, but cannot write notes or assign
    auditor = login("aldo")
    assert auditor.post(f"/admin/officer/requests/{r.pk}/notes/", {"text": "x"}).status_code == 403
    assert 'id="note-form"' not in auditor.get(f"/admin/officer/requests/{r.pk}/").content.decode()


def test_timeline_lists_every_callback_attempt_failed_ones_too(users):
    import uuid

    from django.utils import timezone

    from compliance.dsar.models import CallbackAttempt

    r = PrivacyRequestFactory(email="cb@example.fr")
    event = uuid.uuid4()
    for attempt, code, error in ((1, None, "URLError: refused"), (2, 503, ""), (3, 200, "")):
        CallbackAttempt.objects.using("eu").create(
            request_id=r.pk,
            event_id=event,
            attempt=attempt,
            status="awaiting_approval",
            status_code=code,
            error=error,
            sent_at=timezone.now(),
        )
    page = login("olga").get(f"/admin/officer/requests/{r.pk}/").content.decode()
    timeline = page[page.index('id="timeline"') : page.index('id="request-work"')]
    for text in (
        "attempt 1 answered URLError: refused",
        "attempt 2 answered 503",
        "attempt 3 answered 200",
    ):
        assert text in timeline, text


def test_confirmation_refuses_a_wrong_reference_then_approves(users):
    r = PrivacyRequestFactory(email="cf@example.fr")
    officer = login("olga")
    confirm = f"/admin/officer/requests/{r.pk}/approve/confirm/"
    page = officer.get(confirm).content.decode()
    assert "This cannot be undone" in page and short_reference(r.pk) in page
    assert "Identities" in page
    wrong = officer.post(confirm, {"reference": "ABCDEF12"})
    assert wrong.status_code == 200 and "Nothing was erased" in wrong.content.decode()
    assert PrivacyRequest.objects.using("eu").get(pk=r.pk).status == "awaiting_approval"
    assert login("sven").post(confirm, {"reference": short_reference(r.pk)}).status_code == 403
    done = officer.post(confirm, {"reference": short_reference(r.pk).lower()}, follow=True)
    assert "approved" in done.content.decode()
    assert PrivacyRequest.objects.using("eu").get(pk=r.pk).status == "processing"
    page = officer.get(f"/admin/officer/requests/{r.pk}/").content.decode()
    assert "approved: status awaiting approval → processing" in page
    assert 'id="request-approved">olga' in page


def test_steps_match_progress_and_certificate_is_readable(users):
    r = PrivacyRequestFactory(email="steps@example.fr")
    officer = login("olga")
    officer.post(
        f"/admin/officer/requests/{r.pk}/approve/confirm/", {"reference": short_reference(r.pk)}
    )
    done = request_erase_run(region="eu", request_id=r.pk)
    assert done.status == "completed"
    page = officer.get(f"/admin/officer/requests/{r.pk}/").content.decode()
    steps = page[page.index('id="request-steps"') :]
    steps = steps[: steps.index("</table>")]
    assert steps.count("<tr>") - 1 == done.progress_total  # header row excluded
    assert f"{done.progress_total} of {done.progress_total} steps" in page
    assert "sign the erasure receipt" in steps
    certificate = officer.get(f"/admin/officer/requests/{r.pk}/certificate/")
    assert certificate.status_code == 200 and b"Certificate of erasure" in certificate.content
    receipt = officer.get(f"/admin/officer/requests/{r.pk}/certificate/?format=json").json()
    assert receipt["receipt"]["request_id"] == str(r.pk) and receipt["signature"]


def test_subject_link_from_a_request_is_audited(users):
    r = PrivacyRequestFactory(email="link@example.fr")
    officer = login("olga")
    page = officer.get(f"/admin/officer/requests/{r.pk}/").content.decode()
    assert f"/admin/officer/subjects/?request={r.pk}" in page
    shown = officer.get(f"/admin/officer/subjects/?request={r.pk}").content.decode()
    assert "link@example.fr" in shown
    viewed = AuditEvent.objects.using("eu").get(code=AuditCode.PERSONAL_DATA_VIEWED)
    assert viewed.payload["view"] == "subject_lookup_from_request"
    assert login("aldo").get(f"/admin/officer/subjects/?request={r.pk}").status_code == 403


def test_mask():
    assert mask(identifier_type="email", value="alice@example.com") == "a****@e******.com"
    assert mask(identifier_type="user_id", value="u-123456") == "u-****56"
    assert mask(identifier_type="device_id", value="abc") == "***"


def test_admin_add_button_leads_to_intake_and_bulk_approve_skips_erasures(users):
    r = PrivacyRequestFactory(email="bulk@example.fr")
    client = login("sven")
    response = client.get("/admin/dsar/privacyrequest/add/")
    assert response.status_code == 302 and response["Location"] == "/admin/officer/requests/new/"
    officer = login("olga")
    listing = officer.get("/admin/dsar/privacyrequest/?region=eu").content.decode()
    assert short_reference(r.pk) in listing
    officer.post(
        "/admin/dsar/privacyrequest/?region=eu",
        {"action": "approve_selected", "_selected_action": [str(r.pk)]},
    )
    assert PrivacyRequest.objects.using("eu").get(pk=r.pk).status == "awaiting_approval"


def test_audit_browser_names_actors_and_the_evidence_report_has_one_heading(users):
    r = PrivacyRequestFactory(email="names@example.fr")
    officer = login("olga")
    officer.post(f"/admin/officer/requests/{r.pk}/notes/", {"text": "first look"})
    listing = officer.get("/admin/audit/auditevent/?db=eu").content.decode()
    assert '<td class="field-actor">olga</td>' in listing
    assert '<h2 id="chain-name">Chain eu</h2>' in listing
    report = officer.get("/admin/audit/auditevent/report/").content.decode()
    assert report.count("Audit evidence report</h1>") == 1


def test_error_pages_wear_the_admins_look(users):
    auditor = login("aldo")
    refused = auditor.get("/admin/officer/subjects/")
    assert refused.status_code == 403
    page = refused.content.decode()
    assert "Not allowed for your role" in page and 'class="officer-nav"' in page
    assert "officer/officer.css" in page and "aldo" in page
    missing = auditor.get("/admin/officer/requests/00000000-0000-0000-0000-000000000000/")
    assert missing.status_code == 404
    assert 'id="error-404"' in missing.content.decode()
    assert 'id="site-name"' in missing.content.decode()


def test_segment_review_shows_what_is_approved_and_who_would_enter(users):
    from segments.models import Segment

    author = StaffFactory(username="ai-tool-owner", group=ROLE_USERS["officer"], password=PASSWORD)
    proposal = SegmentFactory(
        user=author,
        status="draft",
        key="likely-churn",
        origin="ai_suggested",
        layers=["intent"],
        description="Customers whose usage dropped by half in 30 days",
        motion_detail="retention offer by the sales team",
    )
    assert proposal.required_purposes == ["audience_segmentation", "measurement"]
    for n in range(3):  # three consenting people in the EU, one refusing, one in the US
        someone = SubjectFactory(email=f"est{n}@example.fr")
        ConsentFactory(subject=someone, purpose="audience_segmentation")
        ConsentFactory(subject=someone, purpose="measurement")
    refuser = SubjectFactory(email="refuser@example.fr")
    ConsentFactory(subject=refuser, purpose="audience_segmentation", decision="denied")
    SubjectFactory(email="us-est@example.com", jurisdiction="US-NY")

    officer = login("olga")
    listing = officer.get("/admin/officer/segments/").content.decode()
    assert "/admin/officer/segments/likely-churn/" in listing
    page = officer.get("/admin/officer/segments/likely-churn/").content.decode()
    for text in (
        "Customers whose usage dropped by half in 30 days",
        "intent",
        "Audience insights and segmentation",
        "retention offer by the sales team",
        "conversion rate",
        "control group 10%",
        "AI suggested, proposed by ai-tool-owner",
    ):
        assert text in page, text
    eu = page[page.index('data-region="eu"') :]
    eu = eu[: eu.index("</tr>")]
    assert '<td class="estimate-allowed">3</td>' in eu
    assert "<td>4</td>" in eu and "1 (25%)" in eu and "audience_segmentation: 1" in eu
    # approve and activate from the same page, plain-word messages
    approved = officer.post(
        "/admin/officer/segments/likely-churn/approve/", {"next": "detail"}, follow=True
    )
    text = approved.content.decode()
    assert approved.redirect_chain[-1][0] == "/admin/officer/segments/likely-churn/"
    assert "is approved but not live yet. Activate it to start placing people in it." in text
    assert 'id="segment-activate"' in text
    assert (
        "likely-churn"
        in officer.get("/admin/officer/segments/")
        .content.decode()
        .split('id="approved-not-live"')[1]
    )
    live = officer.post(
        "/admin/officer/segments/likely-churn/activate/", {"next": "detail"}, follow=True
    ).content.decode()
    assert "is live" in live and Segment.objects.get(key="likely-churn").status == "active"
    auditor = login("aldo")
    read_only = auditor.get("/admin/officer/segments/likely-churn/").content.decode()
    assert "Read-only for your role" in read_only and 'id="segment-pause"' not in read_only


def test_package_download_from_the_request_page_is_audited(
    users, django_capture_on_commit_callbacks
):
    import io
    import zipfile

    from compliance.dsar.services.export import request_export_run

    SubjectFactory(email="pkg@example.fr")
    client = login("sven")
    with django_capture_on_commit_callbacks(using="eu"):
        response = _intake(client, identifier_value_1="pkg@example.fr", intake_token="pkg")
    (opened,) = PrivacyRequest.objects.using("eu").all()
    request_export_run(region="eu", request_id=opened.pk)
    page = client.get(response["Location"]).content.decode()
    assert 'id="package-link"' in page
    download = client.get(f"/admin/officer/requests/{opened.pk}/package/")
    assert download.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert "report.html" in names and "report.json" in names
    assert AuditEvent.objects.using("eu").filter(code=AuditCode.PACKAGE_DOWNLOADED).count() == 1
    assert login("aldo").get(f"/admin/officer/requests/{opened.pk}/package/").status_code == 403


def test_a_reused_intake_form_with_other_details_opens_nothing(users):
    SubjectFactory(email="walk-in@example.fr")
    client = login("olga")
    assert _intake(client).status_code == 302
    changed = _intake(client, type="erasure")
    assert changed.status_code == 200
    assert "open a fresh form" in changed.content.decode()
    assert PrivacyRequest.objects.using("eu").count() == 1
