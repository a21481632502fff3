"""Holdout arms on the write path (issue #17): ``memberships_apply`` gives each new stay the
arm ``segments.holdout`` derives, stores it on the stay, in its audit entries and in its
change-feed rows; it is stable across exits, re-entries, merges and process restarts."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from compliance.audit.codes import AuditCode
from compliance.consent.services.record import consent_record
from compliance.consent.services.stitching import subjects_merge
from compliance.feed.models import Change
from segments.holdout import (
    CONTROL,
    TREATMENT,
    holdout_arm,
    holdout_arms,
    holdout_salt_new,
    holdout_unit,
)
from segments.models import Segment, SegmentMembership
from segments.services.memberships import SubjectRef, memberships_apply
from tests.factories import SegmentFactory, SubjectFactory
from tests.segments.helpers import ACTOR, events

pytestmark = pytest.mark.django_db(databases="__all__")


def _stays(seg, **filters) -> dict:
    rows = SegmentMembership.objects.using("eu").filter(segment_key=seg.key, **filters)
    return {m.subject_id: m for m in rows}


def _people(n: int) -> list:
    return [SubjectFactory(consented=True) for _ in range(n)]


def _both_arms(seg, people) -> tuple:
    """One subject of each arm among ``people`` (the share makes both likely)."""
    arms = {
        holdout_arm(salt=seg.holdout_salt, subject_id=p.pk, share=seg.control_group_share): p
        for p in people
    }
    assert set(arms) == {CONTROL, TREATMENT}, "draw more people"
    return arms[CONTROL], arms[TREATMENT]


def test_batch_assignment_is_the_published_function():
    salt = holdout_salt_new()
    ids = [str(uuid.uuid4()) for _ in range(20_000)]
    for share in (0.001, 0.1, 0.5, 0.999):
        arms = holdout_arms(salt=salt, share=share, subject_texts=ids)
        assert arms == [holdout_arm(salt=salt, subject_id=s, share=share) for s in ids]
        assert arms == [
            CONTROL if holdout_unit(salt=salt, subject_id=s) < share else TREATMENT for s in ids
        ]
    assert holdout_arms(salt="", share=0.5, subject_texts=ids[:3]) == [TREATMENT] * 3
    assert holdout_arms(salt=salt, share=None, subject_texts=ids[:3]) == [TREATMENT] * 3


@pytest.mark.parametrize("share", [0.05, 0.1, 0.3])
def test_observed_control_share_over_100000_subjects_within_half_a_point(share):
    ids = [str(uuid.uuid4()) for _ in range(100_000)]
    arms = holdout_arms(salt=holdout_salt_new(), share=share, subject_texts=ids)
    assert abs(arms.count(CONTROL) / len(ids) - share) < 0.005


def test_memberships_apply_assigns_every_subject_as_u_says_and_audits_the_arm(officer):
    seg = SegmentFactory(user=officer, control_group_share="0.4", holdout=True)
    assert len(seg.holdout_salt) == 32
    people = _people(60)
    before = len(events("eu", AuditCode.MEMBERSHIP_ENTERED))
    result = memberships_apply(segment=seg, enters=[p.pk for p in people], exits=[], actor=ACTOR)
    assert sorted(result.entered) == sorted(p.pk for p in people)
    stays = _stays(seg)
    share = float(seg.control_group_share)
    for p in people:
        u = holdout_unit(salt=seg.holdout_salt, subject_id=p.pk)
        assert stays[p.pk].arm == (CONTROL if u < share else TREATMENT)
    assert {s.arm for s in stays.values()} == {CONTROL, TREATMENT}
    by_token = {p.audit_token: stays[p.pk] for p in people}
    entered = events("eu", AuditCode.MEMBERSHIP_ENTERED)[before:]
    assert len(entered) == len(people)
    for entry in entered:
        stay = by_token[entry.subject_token]
        assert entry.payload == {"reason": "criteria", "membership_id": stay.pk, "arm": stay.arm}
    changes = Change.objects.using("eu").filter(segment_key=seg.key, kind="enter")
    assert {c.ref_id: c.arm for c in changes} == {s.pk: s.arm for s in stays.values()}


def test_a_segment_without_salt_gives_treatment(officer):
    seg = SegmentFactory(user=officer, control_group_share="0.9")  # factory: salt cleared
    assert seg.holdout_salt == ""
    people = _people(8)
    memberships_apply(segment=seg, enters=[p.pk for p in people], exits=[], actor=ACTOR)
    assert {s.arm for s in _stays(seg).values()} == {TREATMENT}


def test_exit_and_re_entry_keep_the_arm_and_exits_carry_it(officer):
    seg = SegmentFactory(user=officer, control_group_share="0.5", holdout=True)
    people = _people(12)
    ids = [p.pk for p in people]
    memberships_apply(segment=seg, enters=ids, exits=[], actor=ACTOR)
    first = {sid: m.arm for sid, m in _stays(seg).items()}
    before = len(events("eu", AuditCode.MEMBERSHIP_EXITED))
    memberships_apply(segment=seg, enters=[], exits=ids, actor=ACTOR, reason="criteria")
    exited = events("eu", AuditCode.MEMBERSHIP_EXITED)[before:]
    closed = {
        m.pk: m.arm for m in SegmentMembership.objects.using("eu").filter(segment_key=seg.key)
    }
    assert {e.payload["membership_id"]: e.payload["arm"] for e in exited} == closed
    exits = Change.objects.using("eu").filter(segment_key=seg.key, kind="exit")
    assert {c.ref_id: c.arm for c in exits} == closed
    # re-entry with the segment read afresh from the database: same arms
    fresh = Segment.objects.get(pk=seg.pk)
    memberships_apply(segment=fresh, enters=ids, exits=[], actor=ACTOR)
    again = {sid: m.arm for sid, m in _stays(seg, exited_at__isnull=True).items()}
    assert again == first


def test_a_new_process_derives_the_same_arms(officer):
    """A restart: another interpreter, knowing only the salt and share read from the database
    and the subject ids, gets the arms stored on the stays."""
    seg = SegmentFactory(user=officer, control_group_share="0.5", holdout=True)
    people = _people(10)
    memberships_apply(segment=seg, enters=[p.pk for p in people], exits=[], actor=ACTOR)
    stored = {str(sid): m.arm for sid, m in _stays(seg).items()}
    stored_seg = Segment.objects.get(pk=seg.pk)
    script = (
        "import json, sys\n"
        "from segments.holdout import holdout_arm\n"
        "salt, share, ids = json.loads(sys.stdin.read())\n"
        "print(json.dumps({s: holdout_arm(salt=salt, subject_id=s, share=share) for s in ids}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(
            [stored_seg.holdout_salt, str(stored_seg.control_group_share), list(stored)]
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == stored


def test_a_merged_subject_enters_only_as_its_survivor_in_the_survivors_arm(officer):
    # a control survivor absorbing a treatment subject, and the other way round
    seg = SegmentFactory(user=officer, control_group_share="0.5", holdout=True)
    people = _people(24)
    control, treated = _both_arms(seg, people)
    others = [p for p in people if p not in (control, treated)]
    second_control, second_treated = _both_arms(seg, others)
    for survivor, merged in ((control, second_treated), (treated, second_control)):
        survivor_arm = holdout_arm(salt=seg.holdout_salt, subject_id=survivor.pk, share=0.5)
        memberships_apply(segment=seg, enters=[survivor.pk], exits=[], actor=ACTOR)
        subjects_merge(survivor=survivor, merged=merged, actor=ACTOR)
        # (the directory now names the survivor: the merged id is looked up in its region)
        result = memberships_apply(
            segment=seg, enters=[SubjectRef(merged.pk, "eu")], exits=[], actor=ACTOR
        )
        assert result.refused == {merged.pk: "merged_subject"}
        assert (
            _stays(seg, subject_id=survivor.pk, exited_at__isnull=True)[survivor.pk].arm
            == survivor_arm
        )
        # the person leaves and comes back: still the survivor's arm
        memberships_apply(segment=seg, enters=[], exits=[survivor.pk], actor=ACTOR)
        memberships_apply(segment=seg, enters=[survivor.pk], exits=[], actor=ACTOR)
        arms = {
            m.arm
            for m in SegmentMembership.objects.using("eu").filter(
                segment_key=seg.key, subject_id=survivor.pk
            )
        }
        assert arms == {survivor_arm}
        assert not _stays(seg, subject_id=merged.pk)


def test_a_merge_ends_the_merged_subjects_stays_so_one_person_holds_one_arm(officer):
    """The merged subject was in the other arm when the two were found to be one person: its
    open stay ends at the merge (reason ``merged``, audited with its arm, an ``exit`` on the
    feed), and the person holds only the survivor's stay, in the survivor's arm."""
    seg = SegmentFactory(user=officer, control_group_share="0.5", holdout=True)
    survivor, merged = _both_arms(seg, _people(24))  # control survivor, treatment merged
    memberships_apply(segment=seg, enters=[survivor.pk, merged.pk], exits=[], actor=ACTOR)
    exits_before = len(events("eu", AuditCode.MEMBERSHIP_EXITED))
    subjects_merge(survivor=survivor, merged=merged, actor=ACTOR)
    ended = _stays(seg, subject_id=merged.pk)[merged.pk]
    assert (ended.exited_reason, ended.arm) == ("merged", TREATMENT)
    exits = events("eu", AuditCode.MEMBERSHIP_EXITED)[exits_before:]
    assert [(e.payload["reason"], e.payload["arm"]) for e in exits] == [("merged", TREATMENT)]
    change = Change.objects.using("eu").filter(subject_id=merged.pk, kind="exit").get()
    assert (change.reason, change.arm) == ("merged", TREATMENT)
    open_stays = SegmentMembership.objects.using("eu").filter(
        segment_key=seg.key, exited_at__isnull=True
    )
    assert {(m.subject_id, m.arm) for m in open_stays} == {(survivor.pk, CONTROL)}


def test_a_withdrawal_exits_a_control_stay_audited_and_retracted_as_control(officer):
    seg = SegmentFactory(user=officer, control_group_share="0.5", holdout=True)
    people = _people(12)
    control, _ = _both_arms(seg, people)
    memberships_apply(segment=seg, enters=[control.pk], exits=[], actor=ACTOR)
    stay = _stays(seg)[control.pk]
    assert stay.arm == CONTROL
    before = len(events("eu", AuditCode.MEMBERSHIP_EXITED))
    consent_record(
        subject=control,
        purpose="measurement",
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )
    stay.refresh_from_db(using="eu")
    assert stay.exited_at is not None and stay.exited_reason == "consent_withdrawn"
    assert stay.arm == CONTROL
    [entry] = events("eu", AuditCode.MEMBERSHIP_EXITED)[before:]
    assert entry.subject_token == control.audit_token and entry.object_id == seg.key
    assert entry.payload == {
        "reason": "consent_withdrawn",
        "membership_id": stay.pk,
        "arm": CONTROL,
    }
    [retract] = Change.objects.using("eu").filter(segment_key=seg.key, kind="retract")
    assert (retract.ref_id, retract.arm, retract.reason) == (stay.pk, CONTROL, "consent_withdrawn")
