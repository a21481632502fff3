"""Hostile-input guards shared by every API view: body size and type, JSON depth, control
characters (per field, header and query parameter) and strict date-time parameters.

Limits (documented in docs/api.md):

* bodies up to ``MAX_BODY_BYTES`` (1 MiB) unless a view sets its own ``max_body_bytes``
  (events: 20 MiB); larger is a 413;
* a body on a view must be ``application/json``; anything else is a 415;
* JSON nested deeper than ``MAX_JSON_DEPTH`` (32) is a 400;
* a C0 control character (other than tab, newline and carriage return), DEL or a lone UTF-16
  surrogate (``"\\ud800"``) in any JSON string or key, query parameter or header is a 400
  naming the field.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions, parsers, serializers

from compliance.api.errors import PayloadTooLarge
from compliance.errors import InputError

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
#: the widest real UTC offsets are -12:00 and +14:00
MAX_OFFSET = timedelta(hours=14)

#: C0 controls but tab, newline, carriage return; DEL; and lone surrogates (JSON "\ud800")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _refuse(field: str) -> InputError:
    return InputError(
        f"{field} contains a control character (NUL or similar); not accepted.",
        fields={field: ["control characters are not accepted"]},
    )


def json_check(data, *, text: str | None = None) -> None:
    """Refuse JSON nested deeper than ``MAX_JSON_DEPTH`` or holding control characters,
    naming the first offending field (``events[3].source``). Iterative: no recursion.

    ``text``: the JSON text ``data`` was decoded from, if known. A JSON string holds a control
    character or a lone surrogate only as a ``\\u`` escape (the decoder refuses them raw, and
    UTF-8 cannot carry a surrogate), DEL raw or escaped: a text with neither needs only the
    depth measured, which is much quicker than naming every field (a batch of 1,000 events)."""
    if text is not None and "\\u" not in text and "\x7f" not in text and _within_depth(data):
        return
    stack = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if has_control(value):
                raise _refuse(path or "body")
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise InputError(
                    f"JSON nested deeper than {MAX_JSON_DEPTH} levels; not accepted.",
                    code="too_deep",
                    fields={path or "body": [f"at most {MAX_JSON_DEPTH} levels of nesting"]},
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    name = f"{path}.{key}" if path else str(key)
                    if has_control(str(key)):
                        raise _refuse(path or "body")
                    stack.append((item, name, depth + 1))
            else:
                for index, item in enumerate(value):
                    stack.append((item, f"{path}[{index}]", depth + 1))


def _within_depth(data) -> bool:
    """Whether no object or array of ``data`` is nested ``MAX_JSON_DEPTH`` deep or deeper."""
    stack = [(data, 0)] if isinstance(data, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth >= MAX_JSON_DEPTH:
            return False
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
    return True


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class SafeJSONParser(parsers.JSONParser):
    """DRF's JSON parser plus the depth and control-character checks; a body nested so deep
    that the decoder itself gives up (``RecursionError``) is the same 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(settings.DEFAULT_CHARSET)
            # NaN and Infinity are not JSON: refused like DRF's strict parser does
            data = json.loads(text, parse_constant=_no_constant)
        except RecursionError:
            raise InputError(
                f"JSON nested deeper than {MAX_JSON_DEPTH} levels; not accepted.",
                code="too_deep",
                fields={"body": [f"at most {MAX_JSON_DEPTH} levels of nesting"]},
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"JSON parse error: {exc}") from None
        json_check(data, text=text)
        return data


def request_check(*, request, view) -> None:
    """Size, media type, headers and query parameters of a request to an API view."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise exceptions.ParseError("Content-Length is not a number.") from None
    limit = getattr(view, "max_body_bytes", MAX_BODY_BYTES)
    if length > limit:
        raise PayloadTooLarge(f"Request body larger than {limit} bytes; send less per request.")
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and has_control(value):
            raise _refuse(key[5:].replace("_", "-").title())
    for key, values in request.query_params.lists():
        if has_control(key):
            raise _refuse("query")
        for value in values:
            if has_control(value):
                raise _refuse(key)
    if length > 0:
        media = (request.content_type or "").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise exceptions.UnsupportedMediaType(media or "(none)")


def uuid_param(*, value: str, field: str) -> uuid.UUID:
    """A UUID from the path or query; a 400 naming ``field`` otherwise."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise InputError(f"{field} must be a UUID", fields={field: ["not a UUID"]}) from None


def datetime_param(*, value: str | None, field: str) -> datetime | None:
    """An ISO 8601 time with a zone (``Z`` or an offset within +-14:00), in UTC; ``None`` when
    absent. Anything else is a 400 naming ``field``."""
    if value in (None, ""):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or abs(parsed.utcoffset()) > MAX_OFFSET:
        raise InputError(
            f"{field} must be an ISO 8601 time with a time zone, e.g. 2026-01-31T12:00:00Z",
            fields={field: ["expected e.g. 2026-01-31T12:00:00Z (offsets up to +-14:00)"]},
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InputError(f"{field} is out of range", fields={field: ["out of range"]}) from None


class ZonedDateTimeField(serializers.DateTimeField):
    """A serializer field with ``datetime_param``'s rules: a zone is required and offsets
    beyond +-14:00 are refused (not silently converted)."""

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="ISO 8601 with a time zone")
        try:
            return datetime_param(value=value, field=self.field_name or "value")
        except InputError as exc:
            raise serializers.ValidationError(exc.fields[next(iter(exc.fields))]) from None
