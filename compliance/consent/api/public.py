"""Public (unauthenticated) consent resources: ``/.well-known/gpc.json``."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.http import require_GET

#: bump when the site's GPC support statement changes (GPC spec: ISO 8601 date)
GPC_LAST_UPDATE = "2026-01-01"


@require_GET
def gpc_json(request):
    """The GPC support resource: this site honours ``Sec-GPC: 1`` where it is binding."""
    response = JsonResponse({"gpc": True, "lastUpdate": GPC_LAST_UPDATE})
    response["Cache-Control"] = "public, max-age=86400"
    return response
