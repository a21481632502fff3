"""memberships_apply / memberships_exit_all: consent, blockers, idempotence, history, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance import hooks
from compliance.audit.codes import AuditCode
from compliance.models import Subject
from segments.models import LAYER_PURPOSES, ExitReason, SegmentMembership
from segments.selectors.memberships import membership_at, membership_history
from segments.services.memberships import (
    MembershipInputError,
    SubjectRef,
    memberships_apply,
    memberships_exit_all,
)
from tests.factories import ConsentFactory, SegmentFactory, SubjectFactory
from tests.guards import owner_bypass
from tests.segments.helpers import ACTOR, codes, events

pytestmark = pytest.mark.django_db(databases="__all__")
ENTERED, EXITED = AuditCode.MEMBERSHIP_ENTERED, AuditCode.MEMBERSHIP_EXITED


def rows(alias: str, **filters):
    return list(SegmentMembership.objects.using(alias).filter(**filters).order_by("id"))


def test_consented_enters_write_rows_and_one_audit_event_each(officer):
    seg = SegmentFactory(user=officer)
    people = SubjectFactory.create_batch(3, consented=True)
    result = memberships_apply(segment=seg, enters=[p.pk for p in people], exits=[], actor=ACTOR)
    assert sorted(result.entered) == sorted(p.pk for p in people)
    assert result.refused == {} and result.unchanged == {}
    stored = rows("eu", segment_key=seg.key)
    assert len(stored) == 3 and all(r.exited_at is None for r in stored)
    assert all(r.entered_reason == "criteria" and len(r.consent_event_ids) == 2 for r in stored)
    entered = events("eu", ENTERED)
    assert len(entered) == 3
    by_token = {e.subject_token: e for e in entered}
    for person in people:
        event = by_token[person.audit_token]
        membership = next(r for r in stored if r.subject_id == person.pk)
        assert (event.object_type, event.object_id) == ("segment", seg.key)
        assert event.payload == {
            "reason": "criteria",
            "membership_id": membership.pk,
            "arm": "treatment",
        }


def test_consent_event_ids_are_the_grants_that_allowed_entry(officer):
    seg = SegmentFactory(user=officer)
    person = SubjectFactory(jurisdiction="FR")
    grants = [ConsentFactory(subject=person, purpose=p) for p in LAYER_PURPOSES["behavioral"]]
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    [row] = rows("eu", subject_id=person.pk)
    assert row.consent_event_ids == sorted(e.pk for e in grants)


def test_without_consent_subjects_are_refused_and_nothing_is_written(officer):
    seg = SegmentFactory(user=officer)
    ok = SubjectFactory(consented=True)
    partial = SubjectFactory(jurisdiction="FR", consents=["audience_segmentation"])
    none = SubjectFactory(jurisdiction="FR")
    result = memberships_apply(
        segment=seg, enters=[ok.pk, partial.pk, none.pk], exits=[], actor=ACTOR
    )
    assert result.entered == [ok.pk]
    assert result.refused == {
        partial.pk: "no_consent:measurement",
        none.pk: "no_consent:audience_segmentation",
    }
    assert [r.subject_id for r in rows("eu")] == [ok.pk]
    assert codes("eu", ENTERED)[int(ENTERED)] == 1


def test_enters_are_idempotent(officer):
    seg = SegmentFactory(user=officer)
    person = SubjectFactory(consented=True)
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    again = memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    assert again.entered == [] and again.unchanged == {person.pk: "already_member"}
    assert len(rows("eu")) == 1 and len(events("eu", ENTERED)) == 1


@pytest.mark.parametrize("status", ["draft", "approved", "paused", "retired"])
def test_only_active_segments_accept_enters(officer, status):
    from segments.services.definitions import segment_pause, segment_retire

    seg = SegmentFactory(user=officer, status="active" if status == "paused" else "draft")
    if status == "approved":
        seg = SegmentFactory(user=officer, status="approved")
    elif status == "paused":
        seg = segment_pause(segment=seg, user=officer)
    elif status == "retired":
        seg = segment_retire(segment=seg, user=officer)
    person = SubjectFactory(consented=True)
    result = memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    assert result.refused == {person.pk: "segment_not_active"}
    assert rows("eu") == [] and events("eu", ENTERED) == []


def test_paused_segment_still_accepts_exits(officer):
    from segments.services.definitions import segment_pause

    seg = SegmentFactory(user=officer)
    person = SubjectFactory(consented=True)
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    seg = segment_pause(segment=seg, user=officer)
    result = memberships_apply(segment=seg, enters=[], exits=[person.pk], actor=ACTOR)
    assert result.exited == [person.pk]


@pytest.mark.parametrize("reason", ExitReason.values)
def test_each_exit_reason_is_recorded_and_audited(officer, reason):
    seg = SegmentFactory(user=officer)
    person = SubjectFactory(consented=True)
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    result = memberships_apply(
        segment=seg, enters=[], exits=[person.pk], actor=ACTOR, reason=reason
    )
    assert result.exited == [person.pk]
    [row] = rows("eu")
    assert row.exited_reason == reason and row.exited_at is not None
    [event] = events("eu", EXITED)
    assert event.subject_token == person.audit_token
    assert event.payload == {"reason": reason, "membership_id": row.pk, "arm": "treatment"}


def test_exit_of_non_member_is_a_reported_no_op(officer):
    seg = SegmentFactory(user=officer)
    person = SubjectFactory(consented=True)
    result = memberships_apply(segment=seg, enters=[], exits=[person.pk], actor=ACTOR)
    assert result.unchanged == {person.pk: "not_a_member"}
    assert events("eu", EXITED) == []


def test_bad_arguments_raise_and_write_nothing(officer):
    seg = SegmentFactory(user=officer)
    person = SubjectFactory(consented=True)
    with pytest.raises(MembershipInputError):
        memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR, reason="erasure")
    with pytest.raises(MembershipInputError):
        memberships_apply(segment=seg, enters=[person.pk], exits=[person.pk], actor=ACTOR)
    assert rows("eu") == []


def test_unknown_and_merged_subjects_are_refused(officer):
    import uuid

    seg = SegmentFactory(user=officer)
    [person, merged] = SubjectFactory.create_batch(2, consented=True)
    Subject.objects.using("eu").filter(pk=merged.pk).update(merged_into=person.pk)
    stranger = uuid.uuid4()
    result = memberships_apply(
        segment=seg, enters=[stranger, merged.pk, person.pk], exits=[], actor=ACTOR
    )
    assert result.refused == {stranger: "unknown_subject", merged.pk: "merged_subject"}
    assert result.entered == [person.pk]


def test_enter_blockers_are_consulted(officer):
    seg = SegmentFactory(user=officer)
    [blocked, free] = SubjectFactory.create_batch(2, consented=True)

    def blocker(*, region, subject_ids):
        return {sid: "restriction" for sid in subject_ids if sid == blocked.pk}

    hooks.register_enter_blocker(blocker)
    try:
        result = memberships_apply(segment=seg, enters=[blocked.pk, free.pk], exits=[], actor=ACTOR)
    finally:
        hooks._ENTER_BLOCKERS.remove(blocker)
    assert result.refused == {blocked.pk: "restriction"}
    assert result.entered == [free.pk]


def test_subjects_across_regions_land_in_their_own_database(officer):
    seg = SegmentFactory(user=officer, layers=("demographic",))
    eu_people = SubjectFactory.create_batch(
        2, jurisdiction="DE", consents=["audience_segmentation"]
    )
    us_people = SubjectFactory.create_batch(
        2, jurisdiction="US-CA", consents=["audience_segmentation"]
    )
    refs = [p.pk for p in eu_people] + [SubjectRef(p.pk, "us") for p in us_people]
    result = memberships_apply(segment=seg, enters=refs, exits=[], actor=ACTOR)
    assert len(result.entered) == 4, result.refused
    assert {r.subject_id for r in rows("eu")} == {p.pk for p in eu_people}
    assert {r.subject_id for r in rows("us")} == {p.pk for p in us_people}
    assert len(events("eu", ENTERED)) == 2 and len(events("us", ENTERED)) == 2
    assert events("default", ENTERED) == []


def test_history_answers_was_x_in_s_at_t(officer):
    seg = SegmentFactory(user=officer)
    person = SubjectFactory(consented=True)
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    first = rows("eu")[0]
    memberships_apply(segment=seg, enters=[], exits=[person.pk], actor=ACTOR)
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR, reason="manual")
    # pin the times so the question is unambiguous
    t0 = timezone.now() - timedelta(days=10)
    second = rows("eu")[1]
    with owner_bypass("eu"):
        SegmentMembership.objects.using("eu").filter(pk=first.pk).update(
            entered_at=t0, exited_at=t0 + timedelta(days=2)
        )
        SegmentMembership.objects.using("eu").filter(pk=second.pk).update(
            entered_at=t0 + timedelta(days=5)
        )
    ask = lambda days: membership_at(  # noqa: E731
        region="eu", subject_id=person.pk, segment_key=seg.key, at=t0 + timedelta(days=days)
    )
    assert ask(-1) is None
    assert ask(1).pk == first.pk
    assert ask(3) is None
    assert ask(6).pk == second.pk
    history = list(membership_history(region="eu", subject_id=person.pk))
    assert [h.entered_reason for h in history] == ["criteria", "manual"]
    assert history[0].exited_reason == "criteria"


def test_exit_all_exits_every_segment_with_one_event_each(officer):
    segs = [SegmentFactory(user=officer) for _ in range(3)]
    [person, other] = SubjectFactory.create_batch(2, consented=True)
    for seg in segs:
        memberships_apply(segment=seg, enters=[person.pk, other.pk], exits=[], actor=ACTOR)
    assert (
        memberships_exit_all(region="eu", subject_id=person.pk, reason="restriction", actor=ACTOR)
        == 3
    )
    exited = events("eu", EXITED)
    assert len(exited) == 3 and {e.payload["reason"] for e in exited} == {"restriction"}
    assert {e.subject_token for e in exited} == {person.audit_token}
    assert all(r.exited_reason == "restriction" for r in rows("eu", subject_id=person.pk))
    assert all(r.exited_at is None for r in rows("eu", subject_id=other.pk))
    assert (
        memberships_exit_all(region="eu", subject_id=person.pk, reason="restriction", actor=ACTOR)
        == 0
    )


def test_membership_rows_are_registered_as_personal_data():
    from compliance.personal_data import personal_data_models

    labels = {m.label: m for m in personal_data_models()}
    assert labels["segments.SegmentMembership"].subject_field == "subject_id"
