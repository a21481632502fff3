"""PostgreSQL array literals built as text: one parameter per column of a batch insert.

The hot paths write a batch as ``INSERT ... SELECT ... FROM unnest(%s::type[], ...)``. Handing
psycopg a Python list makes it dump and quote every element in Python (client-side binding:
most of the Python time of a ten-event batch's insert in a profile of the served workers,
``python -m bench api``); a literal built here is one string, quoted once (or bound as one
parameter of a prepared statement: ``compliance.db.batch``). Each element is written
double-quoted with ``\\`` and ``"`` escaped, so any text is safe; ``None`` is ``NULL``.
PostgreSQL parses each element with the column type's input function (``::uuid[]``,
``::timestamptz[]``, ``::bytea[]``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import attrgetter
from uuid import UUID

_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
_HEX = "%032x".__mod__
_INT = attrgetter("int")


def array_literal(values: Iterable[str | None]) -> str:
    """``values`` as one array literal (``{"a","b",NULL}``)."""
    return (
        "{"
        + ",".join(
            "NULL" if value is None else '"' + value.translate(_ESCAPES) + '"' for value in values
        )
        + "}"
    )


def bytea_array(values: Iterable[bytes | None]) -> str:
    """``values`` as one ``bytea[]`` literal (hex input format: hex digits need no escaping,
    only the backslash of ``\\x`` does)."""
    return (
        "{"
        + ",".join("NULL" if value is None else '"\\\\x' + value.hex() + '"' for value in values)
        + "}"
    )


def time_array(values: Iterable[datetime | None]) -> str:
    """``values`` (aware datetimes) as one ``timestamptz[]`` literal (ISO 8601 with offset,
    which needs no escaping; each distinct time is formatted once: a batch shares most)."""
    written: dict[datetime, str] = {}
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
            continue
        text = written.get(value)
        if text is None:
            text = written[value] = '"' + value.isoformat() + '"'
        parts.append(text)
    return "{" + ",".join(parts) + "}"


def uuid_array(ids: Sequence[UUID]) -> str:
    """A PostgreSQL array literal of ``ids``: one text parameter. UUIDs are written as 32 hex
    digits (a form ``uuid`` input accepts) from their ints: three times faster than ``str``."""
    try:
        return "{" + ",".join(map(_HEX, map(_INT, ids))) + "}"
    except AttributeError:  # not UUID objects
        return "{" + ",".join(map(str, ids)) + "}"
