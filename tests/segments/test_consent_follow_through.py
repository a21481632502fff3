"""Consent follows through: losing a purpose's basis exits the segments that need it, in the
same transaction as the consent record, each exit audited with its reason."""

from __future__ import annotations

import pytest
from django.db import transaction

from compliance.audit.codes import AuditCode
from compliance.consent.services.record import consent_record
from segments.models import SegmentMembership
from segments.services.memberships import memberships_apply
from tests.factories import SegmentFactory, SubjectFactory
from tests.segments.helpers import ACTOR, events

pytestmark = pytest.mark.django_db(databases="__all__")


def _member_of_two(officer, jurisdiction="FR", purposes=("audience_segmentation", "measurement")):
    needs = SegmentFactory(user=officer, required_purposes=list(purposes))
    other = SegmentFactory(user=officer, required_purposes=["email_marketing"])
    person = SubjectFactory(jurisdiction=jurisdiction, consents=[*purposes, "email_marketing"])
    for seg in (needs, other):
        result = memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
        assert result.entered == [person.pk], result.refused
    return person, needs, other


def _stays(person):
    return {
        m.segment_key: m
        for m in SegmentMembership.objects.using(person.region).filter(subject_id=person.pk)
    }


@pytest.mark.parametrize(
    ("decision", "reason"),
    [
        ("withdrawn", "consent_withdrawn"),
        ("denied", "consent_withdrawn"),
        ("objected", "objection"),
        ("expired", "consent_expired"),
    ],
)
def test_losing_basis_exits_segments_requiring_the_purpose(officer, decision, reason):
    person, needs, other = _member_of_two(officer)
    consent_record(
        subject=person,
        purpose="measurement",
        decision=decision,
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )
    stays = _stays(person)
    assert stays[needs.key].exited_at is not None
    assert stays[needs.key].exited_reason == reason
    assert stays[other.key].exited_at is None  # does not need measurement
    [exit_event] = events("eu", AuditCode.MEMBERSHIP_EXITED)
    assert (exit_event.object_id, exit_event.subject_token) == (needs.key, person.audit_token)
    assert exit_event.payload == {
        "reason": reason,
        "membership_id": stays[needs.key].pk,
        "arm": "treatment",
    }
    # the exit follows the consent event on the same chain
    consent_seq = max(
        e.seq
        for e in events("eu", AuditCode.CONSENT_WITHDRAWN)
        + events("eu", AuditCode.CONSENT_EXPIRED)
        + events("eu", AuditCode.CONSENT_RECORDED)
    )
    assert exit_event.seq == consent_seq + 1


def test_gpc_opt_out_exits_ad_audiences(officer):
    person, needs, other = _member_of_two(
        officer, jurisdiction="US-CA", purposes=("ads_personalisation",)
    )
    consent_record(
        subject=person,
        purpose="ads_personalisation",
        decision="opted_out",
        source="web",
        actor=ACTOR,
        method="gpc_header",
        jurisdiction="US-CA",
    )
    stays = _stays(person)
    assert stays[needs.key].exited_reason == "consent_withdrawn"
    assert stays[other.key].exited_at is None
    assert len(events("us", AuditCode.MEMBERSHIP_EXITED)) == 1


def test_follow_through_rolls_back_with_the_consent_record(officer):
    person, needs, _ = _member_of_two(officer)
    with pytest.raises(RuntimeError), transaction.atomic(using="eu"):
        consent_record(
            subject=person,
            purpose="measurement",
            decision="withdrawn",
            source="web",
            actor=ACTOR,
            jurisdiction="FR",
        )
        assert _stays(person)[needs.key].exited_at is not None
        raise RuntimeError("roll back")
    assert _stays(person)[needs.key].exited_at is None
    assert events("eu", AuditCode.MEMBERSHIP_EXITED) == []


def test_withdrawn_subject_cannot_re_enter(officer):
    person, needs, _ = _member_of_two(officer)
    consent_record(
        subject=person,
        purpose="audience_segmentation",
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )
    result = memberships_apply(segment=needs, enters=[person.pk], exits=[], actor=ACTOR)
    assert result.refused == {person.pk: "no_consent:audience_segmentation"}


def test_merge_into_a_withdrawn_survivor_exits_the_merged_subjects_stays(officer):
    """The merged duplicate was a member on its own grant; the person (the survivor) had
    withdrawn. After the merge the person's consent is the survivor's: the stay ends."""
    from compliance.consent.services.stitching import subjects_merge

    person, needs, other = _member_of_two(officer)
    survivor = SubjectFactory(jurisdiction="FR")
    consent_record(
        subject=survivor,
        purpose="measurement",
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )
    subjects_merge(survivor=survivor, merged=person, actor=ACTOR)
    stays = _stays(person)
    assert (stays[needs.key].exited_at is not None, stays[needs.key].exited_reason) == (
        True,
        "consent_withdrawn",
    )
    # email_marketing was granted by the merged side: that stay ends as a merge (the person goes
    # on as the survivor, in the survivor's arm), not as a withdrawal
    assert stays[other.key].exited_reason == "merged"
    exits = events("eu", AuditCode.MEMBERSHIP_EXITED)
    assert [(e.object_id, e.subject_token, e.payload["reason"]) for e in exits] == [
        (needs.key, person.audit_token, "consent_withdrawn"),
        (other.key, person.audit_token, "merged"),
    ]


def test_survivor_withdrawal_also_exits_stays_of_subjects_merged_into_it(officer):
    """Stays a merged subject still holds (merged before merges ended them: segments 0007)
    follow the survivor's consent."""
    from compliance.models import Subject

    person, needs, _ = _member_of_two(officer)
    survivor = SubjectFactory(jurisdiction="FR", consents=["audience_segmentation", "measurement"])
    assert memberships_apply(segment=needs, enters=[survivor.pk], exits=[], actor=ACTOR).entered
    Subject.objects.using("eu").filter(pk=person.pk).update(merged_into=survivor.pk)
    assert _stays(person)[needs.key].exited_at is None
    consent_record(
        subject=survivor,
        purpose="audience_segmentation",
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )
    assert _stays(person)[needs.key].exited_reason == "consent_withdrawn"
    assert _stays(survivor)[needs.key].exited_reason == "consent_withdrawn"
    exits = events("eu", AuditCode.MEMBERSHIP_EXITED)
    assert sorted(e.subject_token for e in exits) == sorted(
        [person.audit_token, survivor.audit_token]
    )
