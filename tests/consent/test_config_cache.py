"""Purposes and sources cached per process: one stamp query per request while nothing changed,
a change made elsewhere (another process: raw SQL here, no signal) seen by the next request,
a save in this process seen at once (issue 19)."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.consent.models import Purpose
from compliance.consent.selectors import cached
from compliance.consent.selectors.cached import configuration
from tests.consent.conftest import api_client
from tests.consent.test_api import consent_body

pytestmark = pytest.mark.django_db(databases="__all__")


def config_queries(queries) -> tuple[int, int]:
    """(stamp queries, full reads of the purpose or source table)."""
    sqls = [q["sql"] for q in queries.captured_queries]
    stamps = sum("SELECT (SELECT count(*) FROM consent_purpose)" in s for s in sqls)
    reads = sum(
        s.startswith('SELECT "consent_purpose"') or s.startswith('SELECT "consent_eventsource"')
        for s in sqls
    )
    return stamps, reads


def warm_request_queries() -> CaptureQueriesContext:
    """The control database's statements of a consent submission after a first one (warm)."""
    client = api_client("consent:write")
    assert client.post("/api/v1/consents/", consent_body(), format="json").status_code == 201
    with CaptureQueriesContext(connections["default"]) as queries:
        response = client.post(
            "/api/v1/consents/",
            consent_body(decisions=[{"purpose": "measurement", "decision": "withdrawn"}]),
            format="json",
        )
    assert response.status_code == 201, response.json()
    return queries


def test_a_warm_request_reads_the_stamp_once_and_no_configuration():
    assert config_queries(warm_request_queries()) == (1, 0)


def test_a_change_by_another_process_is_seen_by_the_next_request():
    assert "measurement" in configuration().purposes
    with connections["default"].cursor() as cursor:  # no signal reaches this process
        cursor.execute(
            "UPDATE consent_purpose SET is_active = %s, updated_at = %s WHERE key = %s",
            [False, timezone.now(), "measurement"],
        )
    cached.request_started()  # what the signal does here
    try:
        assert "measurement" not in configuration().purposes
        with CaptureQueriesContext(connections["default"]) as queries:
            configuration()
            configuration()
        assert queries.captured_queries == []  # the stamp is trusted for the rest of the request
    finally:
        cached.request_finished()
    client = api_client("consent:write")
    response = client.post("/api/v1/consents/", consent_body(), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["decisions.0.purpose"]


def test_a_save_in_this_process_is_seen_at_once_even_inside_a_request():
    cached.request_started()  # what the signal does here
    try:
        assert configuration().purposes["measurement"].name != "Measured"
        purpose = Purpose.objects.get(key="measurement")
        purpose.name = "Measured"
        purpose.save()
        assert configuration().purposes["measurement"].name == "Measured"
        Purpose.objects.create(key="new_purpose", name="New", lawful_bases=["consent"])
        assert "new_purpose" in configuration().purposes
    finally:
        cached.request_finished()
