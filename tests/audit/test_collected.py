"""``audit_collected``: the appends of one request become ONE append (one chain-head lock), in
order, verifiable; an error inside the block leaves nothing (issue 19)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.services.append import (
    Actor,
    AuditEntry,
    AuditPayloadError,
    audit_append,
    audit_append_uniform,
    audit_collected,
)

pytestmark = pytest.mark.django_db(databases="__all__")
ALIAS = "eu"
ACTOR = Actor.system("test")


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        code=AuditCode.CONSENT_RECORDED, actor=ACTOR, object_type="thing", payload={"n": n}
    )


def appends(queries) -> int:
    """Appends: the head-lock function on PostgreSQL, the head's move on SQLite."""
    return sum(
        "audit_head_lock" in q["sql"]
        or ('UPDATE "audit_auditchainhead"' in q["sql"] and '"head_hash" = ' in q["sql"])
        for q in queries.captured_queries
    )


def test_three_calls_one_append_in_order_and_verifiable():
    audit_append(using=ALIAS, entries=[entry(0)])
    with CaptureQueriesContext(connections[ALIAS]) as queries:
        with transaction.atomic(using=ALIAS), audit_collected(using=ALIAS):
            assert audit_append(using=ALIAS, entries=[entry(1)]) == ()
            audit_append(using=ALIAS, entries=[entry(2), entry(3)])
            audit_append_uniform(
                using=ALIAS,
                code=AuditCode.CONSENT_RECORDED,
                actor=ACTOR,
                object_type="thing",
                items=[("", "", {"n": 4})],
            )
            assert AuditEvent.objects.using(ALIAS).count() == 1  # nothing yet
    assert appends(queries) == 1
    rows = list(AuditEvent.objects.using(ALIAS).order_by("seq").values_list("seq", "payload"))
    assert rows == [(i + 1, {"n": i}) for i in range(5)]
    assert len({e.occurred_at for e in AuditEvent.objects.using(ALIAS).filter(seq__gt=1)}) == 1
    assert chain_verify(using=ALIAS).ok


def test_an_error_inside_the_block_appends_nothing():
    with pytest.raises(RuntimeError), transaction.atomic(using=ALIAS):
        with audit_collected(using=ALIAS):
            audit_append(using=ALIAS, entries=[entry(1)])
            raise RuntimeError("the request failed")
    assert not AuditEvent.objects.using(ALIAS).exists()
    audit_append(using=ALIAS, entries=[entry(2)])  # the chain goes on from genesis
    assert AuditEvent.objects.using(ALIAS).get().seq == 1
    assert chain_verify(using=ALIAS).ok


def test_payloads_are_checked_at_the_call():
    with transaction.atomic(using=ALIAS), audit_collected(using=ALIAS):
        with pytest.raises(AuditPayloadError):
            bad = AuditEntry(code=1, actor=ACTOR, payload={"who": "claire@example.fr"})
            audit_append(using=ALIAS, entries=[bad])
        audit_append(using=ALIAS, entries=[entry(1)])
    assert AuditEvent.objects.using(ALIAS).count() == 1


def test_the_latest_time_given_is_the_appends_time_and_other_aliases_are_apart():
    early = timezone.now() - timedelta(seconds=5)
    later = early + timedelta(seconds=1)
    with transaction.atomic(using=ALIAS), audit_collected(using=ALIAS):
        audit_append(using=ALIAS, entries=[entry(1)], at=later)
        audit_append(using=ALIAS, entries=[entry(2)], at=early)
        audit_append(using="default", entries=[entry(3)])  # not collected: written at once
        assert AuditEvent.objects.using("default").count() == 1
        with audit_collected(using=ALIAS):  # nested: joins the outer block
            audit_append(using=ALIAS, entries=[entry(4)])
        assert not AuditEvent.objects.using(ALIAS).exists()
    times = set(AuditEvent.objects.using(ALIAS).values_list("occurred_at", flat=True))
    assert times == {later}
    assert AuditEvent.objects.using(ALIAS).count() == 3


@pytest.mark.postgres
def test_an_append_sent_with_the_callers_statements_is_the_append_audit_append_writes():
    """``audit_append_sql`` (the event batch's writes carry it): the head locked by the caller's
    statement, the entries hashed from it, stored and the head moved in one statement; the
    chain verifies and reads as ``audit_append`` would have written it."""
    from compliance.audit.services.append import audit_append_sql, audit_head_lock_sql
    from compliance.db.batch import statements_run

    audit_append(using=ALIAS, entries=[entry(0)])
    with transaction.atomic(using=ALIAS):
        [[head]] = statements_run(using=ALIAS, statements=[audit_head_lock_sql(using=ALIAS)])
        statements_run(
            using=ALIAS,
            statements=[audit_append_sql(using=ALIAS, entries=[entry(1), entry(2)], head=head)],
        )
    rows = list(AuditEvent.objects.using(ALIAS).order_by("seq").values_list("seq", "payload"))
    assert rows == [(1, {"n": 0}), (2, {"n": 1}), (3, {"n": 2})]
    assert chain_verify(using=ALIAS).ok


def test_an_append_sent_with_the_callers_statements_refuses_what_it_cannot_write():
    from compliance.audit.services.append import audit_append_sql
    from compliance.audit.sql import COPY_THRESHOLD

    head = (0, "0" * 64)
    with pytest.raises(ValueError, match="entries"):
        audit_append_sql(using=ALIAS, entries=[], head=head)
    with pytest.raises(ValueError, match="entries"):
        audit_append_sql(using=ALIAS, entries=[entry(n) for n in range(COPY_THRESHOLD)], head=head)
    with transaction.atomic(using=ALIAS), audit_collected(using=ALIAS):
        with pytest.raises(RuntimeError, match="audit_collected"):
            audit_append_sql(using=ALIAS, entries=[entry(1)], head=head)
    with pytest.raises(AuditPayloadError):
        audit_append_sql(
            using=ALIAS,
            entries=[AuditEntry(AuditCode.CONSENT_RECORDED, ACTOR, payload={"to": "a@b.example"})],
            head=head,
        )
