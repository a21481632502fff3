"""A consent recording's rows, state and outbox rows (``ledger_store``, issue 19): on PostgreSQL
one statement beside the audit chain head's lock, with the same results as writing them one by
one: the latest decision per purpose wins in the state, one outbox row per ledger row in id
order, one audit append that verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.audit.models import AuditEvent
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.services.append import (
    audit_collected,
    audit_head_held,
    audit_head_wanted,
)
from compliance.consent.models import ConsentEvent, ConsentState
from compliance.consent.services.record import DecisionInput, consent_record_many
from compliance.feed.models import Change
from tests.consent.conftest import ACTOR
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def _record(subject, decisions, **context):
    return consent_record_many(
        subject=subject, decisions=decisions, source="web", actor=ACTOR, **context
    )


def test_rows_state_and_outbox_agree_whatever_the_backend():
    subject = SubjectFactory()
    earlier = timezone.now() - timedelta(hours=1)
    with transaction.atomic(using="eu"), audit_collected(using="eu"):
        events = _record(
            subject,
            [
                DecisionInput(purpose="measurement", decision="granted"),
                DecisionInput(purpose="storage", decision="granted"),
            ],
            captured_at=earlier,
        )
        events += _record(subject, [DecisionInput(purpose="measurement", decision="withdrawn")])
    assert all(e.pk for e in events)
    stored = ConsentEvent.objects.using("eu").filter(subject_id=subject.pk)
    assert sorted(stored.values_list("id", flat=True)) == sorted(e.pk for e in events)
    state = {
        s.purpose: (s.decision, s.event_id)
        for s in ConsentState.objects.using("eu").filter(subject_id=subject.pk)
    }
    assert state == {
        "measurement": ("withdrawn", events[2].pk),
        "storage": ("granted", events[1].pk),
    }
    changes = (
        Change.objects.using("eu").filter(subject_id=subject.pk, kind="consent").order_by("id")
    )
    assert [(c.ref_id, c.purpose, c.decision, c.reason) for c in changes] == [
        (e.pk, e.purpose, e.decision, e.method) for e in sorted(events, key=lambda e: e.pk)
    ]
    codes = AuditEvent.objects.using("eu").filter(object_type="consent_event")
    assert sorted(int(a.object_id) for a in codes) == sorted(e.pk for e in events)
    assert chain_verify(using="eu").ok


@pytest.mark.postgres
def test_postgresql_writes_them_in_one_statement_beside_the_head_lock():
    subject = SubjectFactory()
    with CaptureQueriesContext(connections["eu"]) as queries:
        with transaction.atomic(using="eu"), audit_collected(using="eu"):
            _record(subject, [DecisionInput(purpose="measurement", decision="granted")])
    sent = [q["sql"] for q in queries.captured_queries]
    [batch] = [s for s in sent if "consent_consentevent" in s]
    assert "consent_consentstate" in batch and "feed_change" in batch
    assert "audit_head_lock" in batch  # the head's lock travels with the rows
    assert sum("audit_head_lock" in s for s in sent) == 1  # and is not taken again
    assert chain_verify(using="eu").ok


def test_a_head_can_only_be_held_for_an_open_block():
    assert not audit_head_wanted(using="eu")
    with pytest.raises(RuntimeError, match="audit_collected"):
        audit_head_held(using="eu", head=(0, "00"))


@pytest.mark.postgres
def test_the_chain_head_is_locked_before_the_outbox_in_every_recording():
    """Memberships write their audit entries, then their outbox rows: a recording locks in the
    same order (head, then outbox), in a collected block or not, so the two never deadlock."""
    subject = SubjectFactory()
    with CaptureQueriesContext(connections["eu"]) as queries:
        _record(subject, [DecisionInput(purpose="measurement", decision="granted")])
    [batch] = [q["sql"] for q in queries.captured_queries if "consent_consentevent" in q["sql"]]
    assert batch.index("audit_head_lock") < batch.index("pg_advisory_xact_lock")
    assert chain_verify(using="eu").ok
