"""With a real Celery worker and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import transaction
from django.utils import timezone

from compliance.consent.services.record import consent_record
from compliance.feed.models import DeliveryReceipt
from compliance.feed.services.outbox import ChangeInput, changes_record
from segments.services.memberships import memberships_apply
from tests.conftest import wait_for
from tests.factories import ACTOR, SegmentFactory, SubjectFactory
from tests.feed.conftest import subscribe

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_withdrawal_reaches_the_webhook_as_a_signed_retract_within_two_seconds(
    celery_worker_factory, receiver, officer
):
    celery_worker_factory(queues=["compliance.eu"])
    sub, secret = subscribe(receiver)
    person = SubjectFactory(consented=True)
    seg = SegmentFactory(user=officer)
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    wait_for(
        lambda: any(c["type"] == "enter" for c in receiver.accepted_changes()),
        timeout=20,
        what="the enter delivered",
    )
    started = time.monotonic()
    consent_record(
        subject=person,
        purpose="audience_segmentation",
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )

    def retract():
        for delivery in receiver.accepted():
            for change in delivery.payload["changes"]:
                if change["type"] == "retract":
                    return delivery, change
        return None

    delivery, change = wait_for(retract, timeout=10, interval=0.02, what="a retract")
    latency = delivery.received_at - started
    print(f"withdrawal -> retract delivered in {latency:.3f}s")
    assert latency < 2.0
    assert receiver.verify(delivery, secret)
    assert change["subject_id"] == str(person.pk) and change["segment"] == seg.key
    assert change["reason"] == "consent_withdrawn"
    assert DeliveryReceipt.objects.using("eu").filter(subscription_id=sub.pk).exists()


def _seed(people, rounds: int) -> list:
    """``rounds`` transactions, each with an enter and an exit per person."""
    for r in range(rounds):
        with transaction.atomic(using="eu"):
            changes_record(
                using="eu",
                changes=[
                    ChangeInput(kind, p.pk, timezone.now(), segment_key="s", ref_id=r * 2 + i)
                    for p in people
                    for i, kind in enumerate(("enter", "exit"))
                ],
            )


def test_receiver_failing_three_times_gets_every_change_once_in_order(
    celery_worker_factory, receiver, monkeypatch
):
    monkeypatch.setenv("COMPLIANCE_FEED_RETRY_BASE_SECONDS", "0.2")
    monkeypatch.setenv("COMPLIANCE_FEED_BATCH_SIZE", "7")
    receiver.respond = lambda n: 500 if n < 3 else 200
    celery_worker_factory(queues=["compliance.eu"])
    subscribe(receiver, types=["enter", "exit"])
    people = [SubjectFactory(jurisdiction="FR") for _ in range(3)]
    _seed(people, rounds=4)
    expected = 3 * 4 * 2
    wait_for(
        lambda: len(receiver.accepted_changes()) >= expected,
        timeout=30,
        what="every change accepted",
    )
    time.sleep(0.5)  # anything sent twice would show up now
    changes = receiver.accepted_changes()
    ids = [c["id"] for c in changes]
    assert len(ids) == len(set(ids)) == expected
    assert [d.status for d in receiver.requests[:3]] == [500, 500, 500]
    for person in people:
        mine = [c for c in changes if c["subject_id"] == str(person.pk)]
        assert [c["type"] for c in mine] == ["enter", "exit"] * 4


def test_worker_killed_mid_delivery_loses_nothing(celery_worker_factory, receiver, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_FEED_LEASE_SECONDS", "2")
    in_flight = threading.Event()

    def respond(n):
        if n == 0:
            in_flight.set()
            time.sleep(3)  # the worker is killed while waiting; this answer reaches no one
            return 503
        return 200

    receiver.respond = respond
    worker = celery_worker_factory(queues=["compliance.eu"])
    subscribe(receiver, types=["enter", "exit"])
    people = [SubjectFactory(jurisdiction="FR") for _ in range(2)]
    _seed(people, rounds=3)
    assert in_flight.wait(20), "delivery never started"
    worker.kill()
    celery_worker_factory(queues=["compliance.eu"])
    expected = 2 * 3 * 2
    wait_for(
        lambda: len({c["id"] for c in receiver.accepted_changes()}) >= expected,
        timeout=40,
        what="every change delivered by the new worker",
    )
    changes = receiver.accepted_changes()
    for person in people:
        mine = [c["type"] for c in changes if c["subject_id"] == str(person.pk)]
        assert mine == ["enter", "exit"] * 3
