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
from django.utils import timezone

from compliance import hooks
from compliance.audit.codes import AuditCode
from compliance.audit.selectors.verification import chain_verify
from compliance.consent.services.record import consent_record
from compliance.dsar.models import PrivacyRequest
from compliance.dsar.services.restriction import request_restrict_run
from segments.models import SegmentMembership
from segments.services.memberships import memberships_apply
from tests.factories import SegmentFactory, SubjectFactory
from tests.segments.helpers import ACTOR, events

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(databases="__all__", transaction=True),
]


class _Run(threading.Thread):
    """``target()`` in a thread with its own database connections."""

    def __init__(self, target) -> None:
        super().__init__(daemon=True)
        self.target_fn, self.result, self.error = target, None, None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.result = self.target_fn()
        except Exception as exc:  # pragma: no cover - reported by _race
            self.error = exc
        finally:
            connections.close_all()
            self.done.set()


class _Gate:
    """A point where the first transaction stops, inside its transaction, until let go."""

    def __init__(self) -> None:
        self.reached, self.go = threading.Event(), threading.Event()

    def wait(self, **_) -> None:
        self.reached.set()
        assert self.go.wait(30)


def _pause_enter(monkeypatch) -> _Gate:
    """``memberships_apply`` stops after its subject lookup (the enter blockers run next)."""
    gate, real = _Gate(), hooks.enter_blocked

    def paused(**kwargs):
        gate.wait()
        return real(**kwargs)

    monkeypatch.setattr(hooks, "enter_blocked", paused)
    return gate


def _race(first, second, gate: _Gate) -> tuple[_Run, _Run, bool]:
    """Start ``first`` and wait until it stops at ``gate``, start ``second``, give it a second,
    then let ``first`` go on. Returns both runs and whether ``second`` was still waiting."""
    a = _Run(first)
    a.start()
    assert gate.reached.wait(30)
    b = _Run(second)
    b.start()
    time.sleep(1.0)
    waited = not b.done.is_set()
    gate.go.set()  # before any assertion, so that a failure leaves no thread holding locks
    a.join(30)
    b.join(30)
    assert (a.error, b.error) == (None, None)
    return a, b, waited


def _setup(officer):
    segment = SegmentFactory(user=officer, required_purposes=["measurement"])
    person = SubjectFactory(jurisdiction="FR", consents=["measurement"])
    return segment, person


def _enter(segment, person):
    return lambda: memberships_apply(segment=segment, enters=[person.pk], exits=[], actor=ACTOR)


def _withdraw(person):
    return lambda: consent_record(
        subject=person,
        purpose="measurement",
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )


def _stay(person) -> SegmentMembership:
    [stay] = SegmentMembership.objects.using("eu").filter(subject_id=person.pk)
    return stay


def test_withdrawal_during_an_enter_waits_and_then_exits_the_new_stay(officer, monkeypatch):
    segment, person = _setup(officer)
    enter, _, waited = _race(_enter(segment, person), _withdraw(person), _pause_enter(monkeypatch))
    assert waited, "the withdrawal did not wait for the enter in flight"
    assert enter.result.entered == [person.pk]  # the enter went through on the grant it read...
    stay = _stay(person)
    # ... and the withdrawal, once it could see the stay, ended it
    assert (stay.exited_at is not None, stay.exited_reason) == (True, "consent_withdrawn")
    [entry] = events("eu", AuditCode.MEMBERSHIP_ENTERED)
    [exit_] = events("eu", AuditCode.MEMBERSHIP_EXITED)
    assert entry.seq < exit_.seq and exit_.payload["membership_id"] == stay.pk
    assert chain_verify(using="eu").ok


def test_enter_during_a_withdrawal_waits_and_is_refused(officer, monkeypatch):
    segment, person = _setup(officer)
    gate = _Gate()  # the withdrawal stops in its own follow-through, before it commits
    monkeypatch.setattr(hooks, "_CONSENT_LOSS_HANDLERS", [*hooks._CONSENT_LOSS_HANDLERS, gate.wait])
    _, enter, waited = _race(_withdraw(person), _enter(segment, person), gate)
    assert waited, "the enter did not wait for the withdrawal in flight"
    assert enter.result.refused == {person.pk: "no_consent:measurement"}
    assert not SegmentMembership.objects.using("eu").filter(subject_id=person.pk).exists()
    assert events("eu", AuditCode.MEMBERSHIP_ENTERED) == []


def test_restriction_during_an_enter_waits_and_then_exits_the_new_stay(officer, monkeypatch):
    segment, person = _setup(officer)
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
    _, _, waited = _race(
        _enter(segment, person),
        lambda: request_restrict_run(request=request, actor=ACTOR),
        _pause_enter(monkeypatch),
    )
    assert waited, "the restriction did not wait for the enter in flight"
    stay = _stay(person)
    assert (stay.exited_at is not None, stay.exited_reason) == (True, "restriction")
