"""``/healthz`` touches nothing; ``/readyz`` names each database alias and says 503 when one is
down (a real failed connection) or not fully migrated (a real missing migration record), and
when the broker does not answer (a real closed port)."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from django.conf import settings
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db(databases="__all__")


def test_healthz_answers_without_any_query(client):
    with ExitStack() as stack:
        captured = [
            stack.enter_context(CaptureQueriesContext(connections[alias]))
            for alias in settings.DATABASES
        ]
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert [len(c) for c in captured] == [0] * len(settings.DATABASES)
    assert not response.cookies  # no session, no CSRF cookie


def test_readyz_when_all_is_well(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ready"] is True
    assert set(body["databases"]) == set(settings.DATABASES)
    assert all(part["ok"] for part in body["databases"].values())
    assert body["broker"]["ok"] is True


def _unreachable(alias: str) -> dict:
    """``alias``'s settings pointed where nothing answers: a closed port or a missing dir."""
    config = dict(connections.settings[alias])
    if config["ENGINE"].endswith("sqlite3"):
        config["NAME"] = "/nonexistent-ops-test-dir/down.sqlite3"
    else:
        config.update({"HOST": "127.0.0.1", "PORT": "1"})
    config["OPTIONS"] = {k: v for k, v in config["OPTIONS"].items() if k != "transaction_mode"}
    return config


def test_readyz_names_the_database_that_is_down(client, monkeypatch):
    # readiness opens its own connection per alias in a thread, from these settings; this
    # thread's connections (the test's) are not touched
    monkeypatch.setitem(connections.settings, "eu", _unreachable("eu"))
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["databases"]["eu"] == {"ok": False, "detail": "not reachable: OperationalError"}
    assert body["databases"]["default"]["ok"] and body["databases"]["us"]["ok"]
    text = response.content.decode()
    assert "nonexistent-ops-test-dir" not in text and ":1" not in text  # no DSN, no host


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_readyz_says_which_database_misses_a_migration(client):
    recorder = MigrationRecorder(connections["us"])
    app, name = max(
        (key for key in recorder.applied_migrations() if key[0] == "segments"),
        key=lambda key: key[1],
    )
    recorder.record_unapplied(app, name)
    try:
        response = client.get("/readyz")
    finally:
        recorder.record_applied(app, name)
    assert response.status_code == 503
    body = response.json()
    assert body["databases"]["us"] == {"ok": False, "detail": "1 unapplied migration(s)"}
    assert body["databases"]["eu"]["ok"] and body["databases"]["default"]["ok"]
    assert client.get("/readyz").status_code == 200  # the record is back


def test_readyz_says_the_broker_is_down(client, monkeypatch):
    from compliance.ops.readiness import app

    # where nothing answers (a closed port); the databases stay as they are
    monkeypatch.setitem(app.conf, "broker_write_url", "redis://127.0.0.1:1/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["broker"]["ok"] is False
    # refused at once, or still retrying when the probe's time is up
    assert body["broker"]["detail"].startswith(("not reachable: ", "no answer within"))
    assert all(part["ok"] for part in body["databases"].values())
    assert "127.0.0.1" not in response.content.decode()  # no URL, no host
