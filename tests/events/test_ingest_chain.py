"""An event batch and the region's audit chain (PostgreSQL, committed transactions): the batch
locks the chain head with its reads and appends its entry with its writes, unless a consent
signal of the batch is recorded first (the recording appends to the chain itself); either way
the chain verifies, with every batch's entry in it, however the batches interleave."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditChainHead, AuditEvent
from compliance.audit.selectors.verification import chain_verify
from compliance.events.models import Event
from tests.events.conftest import api_client, event, new_email, post
from tests.factories import ConsentFactory, SubjectFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases="__all__", transaction=True)]


def _granted(jurisdiction: str) -> str:
    email = new_email()
    subject = SubjectFactory(jurisdiction=jurisdiction, email=email)
    ConsentFactory(subject=subject, purpose="measurement", decision="granted")
    return email


def _batch_entries(alias: str) -> int:
    return AuditEvent.objects.using(alias).filter(code=AuditCode.EVENT_BATCH_INGESTED).count()


def test_concurrent_batches_of_one_region_keep_its_chain_whole():
    emails = [_granted("FR") for _ in range(4)]
    client = api_client("events:write")
    failures: list[str] = []
    start = threading.Barrier(2)

    def sender(worker: int) -> None:
        try:
            start.wait()
            for n in range(8):
                body = [event(e, id=f"w{worker}-{n}-{i}") for i, e in enumerate(emails)]
                response = post(client, body)
                if response.status_code != 200 or response.json()["accepted"] != len(emails):
                    failures.append(f"{response.status_code} {response.content[:300]!r}")
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    assert Event.objects.using("eu").count() == 2 * 8 * len(emails)
    assert _batch_entries("eu") == 16
    head = AuditChainHead.objects.using("eu").get()
    assert head.size == AuditEvent.objects.using("eu").count()
    assert chain_verify(using="eu").ok


def test_a_batch_with_a_signal_and_one_without_append_in_order():
    """The signal's recording appends first (the batch then locks the head at its writes);
    the next batch locks it with its reads: both entries follow each other in the chain."""
    email = new_email()
    SubjectFactory(jurisdiction="US-CA", email=email)
    client = api_client("events:write")
    with_signal = post(client, [event(email, consent_signal={"gpc": True}, jurisdiction="US-CA")])
    assert with_signal.status_code == 200
    plain = post(client, [event(email, jurisdiction="US-CA")])
    assert plain.status_code == 200

    rows = list(AuditEvent.objects.using("us").order_by("seq").values_list("seq", "code"))
    codes = [code for _, code in rows]
    assert codes.count(AuditCode.EVENT_BATCH_INGESTED) == 2
    first = codes.index(AuditCode.EVENT_BATCH_INGESTED)
    assert first > 0  # the signal's recording was appended before the first batch's entry
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
    assert AuditChainHead.objects.using("us").get().size == len(rows)
    assert chain_verify(using="us").ok


def test_a_batch_inside_a_callers_collected_block_leaves_the_append_to_the_block():
    """A caller that collects its audit entries (``audit_collected``) gets the batch's entry in
    its one append at the end: the batch does not lock the head with its reads there."""
    from django.db import transaction

    from compliance.audit.services.append import Actor, audit_collected
    from compliance.events.parsing import event_batch_parse
    from compliance.events.services.ingest import events_ingest

    email = _granted("FR")
    events = event_batch_parse(data={"events": [event(email, id="collected-1")]})
    before = AuditEvent.objects.using("eu").count()
    with transaction.atomic(using="eu"), audit_collected(using="eu"):
        result = events_ingest(events=events, actor=Actor.system("test"))
        assert AuditEvent.objects.using("eu").count() == before  # collected, not yet written
    assert result.outcomes[0].status == "accepted"
    assert _batch_entries("eu") == 1
    assert chain_verify(using="eu").ok
