"""Vendor-specific SQL of the events app: storing a batch's accepted events."""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import connections

from compliance.db.vendor import is_postgresql
from compliance.events.models import Event

_TABLE = Event._meta.db_table
_INSERT_ARRAYS = (
    f"INSERT INTO {_TABLE} (subject_id, source, name, purpose, jurisdiction, occurred_at, "
    "received_at, properties_encrypted, consent_event_ids, client_event_id) "
    "SELECT t.sid, t.source, t.name, t.purpose, t.jurisdiction, t.occurred_at, t.received_at, "
    "t.props, t.consents::jsonb, t.client_id FROM unnest(%s::uuid[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::bytea[], %s::text[], "
    "%s::text[]) WITH ORDINALITY AS t(sid, source, name, purpose, jurisdiction, occurred_at, "
    "received_at, props, consents, client_id, i) ORDER BY t.i RETURNING id"
)


def events_insert(*, alias: str, events: Sequence[Event]) -> None:
    """Insert ``events`` (unsaved) and set their ``pk``. PostgreSQL: ONE ``INSERT ... SELECT``
    from one array per column (no per-row SQL built by the ORM); ids are drawn in the rows'
    order, so the ascending ids returned are theirs in order. ``bulk_create`` elsewhere."""
    if not events:
        return
    if not is_postgresql(alias):
        Event.objects.using(alias).bulk_create(events, batch_size=1000)
        return
    columns = [
        [e.subject_id for e in events],
        [e.source for e in events],
        [e.name for e in events],
        [e.purpose for e in events],
        [e.jurisdiction for e in events],
        [e.occurred_at for e in events],
        [e.received_at for e in events],
        [bytes(e.properties_encrypted) for e in events],
        [json.dumps(list(e.consent_event_ids)) for e in events],
        [e.client_event_id for e in events],
    ]
    with connections[alias].cursor() as cursor:
        cursor.execute(_INSERT_ARRAYS, columns)
        ids = sorted(row[0] for row in cursor.fetchall())
    for event, pk in zip(events, ids, strict=True):
        event.pk = pk
        event._state.adding, event._state.db = False, alias
