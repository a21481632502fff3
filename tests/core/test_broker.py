"""The embedded broker (``embedded://``, compliance/broker.py): nothing lost, nothing doubled,
nothing fatal, under real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection

from tests.conftest import ROOT, worker_env

PRODUCERS = 4
PER_PRODUCER = 2000
PRODUCE = """
import django, sys
django.setup()
from config.celery import app
producer, count = sys.argv[1], int(sys.argv[2])
regions = [None, "eu", "us"]
with app.producer_or_acquire() as p:
    for i in range(count):
        region = regions[i % 3]
        kwargs = {"token": f"{producer}-{i}"}
        if region:
            kwargs["region"] = region
        app.send_task("compliance.broker_probe", kwargs=kwargs, producer=p)
"""


def _connection(folder: Path) -> Connection:
    return Connection("embedded://", transport_options={"data_folder": str(folder)})


def test_put_is_atomic_and_get_claims_until_ack(tmp_path):
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("q1")
        queue.put({"n": 1})
        assert not list((tmp_path / "tmp").iterdir())  # nothing half-written left behind
        message = queue.get(timeout=1)
        assert message.payload == {"n": 1}
        assert queue.qsize() == 0
        claimed = [p for p in (tmp_path / "claimed").rglob("*.msg")]
        assert len(claimed) == 1  # taken, not yet acknowledged: kept on disk
        message.ack()
        assert not list((tmp_path / "claimed").rglob("*.msg"))
        queue.close()


def test_reject_with_requeue_puts_the_same_file_back(tmp_path):
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("q2")
        queue.put({"n": 2})
        message = queue.get(timeout=1)
        message.requeue()
        assert queue.qsize() == 1
        again = queue.get(timeout=1)
        assert again.payload == {"n": 2}
        again.ack()
        assert queue.qsize() == 0
        queue.close()


def test_unreadable_file_is_not_ready_not_fatal(tmp_path):
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("q3")
        folder = tmp_path / "queues" / "q3"
        (folder / "00000000000000000001-broken.msg").write_bytes(b"")  # an empty, "new" file
        queue.put({"n": 3})
        message = queue.get(timeout=1)  # the good one is delivered, the empty one skipped
        assert message.payload == {"n": 3}
        message.ack()
        assert (folder / "00000000000000000001-broken.msg").exists()  # left for later
        queue.close()


def test_claims_of_a_killed_consumer_are_delivered_again(tmp_path):
    take = (
        "import sys,time; from kombu import Connection\n"
        f"c = Connection('embedded://', transport_options={{'data_folder': {str(tmp_path)!r}}})\n"
        "m = c.SimpleQueue('q4').get(timeout=5); print('took', m.payload, flush=True)\n"
        "time.sleep(60)\n"
    )
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("q4")
        queue.put({"n": 4})
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import compliance.broker\n"
                + take.replace(
                    "from kombu import Connection",
                    "from kombu import Connection; from kombu.transport import TRANSPORT_ALIASES; "
                    "TRANSPORT_ALIASES['embedded']='compliance.broker:Transport'",
                ),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().startswith("took")
        assert queue.qsize() == 0
        proc.kill()
        proc.wait(10)
        message = queue.get(timeout=10)  # our next poll finds the dead owner's claim
        assert message.payload == {"n": 4}
        message.ack()
        queue.close()


def _start_worker(*, tmp_path: Path, name: str, beat: bool) -> tuple[subprocess.Popen, Path]:
    queues = ",".join(q.name for q in __import__("config.celery").celery.app.conf.task_queues)
    log = tmp_path / f"{name}.log"
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        queues,
        "--concurrency=1",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"{name}-{os.getpid()}@%h",
    ]
    if beat:
        args += ["--beat", "--schedule", str(tmp_path / "beat-schedule")]
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=worker_env(regions=list(settings.COMPLIANCE_REGIONS)),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, log


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.embedded
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_stress_4_producers_2_workers_with_beat_every_message_exactly_once(tmp_path):
    probe = settings.VAR_DIR / "broker-probe"
    for old in probe.glob("*.log") if probe.exists() else []:
        old.unlink()
    from tests.conftest import purge_queues

    purge_queues()
    workers = [
        _start_worker(tmp_path=tmp_path, name="stress-a", beat=True),
        _start_worker(tmp_path=tmp_path, name="stress-b", beat=False),
    ]
    try:
        deadline = time.monotonic() + 60
        while not all("ready." in log.read_text() for _, log in workers):
            assert time.monotonic() < deadline, [log.read_text()[-2000:] for _, log in workers]
            time.sleep(0.2)
        producers = [
            subprocess.Popen(
                [sys.executable, "-c", PRODUCE, f"p{n}", str(PER_PRODUCER)],
                cwd=ROOT,
                env=worker_env(regions=list(settings.COMPLIANCE_REGIONS)),
            )
            for n in range(PRODUCERS)
        ]
        for proc in producers:
            assert proc.wait(300) == 0
        expected = {f"p{n}-{i}" for n in range(PRODUCERS) for i in range(PER_PRODUCER)}
        counts: Counter = Counter()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            counts = Counter(
                line
                for path in probe.glob("*.log")
                for line in path.read_text().splitlines()
                if line
            )
            if len(counts) >= len(expected):
                break
            time.sleep(1)
        time.sleep(2)  # anything processed twice would show up now
        counts = Counter(
            line for path in probe.glob("*.log") for line in path.read_text().splitlines() if line
        )
        missing = expected - set(counts)
        doubled = {token: n for token, n in counts.items() if n > 1}
        logs = "\n".join(log.read_text()[-3000:] for _, log in workers)
        assert not missing, f"{len(missing)} messages never processed\n{logs}"
        assert not doubled, f"{len(doubled)} processed more than once\n{logs}"
        assert set(counts) == expected
        for proc, log in workers:
            assert proc.poll() is None, f"a worker died:\n{log.read_text()[-3000:]}"
            text = log.read_text()
            assert "Unrecoverable error" not in text and "Traceback" not in text, text[-3000:]
        assert "Scheduler: Sending due task" in workers[0][1].read_text()  # beat was running
        broker = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder"])
        assert not list((broker / "claimed").rglob("*.msg"))
        print(json.dumps({"messages": len(expected), "processed": sum(counts.values())}))
    finally:
        for proc, _ in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
