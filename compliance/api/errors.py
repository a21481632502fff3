"""One error body for every API failure: ``{"error": {"code", "message", "fields"}}``."""

from __future__ import annotations

import logging

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """Raise from views/services adapters: ``ApiError("msg", code="x", fields={...}, status=400)``."""

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
    if isinstance(exc, ApiError):
        return Response(
            error_body(code=exc.error_code, message=str(exc.detail), fields=exc.fields),
            status=exc.status_code,
        )
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error in %s", context.get("view").__class__.__name__)
        return Response(
            error_body(code="server_error", message="Internal error; nothing was written."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        names = ", ".join(sorted(fields))
        body = error_body(code="invalid", message=f"Invalid input: {names}.", fields=fields)
    else:
        code = getattr(exc, "default_code", "error")
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        body = error_body(code=str(code), message=str(detail))
    response.data = body
    return response
