"""The writes of the officer pages: recording that someone looked at a person's data, internal
notes on a request and who is assigned to it (each audited).

Approvals, rejections, extensions and segment governance go through their own apps' services
(``compliance.dsar.services.requests``, ``segments.services.definitions``), which audit them.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.dsar.services.errors import RequestError
from compliance.dsar.services.transitions import request_entry
from compliance.models import Subject
from compliance.officer.models import RequestAssignment, RequestNote
from compliance.regions import region_alias


def personal_data_viewed(*, subject: Subject, region: str, actor: Actor, view: str) -> None:
    """Append ``PERSONAL_DATA_VIEWED`` to the region's chain: the subject only as its audit
    token, the payload says which page showed what (never the data itself)."""
    audit_append(
        using=region_alias(region=region),
        entries=[
            AuditEntry(
                code=AuditCode.PERSONAL_DATA_VIEWED,
                actor=actor,
                subject_token=subject.audit_token,
                object_type="subject",
                payload={
                    "view": view,
                    "shown": ["identifiers", "consent", "memberships", "requests"],
                },
            )
        ],
    )


def request_note_add(*, request, user, text: str):
    """Add an internal note to ``request`` (in its region), audited ``REQUEST_NOTE_ADDED`` with
    the note's id only. Raises ``RequestError`` for an empty note."""
    text = (text or "").strip()
    if not text:
        raise RequestError("a note needs some text", field="text")
    alias = request._state.db
    with transaction.atomic(using=alias):
        note = RequestNote.objects.using(alias).create(
            request_id=request.pk,
            subject_id=request.subject_id,
            author_id=user.pk,
            author_username=user.get_username(),
            text=text[:5000],
            created_at=timezone.now(),
        )
        audit_append(
            using=alias,
            entries=[
                request_entry(
                    request=request,
                    code=AuditCode.REQUEST_NOTE_ADDED,
                    actor=Actor.user(user),
                    payload={"note_id": note.pk},
                )
            ],
        )
    return note


def request_assign(*, request, assignee, user):
    """Make ``assignee`` (a staff user, or ``None`` for nobody) the one working ``request``;
    audited ``REQUEST_ASSIGNED`` (payload: the assignee's user id, ``None`` for nobody)."""
    alias = request._state.db
    with transaction.atomic(using=alias):
        assignment, _ = RequestAssignment.objects.using(alias).update_or_create(
            request_id=request.pk,
            defaults={
                "assignee_id": assignee.pk if assignee else None,
                "assignee_username": assignee.get_username() if assignee else "",
                "assigned_at": timezone.now(),
            },
        )
        audit_append(
            using=alias,
            entries=[
                request_entry(
                    request=request,
                    code=AuditCode.REQUEST_ASSIGNED,
                    actor=Actor.user(user),
                    payload={"assignee": assignee.pk if assignee else None},
                )
            ],
        )
    return assignment


def assignable_users() -> list:
    """Active staff users who may handle requests (``dsar.change_privacyrequest``), by name."""
    users = get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")
    return [u for u in users if u.has_perm("dsar.change_privacyrequest")]
