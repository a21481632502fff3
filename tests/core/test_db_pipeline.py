"""``pipelined``: writes sent together (PostgreSQL pipeline mode), an error inside still
raised as Django's error and nothing written; ``rows_insert``: one statement, keys set in the
rows' order, on every backend (issue 19)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from django.db import IntegrityError, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.db.inserts import rows_insert
from compliance.db.pipeline import pipelined
from compliance.events.models import RejectionCount

pytestmark = pytest.mark.django_db(databases="__all__")

TABLE = RejectionCount._meta.db_table
INSERT = f"INSERT INTO {TABLE} (day, source, reason, count, updated_at) VALUES (%s, %s, %s, %s, %s)"


def _insert(reason: str) -> None:
    with connections["eu"].cursor() as cursor:
        cursor.execute(INSERT, [date(2026, 1, 1), "web", reason, 1, timezone.now()])


def test_writes_in_a_pipelined_block_are_stored():
    with transaction.atomic(using="eu"), pipelined(using="eu"):
        _insert("a")
        _insert("b")
        if connections["eu"].vendor == "postgresql":
            assert connections["eu"].connection._pipeline is not None
    assert sorted(RejectionCount.objects.using("eu").values_list("reason", flat=True)) == [
        "a",
        "b",
    ]


def test_an_error_inside_is_djangos_error_and_nothing_is_written():
    with pytest.raises(IntegrityError):
        with transaction.atomic(using="eu"), pipelined(using="eu"):
            _insert("same")
            _insert("same")  # the unique (day, source, reason): refused, maybe only at the end
    assert not RejectionCount.objects.using("eu").exists()


def test_rows_insert_is_one_statement_and_sets_keys_in_order():
    rows = [RejectionCount(day=date(2026, 1, d), source="web", reason="r") for d in (3, 1, 2)]
    with CaptureQueriesContext(connections["eu"]) as queries:
        rows_insert(using="eu", rows=rows)
    assert len(queries.captured_queries) == 1
    stored = {r.pk: r.day for r in RejectionCount.objects.using("eu")}
    assert [stored[r.pk] for r in rows] == [date(2026, 1, 3), date(2026, 1, 1), date(2026, 1, 2)]
    assert all(not r._state.adding and r._state.db == "eu" for r in rows)
    assert all(r.updated_at is not None for r in rows)  # auto_now applied as the ORM does


def test_rows_insert_refuses_a_model_without_an_auto_key():
    from compliance.models import Subject

    with pytest.raises(TypeError, match="auto-increment"):
        rows_insert(using="eu", rows=[Subject(region="eu")])


def test_bulk_paths_that_would_copy_write_arrays_when_pipelined():
    """COPY is impossible in pipeline mode: 600 audit entries and 250 outbox rows (both past
    their COPY thresholds) are written by their one-statement INSERT, and the chain verifies."""
    from compliance.audit.codes import AuditCode
    from compliance.audit.models import AuditEvent
    from compliance.audit.selectors.verification import chain_verify
    from compliance.audit.services.append import Actor, AuditEntry, audit_append
    from compliance.feed.models import Change
    from compliance.feed.services.outbox import ChangeInput, changes_record

    entries = [
        AuditEntry(code=AuditCode.EVENT_BATCH_INGESTED, actor=Actor.system(), object_id=str(n))
        for n in range(600)
    ]
    changes = [
        ChangeInput("consent", uuid.uuid4(), timezone.now(), purpose="ads", decision="granted")
        for _ in range(250)
    ]
    with transaction.atomic(using="eu"), pipelined(using="eu"):
        audit_append(using="eu", entries=entries)
        changes_record(using="eu", changes=changes)
    assert AuditEvent.objects.using("eu").count() == 600
    assert Change.objects.using("eu").count() == 250
    assert chain_verify(using="eu").ok
