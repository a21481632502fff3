"""Database-level guards on PostgreSQL, and the only ways through them.

Two roles per database (see ``docs/audit.md``, "Who can change history"): the **owner** runs
migrations and owns every table and function; the **runtime role** (``db_roles``) that the web
and the workers connect as may read, and insert where the application needs to, but holds no
UPDATE, DELETE or TRUNCATE on audit entries, checkpoints, the chain head, consent events and
memberships, and no INSERT on the chain head. The legitimate privileged writes go through
``SECURITY DEFINER`` functions owned by the owner, each checking its own preconditions:

================================  ============================================================
function                          precondition
================================  ============================================================
``audit_head_lock``               none (creates the head at genesis, locks it)
``audit_head_advance``            moves forward only, over entries that exist, to the hash of
                                  the entry at the new size; clears the membership changes of
                                  the transaction that these entries audit
``audit_prune``                   a checkpoint row at exactly that size matching the entry's
                                  hash, every pruned entry older than the minimum age
``compliance_erase_rows``         each subject belongs to an erasure request in ``processing``
                                  or is in the destroyed-keys ledger (backup-restore replay)
``compliance_retention_delete``   memberships: exited stays only; both tables: older than the
                                  retention floor
``segments_stays_close``          a known exit reason; closes open stays only
================================  ============================================================

The triggers on the protected tables let a write through only while one of these functions
holds a **permit**: a row for the current transaction in ``compliance_guard_permit``, a table
only the owner can write, inserted and removed by the function itself. Nothing a session can
set (``set_config``, ``SET LOCAL``) opens a guard. Every membership row inserted or closed in a
transaction must be audited (an entry with its ``membership_id``) before the transaction
commits, or the commit fails (a deferred constraint trigger).

SQLite (embedded default) has neither roles nor triggers: the services are the only writers
and ``audit_verify`` finds changes made behind their back; the functions below fall back to
the ORM there.

The SQL text lives in ``compliance.db.guards_sql`` (permits, the audit chain's functions) and
``compliance.db.regional_guards`` (consent events, memberships); this module holds the calls
the application makes through the guards, and names everything migrations import from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from django.db import connections

from compliance.db.guards_sql import (
    APPEND_ONLY_TABLES,
    CONSENT_EVENT_TABLE,
    DEFINER_FUNCTIONS,
    ERASABLE,
    MEMBERSHIP_TABLE,
    PERMIT_SQL,
    PERMIT_TABLE,
    PRIVATE_TABLES,
    READ_ONLY_TABLES,
    SETTING_TABLE,
    audit_trigger_function_sql,
    definer,
    head_functions_sql,
    postgresql_only,
    schema_of,
)
from compliance.db.regional_guards import regional_sql
from compliance.db.vendor import is_postgresql
from segments.models import SegmentMembership

__all__ = [  # the names migrations and other apps import from here
    "APPEND_ONLY_TABLES",
    "CONSENT_EVENT_TABLE",
    "DEFINER_FUNCTIONS",
    "ERASABLE",
    "MEMBERSHIP_TABLE",
    "PERMIT_SQL",
    "PERMIT_TABLE",
    "PRIVATE_TABLES",
    "READ_ONLY_TABLES",
    "SETTING_TABLE",
    "audit_trigger_function_sql",
    "definer",
    "erase_rows",
    "head_functions_sql",
    "is_guarded",
    "is_postgresql",
    "postgresql_only",
    "regional_sql",
    "retention_delete",
    "schema_of",
    "stays_close",
]


# --- the application's calls ----------------------------------------------------------------


def stays_close(
    *,
    using: str,
    at: datetime,
    reason: str,
    subject_ids: Sequence[UUID] | None = None,
    segment_key: str | None = None,
    ids: Sequence[int] | None = None,
) -> list[tuple[int, UUID, str]]:
    """Close the open stays selected by subjects, segment and/or stay ids (at least one of
    subjects or ids): sorted ``(membership id, subject id, segment key)``. The caller audits
    each closed stay (``MEMBERSHIP_EXITED`` with its ``membership_id``) in the same
    transaction; on PostgreSQL the commit is refused otherwise."""
    if is_postgresql(using):
        with connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT stay_id, stay_subject, stay_segment FROM segments_stays_close("
                "%s::uuid[], %s, %s::bigint[], %s, %s)",
                [
                    None if subject_ids is None else list(subject_ids),
                    segment_key,
                    None if ids is None else list(ids),
                    at,
                    reason,
                ],
            )
            return [(pk, _uuid(sid), key) for pk, sid, key in cursor.fetchall()]
    rows = SegmentMembership.objects.using(using).filter(exited_at__isnull=True)
    if subject_ids is not None:
        rows = rows.filter(subject_id__in=list(subject_ids))
    if segment_key is not None:
        rows = rows.filter(segment_key=segment_key)
    if ids is not None:
        rows = rows.filter(id__in=list(ids))
    closed = sorted(rows.values_list("id", "subject_id", "segment_key"))
    if closed:
        SegmentMembership.objects.using(using).filter(id__in=[pk for pk, _, _ in closed]).update(
            exited_at=at, exited_reason=reason
        )
    return [(pk, _uuid(sid), key) for pk, sid, key in closed]


def is_guarded(model) -> bool:
    """Whether ``model``'s rows are removed only through the guard functions."""
    return model._meta.db_table in ERASABLE


def erase_rows(
    *,
    using: str,
    table: str,
    subject_ids: Sequence[UUID],
    request_ids: Sequence[UUID],
    ids: Sequence[int] | None = None,
) -> dict[UUID, int]:
    """PostgreSQL: delete a guarded table's rows of ``subject_ids`` (only ``ids`` among them
    when given) through ``compliance_erase_rows``; rows per subject. Refused unless every
    subject is covered by one of ``request_ids`` (erasure, processing) or by the ledger."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT row_subject, removed FROM compliance_erase_rows(%s, %s::uuid[], %s::uuid[], "
            "%s::bigint[])",
            [table, list(subject_ids), list(request_ids), None if ids is None else list(ids)],
        )
        return {_uuid(sid): n for sid, n in cursor.fetchall()}


def retention_delete(*, using: str, table: str, ids: Sequence[int]) -> int:
    """PostgreSQL: delete a guarded table's rows by id through ``compliance_retention_delete``."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT compliance_retention_delete(%s, %s::bigint[])", [table, list(ids)])
        return cursor.fetchone()[0]


def _uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
