"""The officer's admin in a real browser (Playwright driving Debian's /usr/bin/chromium).

* a privacy officer logs in through the login form, finds the overdue erasure in the queue,
  approves it and, after a real EU worker ran it, sees it completed with its signed receipt;
* an auditor sees no action at all and a direct POST is refused (403);
* a support agent sees no approve button and a direct POST to approve is refused (403).

Skipped when Chromium is missing, except with COMPLIANCE_REQUIRE_SERVICES=1. With
COMPLIANCE_SCREENSHOTS=1 the dashboard and request pages are saved to docs/screenshots/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.dsar.models import PrivacyRequest
from tests.admin.helpers import PASSWORD, ROLE_USERS
from tests.conftest import REQUIRE_SERVICES, ROOT
from tests.factories import (
    ConsentFactory,
    PrivacyRequestFactory,
    SegmentFactory,
    StaffFactory,
    SubjectFactory,
)

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.skipif(
        not CHROMIUM.exists() and not REQUIRE_SERVICES,
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test itself would otherwise be refused as "async unsafe".
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def login(browser, live_server, username: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()
    return context, page


def post_from_page(page, path: str, data: dict | None = None) -> int:
    """A POST made by the logged-in browser itself (session cookie and CSRF token)."""
    return page.evaluate(
        """async ([path, data]) => {
            const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken='));
            const body = new URLSearchParams(data);
            const response = await fetch(path, {method: 'POST', body, redirect: 'manual',
                headers: {'X-CSRFToken': token ? token.split('=')[1] : ''}});
            return response.status;
        }""",
        [path, data or {}],
    )


def screenshot(page, name: str) -> None:
    if os.environ.get("COMPLIANCE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name), full_page=True)


def _dashboard_data(officer) -> None:
    """A little consent and a few segments, so the dashboard's charts have something to draw."""
    for n, source in enumerate(["web", "web", "ios_app", "crm", "email"]):
        someone = SubjectFactory(email=f"visitor{n}@example.fr")
        ConsentFactory(subject=someone, purpose="measurement", source=source)
        ConsentFactory(
            subject=someone,
            purpose="ads_personalisation",
            source=source,
            decision="denied" if n % 2 else "granted",
        )
    SegmentFactory(
        user=officer, key="trial-users", status="active", layers=["behavioral", "intent"]
    )
    SegmentFactory(
        user=officer, key="enterprise-accounts", status="active", layers=["firmographic"]
    )
    SegmentFactory(user=officer, status="draft", key="churn-risk", origin="ai_suggested")


def test_officer_finds_the_overdue_erasure_approves_it_and_sees_it_complete(
    browser, live_server, celery_worker_factory
):
    officer = StaffFactory(username="olivia", group=ROLE_USERS["officer"], password=PASSWORD)
    PrivacyRequestFactory(email="calm@example.fr")
    PrivacyRequestFactory(email="us-person@example.com", jurisdiction="US-CA", regulation="ccpa")
    late = PrivacyRequestFactory(email="late@example.fr", overdue=True)
    _dashboard_data(officer)
    celery_worker_factory(queues=["compliance.eu"])

    context, page = login(browser, live_server, "olivia")
    assert page.url.endswith("/admin/officer/queue/")  # the officer's front page
    first = page.locator("#queue tbody tr").first
    assert first.get_attribute("data-request") == str(late.pk)  # earliest due first
    assert first.locator(".badge.overdue").inner_text() == "overdue"
    first.locator("a").click()
    assert page.locator("#erasure-preview").is_visible()
    assert "Identities" in page.locator("#erasure-preview").inner_text()

    page.click("#approve-button")  # the confirmation step: type the short reference
    page.fill("#id_reference", str(late.pk).replace("-", "")[:8])
    page.click("#confirm-button")
    assert "approved" in page.locator(".messagelist").inner_text()
    for _ in range(60):
        if page.locator("#request-status").inner_text() == "Completed":
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("#request-status").inner_text() == "Completed"
    receipt = page.locator("#receipt")
    assert "signature valid" in receipt.inner_text()
    assert "compliance.Identity" in receipt.inner_text()
    assert page.locator("#request-actions").count() == 0
    screenshot(page, "request.png")

    page.click(".officer-nav >> text=Dashboard")
    assert page.locator("#chart-dsar svg").count() == 1
    assert "whole" in page.locator("#chains").inner_text()
    screenshot(page, "dashboard.png")
    context.close()

    stored = PrivacyRequest.objects.using("eu").get(pk=late.pk)
    assert stored.status == "completed" and stored.receipt["request_id"] == str(late.pk)
    approved = AuditEvent.objects.using("eu").filter(
        code=AuditCode.REQUEST_STATUS_CHANGED, object_id=str(late.pk), payload__to="processing"
    )
    assert [(e.actor_type, e.actor_id) for e in approved] == [("user", str(officer.pk))]
    assert (
        AuditEvent.objects.using("eu")
        .filter(code=AuditCode.ERASURE_RECEIPT_ISSUED, object_id=str(late.pk))
        .exists()
    )


def test_auditor_changes_nothing_and_support_agent_cannot_approve(browser, live_server):
    author = StaffFactory(username="author", group=ROLE_USERS["officer"], password=PASSWORD)
    # required_purposes=[]: the seeded purposes are gone once a transactional test flushed
    SegmentFactory(
        user=author, status="draft", key="ai-draft", origin="ai_suggested", required_purposes=[]
    )
    StaffFactory(username="audrey", group=ROLE_USERS["auditor"], password=PASSWORD)
    StaffFactory(username="sam", group=ROLE_USERS["support"], password=PASSWORD)
    waiting = PrivacyRequestFactory(email="wait@example.fr", overdue=True)
    request_page = f"/admin/officer/requests/{waiting.pk}/"

    context, page = login(browser, live_server, "audrey")
    assert "Site administration" in page.content()  # not an officer: the models' index
    page.click(".officer-nav >> text=DSAR queue")
    assert page.locator("#queue tbody tr").count() == 1  # reads the queue
    page.goto(live_server.url + request_page)
    assert page.locator("#erasure-preview").is_visible()
    assert page.locator("#request-actions").count() == 0
    assert page.locator("form[method=post]").count() == 1  # only the log-out form
    for verb in ("approve", "reject", "extend"):
        assert post_from_page(page, f"{request_page}{verb}/", {"reason": "no"}) == 403
    page.goto(live_server.url + "/admin/officer/segments/")
    assert "ai-draft" in page.content()
    assert page.locator("#ai-suggested input[type=submit]").count() == 0
    assert post_from_page(page, "/admin/officer/segments/ai-draft/approve/") == 403
    context.close()

    context, page = login(browser, live_server, "sam")
    page.goto(live_server.url + request_page)
    assert page.locator("#approve-button").count() == 0
    assert post_from_page(page, f"{request_page}approve/") == 403
    # the logged-in page can POST at all (same session and token): logging out works
    assert post_from_page(page, "/admin/logout/") in (200, 302, 0)
    context.close()

    assert PrivacyRequest.objects.using("eu").get(pk=waiting.pk).status == "awaiting_approval"
    assert (
        not AuditEvent.objects.using("eu")
        .filter(
            object_id=str(waiting.pk),
            code=AuditCode.REQUEST_STATUS_CHANGED,
            payload__to="processing",
        )
        .exists()
    )


def test_landing_page_and_the_officers_first_screen_tell_the_demo_story(browser, live_server):
    """``/`` says what the toolkit is and how each part is; the officer who logs in with the
    demo login lands on the queue with the demo story (and sees the governance banner)."""
    import json

    from django.conf import settings
    from django.core.management import call_command

    from compliance.tasks import worker_heartbeat

    call_command("load_demo", stdout=open(os.devnull, "w"))
    for region in settings.COMPLIANCE_REGIONS:
        worker_heartbeat(region=region)  # as a running worker does at start
    password = json.loads((settings.VAR_DIR / "demo-login.json").read_text())["officer"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/")
    assert "Privacy and consent compliance toolkit" in page.title()
    for link in ("#link-admin", "#link-docs", "#link-schema"):
        assert page.locator(link).count() == 1
    assert page.locator("tr.health-row[data-ok=true]").count() == len(settings.DATABASES) + 1
    screenshot(page, "landing.png")

    page.click("#link-admin")
    page.fill("#id_username", "officer")
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_load_state()
    assert "/admin/officer/queue/" in page.url
    rows = page.locator("#queue tr.queue-row")
    texts = [rows.nth(n).inner_text() for n in range(rows.count())]
    assert any("Erasure" in t and "Awaiting approval" in t for t in texts), texts
    assert any("Access" in t and "overdue" in t for t in texts), texts
    assert page.locator(".governance-banner").count() == 1
    screenshot(page, "officer-queue.png")
    page.goto(f"{live_server.url}/admin/officer/queue/?status=completed&type=erasure")
    assert page.locator("#queue tr.queue-row").count() == 1
    page.goto(f"{live_server.url}/admin/officer/segments/")
    assert "Likely churn (AI suggested)" in page.content()
    context.close()
