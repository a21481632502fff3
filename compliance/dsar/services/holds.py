"""Legal holds: while one is active on a subject, erasure is refused with its reason."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.dsar.models import LegalHold
from compliance.dsar.services.errors import RequestError
from compliance.models import Subject
from compliance.regions import region_alias


def _token(alias: str, subject_id: UUID) -> str:
    subject = Subject.objects.using(alias).filter(pk=subject_id).first()
    return subject.audit_token if subject else ""


def legal_hold_set(*, region: str, subject_id: UUID, reason: str, actor: Actor) -> LegalHold:
    """Put a legal hold on a subject (audited ``LEGAL_HOLD_SET``; the reason stays regional)."""
    if not reason.strip():
        raise RequestError("a legal hold needs a reason", field="reason")
    alias = region_alias(region=region)
    with transaction.atomic(using=alias):
        hold = LegalHold.objects.using(alias).create(
            subject_id=subject_id, reason=reason.strip(), created_by=f"{actor.kind}:{actor.id}"
        )
        audit_append(
            using=alias,
            entries=[
                AuditEntry(
                    code=AuditCode.LEGAL_HOLD_SET,
                    actor=actor,
                    subject_token=_token(alias, subject_id),
                    object_type="legal_hold",
                    object_id=str(hold.pk),
                )
            ],
        )
    return hold


def legal_hold_release(*, hold: LegalHold, actor: Actor) -> LegalHold:
    alias = hold._state.db
    with transaction.atomic(using=alias):
        updated = (
            LegalHold.objects.using(alias)
            .filter(pk=hold.pk, active=True)
            .update(active=False, released_at=timezone.now())
        )
        if updated:
            audit_append(
                using=alias,
                entries=[
                    AuditEntry(
                        code=AuditCode.LEGAL_HOLD_RELEASED,
                        actor=actor,
                        subject_token=_token(alias, hold.subject_id),
                        object_type="legal_hold",
                        object_id=str(hold.pk),
                    )
                ],
            )
    hold.refresh_from_db(using=alias)
    return hold
