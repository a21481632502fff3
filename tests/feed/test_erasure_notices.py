"""Erasure notices: an erasure keeps exactly the erased person's ``retract``/``erasure``
outbox rows, delivers them to webhooks, lists them in the receipt, and the feed's sweep removes
them once every recipient has had them (GDPR Art. 17(2)/19)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.audit.codes import AuditCode as C
from compliance.audit.models import AuditEvent
from compliance.dsar.models import PrivacyRequest, Status
from compliance.dsar.services.bulk import requests_erase_bulk
from compliance.dsar.services.erasure import (
    erasure_counts,
    erasure_preview,
    erasure_retained,
    request_erase_run,
)
from compliance.feed.models import ERASURE_NOTICE_WHY, Change, DeliveryState
from compliance.feed.services.notices import erasure_notices_purge
from compliance.feed.services.subscriptions import subscription_save
from compliance.feed.tasks import deliver
from compliance.personal_data import personal_data_register
from segments.services.exits import memberships_exit_subjects
from segments.services.memberships import memberships_apply
from tests.conftest import wait_for
from tests.dsar.helpers import ACTOR, verify_chain
from tests.factories import PrivacyRequestFactory, SegmentFactory, SubjectFactory
from tests.feed.conftest import subscribe

RETAINED = {"feed.Change": {"rows": 2, "why": ERASURE_NOTICE_WHY}}


def _member(email: str, segments):
    subject = SubjectFactory(email=email, consented=True)
    for seg in segments:
        applied = memberships_apply(segment=seg, enters=[subject.pk], exits=[], actor=ACTOR)
        assert applied.entered == [subject.pk], applied.refused
    return subject


def _assert_only_notices(subject, segments) -> list[Change]:
    """The outbox holds exactly one erasure notice per segment left, and nothing else of the
    person: no consent change, no enter, no identifier, purpose or source."""
    rows = list(Change.objects.using("eu").filter(subject_id=subject.pk))
    assert sorted((r.kind, r.reason, r.segment_key) for r in rows) == sorted(
        ("retract", "erasure", seg.key) for seg in segments
    )
    assert all(not (r.purpose or r.source or r.decision) for r in rows)
    return rows


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize("path", ["request", "bulk"])
def test_erasure_notice_reaches_the_webhook_then_the_sweep_removes_it(
    path, celery_worker_factory, receiver, monkeypatch, settings
):
    sub, secret = subscribe(receiver)
    segments = [SegmentFactory(), SegmentFactory()]
    email = f"erin-{path}@example.fr"
    subject = _member(email, segments)
    bystander = _member(f"bystander-{path}@example.fr", segments[:1])
    bystander_rows = Change.objects.using("eu").filter(subject_id=bystander.pk).count()
    celery_worker_factory(queues=["compliance.eu"])

    if path == "request":  # approval enqueues dsar.request_process: the worker erases
        request = PrivacyRequestFactory(email=email, approved=True)
        wait_for(
            lambda: (
                PrivacyRequest.objects.using("eu").get(pk=request.pk).status == Status.COMPLETED
            ),
            timeout=60,
            what="the per-request erasure job",
        )
    else:  # leave the request to the bulk job (no per-request job)
        with monkeypatch.context() as patch:
            patch.setattr("compliance.tasking.enqueue_on_commit", lambda *a, **k: None)
            request = PrivacyRequestFactory(email=email, approved=True)
        result = requests_erase_bulk(region="eu", request_ids=[request.pk])
        assert result.completed == [str(request.pk)]
    done = PrivacyRequest.objects.using("eu").get(pk=request.pk)
    assert done.status == Status.COMPLETED

    # kept: exactly the erasure notices; the receipt lists them with the reason
    rows = _assert_only_notices(subject, segments)
    assert done.receipt["retained"] == RETAINED
    assert done.receipt["sweep"]["feed.Change"] == 0
    assert done.receipt["memberships_exited"] == 2
    assert erasure_counts(alias="eu", subject_ids=[subject.pk])["feed.Change"] == 0
    assert Change.objects.using("eu").filter(subject_id=bystander.pk).count() == bystander_rows
    # the notices come after the erasure's audit events (the feed's lock order)
    exits = AuditEvent.objects.using("eu").filter(
        code=C.MEMBERSHIP_EXITED, subject_token=subject.audit_token
    )
    assert sorted(e.object_id for e in exits) == sorted(s.key for s in segments)
    assert {e.payload["reason"] for e in exits} == {"erasure"}

    # delivered to the webhook: signed, retract, reason erasure, subject id + segment only
    def delivered():
        found = [
            (delivery, change)
            for delivery in receiver.accepted()
            for change in delivery.payload["changes"]
            if change["subject_id"] == str(subject.pk) and change["reason"] == "erasure"
        ]
        return found if {c["segment"] for _, c in found} == {s.key for s in segments} else None

    for delivery, change in wait_for(delivered, timeout=30, what="the erasure notices"):
        assert receiver.verify(delivery, secret)
        assert change["type"] == "retract"
        assert change["purpose"] is None and change["source"] is None
        assert change["decision"] is None
    last = max(r.pk for r in rows)
    wait_for(
        lambda: DeliveryState.objects.using("eu").get(subscription_id=sub.pk).cursor_id >= last,
        timeout=20,
        what="the cursor past the notices",
    )

    # the sweep keeps them for pull consumers within the window, removes them after it
    deliver.run(region="eu", sweep=True)
    assert Change.objects.using("eu").filter(pk__in=[r.pk for r in rows]).count() == 2
    settings.COMPLIANCE_FEED_ERASURE_NOTICE_TTL_DAYS = 0
    deliver.run(region="eu", sweep=True)
    assert not Change.objects.using("eu").filter(subject_id=subject.pk).exists()
    assert erasure_retained(alias="eu", subject_ids=[subject.pk]) == {
        "feed.Change": {"rows": 0, "why": ERASURE_NOTICE_WHY}
    }
    assert not any(erasure_counts(alias="eu", subject_ids=[subject.pk]).values())
    (purge,) = AuditEvent.objects.using("eu").filter(
        code=C.RETENTION_APPLIED, object_type="feed_outbox"
    )
    assert purge.payload["category"] == "erasure_notices"
    assert purge.payload["removed"] == {"feed.Change": 2} and purge.payload["max_age_days"] == 0
    verify_chain("eu")


@pytest.mark.django_db(databases="__all__")
def test_a_notice_stays_while_a_subscriber_still_needs_it(
    receiver, django_capture_on_commit_callbacks
):
    """No worker: the notices are never delivered. Past the TTL they stay while an active
    subscription that takes retracts has them pending; a subscription that would not receive
    them (other types, other segments, inactive) does not hold them."""
    segments = [SegmentFactory(), SegmentFactory()]
    subject = _member("nell@example.fr", segments)
    sub, _ = subscribe(receiver, types=["retract"], name="retracts")
    other, _ = subscribe(receiver, types=["enter", "consent"], name="enters")
    with django_capture_on_commit_callbacks(using="eu"):
        request = PrivacyRequestFactory(email="nell@example.fr", approved=True)
    preview = erasure_preview(request=request)
    assert preview["retained"] == {"feed.Change": {"rows": 0, "why": ERASURE_NOTICE_WHY}}
    assert preview["tables"]["feed.Change"] >= 3  # consent changes and two enters: all go
    done = request_erase_run(region="eu", request_id=request.pk)
    assert done.status == Status.COMPLETED
    _assert_only_notices(subject, segments)
    assert done.receipt["retained"] == RETAINED

    later = timezone.now() + timedelta(days=31)
    assert erasure_notices_purge(region="eu", now=later) == 0  # "retracts" has them pending
    sub.segments = [segments[0].key]
    subscription_save(subscription=sub, actor=ACTOR, changed=["segments"])
    assert erasure_notices_purge(region="eu", now=later) == 1  # the other segment's notice
    assert [c.segment_key for c in Change.objects.using("eu").filter(subject_id=subject.pk)] == [
        segments[0].key
    ]
    sub.is_active = False
    subscription_save(subscription=sub, actor=ACTOR, changed=["is_active"])
    # no active subscription takes retracts: only the pull window (30 days by default) counts
    assert erasure_notices_purge(region="eu", now=timezone.now() + timedelta(days=29)) == 0
    assert erasure_notices_purge(region="eu", now=later) == 1
    assert not Change.objects.using("eu").filter(subject_id=subject.pk).exists()
    purges = AuditEvent.objects.using("eu").filter(code=C.RETENTION_APPLIED)
    assert [e.payload["total"] for e in purges] == [1, 1]
    assert other.pk  # never counted: it takes no retracts


@pytest.mark.django_db(databases="__all__")
def test_bulk_exits_write_the_outbox_after_their_audit_events(django_capture_on_commit_callbacks):
    segments = [SegmentFactory()]
    erased, kept = _member("olive@example.fr", segments), _member("pat@example.fr", segments)
    before = Change.objects.using("eu").count()
    with django_capture_on_commit_callbacks(using="eu"):
        assert (
            memberships_exit_subjects(
                region="eu", subject_ids=[erased.pk], reason="erasure", actor=ACTOR
            )
            == 1
        )
        assert (
            memberships_exit_subjects(
                region="eu", subject_ids=[kept.pk], reason="retention", actor=ACTOR
            )
            == 1
        )
    new = Change.objects.using("eu").order_by("id")[before:]
    assert [(c.kind, c.reason, c.subject_id) for c in new] == [
        ("retract", "erasure", erased.pk),
        ("exit", "retention", kept.pk),
    ]
    assert AuditEvent.objects.using("eu").filter(code=C.MEMBERSHIP_EXITED).count() == 2


def test_a_retained_filter_needs_a_reason_and_real_fields():
    with pytest.raises(ValueError, match="retained_why"):
        personal_data_register(
            model=Change,
            subject_field="subject_id",
            order=150,
            description="x",
            retained={"kind": "retract"},
        )
    from django.core.exceptions import FieldDoesNotExist

    with pytest.raises(FieldDoesNotExist):
        personal_data_register(
            model=Change,
            subject_field="subject_id",
            order=150,
            description="x",
            retained={"kind__in": ["retract"]},
            retained_why="x",
        )


@pytest.mark.django_db(databases="__all__")
def test_bulk_erasure_keeps_notices_already_in_the_outbox(django_capture_on_commit_callbacks):
    """A notice written before the job (e.g. a restriction-then-erasure race) survives the bulk
    delete (PostgreSQL: ``DELETE ... AND NOT (kind IS NOT DISTINCT FROM ...)``), other rows of
    the person go, and the receipt counts it with the job's own notices."""
    from django.db import transaction

    from compliance.feed.services.outbox import ChangeInput, changes_record

    segments = [SegmentFactory()]
    subject = _member("quinn@example.fr", segments)
    with transaction.atomic(using="eu"):
        changes_record(
            using="eu",
            changes=[
                ChangeInput(
                    "retract", subject.pk, timezone.now(), segment_key="old", reason="erasure"
                ),
                ChangeInput(
                    "retract", subject.pk, timezone.now(), segment_key="old", reason="objection"
                ),
            ],
        )
    with django_capture_on_commit_callbacks(using="eu"):
        request = PrivacyRequestFactory(email="quinn@example.fr", approved=True)
        result = requests_erase_bulk(region="eu", request_ids=[request.pk])
    assert result.completed == [str(request.pk)]
    rows = Change.objects.using("eu").filter(subject_id=subject.pk).order_by("id")
    assert [(r.kind, r.reason, r.segment_key) for r in rows] == [
        ("retract", "erasure", "old"),
        ("retract", "erasure", segments[0].key),
    ]
    done = PrivacyRequest.objects.using("eu").get(pk=request.pk)
    assert done.receipt["retained"] == RETAINED
    assert done.receipt["tables"]["feed.Change"] >= 4  # 2 consent, 1 enter, the objection
