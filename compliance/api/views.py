"""The base of every API view (edge checks before any view code runs), the catch-all that
answers 404 in the envelope for any path under ``/api/`` that no route matches, and the schema
and docs views (whose errors are JSON too)."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from compliance.api.inputs import request_check


class ApiEdgeMixin:
    """Before authentication: 405 (with ``Allow``) for a method the view has no handler for,
    413, 415 and control characters in headers or query parameters (see ``inputs``). After
    it, the JSON body is parsed (depth and control characters) even if the view ignores it."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head"]

    def initial(self, request, *args, **kwargs):
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method)
        request_check(request=request, view=self)
        super().initial(request, *args, **kwargs)
        if int(request.META.get("CONTENT_LENGTH") or 0) > 0:
            request.data  # noqa: B018 - parse now: a hostile body is refused on every route


class ApiView(ApiEdgeMixin, APIView):
    pass


class ApiNotFoundView(APIView):
    """Mounted last under ``/api/``: every method on an unknown path is a 404 envelope."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    schema = None

    def initial(self, request, *args, **kwargs):
        raise exceptions.NotFound(f"No API resource at {request.path}.")


class JsonErrorsMixin:
    """For views that answer YAML or HTML (the schema and its docs pages): errors are still
    the JSON envelope."""

    http_method_names = ["get", "head"]

    def handle_exception(self, exc):
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return super().handle_exception(exc)


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    pass


class SwaggerView(JsonErrorsMixin, SpectacularSwaggerView):
    pass


class RedocView(JsonErrorsMixin, SpectacularRedocView):
    pass
