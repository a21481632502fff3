"""``/healthz`` (alive, no I/O), ``/readyz`` (databases and broker) and ``/metrics``.

None of them uses a session or CSRF; none reveals a host, URL or secret.
"""

from __future__ import annotations

import os

from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from compliance.ops.access import metrics_access
from compliance.ops.collector import DatabaseCollector
from compliance.ops.metrics import REGISTRY
from compliance.ops.readiness import readiness


@csrf_exempt
@never_cache
@require_GET
def healthz(request):
    """The process is alive and answers: 200 ``{"status": "ok"}``, no database or broker."""
    return JsonResponse({"status": "ok"})


@csrf_exempt
@never_cache
@require_GET
def readyz(request):
    """200 when every database is reachable and migrated and the broker answers, else 503;
    the body names each database alias with its state."""
    state = readiness()
    return JsonResponse(state, status=200 if state["ready"] else 503)


_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Instruments())
    registry.register(DatabaseCollector())
    return registry


class _Instruments:
    """This process's instruments (without multiprocess mode)."""

    def collect(self):
        return REGISTRY.collect()


@csrf_exempt
@never_cache
@require_GET
def metrics(request):
    """Prometheus text format; 401/403 unless the token or an allowed network (see
    ``compliance.ops.access``)."""
    status = metrics_access(
        authorization=request.META.get("HTTP_AUTHORIZATION", ""),
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        proxied=any(request.META.get(h) for h in _PROXY_HEADERS),
    )
    if status != 200:
        response = JsonResponse(
            {
                "error": {
                    "code": "not_authenticated" if status == 401 else "forbidden",
                    "message": "metrics are not open to this client",
                }
            },
            status=status,
        )
        if status == 401:
            response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
