"""``ledger_store``: a consent recording's rows, their state and their outbox rows.

PostgreSQL: ONE round trip, the three as one statement and the audit chain head's lock beside
it (for the open ``audit_collected`` block that appends the recording). Each part's SQL comes
from its owner: the ledger's ``INSERT`` from the model (``db.inserts.rows_insert_sql``), the
state upsert from the projection (``state_from_sql``), the outbox rows from the feed
(``consent_changes_from_sql``); they are composed as data-modifying CTEs over the inserted
rows, which PostgreSQL runs exactly once each, so no id is needed before the rest is written.
SQLite: one write after the other (``rows_insert``, ``state_apply``,
``consent_changes_record``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import connections

from compliance.audit.services.append import (
    audit_head_held,
    audit_head_lock_sql,
    audit_head_wanted,
)
from compliance.consent.models import ConsentEvent
from compliance.consent.services.projection import state_apply, state_from_sql
from compliance.db.batch import statements_run
from compliance.db.inserts import rows_insert, rows_insert_sql, rows_keys_set
from compliance.db.vendor import is_postgresql
from compliance.feed.services.outbox import consent_changes_record, schedule_delivery
from compliance.feed.sql import consent_changes_from_sql


def ledger_store(*, alias: str, events: Sequence[ConsentEvent], now: datetime) -> None:
    """Store ``events`` (unsaved, at least one) and set their ``pk``, fold them into the
    state and write their outbox rows (delivery scheduled at commit), in the caller's
    transaction on ``alias``."""
    if not is_postgresql(alias):
        rows_insert(using=alias, rows=events)
        state_apply(using=alias, events=events)
        consent_changes_record(using=alias, events=events)
        return
    wanted = audit_head_wanted(using=alias)
    head_lock = audit_head_lock_sql(using=alias) if wanted else None
    head = _written(alias=alias, events=events, updated_at=now, head_lock=head_lock)
    if head is not None:
        audit_head_held(using=alias, head=head)
    schedule_delivery(using=alias)


def _written(
    *,
    alias: str,
    events: Sequence[ConsentEvent],
    updated_at: datetime,
    head_lock: tuple[str, list] | None,
) -> tuple | None:
    """PostgreSQL: the one round trip; answers the chain head's row with ``head_lock``."""
    insert, insert_params = rows_insert_sql(using=alias, rows=events)
    changes, change_params = consent_changes_from_sql(ledger="ledger")
    stamp = connections[alias].ops.adapt_datetimefield_value(updated_at)
    statements = [
        (
            f"WITH ledger AS ({insert} RETURNING *), state AS ({state_from_sql(ledger='ledger')}),"
            f" changes AS ({changes}) SELECT id FROM ledger",
            [*insert_params, stamp, *change_params],
        )
    ]
    if head_lock is not None:
        statements.append(head_lock)
    found = statements_run(using=alias, statements=statements)
    rows_keys_set(using=alias, rows=events, keys=[key for (key,) in found[0]])
    return found[1][0] if head_lock is not None else None
