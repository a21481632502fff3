"""The consent app's vendor-specific reads: the one place that knows PostgreSQL from SQLite.

Every function answers the same rows on every backend. On PostgreSQL the subject ids travel as
ONE ``uuid[]`` text parameter (100,000 placeholders, or psycopg's per-element array dumper,
cost more than the query itself) and rows are keyed by the 1-based position of the id in the
list (``WITH ORDINALITY``), so callers never hash or parse UUIDs; times come back as POSIX
seconds (float8: the per-value timestamptz loader costs more than the query). Elsewhere the ORM
reads the same rows in chunks under SQLite's variable limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from uuid import UUID

from django.db import connections

from compliance.consent.models import ConsentState
from compliance.db.arrays import uuid_array
from compliance.models import Subject

#: ids per query on backends with a variable limit (SQLite)
CHUNK = 5000

_STATE = ConsentState._meta.db_table
_SUBJECT = Subject._meta.db_table
_IDS = "unnest(%(ids)s::uuid[]) WITH ORDINALITY AS t(id, i)"


def is_postgresql(alias: str) -> bool:
    return connections[alias].vendor == "postgresql"


def chunks(*, alias: str, ids: Sequence) -> Iterable[Sequence]:
    """``ids`` in slices one query can take on ``alias``."""
    if is_postgresql(alias) or len(ids) <= CHUNK:
        yield ids
        return
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _fetch(alias: str, sql: str, params: dict) -> list[tuple]:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _positions(ids: Sequence) -> dict[UUID, list[int]]:
    """id -> its 1-based positions in ``ids`` (an id may be listed twice)."""
    out: dict[UUID, list[int]] = defaultdict(list)
    for position, sid in enumerate(ids, 1):
        out[_uuid(sid)].append(position)
    return out


def state_rows(
    *,
    alias: str,
    subject_ids: Sequence[UUID],
    purposes: Sequence[str],
    scopes: Sequence[str],
    id_array: str | None = None,
) -> list[tuple]:
    """The state rows of ``subject_ids`` as ``(position, purpose, source, event_id, decision,
    jurisdiction, captured, expires)``: ``position`` is the 1-based index of the subject in
    ``subject_ids``, ``captured`` and ``expires`` POSIX seconds (``expires`` None: never).
    ``id_array`` is ``uuid_array(subject_ids)`` when the caller built it already."""
    if is_postgresql(alias):
        sql = (
            "SELECT t.i, cs.purpose, cs.source, cs.event_id, cs.decision, cs.jurisdiction, "
            "extract(epoch from cs.captured_at)::float8, "
            "extract(epoch from cs.expires_at)::float8 "
            f"FROM {_IDS} JOIN {_STATE} cs ON cs.subject_id = t.id "
            "WHERE cs.purpose = ANY(%(purposes)s::text[]) AND cs.source = ANY(%(scopes)s::text[])"
        )
        ids = id_array or uuid_array(subject_ids)
        return _fetch(alias, sql, {"ids": ids, "purposes": purposes, "scopes": scopes})
    positions = _positions(subject_ids)
    out = []
    for chunk in chunks(alias=alias, ids=list(positions)):
        rows = (
            ConsentState.objects.using(alias)
            .filter(subject_id__in=chunk, purpose__in=purposes, source__in=scopes)
            .values_list(
                "subject_id", "purpose", "source", "event_id", "decision", "jurisdiction",
                "captured_at", "expires_at",
            )
        )  # fmt: skip
        for sid, purpose, source, event_id, decision, jurisdiction, captured, expires in rows:
            expires_ts = expires.timestamp() if expires else None
            out.extend(
                (p, purpose, source, event_id, decision, jurisdiction, captured.timestamp(),
                 expires_ts)
                for p in positions[sid]
            )  # fmt: skip
    return out


def state_groups(
    *, alias: str, subject_ids: Sequence[UUID], purposes: Sequence[str], at, id_array: str | None
) -> list[tuple]:
    """Global-scope state rows grouped by what the rules read: ``(purpose, decision,
    jurisdiction, live, stale, [positions], [event ids])``, where ``live`` is "no expiry, or an
    expiry after ``at``" and ``stale`` "captured after ``at``"; positions as in ``state_rows``."""
    if is_postgresql(alias):
        sql = (
            "SELECT cs.purpose, cs.decision, cs.jurisdiction, "
            "(cs.expires_at IS NULL OR cs.expires_at > %(at)s), cs.captured_at > %(at)s, "
            "array_agg(t.i), array_agg(cs.event_id) "
            f"FROM {_IDS} JOIN {_STATE} cs ON cs.subject_id = t.id "
            "WHERE cs.purpose = ANY(%(purposes)s::text[]) AND cs.source = '' "
            "GROUP BY 1, 2, 3, 4, 5"
        )
        ids = id_array or uuid_array(subject_ids)
        return _fetch(alias, sql, {"at": at, "ids": ids, "purposes": list(purposes)})
    at_ts = at.timestamp()
    groups: dict[tuple, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    rows = state_rows(alias=alias, subject_ids=subject_ids, purposes=purposes, scopes=[""])
    for position, purpose, _, event_id, decision, jurisdiction, captured, expires in rows:
        live = expires is None or expires > at_ts
        positions, event_ids = groups[(purpose, decision, jurisdiction, live, captured > at_ts)]
        positions.append(position)
        event_ids.append(event_id)
    return [(*key, positions, event_ids) for key, (positions, event_ids) in groups.items()]


def merged_subjects(
    *, alias: str, subject_ids: Sequence[UUID], id_array: str | None = None
) -> dict[UUID, UUID]:
    """``{merged subject id: survivor id}`` for the merged ones among ``subject_ids``."""
    if not subject_ids:
        return {}
    if is_postgresql(alias):
        sql = (
            f"SELECT id, merged_into FROM {_SUBJECT} "
            "WHERE merged_into IS NOT NULL AND id = ANY(%(ids)s::uuid[])"
        )
        return dict(_fetch(alias, sql, {"ids": id_array or uuid_array(subject_ids)}))
    out: dict[UUID, UUID] = {}
    for chunk in chunks(alias=alias, ids=[_uuid(sid) for sid in subject_ids]):
        out.update(
            Subject.objects.using(alias)
            .filter(id__in=chunk, merged_into__isnull=False)
            .values_list("id", "merged_into")
        )
    return out


def merged_positions(*, alias: str, subject_ids: Sequence[UUID], id_array: str | None) -> set[int]:
    """1-based positions of the merged subjects among ``subject_ids``."""
    if is_postgresql(alias):
        sql = (
            f"SELECT t.i FROM {_IDS} JOIN {_SUBJECT} s ON s.id = t.id "
            "WHERE s.merged_into IS NOT NULL"
        )
        rows = _fetch(alias, sql, {"ids": id_array or uuid_array(subject_ids)})
        return {row[0] for row in rows}
    merged = merged_subjects(alias=alias, subject_ids=subject_ids)
    return {p for p, sid in enumerate(subject_ids, 1) if _uuid(sid) in merged}
