"""A privacy officer's working day in a real browser (Playwright, Debian's /usr/bin/chromium).

* a support agent opens a request in the admin (intake through ``request_open``);
* an officer approves an erasure through the confirmation step, which refuses a wrong reference;
* the request timeline shows each event with usernames (note, assignment, extension, approval);
* segment review shows the would-be member estimate and activates from the same page;
* an auditor opening subject lookup gets the styled 403;
* the queue, request list and request page fit 1280 and 390 px wide screens.

With COMPLIANCE_SCREENSHOTS=1 each page is saved at 1280 and 390 px to docs/screenshots/.
"""

from __future__ import annotations

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.dsar.models import PrivacyRequest
from compliance.dsar.services.report import short_reference
from segments.models import Segment
from tests.admin.helpers import PASSWORD, ROLE_USERS
from tests.admin.test_browser import browser, login, screenshot  # noqa: F401 (fixture)
from tests.admin.test_browser import pytestmark as browser_marks
from tests.factories import (
    ConsentFactory,
    PrivacyRequestFactory,
    SegmentFactory,
    StaffFactory,
    SubjectFactory,
)

pytestmark = browser_marks
NARROW = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 900}


def both_widths(page, name: str) -> None:
    """Screenshots at 1280 and 390 px; at 390 the page itself must not scroll sideways."""
    screenshot(page, f"{name}-1280.png")
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(100)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{name}: {overflow}px wider than a 390 px screen"
    screenshot(page, f"{name}-390.png")
    page.set_viewport_size(WIDE)


def test_support_agent_opens_a_request_in_the_admin(browser, live_server):  # noqa: F811
    StaffFactory(username="sam", group=ROLE_USERS["support"], password=PASSWORD)
    SubjectFactory(email="caller@example.fr")
    context, page = login(browser, live_server, "sam")
    page.goto(f"{live_server.url}/admin/officer/queue/")
    page.click("#open-request")
    assert page.url.endswith("/admin/officer/requests/new/")
    page.select_option("#id_type", "access")
    page.select_option("#id_regulation", "gdpr")
    page.fill("#id_identifier_value_1", "caller@example.fr")
    page.select_option("#id_verification_method", "id_document")
    page.fill("#id_jurisdiction", "FR")
    page.fill("#id_notes", "Phoned in; passport checked.")
    both_widths(page, "intake")
    page.click("#intake-submit")
    assert "/admin/officer/requests/" in page.url and "/new/" not in page.url
    assert "opened" in page.locator(".messagelist").inner_text()
    (opened,) = PrivacyRequest.objects.using("eu").all()
    assert page.locator("#request-reference").inner_text() == short_reference(opened.pk)
    assert page.locator("#request-filed-by").inner_text() == "sam (in the admin)"
    assert "c*****@e******.fr" in page.locator("#request-identifiers").inner_text()
    assert "Phoned in; passport checked." in page.locator("#timeline").inner_text()
    # the browser's back-and-resubmit opens nothing new (the form's idempotency key)
    page.go_back()
    page.click("#intake-submit")
    assert PrivacyRequest.objects.using("eu").count() == 1
    context.close()


def test_officer_approves_an_erasure_through_the_confirmation_step(browser, live_server):  # noqa: F811
    officer = StaffFactory(username="olivia", group=ROLE_USERS["officer"], password=PASSWORD)
    waiting = PrivacyRequestFactory(email="goner@example.fr")
    reference = short_reference(waiting.pk)
    context, page = login(browser, live_server, "olivia")
    page.goto(f"{live_server.url}/admin/officer/requests/{waiting.pk}/")
    goes = page.locator("#preview-goes").inner_text()
    assert "Identities" in goes and "rivacy request" not in goes
    assert "privacy requests" in page.locator("#preview-kept").inner_text()
    page.click("#approve-button")
    assert page.url.endswith(f"/requests/{waiting.pk}/approve/confirm/")
    assert "This cannot be undone" in page.content()
    assert "Identities" in page.locator("#confirm-goes").inner_text()
    page.fill("#id_reference", "WRONG123")
    page.click("#confirm-button")
    assert "Nothing was erased" in page.locator("#confirm-error").inner_text()
    assert PrivacyRequest.objects.using("eu").get(pk=waiting.pk).status == "awaiting_approval"
    both_widths(page, "confirm")
    page.fill("#id_reference", reference.lower())
    page.click("#confirm-button")
    assert "approved" in page.locator(".messagelist").inner_text()
    assert page.locator("#request-status").inner_text() == "Processing"
    assert page.locator("#request-approved").inner_text().startswith("olivia")
    context.close()
    approved = AuditEvent.objects.using("eu").filter(
        code=AuditCode.REQUEST_STATUS_CHANGED, object_id=str(waiting.pk), payload__to="processing"
    )
    assert [(e.actor_type, e.actor_id) for e in approved] == [("user", str(officer.pk))]


def test_timeline_shows_each_event_with_usernames(browser, live_server):  # noqa: F811
    StaffFactory(username="olivia", group=ROLE_USERS["officer"], password=PASSWORD)
    StaffFactory(username="sam", group=ROLE_USERS["support"], password=PASSWORD)
    waiting = PrivacyRequestFactory(email="timeline@example.fr", overdue=True)
    context, page = login(browser, live_server, "olivia")
    page.goto(f"{live_server.url}/admin/officer/queue/")
    both_widths(page, "queue")
    page.goto(f"{live_server.url}/admin/dsar/privacyrequest/?region=eu")
    due = page.locator("th.column-due").bounding_box()
    assert due is not None and due["x"] + due["width"] <= 1280, due  # not cut off at 1280
    both_widths(page, "request-list")
    page.goto(f"{live_server.url}/admin/officer/requests/{waiting.pk}/")
    page.fill("#id_text", "Customer asked twice; verified by e-mail.")
    page.click("#note-button")
    page.select_option("#id_assignee", label="sam")
    page.click("#assign-button")
    page.fill("#extend-reason", "many systems to check")
    page.click("#extend-button")
    rows = page.locator("#timeline tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    whats = "\n".join(texts)
    for expected in (
        "opened",
        "received → verifying",
        "internal note",
        "Customer asked twice",
        "assigned to sam",
        "deadline extended",
    ):
        assert expected in whats, expected
    who = [rows.nth(i).locator(".timeline-who").inner_text() for i in range(rows.count())]
    assert who.count("olivia") == 3 and all(not w.startswith("user") for w in who)
    assert page.locator("#request-assignee").inner_text() == "sam"
    both_widths(page, "request")
    context.close()


def test_segment_review_estimate_and_activation_on_one_page(browser, live_server):  # noqa: F811
    author = StaffFactory(username="ml-tool", group=ROLE_USERS["officer"], password=PASSWORD)
    StaffFactory(username="olivia", group=ROLE_USERS["officer"], password=PASSWORD)
    SegmentFactory(
        user=author,
        status="draft",
        key="likely-churn",
        origin="ai_suggested",
        layers=["intent"],
        description="Accounts whose weekly use fell by half",
        motion="sales_play",
        motion_detail="a call from customer success",
    )
    for n in range(4):
        someone = SubjectFactory(email=f"cust{n}@example.fr")
        ConsentFactory(subject=someone, purpose="audience_segmentation")
        if n:
            ConsentFactory(subject=someone, purpose="measurement")
    context, page = login(browser, live_server, "olivia")
    page.goto(f"{live_server.url}/admin/officer/segments/")
    page.click("#ai-suggested >> text=likely-churn")
    assert (
        "Accounts whose weekly use fell by half"
        in page.locator("#segment-description").inner_text()
    )
    assert "a call from customer success" in page.locator("#segment-motion").inner_text()
    assert "proposed by ml-tool" in page.locator("#segment-origin").inner_text()
    eu = page.locator(".estimate-row[data-region=eu]")
    assert eu.locator(".estimate-allowed").inner_text() == "3"
    assert eu.locator(".estimate-refused").inner_text().startswith("1 (25%)")
    both_widths(page, "segment")
    page.click("#segment-approve")
    assert "approved but not live yet" in page.locator(".messagelist").inner_text()
    page.click("#segment-activate")  # same page
    assert "is live" in page.locator(".messagelist").inner_text()
    assert Segment.objects.get(key="likely-churn").status == "active"
    assert page.locator("#segment-pause").count() == 1
    context.close()


def test_auditor_gets_the_styled_403(browser, live_server):  # noqa: F811
    StaffFactory(username="audrey", group=ROLE_USERS["auditor"], password=PASSWORD)
    context, page = login(browser, live_server, "audrey")
    response = page.goto(f"{live_server.url}/admin/officer/subjects/")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "Not allowed for your role"
    assert page.locator(".officer-nav").is_visible()  # the admin's frame, not a bare page
    assert "audrey" in page.locator("#error-403").inner_text()
    both_widths(page, "forbidden")
    context.close()
