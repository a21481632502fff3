"""Tracking plans through the API: versions, the audit entry with the plan's SHA-256,
validation of the schemas themselves, scopes."""

from __future__ import annotations

import hashlib
import json

import pytest

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.plans.models import TrackingPlan
from tests.events.conftest import api_client
from tests.factories.plans import WEB_EVENTS

pytestmark = pytest.mark.django_db(databases="__all__")
URL = "/api/v1/sources/web/tracking-plan/"


def body(mode="flag", events=WEB_EVENTS, identifier_types=("email",)):
    return {"mode": mode, "events": list(events), "identifier_types": list(identifier_types)}


def canonical_sha(document: dict) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_put_makes_a_new_version_each_time_and_get_lists_them():
    writer = api_client("sources:write", "sources:read")
    first = writer.put(URL, body(), format="json")
    assert first.status_code == 201, first.content
    assert first.json()["current"]["version"] == 1
    second = writer.put(URL, body(mode="block", identifier_types=[]), format="json")
    assert second.status_code == 201

    got = api_client("sources:read").get(URL).json()
    assert got["source"] == "web"
    assert [v["version"] for v in got["versions"]] == [2, 1]
    assert got["current"]["mode"] == "block" and got["current"]["identifier_types"] == []
    assert got["versions"][1]["mode"] == "flag"
    assert [e["name"] for e in got["current"]["events"]] == ["page_view", "signup"]
    assert TrackingPlan.objects.filter(source__key="web").count() == 2


def test_each_version_is_audited_with_the_sha256_of_its_canonical_json():
    writer = api_client("sources:write", "sources:read")
    writer.put(URL, body(), format="json")
    writer.put(URL, body(), format="json")  # same plan again: still a version, "unchanged"

    entries = list(
        AuditEvent.objects.using("default")
        .filter(code=AuditCode.TRACKING_PLAN_PUBLISHED)
        .order_by("seq")
    )
    assert [e.object_id for e in entries] == ["web:v1", "web:v2"]
    plan = TrackingPlan.objects.get(source__key="web", version=1)
    expected = canonical_sha({"mode": "flag", "events": plan.events, "identifier_types": ["email"]})
    assert plan.sha256 == expected
    assert entries[0].payload["sha256"] == expected and entries[0].payload["version"] == 1
    assert entries[0].payload["unchanged"] is False
    assert entries[1].payload["unchanged"] is True
    assert entries[1].payload["previous_sha256"] == expected
    assert {e.actor_type for e in entries} == {"client"}


def test_invalid_schema_is_a_400_naming_its_path_and_nothing_is_saved():
    events = [*WEB_EVENTS, {"name": "broken", "schema": {"type": "object", "minProperties": -1}}]
    response = api_client("sources:write").put(URL, body(events=events), format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert list(fields) == ["events[2].schema"]
    assert "draft 2020-12" in fields["events[2].schema"][0]
    assert not TrackingPlan.objects.exists()


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"mode": "drop", "events": []}, "mode"),
        ({"mode": "flag", "events": [{"name": ""}]}, "events[0].name"),
        ({"mode": "flag", "events": [{"name": "a"}, {"name": "a"}]}, "events[1].name"),
        (
            {"mode": "flag", "events": [{"name": "a", "schema": {"type": "string"}}]},
            "events[0].schema",
        ),
        ({"mode": "flag", "events": [], "identifier_types": ["ssn"]}, "identifier_types[0]"),
        ({"mode": "flag", "events": [], "extra": 1}, "extra"),
    ],
)
def test_document_problems_name_their_field(document, field):
    response = api_client("sources:write").put(URL, document, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_scopes_and_unknown_source():
    assert api_client("sources:read").put(URL, body(), format="json").status_code == 403
    assert api_client("events:write").get(URL).status_code == 403
    missing = api_client("sources:read").get("/api/v1/sources/nope/tracking-plan/")
    assert missing.status_code == 404
    empty = api_client("sources:read").get(URL).json()
    assert empty == {"source": "web", "current": None, "versions": []}
