"""Residency of events: an EU person's events exist only in the EU database (raw SQL)."""

from __future__ import annotations

import pytest
from django.db import connections

from compliance.events.parsing import event_batch_parse
from compliance.events.services.ingest import events_ingest
from tests.events.conftest import ACTOR, event, new_email
from tests.factories import ConsentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def raw_count(alias: str, table: str, where: str = "", params=()) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} {where}", params)
        return cursor.fetchone()[0]


def test_events_table_exists_only_in_region_databases():
    assert "events_event" not in connections["default"].introspection.table_names()
    for alias in ("eu", "us"):
        assert "events_event" in connections[alias].introspection.table_names()


@pytest.mark.postgres
def test_eu_events_only_in_eu_database_and_us_only_in_us():
    eu_people = [new_email("eu") for _ in range(3)]
    us_people = [new_email("us") for _ in range(2)]
    for email in eu_people:
        SubjectFactory(jurisdiction="FR", email=email, consents=["measurement"])
    for email in us_people:
        ConsentFactory(
            subject=SubjectFactory(jurisdiction="US-NY", email=email),
            jurisdiction="US-NY",
            decision="granted",
        )
    batch = [event(e) for e in eu_people] + [event(e) for e in us_people]
    batch.append(event(new_email("eu"), jurisdiction="DE"))  # unknown EU person: rejected
    result = events_ingest(events=event_batch_parse(data={"events": batch}), actor=ACTOR)

    assert (result.accepted, result.rejected) == (5, 1)
    assert raw_count("eu", "events_event") == 3
    assert raw_count("us", "events_event") == 2
    eu_ids = [str(s) for s in _subject_ids("eu")]
    assert raw_count("us", "events_event", "WHERE subject_id::text = ANY(%s)", [eu_ids]) == 0
    # the rejection of the unknown DE person is counted in the EU database only
    assert raw_count("eu", "events_rejectioncount") == 1
    assert raw_count("us", "events_rejectioncount") == 0
    assert raw_count("eu", "audit_auditevent", "WHERE code = 106") == 1
    assert raw_count("us", "audit_auditevent", "WHERE code = 106") == 1
    assert raw_count("default", "audit_auditevent", "WHERE code = 106") == 0


def _subject_ids(alias: str) -> list:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT DISTINCT subject_id FROM events_event")
        return [row[0] for row in cursor.fetchall()]
