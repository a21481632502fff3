"""A withdrawal racing a bulk enter never leaves the person in the segment (PostgreSQL).

``memberships_apply`` holds a ``FOR KEY SHARE`` lock on the subjects it enters until it
commits; consent writers (and restrictions) lock the subject ``FOR UPDATE`` first. So a
withdrawal recorded while an enter is in flight waits for it, then exits the new stay in its own
transaction; a withdrawal that got there first is seen by the enter's consent check.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from compliance import hooks
from compliance.audit.codes import AuditCode
from compliance.audit.selectors.verification import chain_verify
from compliance.consent.services.record import consent_record
from segments.models import SegmentMembership
from segments.services.memberships import memberships_apply
from tests.segments import factories
from tests.segments.factories import ACTOR, events

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(databases="__all__", transaction=True),
]


def _in_thread(target, errors: list, done: threading.Event) -> threading.Thread:
    def run():
        try:
            target()
        except Exception as exc:  # pragma: no cover - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _withdraw(person, purpose="measurement"):
    consent_record(
        subject=person,
        purpose=purpose,
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )


def test_withdrawal_during_an_enter_waits_and_then_exits_the_new_stay(officer, monkeypatch):
    segment = factories.segment(officer=officer, required_purposes=["measurement"])
    [person] = factories.consented(1, "FR", purposes=["measurement"])
    reached, go = threading.Event(), threading.Event()
    real = hooks.enter_blocked

    def paused(**kwargs):  # runs inside the enter's transaction, after the subject lookup
        reached.set()
        assert go.wait(30)
        return real(**kwargs)

    monkeypatch.setattr(hooks, "enter_blocked", paused)
    errors: list = []
    entered, withdrawn = threading.Event(), threading.Event()
    results: list = []
    enter = _in_thread(
        lambda: results.append(
            memberships_apply(segment=segment, enters=[person.pk], exits=[], actor=ACTOR)
        ),
        errors,
        entered,
    )
    assert reached.wait(30)
    withdraw = _in_thread(lambda: _withdraw(person), errors, withdrawn)
    time.sleep(1.0)
    waited = not withdrawn.is_set()
    go.set()  # before any assertion, so that a failure does not leave a thread holding locks
    enter.join(30)
    withdraw.join(30)
    assert waited, "the withdrawal did not wait for the enter in flight"
    assert errors == []
    assert results[0].entered == [person.pk]  # the enter went through on the grant it read...
    [stay] = SegmentMembership.objects.using("eu").filter(subject_id=person.pk)
    # ... and the withdrawal, once it could see the stay, ended it
    assert (stay.exited_at is not None, stay.exited_reason) == (True, "consent_withdrawn")
    [entry] = events("eu", AuditCode.MEMBERSHIP_ENTERED)
    [exit_] = events("eu", AuditCode.MEMBERSHIP_EXITED)
    assert entry.seq < exit_.seq and exit_.payload["membership_id"] == stay.pk
    assert chain_verify(using="eu").ok


def test_enter_during_a_withdrawal_waits_and_is_refused(officer, monkeypatch):
    segment = factories.segment(officer=officer, required_purposes=["measurement"])
    [person] = factories.consented(1, "FR", purposes=["measurement"])
    reached, go = threading.Event(), threading.Event()

    def paused(**kwargs):  # the withdrawal's own follow-through, before it commits
        reached.set()
        assert go.wait(30)

    monkeypatch.setattr(hooks, "_CONSENT_LOSS_HANDLERS", [*hooks._CONSENT_LOSS_HANDLERS, paused])
    errors: list = []
    withdrawn, entered = threading.Event(), threading.Event()
    withdraw = _in_thread(lambda: _withdraw(person), errors, withdrawn)
    assert reached.wait(30)
    results: list = []
    enter = _in_thread(
        lambda: results.append(
            memberships_apply(segment=segment, enters=[person.pk], exits=[], actor=ACTOR)
        ),
        errors,
        entered,
    )
    time.sleep(1.0)
    waited = not entered.is_set()
    go.set()  # before any assertion, so that a failure does not leave a thread holding locks
    withdraw.join(30)
    enter.join(30)
    assert waited, "the enter did not wait for the withdrawal in flight"
    assert errors == []
    assert results[0].refused == {person.pk: "no_consent:measurement"}
    assert not SegmentMembership.objects.using("eu").filter(subject_id=person.pk).exists()
    assert events("eu", AuditCode.MEMBERSHIP_ENTERED) == []


def test_restriction_during_an_enter_waits_and_then_exits_the_new_stay(officer, monkeypatch):
    from django.utils import timezone

    from compliance.dsar.models import PrivacyRequest
    from compliance.dsar.services.restriction import request_restrict_run

    segment = factories.segment(officer=officer, required_purposes=["measurement"])
    [person] = factories.consented(1, "FR", purposes=["measurement"])
    now = timezone.now()
    request = PrivacyRequest.objects.using("eu").create(
        type="restriction",
        regulation="gdpr",
        region="eu",
        subject_id=person.pk,
        subject_token=person.audit_token,
        verification_method="test",
        received_at=now,
        due_at=now,
    )
    reached, go = threading.Event(), threading.Event()
    real = hooks.enter_blocked

    def paused(**kwargs):
        reached.set()
        assert go.wait(30)
        return real(**kwargs)

    monkeypatch.setattr(hooks, "enter_blocked", paused)
    errors: list = []
    entered, restricted = threading.Event(), threading.Event()
    enter = _in_thread(
        lambda: memberships_apply(segment=segment, enters=[person.pk], exits=[], actor=ACTOR),
        errors,
        entered,
    )
    assert reached.wait(30)
    restrict = _in_thread(
        lambda: request_restrict_run(request=request, actor=ACTOR), errors, restricted
    )
    time.sleep(1.0)
    waited = not restricted.is_set()
    go.set()  # before any assertion, so that a failure does not leave a thread holding locks
    enter.join(30)
    restrict.join(30)
    assert waited, "the restriction did not wait for the enter in flight"
    assert errors == []
    [stay] = SegmentMembership.objects.using("eu").filter(subject_id=person.pk)
    assert (stay.exited_at is not None, stay.exited_reason) == (True, "restriction")
