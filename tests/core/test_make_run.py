"""``make run``'s script on the embedded default: serves, supervises its worker, stops on Ctrl-C,
and starts again with the demo story whatever was done to the demo through the API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STORY = (
    "Officer's queue: 1 erasure awaiting approval, 1 overdue access request, 1 completed "
    "erasure with receipt; 1 AI-suggested segment awaiting review"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(var_dir: Path, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "CELERY_", "COMPLIANCE_", "DJANGO_"))
    }
    env.update(
        {
            "COMPLIANCE_VAR_DIR": str(var_dir),
            "PORT": str(port),
            "BIN": str(Path(sys.executable).parent),
        }
    )
    return env


class RunScript:
    """``scripts/run.sh`` in its own process group, its console captured in a file."""

    def __init__(self, *, var_dir: Path, log: Path, port: int | None = None) -> None:
        self.var_dir, self.log = var_dir, log
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = embedded_env(var_dir, self.port)
        self.killed_workers: list[int] = []
        self.proc = subprocess.Popen(
            [str(ROOT / "scripts" / "run.sh")],
            cwd=ROOT,
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # as from a terminal: Ctrl-C is not ignored even if this test runs in the background
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def get(self, path: str, *, token: str | None = None, timeout: float = 10) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def post(
        self, path: str, body: dict, *, token: str, key: str | None = None
    ) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode(), method="POST"
        )
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        request.add_header("Idempotency-Key", key or uuid.uuid4().hex)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def wait_serving(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                status, body = self.get("/admin/login/", timeout=2)
                if status == 200:
                    return body
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail(f"not serving (exit {self.proc.poll()}):\n{self.output[-4000:]}")

    def worker_pid(self) -> int | None:
        children = subprocess.run(
            ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(self.proc.pid)],
            capture_output=True,
            text=True,
        ).stdout
        for line in children.splitlines():
            pid, _, args = line.strip().partition(" ")
            if "celery" in args and " worker " in args:
                return int(pid)
        return None

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def ctrl_c(self, timeout: float = 90) -> None:
        workers = [pid for pid in [self.worker_pid()] if pid]
        os.killpg(self.proc.pid, signal.SIGINT)
        assert self.proc.wait(timeout=timeout) == 0, self.output[-3000:]
        assert "stopped." in self.output
        # nothing of ours is left: the script's group, and the worker's own group
        for group in [self.proc.pid, *workers, *self.killed_workers]:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    os.killpg(group, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
            else:
                left = subprocess.run(
                    ["ps", "-ww", "-o", "pid,args", "-g", str(group)],
                    capture_output=True,
                    text=True,
                ).stdout
                pytest.fail(f"processes left after Ctrl-C:\n{left}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            worker = self.worker_pid()
            os.killpg(self.proc.pid, signal.SIGKILL)
            if worker:
                os.killpg(worker, signal.SIGKILL)
            self.proc.wait(10)


@pytest.mark.slow
def test_run_script_serves_supervises_its_worker_and_stops_on_ctrl_c(tmp_path):
    run = RunScript(var_dir=tmp_path / "var", log=tmp_path / "run.log")
    try:
        body = run.wait_serving()
        output = run.output
        assert "Log in" in body or "login" in body.lower()
        assert "officer" in output and "Privacy officer" in output  # the printed demo login
        assert "amelie.martin@example.fr" in output  # the demo people next to the logins
        assert STORY in output
        assert "generated local secrets" in output  # first run says it made secrets
        assert "No hostname was supplied" not in output
        assert output.count("segments.W001") == 1  # once, at start (not per command)
        status, landing = run.get("/")
        assert status == 200 and 'href="/admin/"' in landing and 'href="/api/docs/"' in landing
        assert 'data-part="broker" data-ok="true"' in landing
        status, health = run.get("/health/")
        assert status == 200 and json.loads(health)["ok"] is True

        # the web server can answer before the worker is up: kill it once it is ready, so that
        # the second "ready." below can only come from the restarted worker
        worker_log = tmp_path / "var" / "worker.log"
        deadline = time.monotonic() + 90
        while worker_log.read_text().count(" ready.") < 1:
            assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
            time.sleep(0.5)
        first = run.worker_pid()
        assert first is not None
        os.kill(first, signal.SIGKILL)  # the worker dies; the web server must not
        run.killed_workers.append(first)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (run.worker_pid() in (None, first)):
            assert run.get("/admin/login/")[0] == 200
            time.sleep(0.5)
        assert run.worker_pid() not in (None, first), run.output[-3000:]
        assert "the Celery worker stopped (killed by signal 9" in run.output
        assert "restarting the worker" in run.output
        deadline = time.monotonic() + 60
        while worker_log.read_text().count(" ready.") < 2:
            assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
            time.sleep(0.5)
        assert "No hostname was supplied" not in worker_log.read_text()
        assert run.get("/admin/login/")[0] == 200
        run.ctrl_c()
    finally:
        run.kill()


def _wait_completed(run: RunScript, token: str, ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for request_id in list(pending):
            status, body = run.get(f"/api/v1/requests/{request_id}/", token=token)
            assert status == 200, body
            if json.loads(body)["status"] == "completed":
                pending.discard(request_id)
        time.sleep(0.5)
    assert not pending, f"not completed: {pending}\n{run.output[-3000:]}"


@pytest.mark.slow
def test_run_starts_again_with_the_demo_story_after_erasures_and_restrictions(tmp_path):
    var_dir = tmp_path / "var"
    run = RunScript(var_dir=var_dir, log=tmp_path / "run-1.log")
    try:
        run.wait_serving()
        assert STORY in run.output
        token = (
            run.manage(
                "create_api_client",
                "support-tool",
                "--scopes",
                "dsar:write,dsar:read,dsar:approve,consent:write",
                "--user",
                "officer",
            )
            .strip()
            .splitlines()[-1]
        )
        ids = []
        for email, jurisdiction, kind in [
            ("jonas.becker@example.de", "DE", "erasure"),  # the story's erasure person
            ("amelie.martin@example.fr", "FR", "erasure"),
            ("jordan.lee@example.com", "US-CA", "restriction"),
        ]:
            status, opened = run.post(
                "/api/v1/requests/",
                {
                    "type": kind,
                    "regulation": "gdpr",
                    "identifiers": [{"type": "email", "value": email}],
                    "verification_method": "email_confirmation",
                    "jurisdiction": jurisdiction,
                },
                token=token,
            )
            assert status == 201, opened
            if opened["status"] == "awaiting_approval":
                status, approved = run.post(
                    f"/api/v1/requests/{opened['id']}/approve/", {}, token=token
                )
                assert status == 200, approved
            ids.append(opened["id"])
        status, withdrawn = run.post(
            "/api/v1/consents/",
            {
                "identifier": {"type": "email", "value": "sam.taylor@example.com"},
                "jurisdiction": "US-NY",
                "source": "web",
                "decisions": [{"purpose": "measurement", "decision": "withdrawn"}],
            },
            token=token,
        )
        assert status == 201, withdrawn
        _wait_completed(run, token, ids)
        run.ctrl_c()
    finally:
        run.kill()

    again = RunScript(var_dir=var_dir, log=tmp_path / "run-2.log")
    try:
        again.wait_serving()
        output = again.output
        assert "Traceback" not in output and "Error" not in output, output[-4000:]
        assert STORY in output  # the story is there again, with stand-ins
        assert "jonas.becker@example.de" in output and "amelie.martin@example.fr" in output
        assert "erased: identifiers suppressed" in output
        assert "jonas.becker2@example.de" in output  # the next erasure awaiting approval
        assert "demo people: 3 present, 3 erased" in output  # riley, jonas, amelie
        assert again.get("/")[0] == 200
        again.ctrl_c()
    finally:
        again.kill()
