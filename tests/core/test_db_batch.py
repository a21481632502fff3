"""``statements_run`` on PostgreSQL, both ways it sends a round trip (prepared statements in
one pipeline, and the statements joined in one string when preparing is off):
``commit=True`` puts COMMIT with the last statements only when the transaction is the caller's
own (its outermost ``atomic`` block, blocks without a savepoint inside it); the block then ends
as after any commit (``on_commit`` callbacks run once, at its exit); inside a caller's
transaction nothing changes; a failing statement still leaves nothing written and raises
Django's error."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connections, transaction
from django.test.utils import CaptureQueriesContext
from psycopg.pq import TransactionStatus

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append, audit_collected
from compliance.db.batch import statements_run

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases="__all__", transaction=True)]

TABLE = "test_batch_commit"


@pytest.fixture(params=["prepared", "joined"])
def table(request):
    """The scratch table, with statements sent either way (``DB_PREPARED_STATEMENTS`` on or
    off: the connection's ``prepare_threshold``)."""
    connection = connections["eu"]
    connection.ensure_connection()
    raw = connection.connection
    threshold = raw.prepare_threshold
    raw.prepare_threshold = 5 if request.param == "prepared" else None
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {TABLE} (v integer PRIMARY KEY)")
    yield request.param
    raw.prepare_threshold = threshold
    with connection.cursor() as cursor:
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
    # Django's IntegrityError (the event batch retries on it), not the driver's
    with pytest.raises(IntegrityError), transaction.atomic(using="eu"):
        statements_run(using="eu", statements=[_insert(1), _insert(1)], commit=True)
    assert _values() == []
    # the connection goes on, and the same statements run again
    with transaction.atomic(using="eu"):
        found = statements_run(using="eu", statements=[_insert(1), _insert(2)], commit=True)
    assert found == [[(1,)], [(2,)]]
    assert _values() == [1, 2]


def _prepared() -> list[str]:
    with connections["eu"].cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements ORDER BY prepare_time")
        return [statement for (statement,) in cursor.fetchall()]


def test_statements_are_prepared_once_per_connection_when_preparing_is_on(table):
    for value in (1, 2, 3):
        with transaction.atomic(using="eu"):
            statements_run(using="eu", statements=[_insert(value)], commit=True)
    inserts = [s for s in _prepared() if TABLE in s]
    if table == "prepared":  # one statement, parsed and planned once, bound three times
        assert inserts == [f"INSERT INTO {TABLE} (v) VALUES ($1) RETURNING v"]
    else:
        assert inserts == []
    assert _values() == [1, 2, 3]


def test_a_statement_alone_is_prepared_too_and_answers_its_rows(table):
    with transaction.atomic(using="eu"):
        statements_run(using="eu", statements=[_insert(1), _insert(2)])
    for _ in range(2):
        (rows,) = statements_run(
            using="eu", statements=[(f"SELECT v FROM {TABLE} WHERE v = ANY(%s::int[])", ["{1,2}"])]
        )
        assert sorted(rows) == [(1,), (2,)]
    selects = [s for s in _prepared() if TABLE in s and s.startswith("SELECT")]
    assert len(selects) == (1 if table == "prepared" else 0)
    assert statements_run(using="eu", statements=[(f"DELETE FROM {TABLE}", [])]) == [[]]
    assert _values() == []


def test_the_query_log_and_execute_wrappers_see_one_statement_per_round_trip(table):
    seen: list[str] = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    connection = connections["eu"]
    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(wrapper):
        with transaction.atomic(using="eu"):
            statements_run(using="eu", statements=[_insert(1), _insert(2)], commit=True)
    sent = f"{_insert(1)[0]}; {_insert(2)[0]}; COMMIT"
    assert seen == [sent]
    logged = [q["sql"] for q in captured.captured_queries if TABLE in q["sql"]]
    assert logged == [
        sent if table == "prepared" else sent.replace("%s", "1", 1).replace("%s", "2", 1)
    ]


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
