"""Shared fixtures: multi-database access, PostgreSQL-only marks, real Celery workers.

* ``@pytest.mark.soak`` (the 10-minute soak of ``make run``) runs only with ``COMPLIANCE_SOAK=1``;
  ``@pytest.mark.embedded`` only where the embedded broker is the configured one.
* ``@pytest.mark.postgres`` tests are skipped on the embedded default; with
  ``COMPLIANCE_REQUIRE_SERVICES=1`` (CI's service run) a skip is a failure instead.
* ``celery_worker_factory(queues=["compliance.eu"])`` starts a real worker process against the
  test databases and the configured broker, and stops it (or lets a test ``kill -9`` it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("COMPLIANCE_REQUIRE_SERVICES") == "1"


def on_postgres() -> bool:
    return all(connections[a].vendor == "postgresql" for a in settings.DATABASES)


def pytest_collection_modifyitems(config, items):
    # The soak test runs on its own (``make soak``, ``COMPLIANCE_SOAK=1``), once in CI: it is
    # deselected otherwise (not skipped: a skip would fail CI's service run).
    # Tests of the embedded broker itself run where it is the configured broker (the embedded
    # default), and are deselected on a service run (Redis, RabbitMQ).
    unwanted = set()
    if os.environ.get("COMPLIANCE_SOAK") != "1":
        unwanted.add("soak")
    if not settings.CELERY_BROKER_URL.startswith("embedded://"):
        unwanted.add("embedded")
    dropped = [i for i in items if any(i.get_closest_marker(m) for m in unwanted)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]
    for item in items:
        # With COMPLIANCE_REQUIRE_SERVICES=1 nothing is skipped: a missing service fails.
        if (
            item.get_closest_marker("postgres")
            and not _configured_postgres()
            and not REQUIRE_SERVICES
        ):
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL*)"))


def _configured_postgres() -> bool:
    return all("postgresql" in db["ENGINE"] for db in settings.DATABASES.values())


def pytest_sessionfinish(session, exitstatus):
    if REQUIRE_SERVICES and exitstatus == 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
        if skipped:
            print(
                f"\nCOMPLIANCE_REQUIRE_SERVICES=1 but {skipped} tests were skipped", file=sys.stderr
            )
            session.exitstatus = 1


def database_url(alias: str) -> str:
    """URL of the (test) database ``alias`` as the current connection sees it."""
    cfg = connections[alias].settings_dict
    if cfg["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{cfg['NAME']}"
    user = cfg.get("USER") or ""
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return f"postgresql://{auth}{cfg.get('HOST') or '127.0.0.1'}{port}/{cfg['NAME']}"


def worker_env(*, regions: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url("default"),
            "COMPLIANCE_WORKER_REGIONS": ",".join(regions),
            "COMPLIANCE_VAR_DIR": str(settings.VAR_DIR),
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "COMPLIANCE_ROOT_KEY": settings.COMPLIANCE_ROOT_KEY,
            "COMPLIANCE_SIGNING_KEY": settings.COMPLIANCE_SIGNING_KEY,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PYTHONUNBUFFERED": "1",
        }
    )
    for region in settings.COMPLIANCE_REGIONS:
        env[f"DATABASE_URL_{region.upper()}"] = database_url(region)
    return env


def purge_queues() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in app.conf.task_queues:
            queue.bind(channel).declare()
            channel.queue_purge(queue.name)


def queue_size(name: str) -> int:
    from config.celery import app

    with app.connection_for_write() as conn:
        return conn.default_channel._size(name)


class WorkerProcess:
    def __init__(
        self, *, queues: list[str], regions: list[str], log: Path, app: str = "config"
    ) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "-Q",
                ",".join(queues),
                "--concurrency=1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"test-{'-'.join(regions)}-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=worker_env(regions=regions),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log.read_text():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """``kill -9`` the whole worker (main process and its children)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_worker_factory(tmp_path):
    """Needs `@pytest.mark.django_db(transaction=True, databases="__all__")` on the test."""
    workers: list[WorkerProcess] = []
    purge_queues()

    def start(*, queues: list[str], app: str = "config") -> WorkerProcess:
        """``app``: the Celery app module (a test's own, e.g. with a test double installed)."""
        regions = [q.split(".", 1)[1] for q in queues if q != "compliance.control"]
        worker = WorkerProcess(
            queues=queues, regions=regions, log=tmp_path / f"worker-{len(workers)}.log", app=app
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    purge_queues()


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(autouse=True)
def _seeded_defaults_in_transactional_tests(request):
    """Transactional tests flush every table afterwards, data migrations' seeds included;
    put the seeded purposes and sources back before each one (roles come back by themselves:
    flush re-emits post_migrate)."""
    marker = request.node.get_closest_marker("django_db")
    if not marker or not marker.kwargs.get("transaction"):
        yield
        return
    import importlib

    from django.apps import apps as django_apps

    request.getfixturevalue("transactional_db")
    seed = importlib.import_module("compliance.consent.migrations.0002_seed_purposes_sources").seed

    class _Editor:
        connection = connections["default"]

    seed(django_apps, _Editor())
    yield


@pytest.fixture(autouse=True)
def _audit_witness_dir(settings, tmp_path):
    """Each test gets its own audit witness directory (the test databases are fresh too)."""
    settings.COMPLIANCE_AUDIT_WITNESS_DIR = str(tmp_path / "witness")
