"""Objection requests: an objection to a legitimate-interest purpose is recorded in the consent
ledger and the person leaves the segments that need that purpose, audited."""

from __future__ import annotations

import pytest

from compliance.audit.codes import AuditCode as C
from compliance.audit.models import AuditEvent
from compliance.consent.models import ConsentEvent
from compliance.consent.selectors.evaluation import can_process
from compliance.consent.services.record import consent_record
from compliance.dsar.models import PrivacyRequest, Status
from compliance.dsar.services.processing import request_process
from segments.models import SegmentMembership
from segments.services.memberships import memberships_apply
from tests.dsar.helpers import ACTOR, api_client, open_body, post_open
from tests.factories import SegmentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def test_objection_to_a_legitimate_interest_purpose_exits_the_segments_needing_it(
    django_capture_on_commit_callbacks,
):
    # in California consent is not required for these purposes: legitimate interests apply
    subject = SubjectFactory(email="olivia@example.com", jurisdiction="US-CA")
    decision = can_process(subject=subject, purpose="measurement", jurisdiction="US-CA")
    assert decision.allowed and decision.basis == "legitimate_interests"
    # records that tie the purposes to California (segments evaluate without a jurisdiction)
    for purpose, basis in (
        ("audience_segmentation", None),
        ("measurement", "legitimate_interests"),
    ):
        consent_record(
            subject=subject,
            purpose=purpose,
            decision="granted",
            source="web",
            actor=ACTOR,
            jurisdiction="US-CA",
            lawful_basis=basis,
        )
    behavioral = SegmentFactory(layers=("behavioral",))  # needs measurement
    demographic = SegmentFactory(layers=("demographic",))  # does not
    for seg in (behavioral, demographic):
        applied = memberships_apply(segment=seg, enters=[subject.pk], exits=[], actor=ACTOR)
        assert applied.entered == [subject.pk], applied.refused
    _, http = api_client()
    with django_capture_on_commit_callbacks(using="us") as callbacks:
        response = post_open(
            http,
            open_body(
                "olivia@example.com",
                type="objection",
                regulation="ccpa",
                jurisdiction="US-CA",
                purposes=["measurement"],
            ),
        )
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "processing"  # objections need no approval
    assert len(callbacks) == 1  # the job is queued after commit
    done = request_process(region="us", request_id=response.json()["id"])  # what the job runs

    assert done.status == Status.COMPLETED
    assert done.result_counts == {"purposes_objected": 1}
    objection = ConsentEvent.objects.using("us").filter(subject_id=subject.pk).latest("id")
    assert (objection.purpose, objection.decision) == ("measurement", "objected")
    after = can_process(subject=subject, purpose="measurement", jurisdiction="US-CA")
    assert not after.allowed and after.reason == "objected"  # everywhere, not only at one source
    assert objection.scope == "global" and objection.lawful_basis == "legitimate_interests"
    assert objection.jurisdiction == "US-CA"
    stays = {
        m.segment_key: m
        for m in SegmentMembership.objects.using("us").filter(subject_id=subject.pk)
    }
    assert stays[behavioral.key].exited_reason == "objection"
    assert stays[behavioral.key].exited_at is not None
    assert stays[demographic.key].exited_at is None  # its purposes keep their basis
    exits = AuditEvent.objects.using("us").filter(code=C.MEMBERSHIP_EXITED)
    assert [(e.object_id, e.subject_token, e.payload) for e in exits] == [
        (
            behavioral.key,
            subject.audit_token,
            {"reason": "objection", "membership_id": stays[behavioral.key].pk, "arm": "treatment"},
        )
    ]
    recorded = AuditEvent.objects.using("us").filter(object_id=str(objection.pk)).get()
    assert recorded.payload["purpose"] == "measurement"
    assert recorded.payload["decision"] == "objected"
    request_events = AuditEvent.objects.using("us").filter(object_id=response.json()["id"])
    assert request_events.last().payload["to"] == "completed"
    assert PrivacyRequest.objects.using("us").get(pk=done.pk).purposes == ["measurement"]
