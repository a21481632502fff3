"""The parallel COPY walk (PostgreSQL, large chains) finds what the one-process walk finds.

The threshold is lowered so a small committed chain is split over three processes; each chunk
starts from the stored hash before it, so a forgery in any chunk is named exactly.
"""

from __future__ import annotations

import pytest

from compliance.audit.selectors import walk as fast
from compliance.audit.selectors.verification import chain_verify
from tests.audit.helpers import append, tamper

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(databases="__all__", transaction=True),
]


@pytest.fixture
def chunks(monkeypatch):
    monkeypatch.setattr(fast, "PARALLEL_MIN", 2)
    monkeypatch.setattr(fast, "PARALLEL_WORKERS", 3)
    seen: list[int] = []
    real = fast.walk_ranges

    def spy(**kwargs):
        ranges, results = real(**kwargs)
        seen.append(len(ranges))
        return ranges, results

    monkeypatch.setattr(fast, "walk_ranges", spy)
    return seen


@pytest.mark.parametrize("forged", [2, 15, 29])
def test_forgery_in_any_chunk_is_named(chunks, forged):
    append("eu", 30)
    assert chain_verify(using="eu").ok
    assert chunks and chunks[-1] == 3  # really split
    with tamper("eu") as cursor:
        cursor.execute("UPDATE audit_auditevent SET object_id = 'forged' WHERE seq = %s", [forged])
    result = chain_verify(using="eu")
    assert not result.ok
    assert (result.first_finding.kind, result.first_finding.seq) == ("modified", forged)


def test_removed_entry_at_a_chunk_border_is_named(chunks):
    append("eu", 30)
    with tamper("eu") as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 11")
    result = chain_verify(using="eu")
    assert (result.first_finding.kind, result.first_finding.seq) == ("removed", 11)
