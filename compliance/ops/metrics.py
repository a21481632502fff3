"""The in-process instruments of ``/metrics`` (Prometheus, ``prometheus_client``).

* ``compliance_http_request_duration_seconds{route, method, status}``: a histogram per resolved
  URL pattern (``api/v1/requests/<uuid:request_id>/``), never the raw path.
* ``compliance_consent_rejections_total{reason, field}``: consent submissions refused (the error
  code and the input field it concerns).
* ``compliance_event_rejections_total{reason}``: ingested events refused, by outcome reason.

Under gunicorn with several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` (the shipped
``config/gunicorn.conf.py`` does): each process then writes its values there and a scrape of
any process adds them up. Gauges read from the databases are computed at scrape time
(``compliance.ops.collector``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram

from compliance.errors import ApplicationError

REGISTRY = CollectorRegistry(auto_describe=True)

REQUEST_SECONDS = Histogram(
    "compliance_http_request_duration_seconds",
    "Time to answer a request, per route pattern, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
CONSENT_REJECTIONS = Counter(
    "compliance_consent_rejections",
    "Consent submissions refused, by error code and input field.",
    ["reason", "field"],
    registry=REGISTRY,
)
EVENT_REJECTIONS = Counter(
    "compliance_event_rejections",
    "Ingested events refused, by reason (consent decision, suppression, ...).",
    ["reason"],
    registry=REGISTRY,
)


def request_observe(*, route: str, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route=route, method=method, status=str(status)).observe(seconds)


def event_rejections_count(*, reasons: Mapping[str, int]) -> None:
    for reason, count in reasons.items():
        EVENT_REJECTIONS.labels(reason=reason).inc(count)


def consent_rejections_counted(function: Callable) -> Callable:
    """Decorator: a refusal (an ``ApplicationError`` below 500) of ``function`` is counted,
    by error code and field, and raised on."""

    @functools.wraps(function)
    def counted(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ApplicationError as exc:
            if exc.status_code < 500:
                CONSENT_REJECTIONS.labels(reason=exc.code, field=exc.field or "").inc()
            raise

    return counted
