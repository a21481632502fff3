"""``rows_insert``: one statement, keys set in the rows' order, on every backend (issue 19)."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from compliance.db.inserts import rows_insert
from compliance.events.models import RejectionCount

pytestmark = pytest.mark.django_db(databases="__all__")


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
