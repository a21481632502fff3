"""memberships_close, the one stay-closing primitive: what it selects (subjects, segment keys,
stay ids), what it returns (stays and their unappended audit entries), and its callers
(consent follow-through over several segments, retention)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import audit_append
from compliance.consent.models import ConsentEvent
from compliance.consent.services.record import consent_record
from compliance.retention.models import RetentionRule
from compliance.retention.services.consent import _consent_remove
from compliance.retention.services.run import RuleRun
from segments.models import SegmentMembership
from segments.services.exits import (
    memberships_close,
    memberships_closed_publish,
    memberships_exit_subjects,
)
from segments.services.memberships import MembershipInputError, memberships_apply
from tests.factories import SegmentFactory, SubjectFactory
from tests.guards import owner_bypass
from tests.segments.helpers import ACTOR, events

pytestmark = pytest.mark.django_db(databases="__all__")


def _open(person) -> dict[str, int]:
    return dict(
        SegmentMembership.objects.using("eu")
        .filter(subject_id=person.pk, exited_at__isnull=True)
        .values_list("segment_key", "id")
    )


def _member_of(officer, n: int, person=None, **kw):
    segs = [SegmentFactory(user=officer, **kw) for _ in range(n)]
    person = person or SubjectFactory(consented=True)
    for seg in segs:
        assert memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR).entered
    return person, segs


def test_close_by_segment_keys_closes_only_those_segments(officer):
    person, segs = _member_of(officer, 3)
    other = SubjectFactory(consented=True)
    memberships_apply(segment=segs[0], enters=[other.pk], exits=[], actor=ACTOR)
    closed = memberships_exit_subjects(
        region="eu",
        subject_ids=[person.pk, other.pk],
        reason="manual",
        actor=ACTOR,
        segment_keys=[segs[0].key, segs[1].key],
    )
    assert closed == 3
    assert set(_open(person)) == {segs[2].key} and _open(other) == {}
    exited = events("eu", AuditCode.MEMBERSHIP_EXITED)
    assert sorted(e.object_id for e in exited) == sorted([segs[0].key, segs[0].key, segs[1].key])
    assert {e.subject_token for e in exited} == {person.audit_token, other.audit_token}


def test_close_by_stay_ids_returns_stays_and_entries_not_appended(officer):
    person, segs = _member_of(officer, 2)
    stay = _open(person)[segs[1].key]
    with transaction.atomic(using="eu"):
        closed = memberships_close(alias="eu", stay_ids=[stay], reason="manual", actor=ACTOR)
        assert closed.stays == [(stay, person.pk, segs[1].key)]
        assert events("eu", AuditCode.MEMBERSHIP_EXITED) == []  # the caller appends
        [entry] = closed.entries
        assert entry.subject_token == person.audit_token
        assert entry.payload == {"reason": "manual", "membership_id": stay, "arm": "treatment"}
        audit_append(using="eu", entries=closed.entries, at=closed.at)
        assert memberships_closed_publish(alias="eu", closed=closed) == 1
    assert set(_open(person)) == {segs[0].key}
    with transaction.atomic(using="eu"):  # already closed: nothing twice
        assert (
            memberships_close(alias="eu", stay_ids=[stay], reason="manual", actor=ACTOR).stays == []
        )


def test_close_needs_a_selection_and_a_known_reason():
    with pytest.raises(MembershipInputError, match="subject ids or stay ids"):
        memberships_close(alias="eu", segment_keys=["x"], reason="manual", actor=ACTOR)
    with pytest.raises(MembershipInputError, match="unknown exit reason"):
        memberships_close(alias="eu", subject_ids=[], reason="bored", actor=ACTOR)


def test_losing_a_purpose_exits_every_segment_requiring_it(officer):
    purposes = ["audience_segmentation", "measurement"]
    person, needing = _member_of(officer, 2, required_purposes=purposes)
    _, [unrelated] = _member_of(officer, 1, person=person, required_purposes=["measurement"])
    consent_record(
        subject=person,
        purpose="audience_segmentation",
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )
    assert set(_open(person)) == {unrelated.key}
    exited = events("eu", AuditCode.MEMBERSHIP_EXITED)
    assert sorted(e.object_id for e in exited) == sorted(s.key for s in needing)
    assert {e.payload["reason"] for e in exited} == {"consent_withdrawn"}


def test_retention_closes_a_stay_before_the_consent_it_entered_on_goes(officer):
    """A stay that entered after retention found its subject inactive is closed (reason
    ``retention``, audited) in the transaction that removes the subject's consent events."""
    person, [seg] = _member_of(officer, 1)
    long_ago = timezone.now() - timedelta(days=400)
    with owner_bypass("eu"):  # consent given long ago (older than the rule and its floor)
        ConsentEvent.objects.using("eu").filter(subject_id=person.pk).update(received_at=long_ago)
    rule = RetentionRule.objects.create(category="consent_events", region="eu", max_age_days=30)
    run = RuleRun(
        rule=rule,
        alias="eu",
        cutoff=timezone.now() - timedelta(days=30),
        dry_run=False,
        batch=100,
        held=set(),
        actor=ACTOR,
    )
    counts = {"consent.ConsentEvent": 0, "consent.ConsentState": 0}
    with transaction.atomic(using="eu"):
        exited = _consent_remove(run, erased=[], inactive=[person.pk], counts=counts)
    assert exited == 1 and _open(person) == {}
    assert counts["consent.ConsentEvent"] == 2
    [event] = events("eu", AuditCode.MEMBERSHIP_EXITED)
    assert (event.object_id, event.payload["reason"]) == (seg.key, "retention")
