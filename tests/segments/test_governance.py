"""Governance rules of segment definitions, each audited on the control chain."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.models import ApiClient
from compliance.roles import SUPPORT_AGENT
from segments.checks import check_active_segments_per_motion
from segments.models import Segment, Status
from segments.selectors.segments import segment_review_due, segments_review_overdue
from segments.services.definitions import (
    SegmentGovernanceError,
    segment_activate,
    segment_approve,
    segment_create,
    segment_pause,
    segment_retire,
    segment_update,
)
from segments.services.reviews import segment_review
from segments.tasks import pause_overdue_segments
from tests.factories import SegmentFactory, StaffFactory
from tests.segments.helpers import events

pytestmark = pytest.mark.django_db(databases="__all__")


def test_create_derives_purposes_from_layers_and_is_audited(officer):
    seg = segment_create(
        key="tech-buyers",
        name="Tech buyers",
        layers=["technographic", "firmographic"],
        user=officer,
    )
    assert seg.status == Status.DRAFT
    assert seg.required_purposes == ["audience_segmentation", "storage"]
    [event] = events("default", AuditCode.SEGMENT_CREATED)
    assert (event.object_type, event.object_id) == ("segment", "tech-buyers")
    assert event.payload["from"] == "" and event.payload["to"] == "draft"
    assert "layers" in event.payload["fields"] and "required_purposes" in event.payload["fields"]
    assert event.actor_type == "user" and event.actor_id == str(officer.pk)


def test_required_purposes_are_editable_and_unknown_purpose_refused(officer):
    seg = segment_create(
        key="s1",
        name="S",
        layers=["demographic"],
        required_purposes=["email_marketing"],
        user=officer,
    )
    assert seg.required_purposes == ["email_marketing"]
    with pytest.raises(SegmentGovernanceError) as err:
        segment_create(key="s2", name="S", layers=["demographic"], required_purposes=["nope"])
    assert err.value.field == "required_purposes"
    assert not Segment.objects.filter(key="s2").exists()


def test_update_audits_changed_fields_only(officer):
    seg = SegmentFactory(user=officer, status="draft")
    segment_update(segment=seg, changes={"name": "Renamed", "motion": "campaign"}, user=officer)
    [event] = events("default", AuditCode.SEGMENT_CHANGED)
    assert event.payload == {"from": "draft", "to": "draft", "fields": ["name"]}
    with pytest.raises(SegmentGovernanceError, match="not editable"):
        segment_update(segment=seg, changes={"status": "active"}, user=officer)


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ({"owner": None}, "owner"),
        ({"motion": ""}, "motion"),
        ({"measurement_metric": ""}, "measurement_metric"),
        ({"control_group_share": None}, "control_group_share"),
    ],
)
def test_no_activation_without_owner_motion_and_measurement_plan(officer, missing, field):
    seg = SegmentFactory(user=officer, status="approved", **missing)
    with pytest.raises(SegmentGovernanceError) as err:
        segment_activate(segment=seg, user=officer)
    assert err.value.code == "incomplete" and err.value.field == field
    seg.refresh_from_db()
    assert seg.status == Status.APPROVED
    assert not events("default", AuditCode.SEGMENT_STATUS_CHANGED)[1:]  # only the approval


def test_activation_is_audited_with_from_and_to(officer):
    seg = SegmentFactory(user=officer, status="active")
    changes = events("default", AuditCode.SEGMENT_STATUS_CHANGED)
    assert [(e.payload["from"], e.payload["to"]) for e in changes] == [
        ("draft", "approved"),
        ("approved", "active"),
    ]
    assert seg.status == Status.ACTIVE and seg.approved_by == officer


def test_ai_suggestion_needs_approval_by_someone_else(officer, other_officer):
    seg = SegmentFactory(user=officer, status="draft", origin="ai_suggested")
    with pytest.raises(SegmentGovernanceError) as err:
        segment_approve(segment=seg, user=officer)
    assert err.value.code == "own_suggestion"
    assert Segment.objects.get(pk=seg.pk).status == Status.DRAFT
    approved = segment_approve(segment=seg, user=other_officer)
    assert approved.status == Status.APPROVED and approved.approved_by == other_officer


def test_ai_suggestion_of_a_tool_cannot_be_approved_through_the_same_tool(officer):
    tool = ApiClient.objects.create(name="clusterer", token_hash="x" * 64, user=officer)
    seg = segment_create(
        key="ai-1", name="AI", layers=["intent"], origin="ai_suggested", client=tool
    )
    assert seg.proposed_by is None and seg.proposed_by_client == tool
    with pytest.raises(SegmentGovernanceError, match="other than its proposer"):
        segment_approve(segment=seg, user=officer, client=tool)
    assert segment_approve(segment=seg, user=officer).status == Status.APPROVED


def test_manual_segment_may_be_approved_by_its_author(officer):
    seg = SegmentFactory(user=officer, status="draft")
    assert segment_approve(segment=seg, user=officer).status == Status.APPROVED


@pytest.mark.parametrize(
    ("start", "action"),
    [
        ("draft", segment_activate),
        ("draft", segment_pause),
        ("approved", segment_pause),
        ("approved", segment_approve),
        ("active", segment_approve),
        ("active", segment_activate),
    ],
)
def test_illegal_transitions_are_errors(officer, start, action):
    seg = SegmentFactory(user=officer, status=start)
    before = len(events("default", AuditCode.SEGMENT_STATUS_CHANGED))
    with pytest.raises(SegmentGovernanceError) as err:
        action(segment=seg, user=officer)
    assert err.value.code == "illegal_transition"
    assert len(events("default", AuditCode.SEGMENT_STATUS_CHANGED)) == before


def test_retired_is_final(officer):
    seg = SegmentFactory(user=officer, status="active")
    seg = segment_retire(segment=seg, user=officer)
    for action in (segment_activate, segment_approve, segment_pause, segment_retire):
        with pytest.raises(SegmentGovernanceError):
            action(segment=seg, user=officer)
    with pytest.raises(SegmentGovernanceError, match="retired"):
        segment_update(segment=seg, changes={"name": "x"}, user=officer)


def test_pause_and_reactivate(officer):
    seg = SegmentFactory(user=officer, status="active")
    seg = segment_pause(segment=seg, user=officer)
    assert seg.status == Status.PAUSED
    assert segment_activate(segment=seg, user=officer).status == Status.ACTIVE


def test_support_agent_cannot_approve_activate_or_change(officer):
    agent = StaffFactory(username="agent", group=SUPPORT_AGENT)
    assert agent.has_perm("segments.view_segment")
    for perm in (
        "approve_segment",
        "activate_segment",
        "review_segment",
        "change_segment",
        "add_segment",
        "delete_segment",
    ):
        assert not agent.has_perm(f"segments.{perm}"), perm
    assert officer.has_perm("segments.approve_segment")
    seg = SegmentFactory(user=officer, status="draft")
    with pytest.raises(SegmentGovernanceError, match="may not approve"):
        segment_approve(segment=seg, user=agent)
    with pytest.raises(SegmentGovernanceError, match="may not change"):
        segment_update(segment=seg, changes={"name": "x"}, user=agent)
    approved = segment_approve(segment=seg, user=officer)
    with pytest.raises(SegmentGovernanceError, match="may not activate"):
        segment_activate(segment=approved, user=agent)


def test_tools_without_a_user_cannot_activate(officer):
    seg = SegmentFactory(user=officer, status="approved")
    with pytest.raises(SegmentGovernanceError, match="needs a staff user"):
        segment_activate(segment=seg, user=None)


def test_review_due_flag_and_review_resets_it(officer):
    seg = SegmentFactory(user=officer, status="active", review_interval_days=30)
    Segment.objects.filter(pk=seg.pk).update(approved_at=timezone.now() - timedelta(days=10))
    seg.refresh_from_db()
    later = timezone.now() + timedelta(days=25)
    assert not segment_review_due(segment=seg)
    assert segment_review_due(segment=seg, now=later)
    assert [s.key for s in segments_review_overdue(now=later)] == [seg.key]
    seg = segment_review(segment=seg, user=officer)
    assert not segment_review_due(segment=seg, now=later)
    [event] = events("default", AuditCode.SEGMENT_REVIEWED)
    assert event.payload == {
        "from": "active",
        "to": "active",
        "fields": ["last_reviewed_at"],
        "decision": "",  # none recorded
        "lift": None,  # no lift computed
    }


def _make_overdue(seg):
    Segment.objects.filter(pk=seg.pk).update(
        approved_at=timezone.now() - timedelta(days=100), review_interval_days=90
    )


def test_daily_job_pauses_overdue_segments_only_when_the_setting_says_so(officer, settings):
    overdue = SegmentFactory(user=officer, status="active")
    fresh = SegmentFactory(user=officer, status="active")
    _make_overdue(overdue)
    settings.COMPLIANCE_SEGMENTS_PAUSE_OVERDUE = False
    assert pause_overdue_segments() == []
    assert Segment.objects.get(pk=overdue.pk).status == Status.ACTIVE
    settings.COMPLIANCE_SEGMENTS_PAUSE_OVERDUE = True
    assert pause_overdue_segments() == [overdue.key]
    assert Segment.objects.get(pk=overdue.pk).status == Status.PAUSED
    assert Segment.objects.get(pk=fresh.pk).status == Status.ACTIVE
    last = events("default", AuditCode.SEGMENT_STATUS_CHANGED)[-1]
    assert (last.object_id, last.actor_type, last.actor_id) == (
        overdue.key,
        "system",
        "review_overdue",
    )
    assert last.payload["from"] == "active" and last.payload["to"] == "paused"
    assert pause_overdue_segments() == []  # idempotent


def test_beat_schedule_has_the_daily_job():
    from segments.schedule import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["segments-pause-overdue"]["task"] == "segments.pause_overdue_segments"


def test_check_warns_for_motions_outside_three_to_seven(officer):
    assert check_active_segments_per_motion() == []
    for _ in range(2):
        SegmentFactory(user=officer, motion="campaign")
    for _ in range(3):
        SegmentFactory(user=officer, motion="sales_play")
    warnings = check_active_segments_per_motion()
    assert [w.id for w in warnings] == ["segments.W001"]
    assert "'campaign' has 2 active segments" in warnings[0].msg
    for _ in range(6):
        SegmentFactory(user=officer, motion="campaign")
    [warning] = check_active_segments_per_motion()
    assert "has 8 active" in warning.msg
