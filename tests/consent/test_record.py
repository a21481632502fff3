"""consent_record: ledger, projection, audit, hooks, validation, DB guards, residency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.consent.models import ConsentEvent, ConsentState, NoticeVersion
from compliance.consent.selectors.evaluation import can_process
from compliance.consent.services.expiry import consent_expire_due
from compliance.consent.services.projection import state_rebuild
from compliance.consent.services.record import ConsentInputError
from tests.consent.conftest import ACTOR
from tests.factories import ConsentFactory, SubjectFactory
from tests.guards import owner_bypass

pytestmark = pytest.mark.django_db(databases="__all__")


def test_record_writes_event_state_and_audit_in_region():
    subject = SubjectFactory(jurisdiction="FR")
    event = ConsentFactory(
        subject=subject, purpose="measurement", decision="granted", collection_point="banner-v2"
    )
    assert event.purpose_version == 1 and event.scope == "global" and event.method == "api"
    assert event.expires_at == event.captured_at + timedelta(days=395)
    state = ConsentState.objects.using("eu").get(subject_id=subject.pk, purpose="measurement")
    assert (state.decision, state.event_id, state.source) == ("granted", event.pk, "")
    audit = AuditEvent.objects.using("eu").filter(code=AuditCode.CONSENT_RECORDED).get()
    assert audit.subject_token == subject.audit_token
    assert (audit.object_type, audit.object_id) == ("consent_event", str(event.pk))
    assert audit.payload["purpose"] == "measurement" and audit.payload["decision"] == "granted"
    assert audit.payload["jurisdiction"] == "FR" and audit.payload["source"] == "web"
    assert not AuditEvent.objects.using("us").filter(code__lt=200).exists()


def test_withdrawal_audited_and_hook_called_in_transaction(hook_calls):
    subject = SubjectFactory(jurisdiction="FR")
    ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="granted",
        captured_at=timezone.now() - timedelta(hours=1),
    )
    ConsentFactory(subject=subject, purpose="measurement", decision="withdrawn")
    assert AuditEvent.objects.using("eu").filter(code=AuditCode.CONSENT_WITHDRAWN).count() == 1
    assert hook_calls == [
        {
            "region": "eu",
            "subject_id": subject.pk,
            "purposes": ["measurement"],
            "reason": "consent_withdrawn",
            "actor": ACTOR,
        }
    ]


def test_denial_without_prior_grant_does_not_call_hook(hook_calls):
    subject = SubjectFactory(jurisdiction="FR")
    ConsentFactory(subject=subject, purpose="measurement", decision="denied")
    assert hook_calls == []


def test_objection_hook_reason(hook_calls):
    subject = SubjectFactory(jurisdiction="JP")
    ConsentFactory(subject=subject, purpose="measurement", decision="objected", jurisdiction="JP")
    assert [c["reason"] for c in hook_calls] == ["objection"]


def test_hook_failure_rolls_back_the_consent_change():
    from compliance import hooks

    subject = SubjectFactory(jurisdiction="FR")
    ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="granted",
        captured_at=timezone.now() - timedelta(hours=1),
    )

    def failing(**kwargs):
        raise RuntimeError("segment exit failed")

    hooks.on_consent_basis_lost(failing)
    try:
        # the recording transaction (here inside the test's own) rolls back as a whole: the
        # recording takes no savepoint, since no caller recovers from its errors and goes on
        with pytest.raises(RuntimeError), transaction.atomic(using="eu"):
            ConsentFactory(subject=subject, purpose="measurement", decision="withdrawn")
    finally:
        hooks._CONSENT_LOSS_HANDLERS.remove(failing)
    assert ConsentEvent.objects.using("eu").filter(subject_id=subject.pk).count() == 1
    assert can_process(subject=subject, purpose="measurement").allowed is True
    assert not AuditEvent.objects.using("eu").filter(code=AuditCode.CONSENT_WITHDRAWN).exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"purpose": "nope"}, "purpose"),
        ({"source": "nope"}, "source"),
        ({"decision": "maybe"}, "decision"),
        ({"method": "telepathy"}, "method"),
        ({"jurisdiction": "France"}, "jurisdiction"),
        ({"lawful_basis": "contract"}, "lawful_basis"),
        ({"notice_version_id": 999999}, "notice_version_id"),
        ({"captured_at": "future"}, "captured_at"),
    ],
)
def test_bad_input_names_field_and_writes_nothing(kwargs, field):
    subject = SubjectFactory(jurisdiction="FR")
    if kwargs.get("captured_at") == "future":
        kwargs["captured_at"] = timezone.now() + timedelta(days=1)
    args = {"purpose": "measurement", "decision": "granted", "source": "web", **kwargs}
    purpose, decision, source = args.pop("purpose"), args.pop("decision"), args.pop("source")
    with pytest.raises(ConsentInputError) as info:
        ConsentFactory(subject=subject, purpose=purpose, decision=decision, source=source, **args)
    assert info.value.field == field
    assert not ConsentEvent.objects.using("eu").exists()
    assert not AuditEvent.objects.using("eu").filter(code__lt=200).exists()


def test_notice_version_recorded_and_must_cover_purpose():
    notice = NoticeVersion.objects.create(purposes=["measurement"], text="We measure.", locale="fr")
    subject = SubjectFactory(jurisdiction="FR")
    event = ConsentFactory(
        subject=subject, purpose="measurement", decision="granted", notice_version_id=notice.pk
    )
    assert event.notice_version_id == notice.pk
    assert len(notice.sha256) == 64
    with pytest.raises(ConsentInputError) as info:
        ConsentFactory(
            subject=subject, purpose="storage", decision="granted", notice_version_id=notice.pk
        )
    assert info.value.field == "notice_version_id"


def test_expiry_job_records_expired_event_and_hook(hook_calls):
    subject = SubjectFactory(jurisdiction="FR")
    ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="granted",
        captured_at=timezone.now() - timedelta(days=400),
    )
    ConsentFactory(subject=subject, purpose="storage", decision="granted")  # still live
    assert consent_expire_due(region="eu") == 1
    assert consent_expire_due(region="eu") == 0  # idempotent
    expired = ConsentEvent.objects.using("eu").get(decision="expired")
    assert (expired.purpose, expired.method) == ("measurement", "expiry")
    assert AuditEvent.objects.using("eu").filter(code=AuditCode.CONSENT_EXPIRED).count() == 1
    assert [(c["purposes"], c["reason"]) for c in hook_calls] == [
        (["measurement"], "consent_expired")
    ]
    assert can_process(subject=subject, purpose="measurement").reason == "expired"


def test_expiry_task_runs_eagerly():
    from compliance.consent.tasks import consent_expire

    subject = SubjectFactory(jurisdiction="FR")
    ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="granted",
        captured_at=timezone.now() - timedelta(days=400),
    )
    assert consent_expire.run(region="eu") == 1


def test_state_rebuild_reproduces_projection():
    subject = SubjectFactory(jurisdiction="FR")
    t0 = timezone.now() - timedelta(hours=3)
    ConsentFactory(subject=subject, purpose="measurement", decision="granted", captured_at=t0)
    ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="withdrawn",
        captured_at=t0 + timedelta(hours=1),
    )
    ConsentFactory(subject=subject, purpose="email_marketing", decision="granted", source="crm")
    before = set(
        ConsentState.objects.using("eu").values_list("purpose", "source", "decision", "event_id")
    )
    ConsentState.objects.using("eu").all().delete()
    assert state_rebuild(region="eu", actor=ACTOR) == 2
    after = set(
        ConsentState.objects.using("eu").values_list("purpose", "source", "decision", "event_id")
    )
    assert before == after
    assert AuditEvent.objects.using("eu").filter(code=AuditCode.CONSENT_STATE_REBUILT).exists()


@pytest.mark.parametrize(
    ("jurisdiction", "home", "away"), [("DE", "eu", "us"), ("US-TX", "us", "eu")]
)
def test_consent_lands_only_in_home_region(jurisdiction, home, away):
    subject = SubjectFactory(jurisdiction=jurisdiction)
    ConsentFactory(
        subject=subject, purpose="measurement", decision="granted", jurisdiction=jurisdiction
    )
    for alias, expected in ((home, 1), (away, 0)):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM consent_consentevent")
            assert cursor.fetchone()[0] == expected
            cursor.execute("SELECT COUNT(*) FROM consent_consentstate")
            assert cursor.fetchone()[0] == expected
    assert "consent_consentevent" not in connections["default"].introspection.table_names()


@pytest.mark.postgres
def test_postgres_refuses_update_and_delete_of_consent_events():
    subject = SubjectFactory(jurisdiction="FR")
    event = ConsentFactory(subject=subject, purpose="measurement", decision="granted")
    for sql in (
        "UPDATE consent_consentevent SET decision = 'denied' WHERE id = %s",
        "DELETE FROM consent_consentevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(using="eu"), connections["eu"].cursor() as cursor:
                cursor.execute(sql, [event.pk])
    with pytest.raises(DatabaseError):
        with transaction.atomic(using="eu"):
            ConsentEvent.objects.using("eu").filter(pk=event.pk).update(decision="denied")
    assert ConsentEvent.objects.using("eu").get(pk=event.pk).decision == "granted"
    # the erasure path may delete
    with owner_bypass("eu"):
        ConsentEvent.objects.using("eu").filter(pk=event.pk).delete()
    assert not ConsentEvent.objects.using("eu").filter(pk=event.pk).exists()
