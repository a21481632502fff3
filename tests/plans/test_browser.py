"""The instrumentation audit page in a real browser (Chromium), with a screenshot saved to
docs/screenshots/ when COMPLIANCE_SCREENSHOTS=1 (the fixture of ``tests/admin/test_browser``)."""

from __future__ import annotations

import pytest

from tests.admin.helpers import PASSWORD, ROLE_USERS
from tests.admin.test_browser import browser, login, pytestmark, screenshot  # noqa: F401
from tests.events.conftest import api_client, event, post
from tests.factories import (
    ConsentFactory,
    SegmentFactory,
    StaffFactory,
    SubjectFactory,
    TrackingPlanFactory,
)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_officer_reads_the_instrumentation_audit(browser, live_server):  # noqa: F811
    officer = StaffFactory(username="olivia", group=ROLE_USERS["officer"], password=PASSWORD)
    SegmentFactory(user=officer, key="engaged-readers", status="active", layers=["behavioral"])
    TrackingPlanFactory(mode="block", identifier_types=["email"])
    email = "reader@example.fr"
    ConsentFactory(subject=SubjectFactory(jurisdiction="FR", email=email), purpose="measurement")
    batch = [event(email, properties={"path": f"/p{n}"}) for n in range(12)]
    batch += [event(email, name="checkout_startd")] * 2
    batch += [event(email, properties={"path": 404}), event(email, properties={"pth": "/x"})]
    post(api_client("events:write"), batch)

    context, page = login(browser, live_server, "olivia")
    page.click("text=Instrumentation")
    page.wait_for_load_state()
    assert page.url.endswith("/admin/officer/instrumentation/")
    row = page.locator('tr.source-row[data-source="web"]')
    assert row.locator(".received").inner_text() == "16"
    assert row.locator(".share-valid").inner_text() == "75%"
    card = page.locator("#source-web")
    assert card.locator("svg.officer-chart").count() == 1
    assert "checkout_startd" in card.locator(".unplanned").inner_text()
    assert card.locator("tr.violation-row").count() >= 3
    flagged = page.locator('#unreliable-segments li[data-segment="engaged-readers"]')
    assert flagged.count() == 1
    assert email not in page.content() and "/p1" not in page.content()
    screenshot(page, "instrumentation-1280.png")
    page.click("a.days-choice >> text=30 days")
    page.wait_for_load_state()
    assert page.url.endswith("?days=30")
    context.close()
