"""``make serve``'s gunicorn: the config's defaults and overrides, and a real gunicorn with two
workers and the production settings answering the probes and sharing its metrics."""

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

import pytest
from django.conf import settings

from tests.conftest import ROOT, worker_env

GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")


def _config(**env) -> dict:
    code = (
        "import json, runpy; ns = runpy.run_path('config/gunicorn.conf.py'); "
        "print(json.dumps({k: ns[k] for k in ('workers', 'threads', 'timeout', "
        "'max_requests', 'max_requests_jitter', 'bind', 'worker_class')}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_workers_from_cores_capped_and_overridable():
    cores = len(os.sched_getaffinity(0))
    default = _config()
    assert default["workers"] == min(2 * cores + 1, 12)
    assert default["threads"] == 1 and default["worker_class"] == "sync"
    assert default["max_requests"] == 10000 and default["max_requests_jitter"] == 1000
    assert _config(GUNICORN_MAX_WORKERS="2")["workers"] == min(2 * cores + 1, 2)
    custom = _config(GUNICORN_WORKERS="7", GUNICORN_TIMEOUT="11", PORT="9000")
    assert (custom["workers"], custom["timeout"], custom["bind"]) == (7, 11, "0.0.0.0:9000")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, **headers) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow
@pytest.mark.django_db(databases="__all__")
def test_gunicorn_with_production_settings_serves_probes_and_metrics(tmp_path):
    port = _free_port()
    env = worker_env(regions=list(settings.COMPLIANCE_REGIONS))
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings_production",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "COMPLIANCE_METRICS_TOKEN": "serve-test-token",
            "COMPLIANCE_AUDIT_WITNESS_DIR": str(tmp_path / "witness"),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        }
    )
    env.pop("COMPLIANCE_WORKER_REGIONS")
    log = tmp_path / "gunicorn.log"
    proc = subprocess.Popen(
        [GUNICORN, "--config", "config/gunicorn.conf.py", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _get(f"{base}/healthz")
                break
            except OSError:
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.3)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, body = _get(f"{base}/readyz")
        assert status == 200, body
        assert set(json.loads(body)["databases"]) == set(settings.DATABASES)
        for _ in range(6):  # spread over both workers
            assert _get(f"{base}/healthz")[0] == 200
        assert _get(f"{base}/metrics", **{"X-Forwarded-For": "198.51.100.1"})[0] == 403
        status, body = _get(f"{base}/metrics", Authorization="Bearer serve-test-token")
        assert status == 200
        text = body.decode()
        count = [
            line
            for line in text.splitlines()
            if line.startswith("compliance_http_request_duration_seconds_count")
            and 'route="healthz"' in line
        ]
        assert count and float(count[0].rsplit(" ", 1)[1]) == 7.0, text[:2000]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line["logger"] == "gunicorn.error" for line in lines)
