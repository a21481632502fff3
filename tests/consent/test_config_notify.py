"""PostgreSQL: the cached configuration listens for change notices instead of reading a stamp on
every request (issue 19). A warm request outside a transaction asks the database nothing about
the configuration; a change committed by another connection, even one the stamp cannot see
(a name changed by a queryset update), is seen by the first look after its notice arrived (the
server sends it at commit, asynchronously: within milliseconds); a new connection compares the
stamp once."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from compliance.consent.selectors import cached
from compliance.consent.selectors.cached import configuration
from tests.conftest import database_url
from tests.consent.conftest import api_client
from tests.consent.test_api import consent_body
from tests.consent.test_config_cache import config_queries, warm_request_queries

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases="__all__", transaction=True)]


def other_process(sql: str, params: list) -> None:
    """A write committed on its own connection: no signal of this process sees it."""
    with psycopg.connect(database_url("default"), autocommit=True) as conn:
        conn.execute(sql, params)


def heard(predicate, *, within: float = 5.0) -> bool:
    """``predicate()`` came true by ``within`` seconds (the notice travels asynchronously)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_a_warm_request_asks_nothing_about_the_configuration():
    queries = warm_request_queries()
    assert config_queries(queries) == (0, 0)
    assert not any("LISTEN" in q["sql"] for q in queries.captured_queries)


def test_a_change_the_stamp_cannot_see_is_heard_at_the_next_look():
    assert configuration().purposes["measurement"].name != "Heard"
    with CaptureQueriesContext(connections["default"]) as queries:
        configuration()
    assert queries.captured_queries == []  # listening, nothing heard: no query
    # neither the row count nor updated_at moves: only the notice tells
    other_process("UPDATE consent_purpose SET name = %s WHERE key = %s", ["Heard", "measurement"])
    assert heard(lambda: configuration().purposes["measurement"].name == "Heard")


def test_a_change_is_seen_by_the_next_request_of_a_running_process():
    client = api_client("consent:write")
    assert client.post("/api/v1/consents/", consent_body(), format="json").status_code == 201
    other_process("UPDATE consent_purpose SET is_active = false WHERE key = %s", ["measurement"])
    assert heard(lambda: "measurement" not in configuration().purposes)
    response = client.post("/api/v1/consents/", consent_body(), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["decisions.0.purpose"]
    other_process("UPDATE consent_purpose SET is_active = true WHERE key = %s", ["measurement"])
    assert heard(lambda: "measurement" in configuration().purposes)
    assert client.post("/api/v1/consents/", consent_body(), format="json").status_code == 201


def test_a_new_connection_listens_and_compares_the_stamp_once():
    configuration()
    connections["default"].close()  # as DB_CONN_MAX_AGE or a lost connection would
    other_process("UPDATE consent_purpose SET name = %s WHERE key = %s", ["Before", "measurement"])
    with CaptureQueriesContext(connections["default"]) as queries:
        # a changed name alone is not in the stamp: this process keeps its copy, as before
        configuration()
        configuration()
    sqls = [q["sql"] for q in queries.captured_queries]
    assert sqls[0] == f"LISTEN {cached.CHANNEL}"
    assert config_queries(queries)[0] == 1  # the stamp, once
    other_process("UPDATE consent_purpose SET name = %s WHERE key = %s", ["After", "measurement"])
    assert heard(lambda: configuration().purposes["measurement"].name == "After")


def test_inside_a_transaction_the_stamp_decides():
    from django.db import transaction

    with transaction.atomic(using="default"):
        with CaptureQueriesContext(connections["default"]) as queries:
            configuration()
        assert config_queries(queries)[0] == 1
