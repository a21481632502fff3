"""The server side of ``python -m bench api``: the runtime role and the baseline table on the
bench databases, gunicorn as ``make serve`` runs it (on ``bench.api_settings``), and one HTTP
call."""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
#: the role gunicorn connects as (``db_roles``), as production runs; dropped afterwards
RUNTIME_ROLE = "bapi_runtime"
#: what the TLS-terminating proxy in front of production adds (else: a redirect to https)
PROXY = {"X-Forwarded-Proto": "https"}
SECRETS = ("DJANGO_SECRET_KEY", "COMPLIANCE_ROOT_KEY", "COMPLIANCE_SIGNING_KEY")


class BenchError(Exception):
    """The benchmark cannot measure (server down, an error answer): the message says why."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


def databases_prepare(*, password: str) -> dict[str, str]:
    """Create the baseline table on ``default`` and the runtime role's grants on every alias
    (as the owner, like ``db_roles``); the ``DATABASE_URL*`` the server uses, by variable."""
    from django.db import connections

    from bench.api_urls import BASELINE_DDL
    from compliance.retention.conf import retention_settings
    from compliance.services.db_roles import db_roles_apply

    with connections["default"].cursor() as cursor:
        cursor.execute(BASELINE_DDL)  # before db_roles: its grants cover the table
    urls = {}
    for alias in connections:
        db_roles_apply(
            using=alias,
            app_role=RUNTIME_ROLE,
            password=password,
            audit_min_days=retention_settings.AUDIT_MIN_DAYS,
            retention_floor_days=30,
        )
        s = connections[alias].settings_dict
        variable = "DATABASE_URL" if alias == "default" else f"DATABASE_URL_{alias.upper()}"
        urls[variable] = (
            f"postgresql://{RUNTIME_ROLE}:{quote(password)}@{s['HOST'] or '127.0.0.1'}:"
            f"{s['PORT'] or 5432}/{s['NAME']}"
        )
    return urls


def runtime_role_drop() -> None:
    """After the bench databases are gone the role holds nothing and can go."""
    from django.db import DatabaseError, connections

    try:
        with connections["default"]._nodb_cursor() as cursor:
            cursor.execute(f"DROP ROLE IF EXISTS {RUNTIME_ROLE}")
    except DatabaseError as error:
        print(f"note: role {RUNTIME_ROLE} not dropped: {error}".strip(), file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(*, urls: dict[str, str], port: int, workdir: Path) -> dict[str, str]:
    """The environment of ``make serve`` for the bench databases: production settings (via
    ``bench.api_settings``), the secrets the seeding used, the runtime role's URLs."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env.update(urls)
    env.update({name: getattr(settings, name.removeprefix("DJANGO_")) for name in SECRETS})
    env.update(
        DJANGO_SETTINGS_MODULE="bench.api_settings",
        DJANGO_DEBUG="false",
        PYTHONUNBUFFERED="1",
        GUNICORN_WORKERS="2",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        COMPLIANCE_VAR_DIR=str(workdir / "var"),
        COMPLIANCE_AUDIT_WITNESS_DIR=str(workdir / "witness"),
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "prometheus"),
    )
    return env


@contextlib.contextmanager
def gunicorn(*, urls: dict[str, str]) -> Iterator[int]:
    """Run the deploy checks, then gunicorn (``config/gunicorn.conf.py``, 2 sync workers) on a
    free port; yields the port. Stopped on exit, whatever happens; its output is printed if it
    does not come up or the benchmark fails."""
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="bapi-") as tmp:
        port = free_port()
        env = server_env(urls=urls, port=port, workdir=Path(tmp))
        check = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if check.returncode:
            raise BenchError(f"manage.py check --deploy failed:\n{check.stdout}{check.stderr}")
        print(f"manage.py check --deploy: {(check.stderr + check.stdout).strip()}")
        log_path = Path(tmp) / "gunicorn.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [bin_dir / "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            _wait_ready(process=process, port=port, log_path=log_path)
            yield port
        except Exception:
            _print_log(log_path)
            raise
        finally:
            _stop(process)


def _wait_ready(*, process: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited with {process.returncode} before answering")
        with contextlib.suppress(OSError):
            reply = call(port=port, method="GET", path="/healthz", body=b"", headers=PROXY)
            if reply.status == 200:
                return
        time.sleep(0.2)
    raise BenchError("gunicorn did not answer /healthz within 60 s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # graceful stop, as in production
        try:
            process.wait(timeout=35)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _print_log(path: Path, lines: int = 60) -> None:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    print(
        f"--- gunicorn output (last {min(lines, len(text))} of {len(text)} lines) ---",
        file=sys.stderr,
    )
    print("\n".join(text[-lines:]), file=sys.stderr)
    print("--- end of gunicorn output ---", file=sys.stderr)


def call(*, port: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> Reply:
    """One request on a new connection (sync gunicorn closes it after the answer); timed from
    connecting to the last byte of the answer."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return Reply(
        status=response.status,
        headers={k.lower(): v for k, v in response.getheaders()},
        body=data,
        seconds=time.perf_counter() - started,
    )


def password_new() -> str:
    return secrets.token_urlsafe(24)
