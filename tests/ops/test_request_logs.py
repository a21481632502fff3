"""One JSON line per request: request id, route pattern, method, status, duration, API client;
never the path, the query string, an identifier or an address."""

from __future__ import annotations

import json
import logging

import pytest

from compliance.ops.context import HEADER, _publish_with_request_id, current_request_id
from compliance.ops.logs import JsonFormatter, RequestIdFilter
from tests.dsar.helpers import api_client, open_body, post_open

pytestmark = pytest.mark.django_db(databases="__all__")

EMAIL = "log.person@example.fr"


def _request_lines(caplog) -> list[dict]:
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(r)) for r in caplog.records if r.name == "compliance.requests"
    ]


def test_one_json_line_per_api_request_without_identifiers(caplog):
    client, http = api_client()
    with caplog.at_level(logging.INFO, logger="compliance.requests"):
        opened = post_open(http, open_body(EMAIL, type="access"))
        detail = http.get(f"/api/v1/requests/{opened.json()['id']}/?email={EMAIL}")
    assert opened.status_code == 201 and detail.status_code == 200
    first, second = _request_lines(caplog)
    assert first["route"] == "api/v1/requests/"
    assert first["method"] == "POST" and first["status"] == 201
    assert first["request_id"] == opened["X-Request-ID"]
    assert len(first["request_id"]) == 32  # a uuid4 hex when none (or an unsafe one) came
    assert first["client_id"] == client.pk
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] > 0
    assert second["route"] == "api/v1/requests/<uuid:request_id>/"
    assert second["request_id"] == detail["X-Request-ID"] != first["request_id"]
    raw = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert EMAIL not in raw and "example.fr" not in raw
    assert opened.json()["id"] not in raw  # no path with an identifier
    assert "127.0.0.1" not in raw and "?" not in raw


def test_a_safe_incoming_request_id_is_kept_an_unsafe_one_replaced(client, caplog):
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a9c21.req_01")
    assert kept["X-Request-ID"] == "lb-7f3a9c21.req_01"
    for unsafe in ["short", "has space in it", "x" * 65, 'quote"injection-attempt', EMAIL]:
        replaced = client.get("/healthz", HTTP_X_REQUEST_ID=unsafe)
        assert replaced["X-Request-ID"] != unsafe
        assert len(replaced["X-Request-ID"]) == 32


def test_ops_routes_are_logged_at_debug(client, caplog):
    with caplog.at_level(logging.INFO, logger="compliance.requests"):
        client.get("/healthz")
    assert not _request_lines(caplog)


def test_published_tasks_carry_the_request_id_and_log_lines_show_it():
    token = current_request_id.set("req-from-web-0001")
    try:
        headers: dict = {}
        _publish_with_request_id(headers=headers)
        assert headers[HEADER] == "req-from-web-0001"
        record = logging.makeLogRecord({"msg": "in a task", "name": "compliance.test"})
        RequestIdFilter().filter(record)
        assert json.loads(JsonFormatter().format(record))["request_id"] == "req-from-web-0001"
    finally:
        current_request_id.reset(token)
    headers = {}
    _publish_with_request_id(headers=headers)  # outside a request: nothing added
    assert HEADER not in headers
