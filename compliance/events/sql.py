"""Hand-written SQL of the event batch's hot path: the subjects' rows and keys and the stored
client event ids it reads (no statement built by the ORM: see ``compliance.selectors.rows``;
one round trip for all on PostgreSQL), and storing the accepted events (PostgreSQL: one
statement from column array literals, ``compliance.db.arrays``)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from django.db import connections

from compliance.consent.models import ConsentState
from compliance.consent.selectors.evaluation import StateRow
from compliance.db.arrays import array_literal, bytea_array, time_array, uuid_array
from compliance.db.batch import statements_run
from compliance.db.vendor import is_postgresql
from compliance.events.models import Event
from compliance.models import Subject, SubjectKey

_TABLE = Event._meta.db_table
_SUBJECTS_KEYS = (
    f"SELECT s.id, s.merged_into, k.wrapped_key FROM {Subject._meta.db_table} s "
    f"LEFT JOIN {SubjectKey._meta.db_table} k ON k.subject_id = s.id WHERE s.id {{among}}"
)
#: ``consent.selectors.evaluation.StateRow``s (times as POSIX seconds: the per-value
#: timestamptz loader and model instances cost more than the query)
_STATES = (
    "SELECT subject_id, purpose, source, event_id, decision, jurisdiction, "
    "extract(epoch from captured_at)::float8, extract(epoch from expires_at)::float8 "
    f"FROM {ConsentState._meta.db_table} WHERE subject_id {{among}}"
)
_STORED = (
    f"SELECT source, client_event_id, id FROM {_TABLE} "
    "WHERE source IN ({sources}) AND client_event_id IN ({ids})"
)
#: PostgreSQL: one probe of the unique index per asked pair, whatever the planner's statistics
#: say (the ``IN`` form above, on a table grown since its last ``ANALYZE``, scanned every event
#: of the source and filtered them: 2 ms at 3,500 events instead of 0.1 ms; ``LIMIT 1``, true
#: of a unique pair, keeps the subquery from being flattened into a hash join over the table)
_STORED_PROBES = (
    "SELECT k.source, k.client_id, e.id FROM unnest(%s::text[], %s::text[]) "
    f"AS k(source, client_id) CROSS JOIN LATERAL (SELECT id FROM {_TABLE} e "
    "WHERE e.source = k.source AND e.client_event_id = k.client_id LIMIT 1) e"
)


class EventRow(NamedTuple):
    """One accepted event as it is stored: ``Event``'s columns, no model instance (building
    ten of them cost more than their insert)."""

    subject_id: UUID
    source: str
    name: str
    purpose: str
    jurisdiction: str
    occurred_at: datetime
    received_at: datetime
    properties_encrypted: bytes
    consent_event_ids: list[int]
    client_event_id: str | None


_INSERT_ARRAYS = (
    f"INSERT INTO {_TABLE} (subject_id, source, name, purpose, jurisdiction, occurred_at, "
    "received_at, properties_encrypted, consent_event_ids, client_event_id) "
    "SELECT t.sid, t.source, t.name, t.purpose, t.jurisdiction, t.occurred_at, t.received_at, "
    "t.props, t.consents::jsonb, t.client_id FROM unnest(%s::uuid[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::bytea[], %s::text[], "
    "%s::text[]) WITH ORDINALITY AS t(sid, source, name, purpose, jurisdiction, occurred_at, "
    "received_at, props, consents, client_id, i) ORDER BY t.i RETURNING id"
)


def events_insert_sql(*, events: Sequence[EventRow]) -> tuple[str, list]:
    """PostgreSQL: the statement (SQL, params) that inserts ``events`` (at least one) and
    answers their ids: ONE ``INSERT ... SELECT`` from one array literal per column (no per-row
    SQL built by the ORM, no per-element dumping); ids are drawn in the rows' order, so the
    ascending ids answered are theirs in order (``events_inserted_ids``)."""
    return _INSERT_ARRAYS, [
        uuid_array([e.subject_id for e in events]),
        array_literal([e.source for e in events]),
        array_literal([e.name for e in events]),
        array_literal([e.purpose for e in events]),
        array_literal([e.jurisdiction for e in events]),
        time_array([e.occurred_at for e in events]),
        time_array([e.received_at for e in events]),
        bytea_array([e.properties_encrypted for e in events]),
        array_literal([json.dumps(e.consent_event_ids) for e in events]),
        array_literal([e.client_event_id for e in events]),
    ]


def events_inserted_ids(*, rows: list[tuple]) -> list[int]:
    """The ids of the events ``events_insert_sql`` stored, in the events' order, from the rows
    it answered."""
    return sorted(row[0] for row in rows)


def events_insert(*, alias: str, events: Sequence[EventRow]) -> list[int]:
    """Elsewhere than PostgreSQL: insert ``events`` through the model; their ids in order."""
    stored = Event.objects.using(alias).bulk_create(
        [Event(**event._asdict()) for event in events], batch_size=1000
    )
    return [event.pk for event in stored]


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def subjects_keys(
    *, alias: str, subject_ids: Collection[UUID]
) -> list[tuple[UUID, UUID | None, bytes | None]]:
    """``(id, merged_into, wrapped data key or None)`` of the subject rows among
    ``subject_ids`` that exist (one query)."""
    return batch_reads(alias=alias, subject_ids=subject_ids, client_ids=()).subjects


@dataclass(frozen=True)
class BatchReads:
    #: ``(id, merged_into, wrapped data key or None)`` of the subject rows that exist
    subjects: list[tuple[UUID, UUID | None, bytes | None]]
    #: ``(source, client event id) -> event id`` of the stored events among those asked
    stored: dict[tuple[str, str], int]
    #: every consent state row of the subjects as ``StateRow``s (``None``: not asked, or not
    #: on PostgreSQL)
    states: list[StateRow] | None = None
    #: the audit chain head ``(size, hash)`` as ``head_lock`` locked it (``None``: not asked)
    head: tuple[int, str] | None = None


def batch_reads(
    *,
    alias: str,
    subject_ids: Collection[UUID],
    client_ids: Collection[tuple[str, str]],
    states: bool = False,
    head_lock: tuple[str, list] | None = None,
) -> BatchReads:
    """What a batch reads before it decides: the subjects' rows and keys, the stored events
    among ``client_ids`` (``(source, client_event_id)`` pairs: the unique index's columns) and,
    with ``states`` and on PostgreSQL (where the driver answers UUIDs and floats), the
    subjects' consent state rows. ONE round trip on PostgreSQL (``statements_run``).
    ``head_lock`` (PostgreSQL: ``audit_head_lock_sql``) runs first: the chain head is locked
    before anything else, as the region's other writers lock it, and answered as ``head``."""
    # the subjects: one uuid[] parameter on PostgreSQL (not one per subject to dump and quote)
    if is_postgresql(alias):
        among, ids = "= ANY(%s::uuid[])", [uuid_array(list(subject_ids))] if subject_ids else []
    else:
        prep, connection = Subject._meta.pk.get_db_prep_value, connections[alias]
        ids = [prep(pk, connection) for pk in subject_ids]
        among = f"IN ({_marks(len(ids))})"
    queries: dict[str, tuple[str, list]] = {}
    if head_lock is not None:
        queries["head"] = head_lock
    if ids:
        queries["keys"] = (_SUBJECTS_KEYS.format(among=among), ids)
    if client_ids and is_postgresql(alias):
        pairs = sorted(client_ids)
        queries["stored"] = (
            _STORED_PROBES,
            [array_literal(p[0] for p in pairs), array_literal(p[1] for p in pairs)],
        )
    elif client_ids:  # SQLite: a superset of the pairs; the caller looks up each pair
        sources, event_ids = {p[0] for p in client_ids}, {p[1] for p in client_ids}
        sql = _STORED.format(sources=_marks(len(sources)), ids=_marks(len(event_ids)))
        queries["stored"] = (sql, [*sources, *event_ids])
    if states and ids and is_postgresql(alias):
        queries["states"] = (_STATES.format(among=among), ids)
    found = dict(
        zip(queries, statements_run(using=alias, statements=list(queries.values())), strict=True)
    )
    return BatchReads(
        subjects=[
            (_uuid(sid), _uuid(merged), _bytes(key)) for sid, merged, key in found.get("keys", [])
        ],
        stored={(source, client_id): pk for source, client_id, pk in found.get("stored", [])},
        states=found.get("states"),
        head=tuple(found["head"][0]) if head_lock is not None else None,
    )


def _uuid(value) -> UUID | None:
    """A UUID column's value (SQLite answers 32 hex digits, PostgreSQL a UUID)."""
    return value if value is None or isinstance(value, UUID) else UUID(value)


def _bytes(value) -> bytes | None:
    return None if value is None else bytes(value)
