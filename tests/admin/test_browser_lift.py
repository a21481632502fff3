"""Lift in a real browser: the dashboard's lift module and the quarterly review.

* the dashboard shows each active segment's lift (forest plot and table) and links to its page;
* the segment page shows the lift since the last review; a review without a decision is
  refused with a clear error, then recorded with "iterate" and listed under past reviews;
* both fit 1280 and 390 px wide screens (with COMPLIANCE_SCREENSHOTS=1 saved to
  docs/screenshots/ as lift-dashboard-* and lift-review-*).
"""

from __future__ import annotations

from segments.models import SegmentReview
from tests.admin.helpers import PASSWORD, ROLE_USERS
from tests.admin.test_browser import browser, login  # noqa: F401 (fixture)
from tests.admin.test_browser import pytestmark as browser_marks
from tests.admin.test_browser_desk import both_widths
from tests.factories import StaffFactory
from tests.segments import lift_data

pytestmark = browser_marks


def test_dashboard_lift_and_review_decision(browser, live_server):  # noqa: F811
    olivia = StaffFactory(username="olivia", group=ROLE_USERS["officer"], password=PASSWORD)
    lift_data.computed_segment(user=olivia, key="deal-makers", name="Deal makers")
    lift_data.computed_segment(user=olivia, key="trial-users", name="Trial users", n=60, seed=2)
    context, page = login(browser, live_server, "olivia")
    page.goto(f"{live_server.url}/admin/officer/dashboard/")
    row = page.locator(".lift-row[data-segment=deal-makers]")
    assert row.locator(".lift-absolute").inner_text().strip()
    assert "not enough data" in page.locator(".lift-row[data-segment=trial-users]").inner_text()
    both_widths(page, "lift-dashboard")
    row.locator("a").click()
    assert page.url.endswith("/admin/officer/segments/deal-makers/")
    assert "since the last review" in page.locator("#segment-review-module").inner_text()
    page.click("#segment-review")  # no decision chosen
    assert "iterate, keep or cut" in page.locator("#review-errors").inner_text()
    page.check("input[name=decision][value=iterate]")
    page.fill("textarea[name=note]", "Lifted: widen the play to EMEA")
    page.evaluate("window.scrollTo(0, 0)")  # the admin's sticky sidebar follows the scroll
    both_widths(page, "lift-review")
    page.click("#segment-review")
    assert "with the decision: Iterate" in page.locator(".messagelist").inner_text()
    assert page.locator("#review-history .review-row[data-decision=iterate]").count() == 1
    review = SegmentReview.objects.get(segment__key="deal-makers")
    assert review.decision == "iterate" and review.reviewed_by_id == olivia.pk
    context.close()
