"""Cursor (keyset) pagination for every list: ``{"count"?, "next", "previous", "results"}``.

A cursor is an opaque token holding the sort key of the row it points at and a direction.
Pages are ``WHERE key < cursor ORDER BY key LIMIT n``, so rows inserted while a client pages
never shift or repeat what it sees (new rows appear on the first page). ``next`` and
``previous`` are full URLs with every other query parameter kept; ``null`` at either end.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db.models import Model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

from compliance.errors import InputError
from compliance.selectors.keyset import Cursor, Ordering, keyset_fetch  # noqa: F401

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

CURSOR_PARAMETERS = [
    OpenApiParameter(
        "cursor", OpenApiTypes.STR, description="opaque; from a page's `next` or `previous`"
    ),
    OpenApiParameter("limit", OpenApiTypes.INT, description=f"1..{MAX_LIMIT}, default 100"),
]


def cursor_encode(*, values: Iterable, backwards: bool = False) -> str:
    raw = json.dumps({"v": [str(v) for v in values], "b": int(backwards)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(*, raw: str | None, model: type[Model], ordering: Ordering) -> Cursor | None:
    """The cursor, its values checked against the model's fields; a 400 if it is not one."""
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        values = data["v"]
        if not isinstance(values, list) or len(values) != len(ordering.fields):
            raise ValueError
        typed = tuple(
            model._meta.get_field(name).to_python(value)
            for name, value in zip(ordering.names(), values, strict=True)
        )
        if any(v is None for v in typed):
            raise ValueError
        return Cursor(values=typed, backwards=bool(data.get("b")))
    except (ValueError, TypeError, KeyError, binascii.Error, ValidationError, AttributeError):
        raise InputError(
            "cursor is not one this API issued", fields={"cursor": ["invalid"]}
        ) from None


def limit_param(request, *, maximum: int = MAX_LIMIT) -> int:
    """``?limit=`` (default 100); a 400 outside 1..``maximum``."""
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= maximum:
        raise InputError(f"limit must be 1 to {maximum}", fields={"limit": [f"1 to {maximum}"]})
    return limit


def page_body(
    *,
    request,
    rows: list,
    more: bool,
    cursor: Cursor | None,
    ordering: Ordering,
    render: Callable[[list], list],
    count: int | None = None,
) -> dict:
    """The page: ``next``/``previous`` links (every other parameter kept) and ``results``."""
    backwards = bool(cursor and cursor.backwards)
    has_next = more if not backwards else cursor is not None
    has_previous = more if backwards else cursor is not None
    body: dict = {}
    if count is not None:
        body["count"] = count
    body["next"] = (
        _link(request, cursor_encode(values=ordering.key(rows[-1]))) if has_next and rows else None
    )
    body["previous"] = (
        _link(request, cursor_encode(values=ordering.key(rows[0]), backwards=True))
        if has_previous and rows
        else None
    )
    body["results"] = render(rows)
    return body


def _link(request, cursor: str) -> str:
    params = request.query_params.copy()
    params["cursor"] = cursor
    return request.build_absolute_uri(request.path + "?" + params.urlencode())


def paginated(item_serializer, *, name: str, count: bool = False):
    """An inline serializer for the page around ``item_serializer`` (for the schema)."""
    fields = {
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item_serializer(many=True),
    }
    if count:
        fields = {"count": serializers.IntegerField(), **fields}
    return inline_serializer(name=name, fields=fields)
