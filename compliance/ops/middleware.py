"""``RequestObservationMiddleware``: a request id, the latency histogram and one JSON log line
per request.

The line (logger ``compliance.requests``) holds the request id, the resolved URL pattern (never
the raw path, never the query string), the method, the status, the duration in milliseconds and
the API client's id when a token authenticated the request; no address, no identifier, no body.
The id is taken from a safe incoming ``X-Request-ID`` or made, returned in the response's
``X-Request-ID`` header, and carried into the Celery tasks the request publishes.
"""

from __future__ import annotations

import logging
import time

from compliance.ops.context import current_request_id, request_id_accept
from compliance.ops.metrics import request_observe

logger = logging.getLogger("compliance.requests")

#: routes of the operations endpoints themselves: logged at DEBUG (probes come every few seconds)
QUIET_ROUTES = frozenset({"healthz", "readyz", "metrics"})
UNRESOLVED = "<unresolved>"


def request_route(request) -> str:
    """The URL pattern that served ``request`` (``api/v1/requests/<uuid:request_id>/``)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNRESOLVED
    return match.route or match.view_name or UNRESOLVED


class RequestObservationMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_accept(incoming=request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            response["X-Request-ID"] = request_id
            self._record(request, response, seconds)
        finally:
            current_request_id.reset(token)
        return response

    def _record(self, request, response, seconds: float) -> None:
        route = request_route(request)
        request_observe(
            route=route, method=request.method, status=response.status_code, seconds=seconds
        )
        client = getattr(request, "auth", None)
        quiet = route.rstrip("/") in QUIET_ROUTES
        logger.log(
            logging.DEBUG if quiet else logging.INFO,
            "request",
            extra={
                "request_id": request.request_id,
                "route": route,
                "method": request.method,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "client_id": getattr(client, "pk", None),
            },
        )
