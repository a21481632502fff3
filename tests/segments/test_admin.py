"""Admin: list columns, governance actions through the service, membership history."""

from __future__ import annotations

import pytest
from django.test import Client

from compliance.audit.codes import AuditCode
from compliance.roles import SUPPORT_AGENT
from segments.models import Segment, SegmentMembership, Status
from segments.services.memberships import memberships_apply
from tests.factories import SegmentFactory, StaffFactory, SubjectFactory
from tests.segments.helpers import ACTOR, events

pytestmark = pytest.mark.django_db(databases="__all__")


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_changelist_shows_status_counts_and_review_flag(officer):
    seg = SegmentFactory(user=officer, key="buyers")
    people = SubjectFactory.create_batch(2, consented=True)
    memberships_apply(segment=seg, enters=[p.pk for p in people], exits=[], actor=ACTOR)
    page = login(officer).get("/admin/segments/segment/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "buyers" in html and "EU: 2" in html and "Approve selected segments" in html


def test_approve_action_goes_through_the_service(officer, other_officer):
    seg = SegmentFactory(user=officer, key="ai", status="draft", origin="ai_suggested")
    response = login(officer).post(
        "/admin/segments/segment/",
        {"action": "approve", "_selected_action": [seg.pk]},
        follow=True,
    )
    assert "other than its proposer" in response.content.decode()
    assert Segment.objects.get(pk=seg.pk).status == Status.DRAFT
    login(other_officer).post(
        "/admin/segments/segment/", {"action": "approve", "_selected_action": [seg.pk]}
    )
    assert Segment.objects.get(pk=seg.pk).status == Status.APPROVED
    assert events("default", AuditCode.SEGMENT_STATUS_CHANGED)[-1].actor_id == str(other_officer.pk)


def test_support_agent_sees_no_governance_actions(officer):
    agent = StaffFactory(username="agent", group=SUPPORT_AGENT)
    agent.is_superuser = False
    seg = SegmentFactory(user=officer, key="s1", status="draft")
    client = login(agent)
    page = client.get("/admin/segments/segment/")
    assert page.status_code == 200
    assert "Approve selected segments" not in page.content.decode()
    client.post("/admin/segments/segment/", {"action": "approve", "_selected_action": [seg.pk]})
    assert Segment.objects.get(pk=seg.pk).status == Status.DRAFT
    assert client.get(f"/admin/segments/segment/{seg.pk}/change/").status_code == 200
    response = client.post(f"/admin/segments/segment/{seg.pk}/change/", {"name": "x"})
    assert response.status_code == 403


def test_admin_add_form_creates_through_the_service(officer):
    response = login(officer).post(
        "/admin/segments/segment/add/",
        {
            "key": "made-in-admin",
            "name": "Admin made",
            "layers": '["demographic"]',
            "required_purposes": '["audience_segmentation"]',
            "origin": "manual",
            "review_interval_days": 90,
            "attribution_window_days": 60,
            "conversion_event": "deal_won",
            "description": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    seg = Segment.objects.get(key="made-in-admin")
    assert (seg.conversion_event, seg.attribution_window_days) == ("deal_won", 60)
    assert seg.proposed_by == officer
    assert events("default", AuditCode.SEGMENT_CREATED)[-1].object_id == "made-in-admin"


def test_membership_history_per_region(officer):
    seg = SegmentFactory(user=officer, key="buyers")
    person = SubjectFactory(consented=True)
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    page = login(officer).get(
        "/admin/segments/segmentmembership/", {"region": "eu", "q": str(person.pk)}
    )
    assert page.status_code == 200 and "buyers" in page.content.decode()
    assert (
        "buyers"
        not in login(officer)
        .get("/admin/segments/segmentmembership/", {"region": "us"})
        .content.decode()
        .split("result_list")[-1]
    )


def test_membership_history_shows_and_filters_the_arm(officer):
    seg = SegmentFactory(user=officer, key="held", control_group_share="0.5", holdout=True)
    people = [SubjectFactory(consented=True) for _ in range(16)]
    memberships_apply(segment=seg, enters=[p.pk for p in people], exits=[], actor=ACTOR)
    arms = dict(
        SegmentMembership.objects.using("eu")
        .filter(segment_key="held")
        .values_list("subject_id", "arm")
    )
    assert set(arms.values()) == {"control", "treatment"}  # 16 at 0.5: both (1 - 2^-15)
    client = login(officer)
    listing = client.get("/admin/segments/segmentmembership/", {"region": "eu"}).content.decode()
    assert "column-arm" in listing
    control = client.get(
        "/admin/segments/segmentmembership/", {"region": "eu", "arm": "control"}
    ).content.decode()
    rows = control.split("result_list")[-1]
    for sid, arm in arms.items():
        assert (str(sid) in rows) == (arm == "control")
