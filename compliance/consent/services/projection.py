"""The ``ConsentState`` projection: only ever derived from ``ConsentEvent`` rows.

``state_apply`` folds new events into the state (called by the recording service in the
same transaction); ``state_rebuild`` recomputes a subject's (or a region's) state from the
whole ledger and audits ``CONSENT_STATE_REBUILT``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from django.db import connections, transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.consent.models import ConsentEvent, ConsentState, Scope
from compliance.consent.selectors.history import history_records
from compliance.models import Subject
from compliance.regions import region_alias


def scope_key(*, event: ConsentEvent) -> str:
    """The state row an event belongs to: ``""`` for global scope, else its source."""
    return event.source if event.scope == Scope.SOURCE else ""


def state_apply(*, using: str, events: Sequence[ConsentEvent]) -> None:
    """Fold new ``events`` (saved) into the state rows of their (subject, purpose, scope);
    later wins. ONE upsert statement whatever the number of events.

    "Later" is by ``captured_at`` then event id, so an event captured earlier but received
    later never overrides a newer decision (the upsert's ``WHERE`` keeps the stored row then).
    Call inside ``transaction.atomic(using=using)``.
    """
    latest: dict[tuple, ConsentEvent] = {}
    for event in events:
        key = (event.subject_id, event.purpose, scope_key(event=event))
        held = latest.get(key)
        if held is None or (held.captured_at, held.pk) < (event.captured_at, event.pk):
            latest[key] = event
    if not latest:
        return
    connection = connections[using]
    fields = {f.name: f for f in ConsentState._meta.concrete_fields}
    now = timezone.now()
    rows, params = [], []
    for (subject_id, purpose, source), event in latest.items():
        values = {
            "subject_id": subject_id,
            "purpose": purpose,
            "source": source,
            "decision": event.decision,
            "lawful_basis": event.lawful_basis,
            "jurisdiction": event.jurisdiction,
            "event_id": event.pk,
            "captured_at": event.captured_at,
            "expires_at": event.expires_at,
            "updated_at": now,
        }
        rows.append("(" + ", ".join(["%s"] * len(values)) + ")")
        params += [fields[n].get_db_prep_save(v, connection) for n, v in values.items()]
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT.format(rows=", ".join(rows)), params)


_TABLE = ConsentState._meta.db_table
_CHANGED = ("decision", "lawful_basis", "jurisdiction", "event_id", "captured_at", "expires_at")
# the same text on PostgreSQL and SQLite (row values and ON CONFLICT ... WHERE in both)
_UPSERT = (
    f"INSERT INTO {_TABLE} (subject_id, purpose, source, {', '.join(_CHANGED)}, updated_at) "
    "VALUES {rows} ON CONFLICT (subject_id, purpose, source) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in (*_CHANGED, "updated_at"))
    + f" WHERE ({_TABLE}.captured_at, {_TABLE}.event_id) < (excluded.captured_at, excluded.event_id)"
)


def state_from_sql(*, ledger: str) -> str:
    """PostgreSQL: ``state_apply``'s upsert from the ledger rows of the relation ``ledger`` (a
    CTE of just-inserted ``ConsentEvent`` rows, ``RETURNING *``), latest per (subject, purpose,
    scope) first; its one parameter is ``updated_at``. The same rules: later by ``captured_at``
    then id wins, in the batch and against the stored row."""
    scope = f"CASE WHEN l.scope = '{Scope.SOURCE}' THEN l.source ELSE '' END"
    return (
        f"INSERT INTO {_TABLE} (subject_id, purpose, source, {', '.join(_CHANGED)}, updated_at) "
        f"SELECT DISTINCT ON (l.subject_id, l.purpose, {scope}) l.subject_id, l.purpose, "
        f"{scope}, l.decision, l.lawful_basis, l.jurisdiction, l.id, l.captured_at, "
        f"l.expires_at, %s::timestamptz FROM {ledger} l "
        f"ORDER BY l.subject_id, l.purpose, {scope}, l.captured_at DESC, l.id DESC"
        + _UPSERT[_UPSERT.index(" ON CONFLICT") :]
    )


def state_rebuild(*, region: str, actor: Actor, subject_ids: Iterable[UUID] | None = None) -> int:
    """Recompute the state of ``subject_ids`` (all subjects of the region when None) from the
    ledger; returns the number of state rows written. Audits one ``CONSENT_STATE_REBUILT``."""
    alias = region_alias(region=region)
    with transaction.atomic(using=alias):
        if subject_ids is None:
            ids = list(
                ConsentEvent.objects.using(alias).values_list("subject_id", flat=True).distinct()
            )
            ConsentState.objects.using(alias).all().delete()
        else:
            ids = list(subject_ids)
            ConsentState.objects.using(alias).filter(subject_id__in=ids).delete()
        folded = history_records(alias=alias, subject_ids=ids, purposes=None, scopes=None, at=None)
        ConsentState.objects.using(alias).bulk_create(
            [
                ConsentState(
                    subject_id=sid,
                    purpose=purpose,
                    source=source,
                    decision=r.decision,
                    lawful_basis=r.lawful_basis,
                    jurisdiction=r.jurisdiction,
                    event_id=r.event_id,
                    captured_at=r.captured_at,
                    expires_at=r.expires_at,
                )
                for (sid, purpose, source), r in folded.items()
            ],
            batch_size=2000,
        )
        token = ""
        if subject_ids is not None and len(ids) == 1:
            subject = Subject.objects.using(alias).filter(pk=ids[0]).first()
            token = subject.audit_token if subject else ""
        audit_append(
            using=alias,
            entries=[
                AuditEntry(
                    code=AuditCode.CONSENT_STATE_REBUILT,
                    actor=actor,
                    subject_token=token,
                    object_type="consent_state",
                    payload={"subjects": len(ids), "rows": len(folded)},
                )
            ],
        )
    return len(folded)
