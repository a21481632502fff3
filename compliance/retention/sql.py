"""The retention app's vendor-specific deletes: the only module of the app that asks which
database it talks to. On PostgreSQL the runtime role cannot delete guarded rows (consent
events, memberships, audit entries): they go through the owner-defined functions of
``compliance.db_guards``, which check their own preconditions; elsewhere the ORM deletes."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections

from compliance.audit.models import AuditEvent
from compliance.db_guards import is_guarded, is_postgresql, retention_delete
from compliance.retention.conf import retention_settings


def rows_delete(*, alias: str, model, ids: Sequence[int]) -> int:
    """Delete ``model``'s rows with primary keys ``ids`` from ``alias``; the number removed
    (PostgreSQL, guarded tables: through ``compliance_retention_delete``)."""
    if is_postgresql(alias) and is_guarded(model):
        return retention_delete(using=alias, table=model._meta.db_table, ids=ids)
    return model.objects.using(alias).filter(pk__in=ids).delete()[0]


def audit_prefix_delete(*, alias: str, first: int, through: int, batch: int) -> int:
    """Delete the chain prefix ``first``..``through`` of ``alias``. PostgreSQL: ``audit_prune``,
    which checks the checkpoint and the minimum age itself (the runtime role cannot delete
    entries); elsewhere in batches of ``batch`` entries."""
    if is_postgresql(alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT audit_prune(%s, %s, %s)",
                [alias, through, retention_settings.AUDIT_MIN_DAYS],
            )
            return cursor.fetchone()[0]
    removed = 0
    for start in range(first, through + 1, batch):
        end = min(start + batch - 1, through)
        removed += AuditEvent.objects.using(alias).filter(seq__gte=start, seq__lte=end).delete()[0]
    return removed
