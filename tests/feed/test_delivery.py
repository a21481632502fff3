"""Delivery in-process: signed batches, receipts, back-off, exactly-once by cursor."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.feed.models import DeliveryReceipt, DeliveryState
from compliance.feed.services.delivery import feed_deliver
from compliance.feed.services.outbox import ChangeInput, changes_record
from compliance.feed.signing import signature
from tests.factories import ACTOR, SubjectFactory
from tests.feed.conftest import subscribe

pytestmark = pytest.mark.django_db(databases="__all__")


def seed(person, n, *, segment="s"):
    with transaction.atomic(using="eu"):
        changes_record(
            using="eu",
            changes=[
                ChangeInput(
                    "enter" if i % 2 == 0 else "exit",
                    person.pk,
                    timezone.now(),
                    segment_key=segment,
                    ref_id=i,
                )
                for i in range(n)
            ],
        )


def test_delivers_a_signed_batch_and_keeps_a_receipt(receiver):
    sub, secret = subscribe(receiver, types=["enter", "exit"])
    assert secret.startswith("whsec_") and sub.secret_hint == secret[:10]
    audit = (
        AuditEvent.objects.using("default")
        .filter(code=AuditCode.CONFIGURATION_CHANGED, object_type="webhook_subscription")
        .last()
    )
    assert audit.payload["action"] == "created" and secret not in str(audit.payload)
    person = SubjectFactory(jurisdiction="FR")
    seed(person, 3)
    outcome = feed_deliver(region="eu")[sub.pk]
    assert outcome.delivered == 3 and outcome.requests == 1
    [delivery] = receiver.requests
    assert receiver.verify(delivery, secret)
    assert not receiver.verify(delivery, "whsec_wrong")
    timestamp = delivery.headers["X-Compliance-Timestamp"]
    assert delivery.headers["X-Compliance-Signature"] == signature(
        secret=secret, timestamp=int(timestamp), body=delivery.body
    )
    changes = delivery.payload["changes"]
    assert [c["type"] for c in changes] == ["enter", "exit", "enter"]
    assert {c["subject_id"] for c in changes} == {str(person.pk)}
    [receipt] = DeliveryReceipt.objects.using("eu").filter(subscription_id=sub.pk)
    assert (receipt.status_code, receipt.count, receipt.attempt) == (200, 3, 1)
    # nothing pending: a second run sends nothing
    assert feed_deliver(region="eu")[sub.pk].requests == 0


def test_failure_backs_off_then_delivers_each_change_once(receiver, settings):
    settings.COMPLIANCE_FEED_RETRY_BASE_SECONDS = 0
    receiver.respond = lambda n: 503 if n < 3 else 200
    sub, _ = subscribe(receiver, types=["enter", "exit"])
    person = SubjectFactory(jurisdiction="FR")
    seed(person, 4)
    for expected_attempt in (1, 2, 3):
        outcome = feed_deliver(region="eu")[sub.pk]
        assert outcome.delivered == 0 and outcome.retry_in is not None
        state = DeliveryState.objects.using("eu").get(subscription_id=sub.pk)
        assert state.attempts == expected_attempt
    assert feed_deliver(region="eu")[sub.pk].delivered == 4
    ids = [c["id"] for c in receiver.accepted_changes()]
    assert len(ids) == len(set(ids)) == 4
    receipts = DeliveryReceipt.objects.using("eu").filter(subscription_id=sub.pk)
    assert sorted(r.status_code for r in receipts) == [200, 503, 503, 503]
    assert sorted(r.attempt for r in receipts) == [1, 2, 3, 4]


def test_backoff_delay_blocks_until_due(receiver, settings):
    settings.COMPLIANCE_FEED_RETRY_BASE_SECONDS = 60
    receiver.respond = lambda n: 500
    sub, _ = subscribe(receiver, types=["enter"])
    seed(SubjectFactory(jurisdiction="FR"), 1)
    first = feed_deliver(region="eu")[sub.pk]
    assert first.retry_in == 60
    second = feed_deliver(region="eu")[sub.pk]
    assert second.requests == 0 and 0 < second.retry_in <= 60


def test_unreachable_receiver_is_a_failed_receipt_without_body(settings):
    from compliance.feed.services.subscriptions import subscription_create

    sub, _ = subscription_create(
        name="dead",
        url="http://127.0.0.1:9/hook",
        event_types=["enter"],
        actor=ACTOR,
    )
    seed(SubjectFactory(jurisdiction="FR"), 1)
    outcome = feed_deliver(region="eu")[sub.pk]
    assert outcome.retry_in is not None
    receipt = DeliveryReceipt.objects.using("eu").get(subscription_id=sub.pk)
    assert receipt.status_code is None and receipt.error


def test_segment_and_region_filters(receiver):
    sub, _ = subscribe(receiver, types=["enter", "exit"], segments=["wanted"], regions=["eu"])
    person = SubjectFactory(jurisdiction="FR")
    seed(person, 2, segment="wanted")
    seed(person, 2, segment="other")
    assert feed_deliver(region="eu")[sub.pk].delivered == 2
    assert {c["segment"] for c in receiver.accepted_changes()} == {"wanted"}
    assert feed_deliver(region="us") == {}


def test_subscription_refuses_bad_input():
    from compliance.feed.services.subscriptions import SubscriptionInputError, subscription_create

    with pytest.raises(SubscriptionInputError) as bad_url:
        subscription_create(name="x", url="ftp://x", event_types=["enter"], actor=ACTOR)
    assert bad_url.value.field == "url"
    with pytest.raises(SubscriptionInputError) as bad_type:
        subscription_create(name="y", url="http://127.0.0.1/", event_types=["nope"], actor=ACTOR)
    assert bad_type.value.field == "event_types"
