"""Erasure: the registry walk, resumability, suppression, ledger and replay, the receipt."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connections

from compliance.audit.codes import AuditCode as C
from compliance.audit.models import AuditEvent
from compliance.dsar.models import (
    DestroyedKey,
    ErasureStep,
    LegalHold,
    Package,
    PrivacyRequest,
    Status,
)
from compliance.dsar.services import erasure as erasure_module
from compliance.dsar.services.erasure import erasure_counts, erasure_preview, request_erase_run
from compliance.dsar.services.holds import legal_hold_release, legal_hold_set
from compliance.dsar.services.receipts import receipt_verify
from compliance.models import Identity, Subject, SubjectDirectory, SubjectKey, Suppression
from compliance.personal_data import personal_data_models
from compliance.regions import UnknownRegionError
from compliance.services.subjects import SubjectSuppressedError, subject_resolve
from tests.dsar.helpers import ACTOR, codes, verify_chain
from tests.factories import PrivacyRequestFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def _stitched_person(email: str):
    """A person with two identifiers and a second subject merged into it."""
    subject = SubjectFactory(email=email, identifiers={"device_id": "dev-123"})
    other = SubjectFactory(email=f"old-{email}")
    Subject.objects.using("eu").filter(pk=other.pk).update(merged_into=subject.pk)
    hold = legal_hold_set(region="eu", subject_id=subject.pk, reason="old", actor=ACTOR)
    legal_hold_release(hold=hold, actor=ACTOR)
    return subject, other


def test_erasure_removes_everything_of_every_stitched_subject(django_capture_on_commit_callbacks):
    subject, other = _stitched_person("nina@example.fr")
    bystander = SubjectFactory(email="olga@example.fr")
    with django_capture_on_commit_callbacks(using="eu"):
        request = PrivacyRequestFactory(email="nina@example.fr", approved=True)
    ids = [subject.pk, other.pk]
    preview = erasure_preview(request=request)
    assert preview["subjects"] == 2
    assert preview["tables"]["compliance.Identity"] == 3
    assert preview["identifiers_to_suppress"] == 3
    assert Identity.objects.using("eu").filter(subject_id__in=ids).count() == 3  # unchanged

    done = request_erase_run(region="eu", request_id=request.pk, batch_size=2)
    assert done.status == Status.COMPLETED
    assert not any(erasure_counts(alias="eu", subject_ids=ids).values())
    assert not SubjectDirectory.objects.filter(subject_id__in=ids).exists()
    assert Suppression.objects.using("eu").count() == 3
    assert DestroyedKey.objects.using("eu").filter(subject_id__in=ids).count() == 2
    assert Subject.objects.using("eu").filter(pk=bystander.pk).exists()
    # raw SQL on every database: nothing keyed by the subject ids, only audit tokens remain
    for alias in ("default", "eu", "us"):
        with connections[alias].cursor() as cursor:
            for entry in personal_data_models():
                table = entry.model._meta.db_table
                if table not in connections[alias].introspection.table_names():
                    continue
                column = entry.model._meta.get_field(entry.subject_field).column
                for sid in ids:
                    cursor.execute(
                        f"SELECT COUNT(*) FROM {table} WHERE {column} = %s",
                        [sid.hex if connections[alias].vendor == "sqlite" else sid],
                    )
                    assert cursor.fetchone()[0] == 0, (alias, table)
    receipt = done.receipt
    assert receipt["tables"]["compliance.Identity"] == 3
    assert receipt["tables"]["compliance.Subject"] == 2
    assert receipt["identifiers_suppressed"] == 3
    assert receipt["directory_rows_removed"] == 2
    assert receipt["tables"]["dsar.LegalHold"] == 1
    assert receipt_verify(receipt=receipt, signature=done.receipt_signature)
    tampered = {**receipt, "subjects": 1}
    assert not receipt_verify(receipt=tampered, signature=done.receipt_signature)
    events = codes("eu", str(request.pk))
    assert events.count(C.SUPPRESSION_ADDED) == 3
    assert events.count(C.SUBJECT_KEY_DESTROYED) == 2
    assert events.count(C.SUBJECT_ERASED) == 2
    assert events.count(C.ERASURE_RECEIPT_ISSUED) == 1
    assert events[-1] == C.REQUEST_STATUS_CHANGED
    final = AuditEvent.objects.using("eu").filter(object_id=str(request.pk)).last()
    assert final.payload["to"] == "completed" and final.payload["on_time"] is True
    verify_chain("eu")
    verify_chain("default")
    with pytest.raises(SubjectSuppressedError):
        subject_resolve(
            identifier_type="email", value="nina@example.fr", jurisdiction="FR", actor=ACTOR
        )
    with pytest.raises(SubjectSuppressedError):
        subject_resolve(
            identifier_type="device_id", value="dev-123", jurisdiction="FR", actor=ACTOR
        )
    stored = PrivacyRequest.objects.using("eu").get(pk=request.pk)
    assert (
        stored.subject_id is None and stored.identifier_indexes == [] and not stored.subject_token
    )


def test_rerunning_a_finished_erasure_changes_nothing(django_capture_on_commit_callbacks):
    SubjectFactory(email="pia@example.fr")
    with django_capture_on_commit_callbacks(using="eu"):
        request = PrivacyRequestFactory(email="pia@example.fr", approved=True)
    request_erase_run(region="eu", request_id=request.pk)
    before = AuditEvent.objects.using("eu").count()
    again = request_erase_run(region="eu", request_id=request.pk)
    assert again.status == Status.COMPLETED
    assert AuditEvent.objects.using("eu").count() == before


def test_crash_mid_step_resumes_without_missing_rows_or_doubling_events(
    django_capture_on_commit_callbacks, monkeypatch
):
    subject = SubjectFactory(
        email="quin@example.fr", identifiers={"device_id": "d-1", "user_id": "u-1", "crm_id": "c-1"}
    )
    with django_capture_on_commit_callbacks(using="eu"):
        request = PrivacyRequestFactory(email="quin@example.fr", approved=True)

    def crash_after_first_batch(*, request, step):
        # killed between two committed batches of the identity step
        left = Identity.objects.using("eu").filter(subject_id=subject.pk).count()
        if 0 < left < 4:
            raise KeyboardInterrupt("worker killed")  # not an Exception: like a kill

    monkeypatch.setattr(erasure_module, "step_progressed", crash_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        request_erase_run(region="eu", request_id=request.pk, batch_size=2)
    steps = {s.name: s for s in ErasureStep.objects.using("eu").filter(request_id=request.pk)}
    assert steps["suppression"].status == "done"
    first_unfinished = [s for s in steps.values() if s.status == "pending"]
    assert steps["compliance.Identity"].status == "pending"
    assert steps["compliance.Identity"].rows == 2  # one committed batch
    assert first_unfinished  # stopped mid-way
    done = request_erase_run(region="eu", request_id=request.pk, batch_size=2)
    assert done.status == Status.COMPLETED
    assert done.receipt["tables"]["compliance.Identity"] == 4
    events = codes("eu", str(request.pk))
    assert events.count(C.SUPPRESSION_ADDED) == 4
    step_events = AuditEvent.objects.using("eu").filter(
        object_id=str(request.pk), code=C.ERASURE_STEP_COMPLETED
    )
    names = [e.payload["step"] for e in step_events]
    assert len(names) == len(set(names)) == len(steps)
    assert not Identity.objects.using("eu").filter(subject_id=subject.pk).exists()
    verify_chain("eu")


def test_legal_hold_set_after_approval_rejects_when_the_job_starts(
    django_capture_on_commit_callbacks,
):
    subject = SubjectFactory(email="rey@example.fr")
    with django_capture_on_commit_callbacks(using="eu"):
        request = PrivacyRequestFactory(email="rey@example.fr", approved=True)
    legal_hold_set(region="eu", subject_id=subject.pk, reason="subpoena", actor=ACTOR)
    done = request_erase_run(region="eu", request_id=request.pk)
    assert done.status == Status.REJECTED
    assert done.failure_reason == "legal hold: subpoena"
    assert SubjectKey.objects.using("eu").filter(subject_id=subject.pk).exists()
    assert LegalHold.objects.using("eu").filter(subject_id=subject.pk, active=True).exists()


def test_replay_erasures_removes_restored_rows(django_capture_on_commit_callbacks):
    subject = SubjectFactory(email="sam@example.fr")
    with django_capture_on_commit_callbacks(using="eu"):
        request = PrivacyRequestFactory(email="sam@example.fr", approved=True)
    # a backup taken before the erasure: copy the rows to "restore" them afterwards
    saved_subject = Subject.objects.using("eu").get(pk=subject.pk)
    saved_key = SubjectKey.objects.using("eu").get(subject_id=subject.pk)
    saved_identity = Identity.objects.using("eu").get(subject_id=subject.pk)
    saved_entry = SubjectDirectory.objects.get(subject_id=subject.pk)
    request_erase_run(region="eu", request_id=request.pk)
    Suppression.objects.using("eu").all().delete()  # the restored backup predates these too
    for row in (saved_subject, saved_key, saved_identity):
        row.save(using="eu", force_insert=True)
    saved_entry.save(using="default", force_insert=True)
    call_command("replay_erasures", stdout=open("/dev/null", "w"))
    assert not Subject.objects.using("eu").filter(pk=subject.pk).exists()
    assert not SubjectKey.objects.using("eu").filter(subject_id=subject.pk).exists()
    assert not SubjectDirectory.objects.filter(subject_id=subject.pk).exists()
    assert Suppression.objects.using("eu").filter(blind_index=saved_identity.blind_index).exists()
    with pytest.raises(SubjectSuppressedError):
        subject_resolve(
            identifier_type="email", value="sam@example.fr", jurisdiction="FR", actor=ACTOR
        )


def test_ledger_is_append_only():
    from compliance.dsar.models import AppendOnlyError

    row = DestroyedKey.objects.using("eu").create(
        subject_id="00000000-0000-0000-0000-000000000001", destroyed_at="2024-01-01T00:00:00Z"
    )
    with pytest.raises(AppendOnlyError):
        row.save(using="eu")
    with pytest.raises(AppendOnlyError):
        row.delete(using="eu")
    assert Package.objects.using("eu").count() == 0


def test_erasure_run_names_only_configured_regions():
    with pytest.raises(UnknownRegionError):
        request_erase_run(region="mars", request_id="00000000-0000-4000-8000-000000000000")


def test_jobs_name_only_configured_regions():
    from compliance.dsar.services.maintenance import requests_flag_due, requests_stuck
    from compliance.dsar.services.processing import request_fail, request_process

    some_id = "00000000-0000-4000-8000-000000000000"
    for call in (
        lambda: request_process(region="mars", request_id=some_id),
        lambda: request_fail(region="mars", request_id=some_id, reason="x"),
        lambda: requests_flag_due(region="mars"),
        lambda: requests_stuck(region="mars", stale_after=0),
    ):
        with pytest.raises(UnknownRegionError):
            call()
