"""The instrumentation audit (API and officer page), the "built on unreliable data" flag on
the segment review pages and its system check."""

from __future__ import annotations

import pytest
from django.test import Client

from compliance.plans.checks import check_segments_on_unreliable_data
from tests.admin.helpers import PASSWORD, ROLE_USERS
from tests.events.conftest import api_client, event, new_email, post
from tests.factories import (
    ConsentFactory,
    SegmentFactory,
    StaffFactory,
    SubjectFactory,
    TrackingPlanFactory,
)

pytestmark = pytest.mark.django_db(databases="__all__")
URL = "/api/v1/sources/instrumentation/"


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def send(good: int, bad: int, *, unplanned: str = "checkout_startd") -> None:
    """``good`` valid page views and ``bad`` unplanned events of a consenting web visitor."""
    email = new_email()
    ConsentFactory(subject=SubjectFactory(jurisdiction="FR", email=email), purpose="measurement")
    batch = [event(email) for _ in range(good)] + [event(email, name=unplanned)] * bad
    assert post(api_client("events:write"), batch).status_code == 200


def officer_client(username="olivia") -> Client:
    StaffFactory(username=username, group=ROLE_USERS["officer"], password=PASSWORD)
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_api_reports_per_source_counts_shares_violations_and_unplanned_names():
    TrackingPlanFactory(mode="block")
    send(good=3, bad=1)
    body = api_client("sources:read").get(URL, {"days": 7}).json()
    assert body["days"] == 7
    web = next(s for s in body["sources"] if s["source"] == "web")
    assert (web["plan_version"], web["mode"]) == (1, "block")
    assert (web["received"], web["accepted"], web["refused"], web["violating"]) == (4, 3, 1, 1)
    assert (web["share_valid"], web["share_refused"]) == (0.75, 0.25)
    assert web["top_violations"][0]["type"] == "unplanned_event"
    assert web["top_violations"][0]["count"] == 1 and web["top_violations"][0]["last_seen"]
    assert web["unplanned_events"][0]["name"] == "checkout_startd"
    assert len(web["daily"]) == 7 and web["daily"][-1]["received"] == 4
    crm = next(s for s in body["sources"] if s["source"] == "crm")
    assert crm["received"] == 0 and crm["plan_version"] is None


def test_identifiers_stitched_across_sources_are_counted_per_source():
    """The crm sends the e-mail of a person the web knew by a device id: the identifiers are
    stitched onto one subject, counted for the crm (events and counts only)."""
    email = new_email()
    person = SubjectFactory(jurisdiction="FR", email=email)
    ConsentFactory(subject=person, purpose="measurement")
    linked = event(email, source="crm", name="deal_won", properties={})
    linked["identifiers"].append({"type": "crm_id", "value": "crm-778"})
    assert post(api_client("events:write"), [linked, event(email)]).status_code == 200
    body = api_client("sources:read").get(URL, {"days": 7}).json()
    counts = {s["source"]: s["identifiers_stitched"] for s in body["sources"]}
    assert counts["crm"] == 1 and counts["web"] == 0
    page = officer_client().get("/admin/officer/instrumentation/").content.decode()
    assert 'class="stitched">1<' in page and "crm-778" not in page


@pytest.mark.parametrize("days", ["0", "366", "x", "-1", "7.5"])
def test_days_outside_1_to_365_is_a_400(days):
    response = api_client("sources:read").get(URL, {"days": days})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["days"]


def test_instrumentation_needs_sources_read():
    assert api_client("sources:write").get(URL).status_code == 403
    assert api_client("sources:read").get(URL, {"days": "365"}).status_code == 200


def test_officer_page_shows_sources_violations_and_trend_chart():
    TrackingPlanFactory(mode="flag")
    send(good=2, bad=2)
    page = officer_client().get("/admin/officer/instrumentation/?days=30")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-source="web"' in html and "checkout_startd" in html
    assert "<svg" in html and "$.event" in html
    assert "@example.org" not in html


def test_officer_page_needs_the_plan_view_permission():
    StaffFactory(username="nobody", group=None, password=PASSWORD)
    client = Client()
    client.login(username="nobody", password=PASSWORD)
    assert client.get("/admin/officer/instrumentation/").status_code == 403


def test_unreliable_flag_appears_on_review_pages_and_in_the_check_then_clears():
    client = officer_client()
    officer = StaffFactory(username="owner", group=ROLE_USERS["officer"], password=PASSWORD)
    SegmentFactory(user=officer, key="readers", status="active", layers=["behavioral"])
    SegmentFactory(user=officer, key="companies", status="active", layers=["firmographic"])
    TrackingPlanFactory(mode="flag")
    send(good=20, bad=1)  # 1 in 21 < 5%: reliable
    assert (
        "segment-unreliable" not in client.get("/admin/officer/segments/readers/").content.decode()
    )
    assert check_segments_on_unreliable_data() == []

    send(good=0, bad=3)  # 4 in 24 > 5%
    detail = client.get("/admin/officer/segments/readers/").content.decode()
    assert 'id="segment-unreliable"' in detail and "web (" in detail
    listing = client.get("/admin/officer/segments/").content.decode()
    assert 'data-segment="readers"' in listing.split('id="segments-unreliable"')[1]
    other = client.get("/admin/officer/segments/companies/").content.decode()
    assert "segment-unreliable" not in other  # firmographic draws on crm, not web
    [warning] = check_segments_on_unreliable_data()
    assert warning.id == "plans.W001" and "'readers'" in warning.msg

    send(good=60, bad=0)  # 4 in 84 < 5%: cleared
    assert (
        "segment-unreliable" not in client.get("/admin/officer/segments/readers/").content.decode()
    )
    assert check_segments_on_unreliable_data() == []


def test_threshold_is_a_setting(settings):
    SegmentFactory(
        user=StaffFactory(username="o2", group=ROLE_USERS["officer"], password=PASSWORD),
        key="readers",
        status="active",
        layers=["behavioral"],
    )
    TrackingPlanFactory(mode="flag")
    send(good=20, bad=1)
    settings.COMPLIANCE_PLANS_UNRELIABLE_SHARE = 0.01
    assert [w.id for w in check_segments_on_unreliable_data()] == ["plans.W001"]
