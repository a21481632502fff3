"""``statements_run(commit=True)`` on PostgreSQL: COMMIT goes with the last statements only
when the transaction is the caller's own (its outermost ``atomic`` block, blocks without a
savepoint inside it); the block then ends as after any commit (``on_commit`` callbacks run
once, at its exit); inside a caller's transaction nothing changes; a failing statement still
leaves nothing written."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connections, transaction
from psycopg.pq import TransactionStatus

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append, audit_collected
from compliance.db.batch import statements_run

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases="__all__", transaction=True)]

TABLE = "test_batch_commit"


@pytest.fixture
def table():
    with connections["eu"].cursor() as cursor:
        cursor.execute(f"CREATE TABLE {TABLE} (v integer PRIMARY KEY)")
    yield
    with connections["eu"].cursor() as cursor:
        cursor.execute(f"DROP TABLE {TABLE}")


def _insert(value: int) -> tuple[str, list]:
    return f"INSERT INTO {TABLE} (v) VALUES (%s) RETURNING v", [value]


def _values() -> list[int]:
    with connections["eu"].cursor() as cursor:
        cursor.execute(f"SELECT v FROM {TABLE} ORDER BY v")
        return [v for (v,) in cursor.fetchall()]


def _status() -> TransactionStatus:
    return connections["eu"].connection.info.transaction_status


def test_the_outermost_block_ends_in_the_statements_round_trip(table):
    done: list[str] = []
    with transaction.atomic(using="eu"):
        transaction.on_commit(lambda: done.append("committed"), using="eu")
        found = statements_run(using="eu", statements=[_insert(1), _insert(2)], commit=True)
        assert found == [[(1,)], [(2,)]]
        assert _status() == TransactionStatus.IDLE  # ended: nothing left for the block's exit
        assert done == []  # callbacks still wait for the block's exit
    assert done == ["committed"]
    assert _values() == [1, 2]
    # the connection goes on as usual: the next block is a transaction of its own
    with pytest.raises(RuntimeError), transaction.atomic(using="eu"):
        statements_run(using="eu", statements=[_insert(3)])
        raise RuntimeError("rolled back")
    assert _values() == [1, 2]


def test_inside_a_callers_transaction_nothing_is_committed_early(table):
    with pytest.raises(RuntimeError), transaction.atomic(using="eu"):
        with transaction.atomic(using="eu"):
            statements_run(using="eu", statements=[_insert(1)], commit=True)
            assert _status() == TransactionStatus.INTRANS
        raise RuntimeError("the caller's transaction rolls back")
    assert _values() == []


def test_a_failing_statement_leaves_nothing_written(table):
    with pytest.raises(DatabaseError), transaction.atomic(using="eu"):
        statements_run(using="eu", statements=[_insert(1), _insert(1)], commit=True)
    assert _values() == []


def test_what_follows_the_round_trip_in_the_block_cannot_undo_it(table):
    """Why the caller must do nothing after ``commit=True`` that could fail: the rows are
    committed already, the block's rollback has nothing to undo."""
    with pytest.raises(RuntimeError), transaction.atomic(using="eu"):
        statements_run(using="eu", statements=[_insert(1)], commit=True)
        raise RuntimeError("too late")
    assert _values() == [1]


def test_blocks_without_a_savepoint_join_the_callers_own_transaction(table):
    """As the audit append at the end of a consent submission runs: its block (no savepoint)
    joins the submission's, which the submission owns: the append ends it."""
    with transaction.atomic(using="eu"), transaction.atomic(using="eu", savepoint=False):
        statements_run(using="eu", statements=[_insert(1)], commit=True)
        assert _status() == TransactionStatus.IDLE
    assert _values() == [1]


def test_an_audit_append_ending_a_callers_nested_block_commits_nothing_early(table):
    entry = AuditEntry(
        code=AuditCode.EVENT_BATCH_INGESTED, actor=Actor.system("test"), object_type="test"
    )
    with pytest.raises(RuntimeError), transaction.atomic(using="eu"):
        with transaction.atomic(using="eu"), audit_collected(using="eu", ends_transaction=True):
            statements_run(using="eu", statements=[_insert(1)])
            audit_append(using="eu", entries=[entry])
        assert _status() == TransactionStatus.INTRANS
        raise RuntimeError("the caller's transaction rolls back")
    assert _values() == []
