"""Tracking plans at the ingest path: each mode, each violation type, consent still deciding,
``omit`` storing only planned properties, counters without values or identifiers."""

from __future__ import annotations

import pytest
from django.db import connections

from compliance.events.models import Event
from compliance.events.selectors.events import event_properties
from compliance.plans.models import InstrumentationCount
from compliance.services.subjects import subject_data_key
from tests.events.conftest import api_client, event, new_email, post
from tests.factories import ConsentFactory, SubjectFactory, TrackingPlanFactory

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def client():
    return api_client("events:write")


def consenting(email: str):
    subject = SubjectFactory(jurisdiction="FR", email=email)
    ConsentFactory(subject=subject, purpose="measurement", decision="granted")
    return subject


def types(result: dict) -> list[tuple[str, str]]:
    return [(v["type"], v["path"]) for v in result["violations"]]


def test_without_a_plan_the_response_is_todays_shape(client):
    TrackingPlanFactory(source="crm", mode="block")
    email = new_email()
    consenting(email)
    batch = [
        event(email, name="anything", properties={"x": 1}),
        event(email, source="crm", name="unplanned"),
    ]
    result = post(client, batch).json()
    assert result["results"][0]["status"] == "accepted"
    assert set(result["results"][0]) == {"index", "id", "status", "reason", "event_id", "duplicate"}
    assert result["results"][1]["violations"][0]["type"] == "unplanned_event"


def test_flag_mode_accepts_and_reports_every_violation_type(client):
    TrackingPlanFactory(mode="flag", identifier_types=["email"])
    email = new_email()
    consenting(email)
    secret = "do-not-echo-4711"
    batch = [
        event(email, name="checkout_started", properties={"cart": secret}),
        event(email, properties={"referrer": secret}),  # path missing
        event(email, properties={"path": 42}),
        event(email, properties={"path": "/", "coupon": secret}),
        event(email, name="signup", properties={"plan": secret, "seats": 0}),
        event(
            email,
            identifiers=[
                {"type": "email", "value": email},
                {"type": "device_id", "value": "dev-123456"},
            ],
        ),
    ]
    body = post(client, batch).json()
    results = body["results"]
    assert [r["status"] for r in results] == ["accepted"] * 6
    assert types(results[0]) == [("unplanned_event", "$.event")]
    assert types(results[1]) == [("required_missing", "$.properties.path")]
    assert types(results[2]) == [("datatype_mismatch", "$.properties.path")]
    assert types(results[3]) == [("additional_property", "$.properties.coupon")]
    assert sorted(types(results[4])) == [
        ("invalid_value", "$.properties.plan"),
        ("invalid_value", "$.properties.seats"),
    ]
    assert types(results[5]) == [("identifier_type_not_allowed", "$.identifiers[1].type")]
    assert secret not in str(body) and "dev-123456" not in str(body)
    assert "42" not in results[2]["violations"][0]["message"]
    assert Event.objects.using("eu").count() == 6


def test_block_mode_refuses_violations_and_accepts_valid_events(client):
    TrackingPlanFactory(mode="block")
    email = new_email()
    consenting(email)
    body = post(
        client,
        [
            event(email, properties={"path": "/ok"}),
            event(email, name="unplanned"),
            event(email, properties={"path": 1}),
        ],
    ).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "rejected"]
    assert [r["reason"] for r in body["results"]] == ["granted", "tracking_plan", "tracking_plan"]
    assert types(body["results"][1]) == [("unplanned_event", "$.event")]
    assert Event.objects.using("eu").count() == 1


def test_block_mode_never_creates_a_subject_for_a_refused_event(client):
    TrackingPlanFactory(mode="block")
    # a US person with no record: the opt-out regime allows measurement, the plan refuses
    result = post(client, [event(new_email(), name="unplanned", jurisdiction="US-NY")]).json()
    assert result["results"][0]["status"] == "rejected"
    with connections["us"].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM compliance_subject")
        assert cursor.fetchone()[0] == 0


def test_consent_still_refuses_an_event_the_plan_accepts(client):
    TrackingPlanFactory(mode="flag")
    never, withdrawn = new_email(), new_email()
    SubjectFactory(jurisdiction="FR", email=never)
    w = consenting(withdrawn)
    ConsentFactory(subject=w, purpose="measurement", decision="withdrawn")
    body = post(client, [event(never), event(withdrawn)]).json()
    assert [r["status"] for r in body["results"]] == ["rejected", "rejected"]
    assert [r["reason"] for r in body["results"]] == ["no_record", "withdrawn"]
    assert [r["violations"] for r in body["results"]] == [[], []]
    assert Event.objects.using("eu").count() == 0


def test_consent_reason_wins_when_both_consent_and_block_refuse(client):
    TrackingPlanFactory(mode="block")
    email = new_email()
    SubjectFactory(jurisdiction="FR", email=email)
    result = post(client, [event(email, name="unplanned")]).json()["results"][0]
    assert (result["status"], result["reason"]) == ("rejected", "no_record")
    assert types(result) == [("unplanned_event", "$.event")]


def test_omit_mode_stores_only_planned_properties(client):
    TrackingPlanFactory(mode="omit")
    email = new_email()
    subject = consenting(email)
    body = post(
        client,
        [
            event(email, properties={"path": "/p", "coupon": "X1", "utm": {"a": 1}}),
            event(email, name="unplanned", properties={"free": "text"}),
        ],
    ).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    assert sorted(types(body["results"][0])) == [
        ("additional_property", "$.properties.coupon"),
        ("additional_property", "$.properties.utm"),
    ]
    key = subject_data_key(subject=subject)
    stored = {
        e.name: event_properties(event=e, data_key=key) for e in Event.objects.using("eu").all()
    }
    assert stored == {"page_view": {"path": "/p"}, "unplanned": {}}


def test_counters_hold_counts_paths_and_names_never_values_or_identifiers(client):
    TrackingPlanFactory(mode="block", identifier_types=["email"])
    email = new_email()
    consenting(email)
    secret = "s3cr3t-value-99"
    post(
        client,
        [
            event(email, properties={"path": secret}),
            event(email, properties={"path": 770077, "coupon": secret}),
            event(
                email,
                properties={"path": "/"},
                identifiers=[
                    {"type": "email", "value": email},
                    {"type": "user_id", "value": "uid-secret-1"},
                ],
            ),
        ],
    )
    rows = InstrumentationCount.objects.using("eu").filter(source="web")
    counts = {(r.kind, r.path): r.count for r in rows}
    assert counts[("received", "")] == 3
    assert counts[("accepted", "")] == 1 and counts[("refused", "")] == 2
    assert counts[("violating", "")] == 2
    assert counts[("datatype_mismatch", "$.properties.path")] == 1
    assert counts[("additional_property", "$.properties.coupon")] == 1
    assert counts[("identifier_type_not_allowed", "$.identifiers[1].type")] == 1
    for alias in ("eu", "us"):  # regional: no such table on "default"
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT * FROM plans_instrumentationcount")
            dump = repr(cursor.fetchall())
        for needle in (secret, email, "uid-secret-1", "770077"):
            assert needle not in dump, (alias, needle)


def test_counters_add_up_across_batches(client):
    TrackingPlanFactory(mode="flag")
    email = new_email()
    consenting(email)
    post(client, [event(email, name="unplanned")])
    post(client, [event(email, name="unplanned"), event(email)])
    rows = InstrumentationCount.objects.using("eu")
    assert rows.get(event="unplanned", kind="unplanned_event").count == 2
    assert rows.get(event="page_view", kind="received").count == 1
    assert not rows.filter(event="page_view", kind="violating").exists()


def test_a_new_plan_version_applies_to_the_next_batch(client):
    TrackingPlanFactory(mode="flag")
    email = new_email()
    consenting(email)
    assert post(client, [event(email, name="later")]).json()["accepted"] == 1
    TrackingPlanFactory(mode="block")
    assert post(client, [event(email, name="later")]).json()["accepted"] == 0
