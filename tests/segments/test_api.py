"""Segments API: scopes, governance through the API, memberships by id or identifier."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from compliance.api.auth import token_hash
from compliance.audit.codes import AuditCode
from compliance.models import ApiClient
from segments.models import Segment, SegmentMembership, Status
from tests.factories import SegmentFactory, StaffFactory, SubjectFactory
from tests.segments.helpers import events

pytestmark = pytest.mark.django_db(databases="__all__")


def client_for(name: str, scopes: list[str], user=None) -> APIClient:
    token = f"ctk_{name}_token"
    ApiClient.objects.create(name=name, token_hash=token_hash(token), scopes=scopes, user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


@pytest.fixture
def tool():
    return client_for("clusterer", ["segments:write", "segments:read"])


@pytest.fixture
def officer_api(officer):
    return client_for("officer-tool", ["segments:review", "segments:read"], user=officer)


PROPOSAL = {
    "key": "likely-churn",
    "name": "Likely churn",
    "layers": ["behavioral", "engagement"],
    "origin": "ai_suggested",
    "motion": "campaign",
    "measurement_metric": "retention after 30 days",
    "control_group_share": "0.1",
}


def test_tool_proposes_a_draft_and_can_never_activate(tool, officer_api, officer):
    response = tool.post("/api/v1/segments/", {**PROPOSAL, "owner": "officer1"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft" and body["origin"] == "ai_suggested"
    assert body["required_purposes"] == ["audience_segmentation", "measurement"]
    [created] = events("default", AuditCode.SEGMENT_CREATED)
    assert created.actor_type == "client"
    # the tool lacks segments:review
    for action in ("approve", "activate", "pause", "review"):
        denied = tool.post(f"/api/v1/segments/likely-churn/{action}/")
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "permission_denied"
    assert officer_api.post("/api/v1/segments/likely-churn/approve/").status_code == 200
    activated = officer_api.post("/api/v1/segments/likely-churn/activate/")
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    assert [e.payload["to"] for e in events("default", AuditCode.SEGMENT_STATUS_CHANGED)] == [
        "approved",
        "active",
    ]


def test_review_scope_with_a_token_not_tied_to_an_officer_is_refused():
    agent = StaffFactory(username="agent", group="Support agent")
    api = client_for("agent-tool", ["segments:review"], user=agent)
    no_user = client_for("no-user", ["segments:review"])
    officer = StaffFactory(username="boss")
    SegmentFactory(user=officer, key="s1", status="draft")
    for caller in (api, no_user):
        response = caller.post("/api/v1/segments/s1/approve/")
        assert response.status_code == 403
    assert Segment.objects.get(key="s1").status == Status.DRAFT


def test_proposer_cannot_approve_own_suggestion_through_the_api(officer, officer_api):
    writer = client_for("officer-writer", ["segments:write"], user=officer)
    assert writer.post("/api/v1/segments/", PROPOSAL, format="json").status_code == 201
    response = officer_api.post("/api/v1/segments/likely-churn/approve/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "own_suggestion"


def test_activation_without_measurement_plan_is_a_409_naming_the_field(officer, officer_api):
    SegmentFactory(user=officer, key="s1", status="approved", measurement_metric="")
    response = officer_api.post("/api/v1/segments/s1/activate/")
    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {
        "measurement_metric": [response.json()["error"]["message"]]
    }


def test_illegal_transition_and_unknown_segment(officer, officer_api):
    SegmentFactory(user=officer, key="s1", status="draft")
    assert officer_api.post("/api/v1/segments/s1/pause/").json()["error"]["code"] == (
        "illegal_transition"
    )
    assert officer_api.post("/api/v1/segments/nope/approve/").status_code == 404


def test_bad_definition_input_names_the_field(tool):
    response = tool.post("/api/v1/segments/", {**PROPOSAL, "layers": ["psychic"]}, format="json")
    assert response.status_code == 400
    assert "layers[0]" in response.json()["error"]["fields"] or "layers" in str(
        response.json()["error"]["fields"]
    )
    response = tool.post("/api/v1/segments/", {**PROPOSAL, "owner": "ghost"}, format="json")
    assert response.status_code == 400 and "owner" in response.json()["error"]["fields"]
    assert not Segment.objects.exists()


def test_list_and_detail(tool, officer):
    SegmentFactory(user=officer, key="a1")
    page = tool.get("/api/v1/segments/").json()
    listed = page["results"]
    assert [s["key"] for s in listed] == ["a1"] and listed[0]["owner"] == "officer1"
    assert page["count"] == 1 and page["next"] is None and page["previous"] is None
    for key in ("b2", "c3"):
        SegmentFactory(user=officer, key=key)
    first = tool.get("/api/v1/segments/", {"limit": 2}).json()
    assert [s["key"] for s in first["results"]] == ["a1", "b2"] and first["count"] == 3
    SegmentFactory(user=officer, key="a0")  # inserted before the cursor: not repeated
    rest = tool.get(first["next"].split("testserver")[1]).json()
    assert [s["key"] for s in rest["results"]] == ["c3"] and rest["next"] is None
    assert tool.get("/api/v1/segments/", {"status": "bogus"}).status_code == 400
    assert tool.get("/api/v1/segments/a1/").json()["status"] == "active"


def test_memberships_by_subject_id_and_identifier(tool, officer):
    seg = SegmentFactory(user=officer, key="buyers")
    [by_id, by_email] = SubjectFactory.create_batch(2, consented=True)
    stranger_email = "nobody@example.org"
    from compliance.models import Identity
    from compliance.services.subjects import identity_value

    identity = Identity.objects.using("eu").get(subject_id=by_email.pk)
    email = identity_value(identity=identity, subject=by_email)
    response = tool.post(
        "/api/v1/segments/buyers/memberships/",
        {
            "enters": [
                {"subject_id": str(by_id.pk)},
                {"identifier_type": "email", "value": email},
                {"identifier_type": "email", "value": stranger_email},
            ]
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert sorted(body["entered"]) == sorted([str(by_id.pk), str(by_email.pk)])
    assert body["refused"] == [
        {"item": "enters[2]", "subject_id": None, "reason": "unknown_subject"}
    ]
    assert SegmentMembership.objects.using("eu").filter(segment_key=seg.key).count() == 2
    again = tool.post(
        "/api/v1/segments/buyers/memberships/",
        {"exits": [{"subject_id": str(by_id.pk)}], "enters": [{"subject_id": str(by_email.pk)}]},
        format="json",
    ).json()
    assert again["exited"] == [str(by_id.pk)]
    assert again["unchanged"] == [{"subject_id": str(by_email.pk), "reason": "already_member"}]


def test_memberships_input_errors_write_nothing(tool, officer):
    SegmentFactory(user=officer, key="buyers")
    person = SubjectFactory(consented=True)
    too_many = [{"subject_id": str(person.pk)}] * 10_001
    response = tool.post(
        "/api/v1/segments/buyers/memberships/", {"enters": too_many}, format="json"
    )
    assert response.status_code == 400 and "enters" in response.json()["error"]["fields"]
    response = tool.post(
        "/api/v1/segments/buyers/memberships/",
        {"enters": [{"subject_id": str(person.pk)}], "reason": "erasure"},
        format="json",
    )
    assert response.status_code == 400 and "reason" in response.json()["error"]["fields"]
    response = tool.post(
        "/api/v1/segments/buyers/memberships/", {"enters": [{"subject_id": "x"}]}, format="json"
    )
    assert response.status_code == 400
    assert SegmentMembership.objects.using("eu").count() == 0


def test_members_are_paginated_per_region_and_history(tool, officer):
    seg = SegmentFactory(user=officer, key="buyers")
    people = SubjectFactory.create_batch(3, consented=True)
    tool.post(
        "/api/v1/segments/buyers/memberships/",
        {"enters": [{"subject_id": str(p.pk)} for p in people]},
        format="json",
    )
    page = tool.get("/api/v1/segments/buyers/members/?region=eu&limit=2").json()
    assert len(page["results"]) == 2 and page["next"] and page["previous"] is None
    rest = tool.get(page["next"].split("testserver")[1]).json()
    assert len(rest["results"]) == 1 and rest["next"] is None and rest["previous"]
    assert tool.get("/api/v1/segments/buyers/members/?region=us").json()["results"] == []
    bad = tool.get("/api/v1/segments/buyers/members/?region=mars")
    assert bad.status_code == 400 and "region" in bad.json()["error"]["fields"]
    history = tool.get(f"/api/v1/segments/buyers/members/{people[0].pk}/history").json()
    assert history["region"] == "eu" and len(history["stays"]) == 1
    assert history["stays"][0]["segment_key"] == seg.key
    at = tool.get(
        f"/api/v1/segments/buyers/members/{people[0].pk}/history/",
        {"at": "2001-01-01T00:00:00Z"},
    ).json()
    assert at["member_at"] is False
    assert (
        tool.get(
            f"/api/v1/segments/buyers/members/{people[0].pk}/history", {"at": "yesterday"}
        ).status_code
        == 400
    )


def test_read_scope_required(officer):
    writer_only = client_for("writer", ["segments:write"])
    assert writer_only.get("/api/v1/segments/").status_code == 403
    assert APIClient().get("/api/v1/segments/").status_code == 401
