"""``make run``'s script serves the admin login on the embedded default and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_run_script_serves_admin_login_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "CELERY_", "COMPLIANCE_", "DJANGO_"))
    }
    env.update(
        {
            "COMPLIANCE_VAR_DIR": str(tmp_path / "var"),
            "PORT": str(port),
            "BIN": str(Path(sys.executable).parent),
        }
    )
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "run.sh")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        body = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/admin/login/", timeout=2
                ) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        output = (tmp_path / "run.log").read_text()
        assert body is not None, output[-3000:]
        assert "Log in" in body or "login" in body.lower()
        assert "officer" in output and "Privacy officer" in output  # the printed demo login
        assert "generated local secrets" in output  # first run says it made secrets
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        output = (tmp_path / "run.log").read_text()
        assert "stopped." in output
        # the worker is gone too: no process of ours is left in the group
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            left = subprocess.run(
                ["ps", "-o", "pid,args", "-g", str(proc.pid)], capture_output=True, text=True
            ).stdout
            pytest.fail(f"processes left after Ctrl-C:\n{left}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
