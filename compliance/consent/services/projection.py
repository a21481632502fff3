"""The ``ConsentState`` projection: only ever derived from ``ConsentEvent`` rows.

``state_apply`` folds one new event into the state (called by the recording service in the
same transaction); ``state_rebuild`` recomputes a subject's (or a region's) state from the
whole ledger and audits ``CONSENT_STATE_REBUILT``.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from django.db import transaction

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.consent.models import ConsentEvent, ConsentState, Scope
from compliance.consent.selectors.history import history_records
from compliance.models import Subject
from compliance.regions import region_alias


def scope_key(*, event: ConsentEvent) -> str:
    """The state row an event belongs to: ``""`` for global scope, else its source."""
    return event.source if event.scope == Scope.SOURCE else ""


def state_apply(*, using: str, event: ConsentEvent) -> ConsentState:
    """Fold ``event`` into the state row of its (subject, purpose, scope); later wins.

    "Later" is by ``captured_at`` then event id, so an event captured earlier but received
    later never overrides a newer decision. Call inside ``transaction.atomic(using=using)``.
    """
    key = scope_key(event=event)
    state = (
        ConsentState.objects.using(using)
        .select_for_update()
        .filter(subject_id=event.subject_id, purpose=event.purpose, source=key)
        .first()
    )
    if state is not None and (state.captured_at, state.event_id) > (event.captured_at, event.pk):
        return state
    values = {
        "decision": event.decision,
        "lawful_basis": event.lawful_basis,
        "jurisdiction": event.jurisdiction,
        "event_id": event.pk,
        "captured_at": event.captured_at,
        "expires_at": event.expires_at,
    }
    if state is None:
        return ConsentState.objects.using(using).create(
            subject_id=event.subject_id, purpose=event.purpose, source=key, **values
        )
    for name, value in values.items():
        setattr(state, name, value)
    state.save(using=using)
    return state


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
