"""Restriction of processing: the subject leaves every segment and may not enter any until the
restriction is lifted (``restriction_enter_blocker`` is registered with ``compliance.hooks``)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.dsar.models import PrivacyRequest, Restriction
from compliance.models import Subject
from compliance.regions import region_alias
from segments.services.exits import memberships_close, memberships_closed_publish


def restriction_enter_blocker(*, region: str, subject_ids: Sequence[UUID]) -> dict[UUID, str]:
    """Enter blocker: subjects under an active restriction (one or two queries).

    Active restrictions are few; for large batches it is cheaper to read them all and
    intersect than to send a 100,000-id ``IN`` list."""
    if not subject_ids:
        return {}
    active = Restriction.objects.using(region_alias(region=region)).filter(active=True)
    if len(subject_ids) > 500 and active.count() <= len(subject_ids):
        wanted = {s if isinstance(s, UUID) else UUID(str(s)) for s in subject_ids}
        rows = [s for s in active.values_list("subject_id", flat=True) if s in wanted]
    else:
        rows = active.filter(subject_id__in=list(subject_ids)).values_list("subject_id", flat=True)
    return {subject_id: "restriction" for subject_id in rows}


def request_restrict_run(*, request: PrivacyRequest, actor: Actor) -> dict:
    """Record the restriction and exit every membership (reason ``restriction``), atomically."""
    alias = request._state.db
    with transaction.atomic(using=alias):
        # like a consent writer: a concurrent memberships_apply holding the subject's row lock
        # commits first, and its new stays are then exited here
        list(Subject.objects.using(alias).select_for_update().filter(pk=request.subject_id))
        restriction, _ = Restriction.objects.using(alias).get_or_create(
            subject_id=request.subject_id, active=True, defaults={"request_id": request.pk}
        )
        closed = memberships_close(
            alias=alias, subject_ids=[request.subject_id], reason="restriction", actor=actor
        )
        audit_append(using=alias, entries=closed.entries, at=closed.at)
        memberships_closed_publish(alias=alias, closed=closed)  # after the audit append
    return {"restriction_id": restriction.pk, "memberships_exited": len(closed.stays)}


def restriction_lift(*, region: str, subject_id: UUID, actor: Actor) -> int:
    """Lift the subject's active restrictions (audited ``RESTRICTION_LIFTED`` each): from now
    on it may enter segments again. Returns how many were lifted."""
    alias = region_alias(region=region)
    with transaction.atomic(using=alias):
        lifted = list(
            Restriction.objects.using(alias)
            .select_for_update()
            .filter(subject_id=subject_id, active=True)
        )
        if not lifted:
            return 0
        Restriction.objects.using(alias).filter(pk__in=[r.pk for r in lifted]).update(
            active=False, lifted_at=timezone.now()
        )
        subject = Subject.objects.using(alias).filter(pk=subject_id).first()
        audit_append(
            using=alias,
            entries=[
                AuditEntry(
                    code=AuditCode.RESTRICTION_LIFTED,
                    actor=actor,
                    subject_token=subject.audit_token if subject else "",
                    object_type="privacy_request",
                    object_id=str(r.request_id or ""),
                    payload={"restriction_id": r.pk},
                )
                for r in lifted
            ],
        )
    return len(lifted)
