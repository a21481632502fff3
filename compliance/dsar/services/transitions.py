"""The status machine of a request; ``request_transition`` (one request) and
``requests_transition`` (many, one statement and one audit append) are the one way to change
status.

Every transition writes ``REQUEST_STATUS_CHANGED`` (payload ``request_type``, ``regulation``,
``from``, ``to``; plus ``on_time`` and ``due_at`` at a terminal status) in the caller's region
transaction, and queues the status callback to the client after commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.dsar.enqueue import CALLBACK_SEND, job_on_commit
from compliance.dsar.models import TERMINAL_STATUSES, PrivacyRequest, Status
from compliance.dsar.services.errors import IllegalTransitionError
from compliance.dsar.sql import instances_update

S = Status
TRANSITIONS: dict[str, frozenset[str]] = {
    S.RECEIVED: frozenset({S.VERIFYING, S.COMPLETED, S.REJECTED, S.CANCELLED}),
    S.VERIFYING: frozenset(
        {S.AWAITING_APPROVAL, S.PROCESSING, S.COMPLETED, S.REJECTED, S.CANCELLED}
    ),
    S.AWAITING_APPROVAL: frozenset({S.PROCESSING, S.REJECTED, S.CANCELLED}),
    # rejected from processing: a legal hold found when the job starts
    S.PROCESSING: frozenset({S.COMPLETED, S.FAILED, S.REJECTED}),
    # a failed request may be retried by a privacy officer
    S.FAILED: frozenset({S.PROCESSING}),
    S.COMPLETED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
}


def transition_allowed(*, from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def status_payload(*, request: PrivacyRequest, from_status: str, to_status: str) -> dict:
    payload = {
        "request_type": request.type,
        "regulation": request.regulation,
        "from": from_status,
        "to": to_status,
    }
    if to_status in TERMINAL_STATUSES:
        payload["on_time"] = timezone.now() <= request.due_at
        payload["due_at"] = request.due_at.isoformat()
    return payload


def request_entry(
    *,
    request: PrivacyRequest,
    code: AuditCode,
    actor: Actor,
    payload: dict,
    subject_token: str | None = None,
) -> AuditEntry:
    """An audit entry about ``request``: its subject token (or ``subject_token``, e.g. a merged
    subject's during erasure) and the request as the object."""
    return AuditEntry(
        code=code,
        actor=actor,
        subject_token=request.subject_token if subject_token is None else subject_token,
        object_type="privacy_request",
        object_id=str(request.pk),
        payload=payload,
    )


def request_transition(
    *,
    request: PrivacyRequest,
    to: str,
    actor: Actor,
    reason: str = "",
    update_fields: dict | None = None,
) -> PrivacyRequest:
    """Move ``request`` to status ``to``, audited; raises ``IllegalTransitionError``.

    ``request`` must be loaded from its region (``request._state.db``). ``reason`` is stored in
    ``failure_reason`` for rejected/failed (never in the audit payload: it may be free text).
    ``update_fields`` are further column values saved with the status.
    """
    requests_transition(
        requests=[request], to=to, actor=actor, reason=reason, update_fields=update_fields
    )
    return request


def requests_transition(
    *,
    requests: Sequence[PrivacyRequest],
    to: str,
    actor: Actor,
    reason: str = "",
    update_fields: dict | None = None,
    per_request: Mapping[UUID, dict] | None = None,
    entries: Sequence[AuditEntry] = (),
    after_audit: Callable[[Sequence[PrivacyRequest]], Mapping[UUID, dict]] | None = None,
) -> list[PrivacyRequest]:
    """Move every request of ``requests`` (one region) to ``to``: each transition checked
    (``IllegalTransitionError`` before anything is written), their ``REQUEST_STATUS_CHANGED``
    entries appended after ``entries`` (the caller's further events) in ONE ``audit_append``,
    then all saved in one statement (a request not stored yet, ``_state.adding``, is left to
    its caller's insert), status callbacks queued after commit. ``update_fields``
    apply to all, ``per_request`` (request id -> fields) to one each, and ``after_audit``'s
    fields (request id -> fields, computed from the moved requests once the entries are
    appended: e.g. receipts counting what the append caused) too; ``reason`` as in
    ``request_transition``."""
    if not requests:
        return []
    for request in requests:
        if not transition_allowed(from_status=request.status, to_status=to):
            raise IllegalTransitionError(
                f"a request in status '{request.status}' cannot become '{to}'", field="status"
            )
    alias = requests[0]._state.db
    now = timezone.now()
    shared = dict(update_fields or {})
    if to in (S.REJECTED, S.FAILED) and reason:
        shared["failure_reason"] = reason[:2000]
    if to in TERMINAL_STATUSES:
        shared.setdefault("completed_at", now)
    status_entries, owns = [], [(per_request or {}).get(r.pk, {}) for r in requests]
    names: dict[str, None] = {"status": None, **dict.fromkeys(shared), "updated_at": None}
    for request in requests:
        from_status = request.status
        own = (per_request or {}).get(request.pk, {})
        names.update(dict.fromkeys(own))
        for name, value in {**shared, **own, "status": to, "updated_at": now}.items():
            setattr(request, name, value)
        status_entries.append(
            request_entry(
                request=request,
                code=AuditCode.REQUEST_STATUS_CHANGED,
                actor=actor,
                payload=status_payload(request=request, from_status=from_status, to_status=to),
            )
        )
    with transaction.atomic(using=alias, savepoint=False):
        audit_append(using=alias, entries=[*entries, *status_entries], at=now)
        if after_audit is not None:
            later = after_audit(requests)
            for request in requests:
                own = later.get(request.pk, {})
                names.update(dict.fromkeys(own))
                owns.append(own)
                for name, value in own.items():
                    setattr(request, name, value)
        instances_update(
            using=alias,
            # a request not stored yet (being opened) is left to its caller's insert
            instances=[r for r in requests if not r._state.adding],
            fields=list(names),
            shared=[name for name in names if not any(name in own for own in owns)],
        )
        for request in requests:
            if request.callback_url and request.client_id:
                job_on_commit(
                    CALLBACK_SEND, region=request.region, request_id=str(request.pk), status=to
                )
    return list(requests)
