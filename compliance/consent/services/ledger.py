"""``ledger_store``: a consent recording's rows, their state and their outbox rows.

PostgreSQL: ONE round trip, the audit chain head's lock then the three as one statement. The
head is locked first, as the region's other writers of audit entries and outbox rows do
(memberships: entries, then outbox rows), so two writers never wait on each other in opposite
orders; an open ``audit_collected`` block appends from that head without locking it again.
Each part's SQL comes from its owner: the ledger's ``INSERT`` from the model
(``db.inserts.rows_insert_sql``), the state upsert from the projection (``state_from_sql``),
the outbox rows from the feed (``consent_changes_from_sql``); they are composed as
data-modifying CTEs over the inserted rows, which PostgreSQL runs exactly once each, so no id
is needed before the rest is written. SQLite: one write after the other (``rows_insert``,
``state_apply``, ``consent_changes_record``).
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
    head = _written(
        alias=alias, events=events, updated_at=now, head_lock=audit_head_lock_sql(using=alias)
    )
    if audit_head_wanted(using=alias):
        audit_head_held(using=alias, head=head)
    schedule_delivery(using=alias)


def _written(
    *,
    alias: str,
    events: Sequence[ConsentEvent],
    updated_at: datetime,
    head_lock: tuple[str, list],
) -> tuple:
    """PostgreSQL: the one round trip; answers the chain head's row."""
    insert, insert_params = rows_insert_sql(using=alias, rows=events)
    changes, change_params = consent_changes_from_sql(ledger="ledger")
    stamp = connections[alias].ops.adapt_datetimefield_value(updated_at)
    statements = [
        head_lock,
        (
            f"WITH ledger AS ({insert} RETURNING *), state AS ({state_from_sql(ledger='ledger')}),"
            f" changes AS ({changes}) SELECT id FROM ledger",
            [*insert_params, stamp, *change_params],
        ),
    ]
    head, ledger = statements_run(using=alias, statements=statements)
    rows_keys_set(using=alias, rows=events, keys=[key for (key,) in ledger])
    return head[0]
