"""Outbox rows are written with the change, in the same region transaction, in feed order."""

from __future__ import annotations

import pytest
from django.db import transaction

from compliance.feed.models import Change
from compliance.feed.selectors.changes import changes_after
from compliance.feed.services.outbox import ChangeInput, changes_record, exit_kind
from tests.factories import ACTOR, ConsentFactory, SegmentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def test_consent_change_writes_an_outbox_row_in_the_same_transaction():
    person = SubjectFactory(jurisdiction="FR")
    ConsentFactory(subject=person, purpose="measurement", decision="granted")
    rows = list(Change.objects.using("eu").filter(subject_id=person.pk))
    assert [(r.kind, r.purpose, r.decision, r.source) for r in rows] == [
        ("consent", "measurement", "granted", "web")
    ]
    assert not Change.objects.using("us").filter(subject_id=person.pk).exists()


def test_rolled_back_consent_change_leaves_no_outbox_row():
    person = SubjectFactory(jurisdiction="FR")
    with pytest.raises(RuntimeError), transaction.atomic(using="eu"):
        ConsentFactory(subject=person, purpose="measurement", decision="granted")
        raise RuntimeError("roll back")
    assert not Change.objects.using("eu").filter(subject_id=person.pk).exists()


def test_membership_enter_and_withdrawal_exit_are_enter_and_retract(officer):
    from segments.services.memberships import memberships_apply

    person = SubjectFactory(consented=True)
    seg = SegmentFactory(user=officer)
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    from compliance.consent.services.record import consent_record

    consent_record(
        subject=person,
        purpose="audience_segmentation",
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )
    kinds = [
        (c.kind, c.segment_key, c.reason)
        for c in changes_after(region="eu", limit=100)
        if c.subject_id == person.pk and (c.kind != "consent" or c.decision == "withdrawn")
    ]
    assert kinds == [
        ("enter", seg.key, "criteria"),
        ("consent", "", "api"),
        ("retract", seg.key, "consent_withdrawn"),
    ]


def test_plain_exit_is_exit_and_policy_exits_are_retract():
    assert exit_kind(reason="criteria") == "exit"
    assert exit_kind(reason="manual") == "exit"
    for reason in ("consent_withdrawn", "consent_expired", "objection", "erasure"):
        assert exit_kind(reason=reason) == "retract"


def test_changes_after_pages_in_order_and_filters():
    from django.utils import timezone

    person = SubjectFactory(jurisdiction="FR")
    now = timezone.now()
    with transaction.atomic(using="eu"):
        changes_record(
            using="eu",
            changes=[
                ChangeInput("enter", person.pk, now, segment_key=f"s{i}", ref_id=i)
                for i in range(5)
            ],
        )
    first = changes_after(region="eu", limit=2, kinds=["enter"])
    rest = changes_after(region="eu", after=first[-1].pk, kinds=["enter"])
    keys = [c.segment_key for c in first + rest if c.subject_id == person.pk]
    assert keys == ["s0", "s1", "s2", "s3", "s4"]
    only = changes_after(region="eu", kinds=["enter"], segments=["s3"])
    assert [c.segment_key for c in only] == ["s3"]
    assert changes_after(region="us", kinds=["enter"]) == []
