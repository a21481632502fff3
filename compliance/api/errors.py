"""One error body for every API failure: ``{"error": {"code", "message", "fields"}}``.

``error_handler`` is DRF's ``EXCEPTION_HANDLER`` and the only place that turns an exception into
an answer: DRF's own exceptions (400, 401, 403, 404, 405 with ``Allow``, 413, 415, 429 with
``Retry-After``) and every ``compliance.errors.ApplicationError`` (raised by services and views
alike, with its ``code``, ``field`` and ``status_code``; views never catch to translate). An
``ApplicationError`` with a status of 500 or more is a fault: logged, answered as a generic 500.
Django's ``handler404``/``handler500`` answer with the same body for paths under ``/api/``.
"""

from __future__ import annotations

import logging

from django.db import DataError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from compliance.errors import ApplicationError

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "Request body too large."


def _flatten(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if (
                isinstance(value, dict | list)
                and value
                and isinstance(value[0] if isinstance(value, list) else None, dict)
            ):
                for index, item in enumerate(value):
                    for sub, msgs in _flatten(item).items():
                        out[f"{key}[{index}].{sub}"] = msgs
            elif isinstance(value, dict):
                for sub, msgs in _flatten(value).items():
                    out[f"{key}.{sub}"] = msgs
            else:
                out[key] = [str(v) for v in (value if isinstance(value, list) else [value])]
        return out
    return {
        "non_field_errors": [str(v) for v in (detail if isinstance(detail, list) else [detail])]
    }


def error_body(*, code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_handler(exc, context):
    """DRF's ``EXCEPTION_HANDLER``: every failure of an API view, in the one envelope."""
    if isinstance(exc, ApplicationError) and exc.status_code < 500:
        body = error_body(code=exc.code, message=str(exc), fields=exc.field_messages())
        return Response(body, status=exc.status_code)
    if isinstance(exc, DataError):
        # e.g. a value the database refuses that validation let through: nothing was written
        return Response(
            error_body(code="invalid", message="The database refused a value of this request."),
            status=status.HTTP_400_BAD_REQUEST,
        )
    response = exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.exception("unhandled API error in %s", view.__class__.__name__)
        return Response(
            error_body(code="server_error", message="Internal error; nothing was written."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response.data = _drf_body(exc)
    return response


def _drf_body(exc) -> dict:
    """The envelope of one of DRF's own exceptions (or Django's ``Http404``)."""
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        names = ", ".join(sorted(fields))
        return error_body(code="invalid", message=f"Invalid input: {names}.", fields=fields)
    if isinstance(exc, Http404):
        return error_body(code="not_found", message="Not found.")
    code = getattr(exc, "default_code", "error")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    if isinstance(detail, dict | list):
        return error_body(code=str(code), message=str(code), fields=_flatten(detail))
    return error_body(code=str(code), message=str(detail))


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request, exception=None):
    """``handler404``: the envelope under ``/api/``, Django's page elsewhere."""
    if _is_api(request):
        return JsonResponse(
            error_body(code="not_found", message=f"No API resource at {request.path}."),
            status=404,
        )
    return defaults.page_not_found(request, exception)


def server_error(request):
    """``handler500``: the envelope under ``/api/``, Django's page elsewhere."""
    if _is_api(request):
        return JsonResponse(
            error_body(code="server_error", message="Internal error; nothing was written."),
            status=500,
        )
    return defaults.server_error(request)


def bad_request(request, exception=None):
    """``handler400`` (e.g. a disallowed Host or an oversized form upload)."""
    if _is_api(request):
        return JsonResponse(error_body(code="bad_request", message="Bad request."), status=400)
    return defaults.bad_request(request, exception)
