"""``POST /api/v1/events/``: authentication, scopes, and bad input (400 naming the field,
nothing written)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from compliance.audit.models import AuditEvent
from compliance.models import SubjectDirectory
from tests.events.conftest import api_client, count, event, new_email, post
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def nothing_written() -> bool:
    return (
        count("eu") == 0
        and count("us") == 0
        and count("eu", "events_rejectioncount") == 0
        and count("us", "events_rejectioncount") == 0
        and not AuditEvent.objects.using("eu").filter(code=106).exists()
        and not AuditEvent.objects.using("us").filter(code=106).exists()
    )


def test_no_token_is_401():
    response = post(APIClient(), [event(new_email())])
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert nothing_written()


def test_unknown_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer ctk_nope")
    assert post(client, [event(new_email())]).status_code == 401


def test_wrong_scope_is_403():
    response = post(api_client("consent:write"), [event(new_email())])
    assert response.status_code == 403
    assert "events:write" in response.json()["error"]["message"]
    assert nothing_written()


def _bad(mutate) -> dict:
    body = event(new_email())
    mutate(body)
    return body


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.update(purpose="astrology"), "events[1].purpose"),
        (lambda e: e.update(source="fax"), "events[1].source"),
        (lambda e: e.pop("purpose"), "events[1].purpose"),
        (lambda e: e.update(time="yesterday"), "events[1].time"),
        (lambda e: e.update(time="2025-01-01T10:00:00"), "events[1].time"),  # no offset
        (lambda e: e.update(identifiers=[]), "events[1].identifiers"),
        (lambda e: e.update(identifiers="a@b.c"), "events[1].identifiers"),
        (
            lambda e: e.update(identifiers=[{"type": "email", "value": "not-an-email"}]),
            "events[1].identifiers[0].value",
        ),
        (
            lambda e: e.update(identifiers=[{"type": "passport", "value": "X1"}]),
            "events[1].identifiers[0].type",
        ),
        (lambda e: e.update(identifiers=[{"type": "email"}]), "events[1].identifiers[0]"),
        (lambda e: e.update(event=""), "events[1].event"),
        (lambda e: e.update(properties=[1, 2]), "events[1].properties"),
        (lambda e: e.update(properties={"x": "y" * 20000}), "events[1].properties"),
        (lambda e: e.update(consent_signal={"gpc": False}), "events[1].consent_signal.gpc"),
        (
            lambda e: e.update(consent_signal={"tc_string": ""}),
            "events[1].consent_signal.tc_string",
        ),
        (lambda e: e.update(consent_signal={"other": 1}), "events[1].consent_signal"),
        (lambda e: e.update(jurisdiction="France"), "events[1].jurisdiction"),
        (lambda e: e.update(id=""), "events[1].id"),
        (lambda e: e.update(colour="red"), "events[1].colour"),
    ],
)
def test_bad_event_is_400_naming_the_field_and_nothing_is_written(mutate, field):
    email = new_email()
    SubjectFactory(jurisdiction="FR", email=email, consents=["measurement"])
    response = post(api_client("events:write"), [event(email), _bad(mutate)])

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]
    assert field in error["message"]
    assert nothing_written()


def test_identifier_values_are_not_echoed_in_errors():
    body = event("x")
    body["identifiers"] = [{"type": "email", "value": "secret-but-invalid"}]
    response = post(api_client("events:write"), [body])
    assert response.status_code == 400
    assert "secret-but-invalid" not in response.content.decode()


def test_oversized_batch_is_400():
    email = new_email()
    SubjectFactory(jurisdiction="FR", email=email, consents=["measurement"])
    response = post(api_client("events:write"), [event(email)] * 1001)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["events"]
    assert nothing_written()


@pytest.mark.parametrize("body", [{}, {"events": []}, {"events": {"a": 1}}, [1, 2]])
def test_malformed_envelope_is_400(body):
    response = api_client("events:write").post("/api/v1/events/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]
    assert nothing_written()


def test_every_problem_is_named_at_once():
    bad = event(new_email(), purpose="astrology", time="soon")
    response = post(api_client("events:write"), [bad, event(new_email(), source="fax")])
    assert set(response.json()["error"]["fields"]) == {
        "events[0].time",
        "events[0].purpose",
        "events[1].source",
    }


def test_not_json_is_400():
    client = api_client("events:write")
    response = client.post("/api/v1/events/", "{", content_type="application/json")
    assert response.status_code == 400
    assert nothing_written()


def test_full_batch_of_1000_is_accepted():
    email = new_email()
    SubjectFactory(jurisdiction="FR", email=email, consents=["measurement"])
    response = post(api_client("events:write"), [event(email, id=f"e{i}") for i in range(1000)])
    assert response.status_code == 200
    assert response.json()["accepted"] == 1000
    assert count("eu") == 1000
    assert SubjectDirectory.objects.count() == 1
