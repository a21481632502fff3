"""Gunicorn for production (``make serve``, ``scripts/serve.sh``): ``gunicorn -c
config/gunicorn.conf.py config.wsgi``.

Every value can be overridden from the environment (``GUNICORN_*``) or on the command line.

* Sync workers, one thread each: a process handles one request at a time and holds at most one
  database connection per alias (see docs/operations.md to size PostgreSQL's
  ``max_connections``). Workers: ``2 * cores + 1``, at most ``GUNICORN_MAX_WORKERS`` (12).
* A worker is replaced after ``max_requests`` (+ random jitter, so they do not all restart at
  once): 10,000 by default, since a new worker imports the whole application (about 1.4 s of
  CPU on a 2-core machine, during which that worker serves nothing); ``kill -HUP`` reloads
  gracefully; a request longer than ``timeout`` kills its worker.
* Logs: gunicorn's own lines as JSON; its access log (off unless ``GUNICORN_ACCESS_LOG`` is set,
  e.g. ``-``) as JSON lines without path, query string or client address. The application
  writes its own line per request (route pattern, status, duration, request id).
* Prometheus: the workers share their counters and histograms through
  ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary directory unless set).
"""

import os
import shutil
import tempfile
from pathlib import Path


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT') or 8000}"
worker_class = "sync"
threads = 1
workers = _int("GUNICORN_WORKERS", min(2 * _cores() + 1, _int("GUNICORN_MAX_WORKERS", 12)))
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 1000)
# the proxies whose X-Forwarded-Proto is believed (HTTPS detection)
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proxy_allow_ips = forwarded_allow_ips

# gunicornc's control socket only where asked for (its default path is shared by every instance)
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or "gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")

accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
access_log_format = (
    '{"time":"%(t)s","logger":"gunicorn.access","method":"%(m)s","status":%(s)s,'
    '"duration_ms":%(M)s,"request_id":"%({x-request-id}o)s"}'
)
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "compliance.ops.logs.JsonFormatter"},
        "plain": {"format": "%(message)s"},
    },
    "handlers": {
        "error": {"class": "logging.StreamHandler", "formatter": "json"},
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"handlers": ["error"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["error"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="compliance-prometheus-")


def on_starting(server) -> None:
    """Values of an earlier run would be added to this one's: start from an empty directory."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    """A worker's live gauges go with it (its counters stay, summed into the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
