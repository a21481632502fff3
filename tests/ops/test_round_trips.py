"""The cost of one API request in round trips (issue 19), through the real API, as production
runs it (no test transaction around the request): per database, the statements an EU request
sends stay at or below what was measured when this was built, none is a savepoint, there is
at most one audit append per database, and the ``us`` database is not asked at all.

A bound that fails after a change means the change added round trips to a hot path: look at
the statements printed with the failure before raising the bound."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from compliance.api.examples import LOOKUP, REQUEST
from compliance.consent.api import serializers as s
from compliance.consent.models import ConsentEvent, ConsentState
from tests.consent.conftest import api_client
from tests.consent.test_api import consent_body
from tests.events.conftest import event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases="__all__", transaction=True)]

ALIASES = ("default", "eu", "us")
#: the most statements per database (default, eu, us), BEGIN and COMMIT included (a COMMIT sent
#: with the transaction's last statements is not one more)
BOUNDS = {
    "consent, existing subject": (2, 4, 0),
    "consent, new subject": (6, 6, 0),
    "events (10)": (2, 3, 0),
    "lookup": (2, 2, 0),
    "access request": (5, 5, 0),
}


def _sent(call) -> tuple[object, dict[str, list[str]]]:
    with ExitStack() as stack:
        captured = {
            alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
            for alias in ALIASES
        }
        response = call()
    return response, {
        a: _round_trips([q["sql"] for q in c.captured_queries]) for a, c in captured.items()
    }


def _round_trips(sql: list[str]) -> list[str]:
    """The statements sent: Django logs a COMMIT at the end of every transaction, but none is
    sent after a statement that ended the transaction itself (``statements_run(commit=True)``:
    psycopg sends nothing on an idle connection)."""
    sent: list[str] = []
    for statement in sql:
        if statement == "COMMIT" and sent and sent[-1].endswith("; COMMIT"):
            continue
        sent.append(statement)
    return sent


def _check(name: str, sent: dict[str, list[str]]) -> None:
    shown = "\n".join(f"{a}: {sql[:160]}" for a in ALIASES for sql in sent[a])
    counts = tuple(len(sent[a]) for a in ALIASES)
    assert all(n <= bound for n, bound in zip(counts, BOUNDS[name], strict=True)), (
        f"{name}: {counts} statements (default, eu, us), at most {BOUNDS[name]}:\n{shown}"
    )
    for alias in ALIASES:
        assert not [q for q in sent[alias] if "SAVEPOINT" in q], f"{name}: savepoint\n{shown}"
        appends = sum("audit_head_lock" in q for q in sent[alias])
        assert appends <= 1, f"{name}: {appends} audit appends on {alias}\n{shown}"


def test_round_trips_of_the_hot_endpoints():
    client = api_client("consent:write", "consent:read", "events:write", "dsar:write")
    # warm, as a serving process is: configuration cached, the client's last use recorded
    warm = consent_body(identifier={"type": "email", "value": "warm@example.fr"})
    assert client.post("/api/v1/consents/", warm, format="json").status_code == 201
    new = consent_body(identifier={"type": "email", "value": "new@example.fr"})
    response, sent = _sent(lambda: client.post("/api/v1/consents/", new, format="json"))
    assert response.status_code == 201, response.json()
    _check("consent, new subject", sent)

    response, sent = _sent(lambda: client.post("/api/v1/consents/", new, format="json"))
    assert response.status_code == 201, response.json()
    _check("consent, existing subject", sent)

    batch = {"events": [event("new@example.fr") for _ in range(10)]}
    response, sent = _sent(lambda: client.post("/api/v1/events/", batch, format="json"))
    assert response.status_code == 200 and response.json()["accepted"] == 10, response.json()
    _check("events (10)", sent)

    lookup = {**LOOKUP.value, "value": "new@example.fr"}
    response, sent = _sent(lambda: client.post("/api/v1/subjects/lookup", lookup, format="json"))
    assert response.status_code == 200, response.json()
    _check("lookup", sent)

    access = {**REQUEST.value, "identifiers": [{"type": "email", "value": "new@example.fr"}]}
    response, sent = _sent(
        lambda: client.post(
            "/api/v1/requests/", access, format="json", HTTP_IDEMPOTENCY_KEY="round-trips"
        )
    )
    assert response.status_code == 201, response.json()
    _check("access request", sent)


def test_the_answers_fast_serialisation_is_the_serializers():
    client = api_client("consent:write")
    body = consent_body(
        decisions=[
            {"purpose": "measurement", "decision": "granted"},
            {"purpose": "email_marketing", "decision": "denied"},
        ]
    )
    assert client.post("/api/v1/consents/", body, format="json").status_code == 201
    events = list(ConsentEvent.objects.using("eu").all())
    states = list(ConsentState.objects.using("eu").all())
    assert len(events) == 2 and len(states) == 2
    assert s.events_data(events) == s.ConsentEventOut(events, many=True).data
    assert s.states_data(states) == s.ConsentStateOut(states, many=True).data
