"""The request id of an API request reaches the log lines of the Celery task it caused, in a
real worker process (the message header, then ``task_prerun`` in the worker)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import wait_for
from tests.dsar.helpers import api_client, open_body, post_open
from tests.factories import SubjectFactory

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

REQUEST_ID = "ops-test-request-0001"


def _lines(log) -> list[dict]:
    lines = []
    for text in log.read_text().splitlines():
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue
    return lines


def test_the_request_id_reaches_the_task_log_in_a_real_worker(celery_worker_factory):
    SubjectFactory(email="tasked@example.fr")  # known: the access request needs the job
    _, http = api_client()
    worker = celery_worker_factory(queues=["compliance.eu"])
    opened = http.post(
        "/api/v1/requests/",
        open_body("tasked@example.fr", type="access"),
        format="json",
        HTTP_IDEMPOTENCY_KEY="ops-task-1",
        HTTP_X_REQUEST_ID=REQUEST_ID,
    )
    assert opened.status_code == 201, opened.content
    assert opened["X-Request-ID"] == REQUEST_ID
    request_id = opened.json()["id"]
    wait_for(
        lambda: http.get(f"/api/v1/requests/{request_id}/").json()["status"] == "completed",
        timeout=60,
        what="the access package job",
    )
    tagged = wait_for(
        lambda: [line for line in _lines(worker.log) if line.get("request_id") == REQUEST_ID],
        timeout=10,
        what="a worker log line with the request id",
    )
    assert any("dsar.request_process" in line["message"] for line in tagged), tagged
    assert "tasked@example.fr" not in worker.log.read_text()


def test_post_open_without_header_still_gets_an_id():
    _, http = api_client()
    response = post_open(http, open_body("noheader@example.fr", type="access"))
    assert len(response["X-Request-ID"]) == 32
