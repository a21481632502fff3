"""Keyset reads: a total sort key, rows strictly beyond a position, merged across databases.

Used by the API's cursor pagination (``compliance.api.pagination``) and any selector that
pages through a table without OFFSET (stable while rows are inserted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Q, QuerySet


@dataclass(frozen=True)
class Ordering:
    """The sort key: model field names, all descending (``"-received_at"``) or all ascending
    (rows of several databases are merged in Python in that one direction). The last field must
    be unique so the order is total."""

    fields: tuple[str, ...]

    def __post_init__(self) -> None:
        if len({f.startswith("-") for f in self.fields}) != 1:
            raise ValueError(f"{self.fields}: every field sorts in the same direction")

    def names(self) -> list[str]:
        return [f.lstrip("-") for f in self.fields]

    def order_by(self, *, reverse: bool = False) -> list[str]:
        if not reverse:
            return list(self.fields)
        return [f[1:] if f.startswith("-") else f"-{f}" for f in self.fields]

    def beyond(self, values: Sequence, *, reverse: bool = False) -> Q:
        """Rows strictly after ``values`` in this order (before them when ``reverse``)."""
        q = Q()
        equal = Q()
        for field, value in zip(self.fields, values, strict=True):
            desc = field.startswith("-") != reverse
            name = field.lstrip("-")
            q |= equal & Q(**{f"{name}__{'lt' if desc else 'gt'}": value})
            equal &= Q(**{name: value})
        return q

    def key(self, row) -> tuple:
        return tuple(getattr(row, name) for name in self.names())


@dataclass(frozen=True)
class Cursor:
    values: tuple
    #: True: the page before ``values`` (a ``previous`` link)
    backwards: bool


def keyset_fetch(
    *, querysets: Sequence[QuerySet], ordering: Ordering, cursor: Cursor | None, limit: int
) -> tuple[list, bool]:
    """Up to ``limit`` rows (in order) from one or more querysets (e.g. one per region, merged)
    and whether more lie in the direction of travel."""
    backwards = bool(cursor and cursor.backwards)
    rows: list = []
    for qs in querysets:
        if cursor is not None:
            qs = qs.filter(ordering.beyond(cursor.values, reverse=backwards))
        rows.extend(qs.order_by(*ordering.order_by(reverse=backwards))[: limit + 1])
    # merge: sort by the key in the direction of travel (all fields share one direction here)
    descending = ordering.fields[0].startswith("-") != backwards
    rows.sort(key=ordering.key, reverse=descending)
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    return rows, more
