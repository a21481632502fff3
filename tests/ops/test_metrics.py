"""``/metrics``: Prometheus text with the latency histogram per route pattern, the database
gauges and the rejection counters; closed to other networks and wrong tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.dsar.helpers import api_client, open_body, post_open
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")

OUTSIDE = "203.0.113.7"


def _samples(response) -> dict:
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_latency_histogram_per_route_pattern_after_a_request(client):
    _, http = api_client()
    opened = post_open(http, open_body("hist@example.fr", type="access")).json()
    assert http.get(f"/api/v1/requests/{opened['id']}/").status_code == 200
    response = client.get("/metrics")  # the test client comes from 127.0.0.1
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = _samples(response)
    route = "api/v1/requests/<uuid:request_id>/"
    key = (
        "compliance_http_request_duration_seconds_count",
        (("method", "GET"), ("route", route), ("status", "200")),
    )
    assert samples[key] >= 1
    assert opened["id"] not in response.content.decode()  # patterns, never paths
    assert samples[("compliance_database_scrape_ok", (("database", "eu"),))] == 1
    assert ("compliance_audit_chain_length", (("database", "default"),)) in samples
    assert samples[("compliance_dsar_requests", (("region", "eu"), ("status", "completed")))] >= 1
    assert samples[("compliance_dsar_overdue_requests", (("region", "us"),))] == 0


def test_closed_to_other_networks_and_wrong_tokens(client, settings):
    settings.COMPLIANCE_METRICS_TOKEN = "t0ken-for-metrics"
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 403
    # through a proxy the address is the proxy's: never admitted by it
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR=OUTSIDE).status_code == 403
    wrong = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    assert b"t0ken" not in wrong.content
    good = client.get(
        "/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer t0ken-for-metrics"
    )
    assert good.status_code == 200
    assert b"compliance_http_request_duration_seconds" in good.content


def test_allowed_networks_come_from_the_setting(client, settings):
    settings.COMPLIANCE_METRICS_ALLOW = ["203.0.113.0/24"]
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback no longer listed
    # no token configured: a bearer header opens nothing
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer x").status_code == 401


def _rejections(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_consent_and_event_rejections_are_counted_by_reason(client):
    _, http = api_client(scopes=["consent:write", "events:write"])
    before = _samples(client.get("/metrics"))
    refused = http.post(
        "/api/v1/consents/",
        {
            "identifier": {"type": "email", "value": "rej@example.fr"},
            "source": "no-such-source",
            "jurisdiction": "FR",
            "decisions": [{"purpose": "measurement", "decision": "granted"}],
        },
        format="json",
    )
    assert refused.status_code == 400, refused.content
    SubjectFactory(email="noconsent@example.fr")
    ingested = http.post(
        "/api/v1/events/",
        {
            "events": [
                {
                    "source": "web",
                    "event": "page_view",
                    "identifiers": [{"type": "email", "value": "noconsent@example.fr"}],
                    "time": (timezone.now() - timedelta(minutes=1)).isoformat(),
                    "purpose": "measurement",
                }
            ]
        },
        format="json",
    )
    assert ingested.status_code in (200, 201, 207), ingested.content
    reason = ingested.json()["results"][0]["reason"]
    after = _samples(client.get("/metrics"))
    name = "compliance_consent_rejections_total"
    labels = {"reason": "invalid", "field": "source"}
    assert _rejections(after, name, **labels) == _rejections(before, name, **labels) + 1
    name = "compliance_event_rejections_total"
    assert _rejections(after, name, reason=reason) == _rejections(before, name, reason=reason) + 1
