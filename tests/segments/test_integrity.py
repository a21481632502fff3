"""Every membership change by any path has exactly one audit event; chains verify; rows stay
in their region; on PostgreSQL writes that bypass the service are refused by a trigger."""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.selectors.verification import chain_verify
from compliance.consent.services.record import consent_record
from segments.models import SegmentMembership
from segments.services.memberships import memberships_apply, memberships_exit_all
from tests.conftest import on_postgres
from tests.factories import SegmentFactory, SubjectFactory
from tests.guards import owner_bypass
from tests.segments.helpers import ACTOR, events, raw_count

pytestmark = pytest.mark.django_db(databases="__all__")
TABLE = "segments_segmentmembership"


def test_mixed_workload_one_event_per_change_and_chains_verify(officer):
    a = SegmentFactory(user=officer)
    b = SegmentFactory(user=officer, layers=("demographic",))
    eu = SubjectFactory.create_batch(6, jurisdiction="FR", consented=True)
    us = SubjectFactory.create_batch(4, jurisdiction="US-CA", consented=True)
    everyone = [p.pk for p in eu + us]
    memberships_apply(segment=a, enters=everyone, exits=[], actor=ACTOR)
    memberships_apply(segment=b, enters=everyone[:5], exits=[], actor=ACTOR)
    memberships_apply(segment=a, enters=everyone, exits=[], actor=ACTOR)  # all no-ops
    memberships_apply(segment=a, enters=[], exits=everyone[:2], actor=ACTOR, reason="manual")
    memberships_apply(segment=a, enters=everyone[:1], exits=[], actor=ACTOR, reason="manual")
    consent_record(
        subject=eu[2],
        purpose="measurement",
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )
    memberships_exit_all(region="eu", subject_id=eu[3].pk, reason="restriction", actor=ACTOR)
    memberships_exit_all(region="us", subject_id=us[0].pk, reason="erasure", actor=ACTOR)
    for alias in ("eu", "us"):
        stays = list(SegmentMembership.objects.using(alias).all())
        entered = events(alias, AuditCode.MEMBERSHIP_ENTERED)
        exited = events(alias, AuditCode.MEMBERSHIP_EXITED)
        assert sorted(e.payload["membership_id"] for e in entered) == sorted(s.pk for s in stays)
        closed = sorted(s.pk for s in stays if s.exited_at is not None)
        assert sorted(e.payload["membership_id"] for e in exited) == closed
        for event in exited:
            stay = next(s for s in stays if s.pk == event.payload["membership_id"])
            assert event.payload["reason"] == stay.exited_reason
    assert len(events("eu", AuditCode.MEMBERSHIP_EXITED)) == 2 + 1 + 2  # manual, withdrawn, a+b
    for alias in ("default", "eu", "us"):
        result = chain_verify(using=alias)
        assert result.ok, [f.describe(alias) for f in result.findings]
        assert result.entries > 0


def test_audit_payloads_hold_no_subject_ids(officer):
    seg = SegmentFactory(user=officer)
    person = SubjectFactory(consented=True)
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    [event] = events("eu", AuditCode.MEMBERSHIP_ENTERED)
    flat = str([event.payload, event.object_id, event.subject_token, event.actor_id])
    assert str(person.pk) not in flat and person.pk.hex not in flat


@pytest.mark.postgres
def test_eu_memberships_only_in_eu_database_raw_counts(officer):
    assert on_postgres()
    seg = SegmentFactory(user=officer, layers=("demographic",))
    eu = SubjectFactory.create_batch(3, jurisdiction="DE", consents=["audience_segmentation"])
    us = SubjectFactory.create_batch(2, jurisdiction="US-NY", consents=["audience_segmentation"])
    memberships_apply(segment=seg, enters=[p.pk for p in eu + us], exits=[], actor=ACTOR)
    eu_ids = [str(p.pk) for p in eu]
    where = f"SELECT COUNT(*) FROM {TABLE} WHERE subject_id = ANY(%s::uuid[])"
    assert raw_count("eu", where, [eu_ids]) == 3
    assert raw_count("us", where, [eu_ids]) == 0
    assert raw_count("us", f"SELECT COUNT(*) FROM {TABLE}") == 2
    assert TABLE not in connections["default"].introspection.table_names()


def _raw(alias: str, sql: str, params=()):
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        # run the commit-time check now (the test's own transaction never commits)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.postgres
def test_trigger_refuses_writes_that_bypass_the_service(officer):
    assert on_postgres()
    seg = SegmentFactory(user=officer)
    person = SubjectFactory(consented=True)
    memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    now = timezone.now()
    insert = (
        f"INSERT INTO {TABLE} (subject_id, segment_key, entered_at, entered_reason, "
        "exited_reason, consent_event_ids) VALUES (%s, 'sneaky', %s, 'manual', '', '[]')"
    )
    with pytest.raises(DatabaseError, match="changed without its audit entry"):
        _raw("eu", insert, [uuid.uuid4(), now])
    with pytest.raises(DatabaseError, match="must be an open stay"):
        _raw("eu", insert.replace("'manual', ''", "'manual', 'manual'"), [uuid.uuid4(), now])
    with pytest.raises(DatabaseError, match="only through the membership service"):
        _raw("eu", f"UPDATE {TABLE} SET exited_at = now(), exited_reason = 'manual'")
    with pytest.raises(DatabaseError, match="only through the membership service"):
        _raw("eu", f"DELETE FROM {TABLE}")
    with pytest.raises(DatabaseError):  # the ORM is refused too
        with transaction.atomic(using="eu"):
            SegmentMembership.objects.using("eu").filter(subject_id=person.pk).delete()
    [row] = SegmentMembership.objects.using("eu").all()
    assert row.exited_at is None and row.segment_key == seg.key
    # the service's own writes pass the commit-time check
    memberships_apply(segment=seg, enters=[], exits=[person.pk], actor=ACTOR, reason="manual")
    with connections["eu"].cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    # the table owner with the triggers off may delete (tests seed and clean this way)
    with owner_bypass("eu"):
        with connections["eu"].cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE subject_id = %s", [person.pk])
    assert raw_count("eu", f"SELECT COUNT(*) FROM {TABLE}") == 0


@pytest.mark.postgres
def test_audited_stays_clear_the_commit_check_at_scale():
    """20,000 pending stays are matched to their audit entries by one hash join (a nested loop
    over the statistics-less pending table took minutes), and only the audited ones clear."""
    import time

    from compliance.audit.services.append import AuditEntry, audit_append

    n = 20_000
    with transaction.atomic(using="eu"), connections["eu"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO compliance_membership_pending "
            "SELECT pg_current_xact_id(), g, %s FROM generate_series(1, %s) g",
            [int(AuditCode.MEMBERSHIP_ENTERED), n],
        )
        started = time.perf_counter()
        audit_append(
            using="eu",
            entries=[
                AuditEntry(
                    code=AuditCode.MEMBERSHIP_ENTERED,
                    actor=ACTOR,
                    object_type="segment",
                    object_id="s",
                    payload={"reason": "criteria", "membership_id": pk},
                )
                for pk in range(1, n)  # the last one is not audited
            ],
        )
        assert time.perf_counter() - started < 20
        cursor.execute(
            "SELECT membership_id FROM compliance_membership_pending "
            "WHERE txid = pg_current_xact_id()"
        )
        assert cursor.fetchall() == [(n,)]
        cursor.execute("DELETE FROM compliance_membership_pending")
