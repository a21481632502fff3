"""Bulk erasure: many approved requests in one set-based job; bulk membership exits; the
append-only destroyed-keys ledger at the database level."""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connections, transaction
from django.test.utils import CaptureQueriesContext

from compliance.audit.codes import AuditCode as C
from compliance.audit.models import AuditEvent
from compliance.dsar.models import DestroyedKey, PrivacyRequest, Status
from compliance.dsar.services import erasure as erasure_module
from compliance.dsar.services import erasure_finish, transitions
from compliance.dsar.services.bulk import requests_erase_bulk, requests_erase_pending
from compliance.dsar.services.erasure import erasure_counts
from compliance.dsar.services.erasure_plan import batch_load
from compliance.dsar.services.holds import legal_hold_set
from compliance.dsar.services.receipts import receipt_verify
from compliance.dsar.tasks import requests_erase_bulk as bulk_task
from compliance.models import Subject, SubjectDirectory, Suppression
from compliance.services.subjects import SubjectSuppressedError, subject_resolve
from segments.models import SegmentMembership
from segments.services.exits import memberships_exit_subjects
from segments.services.memberships import memberships_apply
from tests.conftest import on_postgres
from tests.dsar.helpers import ACTOR, verify_chain
from tests.factories import PrivacyRequestFactory, SegmentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def _approved(email: str, capture) -> PrivacyRequest:
    with capture(using="eu"):  # the per-request job is not run: the bulk job takes them
        return PrivacyRequestFactory(email=email, approved=True)


def _people(n: int, segments, tag: str):
    people = []
    for i in range(n):
        email = f"{tag}{i}-{uuid.uuid4().hex[:6]}@example.fr"
        subject = SubjectFactory(
            email=email,
            identifiers={"device_id": f"{tag}-dev-{i}-{uuid.uuid4().hex[:6]}"},
            consented=True,
        )
        for seg in segments:
            memberships_apply(segment=seg, enters=[subject.pk], exits=[], actor=ACTOR)
        people.append((email, subject))
    return people


def test_bulk_erasure_erases_every_request_with_one_audit_append_per_batch(
    django_capture_on_commit_callbacks, monkeypatch
):
    segments = [SegmentFactory(), SegmentFactory()]
    people = _people(3, segments, "bulk")
    bystander = SubjectFactory(email="keep-me@example.fr")
    requests = [_approved(email, django_capture_on_commit_callbacks) for email, _ in people]
    ids = [s.pk for _, s in people]
    assert sorted(requests_erase_pending(region="eu")) == sorted(str(r.pk) for r in requests)
    calls = []
    real_append = transitions.audit_append

    def counting_append(**kwargs):
        calls.append(len(kwargs["entries"]))
        return real_append(**kwargs)

    # the engine appends owed events at a commit (erasure_finish) or with the status changes
    monkeypatch.setattr(erasure_finish, "audit_append", counting_append)
    monkeypatch.setattr(transitions, "audit_append", counting_append)
    result = requests_erase_bulk(region="eu", request_ids=[r.pk for r in requests])

    assert sorted(result.completed) == sorted(str(r.pk) for r in requests)
    assert result.batches == 1 and len(calls) == 1  # ONE audit_append for the whole batch
    assert not any(erasure_counts(alias="eu", subject_ids=ids).values())
    assert not SubjectDirectory.objects.filter(subject_id__in=ids).exists()
    assert DestroyedKey.objects.using("eu").filter(subject_id__in=ids).count() == 3
    assert Suppression.objects.using("eu").filter(request_id__in=[r.pk for r in requests]).count()
    assert Subject.objects.using("eu").filter(pk=bystander.pk).exists()
    # every stay exited exactly once, with the membership payload conventions
    exits = AuditEvent.objects.using("eu").filter(code=C.MEMBERSHIP_EXITED)
    assert exits.count() == 6
    tokens = {s.audit_token for _, s in people}
    for event in exits:
        assert event.object_type == "segment"
        assert event.object_id in {s.key for s in segments}
        assert event.payload["reason"] == "erasure"
        assert isinstance(event.payload["membership_id"], int)
        assert event.subject_token in tokens
    assert len({e.payload["membership_id"] for e in exits}) == 6
    for request in requests:
        done = PrivacyRequest.objects.using("eu").get(pk=request.pk)
        assert done.status == Status.COMPLETED and done.subject_id is None
        assert receipt_verify(receipt=done.receipt, signature=done.receipt_signature)
        assert done.receipt["mode"] == "bulk"
        assert done.receipt["tables"]["compliance.Identity"] == 2
        assert done.receipt["tables"]["segments.SegmentMembership"] == 2
        assert done.receipt["tables"]["consent.ConsentEvent"] == 2
        assert done.receipt["memberships_exited"] == 2
        assert done.receipt["identifiers_suppressed"] == 2
        assert done.receipt["directory_rows_removed"] == 1  # identity_attach adds none
        events = list(
            AuditEvent.objects.using("eu")
            .filter(object_id=str(request.pk))
            .values_list("code", flat=True)
        )
        assert events.count(C.SUBJECT_ERASED) == 1
        assert events.count(C.SUBJECT_KEY_DESTROYED) == 1
        assert events.count(C.SUPPRESSION_ADDED) == 2
        assert events.count(C.ERASURE_RECEIPT_ISSUED) == 1
        final = AuditEvent.objects.using("eu").filter(object_id=str(request.pk)).last()
        assert final.code == C.REQUEST_STATUS_CHANGED and final.payload["to"] == "completed"
        assert final.payload["on_time"] is True
    verify_chain("eu")
    email = people[0][0]
    with pytest.raises(SubjectSuppressedError):
        subject_resolve(identifier_type="email", value=email, jurisdiction="FR", actor=ACTOR)
    # running the job again changes nothing
    before = AuditEvent.objects.using("eu").count()
    again = requests_erase_bulk(region="eu", request_ids=[r.pk for r in requests])
    assert again.completed == [] and set(again.skipped.values()) == {"status completed"}
    assert AuditEvent.objects.using("eu").count() == before


def test_bulk_erasure_statements_do_not_grow_with_the_number_of_subjects(
    django_capture_on_commit_callbacks,
):
    segments = [SegmentFactory()]
    small = [_approved(e, django_capture_on_commit_callbacks) for e, _ in _people(2, segments, "s")]
    large = [_approved(e, django_capture_on_commit_callbacks) for e, _ in _people(6, segments, "l")]
    counts = []
    for requests in (small, large):
        with CaptureQueriesContext(connections["eu"]) as eu:
            result = requests_erase_bulk(region="eu", request_ids=[r.pk for r in requests])
        assert len(result.completed) == len(requests)
        counts.append(len(eu.captured_queries))
    assert counts[0] == counts[1], counts


def test_killed_between_batches_resumes_without_doubling(
    django_capture_on_commit_callbacks, monkeypatch
):
    segments = [SegmentFactory()]
    people = _people(3, segments, "k")
    requests = [_approved(email, django_capture_on_commit_callbacks) for email, _ in people]
    real_finish = erasure_module.batch_finish
    seen = []

    def die_in_second_batch(**kwargs):
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt("worker killed")  # like kill -9: not an Exception
        return real_finish(**kwargs)

    monkeypatch.setattr(erasure_module, "batch_finish", die_in_second_batch)
    with pytest.raises(KeyboardInterrupt):
        requests_erase_bulk(region="eu", request_ids=[r.pk for r in requests], batch_size=2)
    statuses = [PrivacyRequest.objects.using("eu").get(pk=r.pk).status for r in requests]
    assert statuses == ["completed", "completed", "processing"]  # batch 2 rolled back whole
    third = people[2][1]
    assert Subject.objects.using("eu").filter(pk=third.pk).exists()
    assert SegmentMembership.objects.using("eu").get(subject_id=third.pk).exited_at is None
    monkeypatch.setattr(erasure_module, "batch_finish", real_finish)
    # the redelivered job (same ids) resumes: only the unfinished request is erased
    summary = bulk_task.run(region="eu", request_ids=[str(r.pk) for r in requests])
    assert summary == {"completed": 1, "rejected": 0, "skipped": 2, "batches": 1}
    exits = AuditEvent.objects.using("eu").filter(code=C.MEMBERSHIP_EXITED)
    assert exits.count() == 3
    for request in requests:
        events = AuditEvent.objects.using("eu").filter(object_id=str(request.pk))
        assert events.filter(code=C.ERASURE_RECEIPT_ISSUED).count() == 1
        assert events.filter(code=C.SUBJECT_ERASED).count() == 1
    assert not Subject.objects.using("eu").filter(pk__in=[s.pk for _, s in people]).exists()
    verify_chain("eu")


def test_bulk_legal_hold_rejects_only_that_request_and_per_request_jobs_are_left_alone(
    django_capture_on_commit_callbacks,
):
    people = _people(3, [], "h")
    requests = [_approved(email, django_capture_on_commit_callbacks) for email, _ in people]
    legal_hold_set(region="eu", subject_id=people[0][1].pk, reason="litigation", actor=ACTOR)
    # the per-request job already planned the third one: the bulk job leaves it to that job
    with transaction.atomic(using="eu"):
        batch_load(alias="eu", request_ids=[requests[2].pk], actor=ACTOR, steps=1)
    result = requests_erase_bulk(region="eu", request_ids=[r.pk for r in requests])
    assert result.rejected == {str(requests[0].pk): "legal hold: litigation"}
    assert result.completed == [str(requests[1].pk)]
    assert result.skipped == {str(requests[2].pk): "started by the per-request job"}
    held = PrivacyRequest.objects.using("eu").get(pk=requests[0].pk)
    assert held.status == Status.REJECTED and held.failure_reason == "legal hold: litigation"
    assert Subject.objects.using("eu").filter(pk=people[0][1].pk).exists()
    assert Subject.objects.using("eu").filter(pk=people[2][1].pk).exists()


def test_memberships_exit_subjects_closes_every_stay_audited(django_capture_on_commit_callbacks):
    segments = [SegmentFactory(), SegmentFactory()]
    people = [s for _, s in _people(2, segments, "x")]
    bystander = _people(1, segments, "y")[0][1]
    exited = memberships_exit_subjects(
        region="eu", subject_ids=[s.pk for s in people], reason="retention", actor=ACTOR
    )
    assert exited == 4
    rows = SegmentMembership.objects.using("eu").filter(subject_id__in=[s.pk for s in people])
    assert {(r.exited_reason, r.exited_at is not None) for r in rows} == {("retention", True)}
    assert (
        SegmentMembership.objects.using("eu")
        .get(subject_id=bystander.pk, segment_key=segments[0].key)
        .exited_at
        is None
    )
    events = AuditEvent.objects.using("eu").filter(code=C.MEMBERSHIP_EXITED)
    assert sorted(e.payload["membership_id"] for e in events) == sorted(r.pk for r in rows)
    assert {e.payload["reason"] for e in events} == {"retention"}
    assert {e.subject_token for e in events} == {s.audit_token for s in people}
    # again: nothing left to close, nothing audited
    assert (
        memberships_exit_subjects(
            region="eu", subject_ids=[s.pk for s in people], reason="retention", actor=ACTOR
        )
        == 0
    )
    assert events.count() == 4


@pytest.mark.postgres
def test_destroyed_key_ledger_refuses_update_and_delete_in_the_database():
    assert on_postgres()
    DestroyedKey.objects.using("eu").create(
        subject_id=uuid.uuid4(), destroyed_at="2024-01-01T00:00:00Z"
    )
    for sql in (
        "UPDATE dsar_destroyedkey SET request_id = NULL",
        "DELETE FROM dsar_destroyedkey",
    ):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(using="eu"), connections["eu"].cursor() as cursor:
                cursor.execute(sql)
    assert DestroyedKey.objects.using("eu").count() == 1
