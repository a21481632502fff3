"""The bulk path of memberships_apply (past the COPY / INSERT ... SELECT thresholds): refusals
by position, consent event ids, one audit event per change on a valid chain, outbox rows."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.hashing import GENESIS, canonical, chain_hash, format_time
from compliance.audit.models import AuditEvent
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.services.append import audit_append_uniform
from compliance.consent.models import ConsentState
from compliance.feed.models import Change
from compliance.models import Subject
from segments.models import SegmentMembership
from segments.services.memberships import SubjectRef, memberships_apply
from tests.factories import SegmentFactory
from tests.segments.helpers import ACTOR, events

pytestmark = pytest.mark.django_db(databases="__all__")
PURPOSES = ("audience_segmentation", "measurement")


def _people(n: int, *, merged: int = 0) -> list[Subject]:
    people = [Subject(region="eu") for _ in range(n)]
    for person in people[:merged]:
        person.merged_into = uuid.uuid4()
    return Subject.objects.using("eu").bulk_create(people)


def _states(people, purposes=PURPOSES, decision="granted", first_event=1) -> dict:
    """State rows (the consent projection) for ``people``; returns subject -> event ids."""
    now = timezone.now()
    rows, ids = [], {}
    event_id = first_event
    for person in people:
        for purpose in purposes:
            rows.append(
                ConsentState(
                    subject_id=person.pk,
                    purpose=purpose,
                    decision=decision,
                    lawful_basis="consent",
                    jurisdiction="FR",
                    event_id=event_id,
                    captured_at=now,
                )
            )
            ids.setdefault(person.pk, []).append(event_id)
            event_id += 1
    ConsentState.objects.using("eu").bulk_create(rows)
    return ids


def test_bulk_enters_refusals_rows_audit_and_outbox(officer):
    seg = SegmentFactory(user=officer)
    ok = _people(520)
    grants = _states(ok)
    one_purpose = _people(4)
    _states(one_purpose, purposes=("audience_segmentation",), first_event=5000)
    denied = _people(3)
    _states(denied, decision="denied", first_event=6000)
    merged = _people(2, merged=2)
    _states(merged, first_event=7000)
    unknown = uuid.uuid4()
    # three are members already: unchanged, no second stay
    first = memberships_apply(
        segment=seg, enters=[SubjectRef(p.pk, "eu") for p in ok[:3]], exits=[], actor=ACTOR
    )
    assert first.entered == [p.pk for p in ok[:3]]
    before = len(events("eu", AuditCode.MEMBERSHIP_ENTERED))

    refs = [SubjectRef(p.pk, "eu") for p in ok + one_purpose + denied + merged]
    result = memberships_apply(segment=seg, enters=[*refs, unknown], exits=[], actor=ACTOR)

    assert result.entered == [p.pk for p in ok[3:]]
    assert result.unchanged == {p.pk: "already_member" for p in ok[:3]}
    expected = {p.pk: "no_consent:measurement" for p in one_purpose}
    expected.update({p.pk: "no_consent:audience_segmentation" for p in denied})
    expected.update({p.pk: "merged_subject" for p in merged})
    expected[unknown] = "unknown_subject"
    assert result.refused == expected

    stays = list(SegmentMembership.objects.using("eu").filter(segment_key=seg.key).order_by("id"))
    assert [s.subject_id for s in stays] == [p.pk for p in ok]
    assert all(s.consent_event_ids == grants[s.subject_id] for s in stays)

    entered = events("eu", AuditCode.MEMBERSHIP_ENTERED)[before:]
    tokens = {p.pk: p.audit_token for p in ok}
    assert [e.subject_token for e in entered] == [tokens[s.subject_id] for s in stays[3:]]
    assert [e.payload for e in entered] == [
        {"reason": "criteria", "membership_id": s.pk, "arm": "treatment"} for s in stays[3:]
    ]
    assert chain_verify(using="eu").ok

    changes = list(Change.objects.using("eu").filter(segment_key=seg.key).order_by("id"))
    assert [(c.kind, c.subject_id, c.ref_id) for c in changes] == [
        ("enter", s.subject_id, s.pk) for s in stays
    ]
    assert len({c.change_id for c in changes}) == len(changes)

    # a bulk exit with a retracting reason: retract outbox rows, one audit event each
    gone = [p.pk for p in ok[:250]]
    out = memberships_apply(
        segment=seg,
        enters=[],
        exits=[SubjectRef(sid, "eu") for sid in gone],
        actor=ACTOR,
        reason="objection",
    )
    assert out.exited == gone  # closed in membership id order, which is entry order here
    exited = events("eu", AuditCode.MEMBERSHIP_EXITED)
    assert len(exited) == 250 and {e.subject_token for e in exited} == {tokens[sid] for sid in gone}
    retracts = Change.objects.using("eu").filter(segment_key=seg.key, kind="retract")
    assert sorted(retracts.values_list("ref_id", flat=True)) == [s.pk for s in stays[:250]]
    assert chain_verify(using="eu").ok


@pytest.mark.parametrize("n", [3, 600])
def test_uniform_append_hashes_like_the_reference(n):
    """``audit_append_uniform`` (below and above the COPY threshold) hashes each entry exactly
    as ``compliance.audit.hashing`` defines it, on a chain the verifier accepts."""
    items = [
        (f"tok{i}", f'seg-\u00e9"{i % 3}', {"reason": "criteria", "membership_id": i})
        for i in range(n)
    ]
    written = audit_append_uniform(
        using="eu",
        code=AuditCode.MEMBERSHIP_ENTERED,
        actor=ACTOR,
        object_type="segment",
        items=items,
    )
    stored = events("eu", AuditCode.MEMBERSHIP_ENTERED)
    assert len(stored) == n and [e.hash for e in stored] == [e.hash for e in written]
    prev = AuditEvent.objects.using("eu").filter(seq=stored[0].seq - 1).first()
    prev_hash = prev.hash if prev else GENESIS
    for event, (token, key, payload) in zip(stored, items, strict=True):
        expected = chain_hash(
            prev_hash=prev_hash,
            canonical_bytes=canonical(
                chain_id="eu",
                seq=event.seq,
                occurred_at=format_time(event.occurred_at),
                code=int(AuditCode.MEMBERSHIP_ENTERED),
                actor_type=ACTOR.kind,
                actor_id=ACTOR.id,
                subject_token=token,
                object_type="segment",
                object_id=key,
                payload=payload,
            ),
        )
        assert event.hash == expected and event.object_id == key
        prev_hash = event.hash
    assert chain_verify(using="eu").ok
