"""Array literals built as text (``compliance.db.arrays``): what PostgreSQL parses from them is
exactly what was given, whatever the text holds (any text PostgreSQL stores: no NUL, and no
lone surrogate, which the API refuses at its edge and psycopg cannot encode)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connections
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.db.arrays import array_literal, bytea_array, time_array, uuid_array

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases="__all__")]

AWKWARD = ['a"b', "back\\slash", "{braces}", "comma,space ", "NULL", "", "é ✓ 𝄞", "tab\tnew\nline"]


def _parsed(sql: str, literal: str):
    with connections["eu"].cursor() as cursor:
        cursor.execute(sql, [literal])
        return cursor.fetchone()[0]


def test_text_arrays_keep_every_character_and_null():
    values = [*AWKWARD, None]
    assert _parsed("SELECT %s::text[]", array_literal(values)) == values


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00")),
        )
    )
)
def test_any_text_round_trips(values):
    assert _parsed("SELECT %s::text[]", array_literal(values)) == values


def test_bytea_uuid_and_time_arrays():
    blobs = [b"", b"\x00\xff\\\"'", bytes(range(256)), None]
    assert [None if b is None else bytes(b) for b in _parsed(
        "SELECT %s::bytea[]", bytea_array(blobs)
    )] == blobs  # fmt: skip
    ids = [uuid.uuid4() for _ in range(3)]
    assert _parsed("SELECT %s::uuid[]", uuid_array(ids)) == ids
    times = [
        datetime(2026, 12, 2, 9, 30, 1, 123456, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5))),
        None,
        datetime(2026, 12, 2, 9, 30, 1, 123456, tzinfo=UTC),  # written once, used twice
    ]
    assert _parsed("SELECT %s::timestamptz[]", time_array(times)) == times
