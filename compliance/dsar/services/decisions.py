"""Decisions on an open request: approve (or retry), reject, cancel, extend the deadline, and
``request_start`` (to ``processing``, the job queued after commit; an erasure under an active
legal hold is rejected instead)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, audit_append
from compliance.dsar.enqueue import REQUEST_PROCESS, job_on_commit
from compliance.dsar.models import PrivacyRequest, RequestType, Status
from compliance.dsar.services.deadlines import extended_due_at
from compliance.dsar.services.erasure_plan import holds_active
from compliance.dsar.services.errors import IllegalTransitionError, LegalHoldError, RequestError
from compliance.dsar.services.transitions import request_entry, request_transition


def _hold(request: PrivacyRequest) -> str | None:
    """The reason of the oldest active legal hold on an erasure's subject, if any."""
    if request.type != RequestType.ERASURE or request.subject_id is None:
        return None
    holds = holds_active(alias=request._state.db, subject_ids=[request.subject_id])
    return holds.get(request.subject_id)


def request_start(*, request: PrivacyRequest, actor: Actor, approved_by: str = "") -> None:
    """Move to processing and queue the job; an erasure under legal hold is rejected instead."""
    hold = _hold(request)
    if hold is not None:
        request_transition(
            request=request, to=Status.REJECTED, actor=actor, reason=f"legal hold: {hold}"
        )
        return
    now = timezone.now()
    updates = {"started_at": now, "heartbeat_at": now}
    if approved_by:
        updates.update({"approved_by": approved_by, "approved_at": now})
    request_transition(request=request, to=Status.PROCESSING, actor=actor, update_fields=updates)
    job_on_commit(REQUEST_PROCESS, region=request.region, request_id=str(request.pk))


def _locked(request: PrivacyRequest) -> PrivacyRequest:
    return PrivacyRequest.objects.using(request._state.db).select_for_update().get(pk=request.pk)


def request_approve(*, request: PrivacyRequest, actor: Actor) -> PrivacyRequest:
    """Approve an erasure awaiting approval (or retry a failed request). An active legal hold
    refuses it with ``LegalHoldError`` naming the hold's reason; nothing changes then."""
    alias = request._state.db
    with transaction.atomic(using=alias):
        request = _locked(request)
        if request.status not in (Status.AWAITING_APPROVAL, Status.FAILED):
            raise IllegalTransitionError(
                f"only requests awaiting approval (or failed) can be approved; this one is "
                f"'{request.status}'",
                field="status",
            )
        hold = _hold(request)
        if hold is not None:
            raise LegalHoldError(f"a legal hold blocks this erasure: {hold}")
        request_start(request=request, actor=actor, approved_by=f"{actor.kind}:{actor.id}")
    return request


def request_reject(*, request: PrivacyRequest, actor: Actor, reason: str) -> PrivacyRequest:
    if not reason.strip():
        raise RequestError("a rejection needs a reason", field="reason")
    with transaction.atomic(using=request._state.db):
        request = _locked(request)
        return request_transition(
            request=request, to=Status.REJECTED, actor=actor, reason=reason.strip()
        )


def request_cancel(*, request: PrivacyRequest, actor: Actor) -> PrivacyRequest:
    with transaction.atomic(using=request._state.db):
        request = _locked(request)
        return request_transition(request=request, to=Status.CANCELLED, actor=actor)


def request_extend(*, request: PrivacyRequest, actor: Actor, reason: str) -> PrivacyRequest:
    """Extend the deadline once, by what the regulation allows (audited ``REQUEST_EXTENDED``)."""
    if not reason.strip():
        raise RequestError("an extension needs a reason", field="reason")
    alias = request._state.db
    with transaction.atomic(using=alias):
        request = _locked(request)
        if request.is_terminal:
            raise IllegalTransitionError(
                f"a request in status '{request.status}' cannot be extended", field="status"
            )
        if request.extended:
            raise IllegalTransitionError("this request was already extended", field="extended")
        previous = request.due_at
        request.due_at = extended_due_at(regulation=request.regulation, due_at=previous)
        request.extended = True
        request.extension_reason = reason.strip()
        request.due_flag = ""
        request.save(
            using=alias,
            update_fields=["due_at", "extended", "extension_reason", "due_flag", "updated_at"],
        )
        audit_append(
            using=alias,
            entries=[
                request_entry(
                    request=request,
                    code=AuditCode.REQUEST_EXTENDED,
                    actor=actor,
                    payload={
                        "request_type": request.type,
                        "regulation": request.regulation,
                        "from": previous.isoformat(),
                        "to": request.due_at.isoformat(),
                    },
                )
            ],
        )
    return request
