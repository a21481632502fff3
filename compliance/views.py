"""The landing page at ``/`` and the machine-readable ``/health/``."""

from __future__ import annotations

from dataclasses import asdict

from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from compliance.selectors.health import health_status


@require_GET
def landing(request):
    """What the toolkit is, where to go next, and whether each database and the broker answer."""
    return TemplateResponse(request, "landing.html", {"health": health_status()})


@require_GET
def health(request):
    """``{"ok": ..., "parts": [...], "workers_seen": {...}}``; HTTP 503 when a part is down."""
    status = health_status()
    body = {**status, "parts": [asdict(p) for p in status["parts"]]}
    return JsonResponse(body, status=200 if status["ok"] else 503)
