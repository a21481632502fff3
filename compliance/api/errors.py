"""One error body for every API failure: ``{"error": {"code", "message", "fields"}}``.

``error_handler`` is DRF's ``EXCEPTION_HANDLER`` and the only place that turns an exception into
an answer: DRF's own exceptions (400, 401, 403, 404, 405 with ``Allow``, 413, 415, 429 with
``Retry-After``), ``ApiError`` raised by views, and the services' domain errors listed in
``DOMAIN_ERRORS`` (views let those propagate; they never catch to translate). Django's
``handler404``/``handler500`` answer with the same body for paths under ``/api/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DataError
from django.http import Http404, JsonResponse
from django.utils.module_loading import import_string
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """Raise from views: ``ApiError("msg", code="x", fields={...}, status_code=400)``."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        fields: dict | None = None,
        status_code: int = 400,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.fields = fields or {}
        self.error_code = code


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "Request body too large."


def _field(exc) -> dict[str, list[str]]:
    name = getattr(exc, "field", None)
    return {name: [str(exc)]} if name else {}


def _status_of(code: str) -> int:
    from segments.api.views import STATUS_OF_CODE

    return STATUS_OF_CODE.get(code, 400)


#: domain error class (dotted path) -> (status, code, fields) for an instance
DOMAIN_ERRORS: dict[str, Callable[[Exception], tuple[int, str, dict]]] = {
    "compliance.dsar.services.errors.RequestError": lambda e: (e.status_code, e.code, _field(e)),
    "segments.services.definitions.SegmentGovernanceError": lambda e: (
        _status_of(e.code),
        e.code,
        _field(e),
    ),
    "segments.services.memberships.MembershipInputError": lambda e: (
        400,
        "invalid",
        {"reason": [str(e)]},
    ),
    "compliance.consent.services.record.ConsentInputError": lambda e: (400, "invalid", _field(e)),
    "compliance.consent.tcf.TCFDecodeError": lambda e: (
        400,
        "undecodable",
        {"tc_string": [str(e)]},
    ),
    "compliance.services.subjects.SubjectSuppressedError": lambda e: (
        409,
        "suppressed",
        {"identifiers": [str(e)]},
    ),
    "compliance.consent.services.stitching.CrossRegionMergeError": lambda e: (
        409,
        "cross_region_merge",
        {"identifiers": [str(e)]},
    ),
    "compliance.events.parsing.EventBatchInvalid": lambda e: (400, "invalid", e.fields),
    "compliance.feed.selectors.changes.CursorError": lambda e: (
        400,
        "invalid",
        {"after": [str(e)]},
    ),
    "compliance.identifiers.IdentifierError": lambda e: (400, "invalid", _field(e)),
}
_domain_classes: list[tuple[type, Callable]] | None = None


def _domain(exc: Exception):
    global _domain_classes
    if _domain_classes is None:
        _domain_classes = [(import_string(path), fn) for path, fn in DOMAIN_ERRORS.items()]
    for cls, convert in _domain_classes:
        if isinstance(exc, cls):
            return convert(exc)
    return None


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
    if isinstance(exc, ApiError):
        return Response(
            error_body(code=exc.error_code, message=str(exc.detail), fields=exc.fields),
            status=exc.status_code,
        )
    domain = _domain(exc)
    if domain is not None:
        status_code, code, fields = domain
        return Response(error_body(code=code, message=str(exc), fields=fields), status=status_code)
    if isinstance(exc, DataError):
        # e.g. a value the database refuses that validation let through: nothing was written
        return Response(
            error_body(code="invalid", message="The database refused a value of this request."),
            status=status.HTTP_400_BAD_REQUEST,
        )
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.exception("unhandled API error in %s", view.__class__.__name__)
        return Response(
            error_body(code="server_error", message="Internal error; nothing was written."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        names = ", ".join(sorted(fields))
        body = error_body(code="invalid", message=f"Invalid input: {names}.", fields=fields)
    elif isinstance(exc, Http404):
        body = error_body(code="not_found", message="Not found.")
    else:
        code = getattr(exc, "default_code", "error")
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        if isinstance(detail, dict | list):
            body = error_body(code=str(code), message=str(code), fields=_flatten(detail))
        else:
            body = error_body(code=str(code), message=str(detail))
    response.data = body
    return response


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
