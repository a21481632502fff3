"""Bench-only URLs (``bench.api_settings``): the project's URLs plus the benchmark's baseline,
``POST /api/bench/baseline/``: a minimal DRF view with the API's token authentication, scope
permission and throttle that inserts one row into ``bench_api_baseline`` (a table the
benchmark creates in the control database) and answers its id."""

from __future__ import annotations

from django.db import connections
from django.urls import path
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.api.auth import ApiTokenAuthentication
from compliance.api.permissions import HasRequiredScope
from compliance.api.throttling import ClientRateThrottle
from config.urls import handler400, handler404, handler500
from config.urls import urlpatterns as project_urls

BASELINE_TABLE = "bench_api_baseline"
BASELINE_PATH = "/api/bench/baseline/"
BASELINE_DDL = (
    f"CREATE TABLE {BASELINE_TABLE} (id bigserial PRIMARY KEY, client_id bigint NOT NULL, "
    "value text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)


class BaselineView(APIView):
    """What a plain DRF endpoint behind the same authentication, scope and throttle costs."""

    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [HasRequiredScope]
    throttle_classes = [ClientRateThrottle]
    required_scopes = "consent:write"
    schema = None

    def post(self, request):
        value = str(request.data.get("value", ""))[:200]
        with connections["default"].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {BASELINE_TABLE} (client_id, value) VALUES (%s, %s) RETURNING id",
                [request.auth.pk, value],
            )
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id}, status=status.HTTP_201_CREATED)


urlpatterns = [path(BASELINE_PATH.lstrip("/"), BaselineView.as_view()), *project_urls]
__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]
