"""Read paths of the request page that answer who, what, when and who did what.

``request_desk`` gathers: the identifier types with masked values, who filed the request (API
client or staff user), the assignee, a timeline of every status change, approval, extension,
callback, note and package event with usernames, the internal notes, the erasure dry run in
plain words (what goes, per kind; what is kept and why) and the steps of the job as a list that
matches its progress counter. Nothing here writes; masked values are not audited (the full
values are behind the audited subject lookup).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.dsar.models import CallbackAttempt, ErasureStep, PrivacyRequest, RequestType
from compliance.dsar.services.report import short_reference
from compliance.dsar.services.requests import subject_root
from compliance.models import ApiClient, Identity, Subject
from compliance.models.subjects import IdentifierType
from compliance.officer.models import RequestAssignment, RequestNote
from compliance.personal_data import personal_data_models
from compliance.services.subjects import identity_value

#: registry labels the dry run does not list among what goes: plumbing, not the person's data
INTERNAL_KINDS = {
    "compliance.SubjectKey": "the person's encryption key is destroyed (crypto-shredding)",
    "feed.Change": "change-feed outbox rows about the person",
    "dsar.Package": "encrypted copies of earlier access packages",
    "officer.RequestNote": "internal notes on the person's requests",
}
#: rows the erasure keeps, and why (besides the registry's own ``retained`` rows)
KEPT = {
    "dsar.PrivacyRequest": "kept as proof that the request was answered; the link to the person "
    "and the identifiers' blind indexes are removed",
}
TIMELINE_CODES = {
    AuditCode.REQUEST_OPENED: "opened",
    AuditCode.REQUEST_STATUS_CHANGED: "status",
    AuditCode.REQUEST_EXTENDED: "extended",
    AuditCode.REQUEST_NOTE_ADDED: "note",
    AuditCode.REQUEST_ASSIGNED: "assigned",
    AuditCode.CALLBACK_SENT: "callback",
    AuditCode.PACKAGE_CREATED: "package",
    AuditCode.PACKAGE_DOWNLOADED: "download",
    AuditCode.ERASURE_RECEIPT_ISSUED: "receipt",
    AuditCode.LEGAL_HOLD_SET: "hold",
}


@dataclass
class TimelineItem:
    at: datetime
    kind: str
    who: str
    what: str
    note: str = ""


@dataclass
class Desk:
    reference: str
    identifiers: list[tuple[str, str]]  # (type label, masked value)
    filed_by: str
    assignee: str
    timeline: list[TimelineItem]
    notes: list[RequestNote]
    dry_run: dict | None
    steps: list[dict] = field(default_factory=list)
    approved_by: str = ""


def mask(*, identifier_type: str, value: str) -> str:
    """``alice@example.com`` -> ``a****@e******.com``; other ids keep 2 characters each end."""
    if identifier_type == "email" and "@" in value:
        local, _, domain = value.partition("@")
        name, dot, tld = domain.rpartition(".")
        masked_domain = (name[:1] + "*" * max(len(name) - 1, 1) + dot + tld) if dot else "***"
        return f"{local[:1]}{'*' * max(len(local) - 1, 1)}@{masked_domain}"
    if len(value) <= 4:
        return "*" * len(value)
    return f"{value[:2]}{'*' * (len(value) - 4)}{value[-2:]}"


def actor_names(events) -> dict[tuple[str, str], str]:
    """(actor_type, actor_id) -> a readable name: the username, the API client's name, or
    ``system (job)``."""
    users = {e.actor_id for e in events if e.actor_type == "user" and e.actor_id.isdigit()}
    clients = {e.actor_id for e in events if e.actor_type == "client" and e.actor_id.isdigit()}
    by_user = dict(get_user_model().objects.filter(pk__in=users).values_list("pk", "username"))
    by_client = dict(ApiClient.objects.filter(pk__in=clients).values_list("pk", "name"))
    names = {}
    for e in events:
        key = (e.actor_type, e.actor_id)
        pk = int(e.actor_id) if e.actor_id.isdigit() else None
        if e.actor_type == "user":
            names[key] = by_user.get(pk, f"deleted user {e.actor_id}")
        elif e.actor_type == "client":
            names[key] = f"API client {by_client.get(pk, e.actor_id)}"
        else:
            names[key] = f"system ({e.actor_id})" if e.actor_id else "system"
    return names


def approver_name(value: str) -> str:
    """``approved_by`` (``user:2``, ``client:5``, ``auto``) as a name."""
    kind, _, pk = value.partition(":")
    if kind == "user" and pk.isdigit():
        user = get_user_model().objects.filter(pk=int(pk)).first()
        return user.get_username() if user else f"deleted user {pk}"
    if kind == "client" and pk.isdigit():
        client = ApiClient.objects.filter(pk=int(pk)).first()
        return f"API client {client.name}" if client else f"API client {pk}"
    if value == "auto":
        return "automatic (verification method)"
    return value


def _what(event: AuditEvent, notes: dict[int, RequestNote], names) -> tuple[str, str]:
    payload = event.payload or {}
    code = event.code
    if code == AuditCode.REQUEST_OPENED:
        return f"opened ({payload.get('verification_method', '')} verification)", ""
    if code == AuditCode.REQUEST_STATUS_CHANGED:
        to = payload.get("to", "")
        frm = payload.get("from", "")
        if frm == "awaiting_approval" and to == "processing":
            return "approved: status awaiting approval → processing", ""
        return f"status {frm.replace('_', ' ')} → {to.replace('_', ' ')}", ""
    if code == AuditCode.REQUEST_EXTENDED:
        return f"deadline extended to {str(payload.get('to', ''))[:10]}", ""
    if code == AuditCode.REQUEST_NOTE_ADDED:
        note = notes.get(payload.get("note_id"))
        return "internal note", note.text if note else "(note removed with the person's data)"
    if code == AuditCode.REQUEST_ASSIGNED:
        assignee = payload.get("assignee")
        if assignee is None:
            return "unassigned", ""
        return f"assigned to {names.get(('user', str(assignee)), f'user {assignee}')}", ""
    if code == AuditCode.CALLBACK_SENT:
        return (
            f"status callback '{payload.get('status', '')}' answered "
            f"{payload.get('http_status') or 'nothing'}",
            "",
        )
    if code == AuditCode.PACKAGE_CREATED:
        return f"package built ({payload.get('rows', 0)} records)", ""
    if code == AuditCode.PACKAGE_DOWNLOADED:
        return "package downloaded", ""
    if code == AuditCode.ERASURE_RECEIPT_ISSUED:
        return "signed erasure receipt issued", ""
    return AuditCode(code).name.lower().replace("_", " "), ""


def timeline(*, request: PrivacyRequest, notes: list[RequestNote]) -> list[TimelineItem]:
    """Every audited event about the request, oldest first, actors by name."""
    alias = request._state.db
    events = list(
        AuditEvent.objects.using(alias)
        .filter(
            occurred_at__gte=request.received_at - timedelta(seconds=5),
            object_type="privacy_request",
            object_id=str(request.pk),
            code__in=[int(c) for c in TIMELINE_CODES],
        )
        .order_by("seq")
    )
    names = actor_names(events)
    assignees = {
        str(e.payload.get("assignee"))
        for e in events
        if e.code == AuditCode.REQUEST_ASSIGNED and e.payload.get("assignee")
    }
    for pk, username in (
        get_user_model()
        .objects.filter(pk__in=[int(a) for a in assignees if a.isdigit()])
        .values_list("pk", "username")
    ):
        names[("user", str(pk))] = username
    by_id = {n.pk: n for n in notes}
    # every delivery try, failed ones too, comes from the attempts (the audit keeps successes)
    items = _callback_attempts(request=request)
    for event in events:
        if event.code == AuditCode.CALLBACK_SENT and items:
            continue
        what, note = _what(event, by_id, names)
        items.append(
            TimelineItem(
                at=event.occurred_at,
                kind=TIMELINE_CODES[AuditCode(event.code)],
                who=names[(event.actor_type, event.actor_id)],
                what=what,
                note=note,
            )
        )
    return sorted(items, key=lambda item: item.at)


def _callback_attempts(*, request: PrivacyRequest) -> list[TimelineItem]:
    """One timeline item per status callback delivery attempt, with its answer."""
    return [
        TimelineItem(
            at=attempt.sent_at,
            kind="callback",
            who="system",
            what=(
                f"status callback '{attempt.status}' attempt {attempt.attempt} answered "
                f"{attempt.status_code or attempt.error or 'nothing'}"
            ),
        )
        for attempt in CallbackAttempt.objects.using(request._state.db).filter(
            request_id=request.pk
        )
    ]


def _identifiers(request: PrivacyRequest) -> list[tuple[str, str]]:
    alias = request._state.db
    labels = dict(IdentifierType.choices)
    indexes = [i.get("blind_index") for i in request.identifier_indexes or []]
    found = {
        identity.blind_index: identity
        for identity in Identity.objects.using(alias)
        .filter(blind_index__in=indexes)
        .select_related("subject")
    }
    out = []
    for item in request.identifier_indexes or []:
        kind = item.get("type", "")
        identity = found.get(item.get("blind_index"))
        if identity is None:
            masked = "(not held)"
        else:
            try:
                value = identity_value(identity=identity, subject=identity.subject)
            except Exception:  # a destroyed key: nothing left to show
                masked = "(erased)"
            else:
                masked = mask(identifier_type=kind, value=value)
        out.append((labels.get(kind, kind), masked))
    if not out and request.subject_id is None and request.type == RequestType.ERASURE:
        out.append(("identifiers", "removed by the erasure"))
    return out


def _filed_by(request: PrivacyRequest) -> str:
    if request.client_id:
        client = ApiClient.objects.filter(pk=request.client_id).first()
        return f"API client {client.name}" if client else f"API client {request.client_id}"
    opened = (
        AuditEvent.objects.using(request._state.db)
        .filter(
            occurred_at__gte=request.received_at - timedelta(seconds=5),
            code=AuditCode.REQUEST_OPENED,
            object_id=str(request.pk),
        )
        .first()
    )
    if opened is None:
        return "unknown"
    name = actor_names([opened])[(opened.actor_type, opened.actor_id)]
    return f"{name} (in the admin)" if opened.actor_type == "user" else name


def dry_run_words(*, preview: dict) -> dict:
    """The erasure preview in plain words: what goes per kind of data (verbose names; internal
    tables and the kept request row left out of the count), what is kept and why."""
    registry = {e.label: e for e in personal_data_models()}
    goes = []
    internal = []
    for label, count in (preview.get("tables") or {}).items():
        if label in KEPT or not count:
            continue
        entry = registry.get(label)
        name = entry.model._meta.verbose_name_plural if entry else label
        if label in INTERNAL_KINDS:
            internal.append(
                {"label": label, "name": name, "rows": count, "why": INTERNAL_KINDS[label]}
            )
            continue
        goes.append(
            {
                "label": label,
                "name": str(name).capitalize(),
                "rows": count,
                "what": entry.description if entry else "",
            }
        )
    kept = [
        {"label": label, "name": str(registry[label].model._meta.verbose_name_plural), "why": why}
        for label, why in KEPT.items()
        if label in registry
    ]
    for label, item in (preview.get("retained") or {}).items():
        if item.get("rows"):
            kept.append(
                {"label": label, "name": f"{item['rows']} row(s) of {label}", "why": item["why"]}
            )
    return {
        "goes": goes,
        "internal": internal,
        "kept": kept,
        "total": sum(g["rows"] for g in goes),
        "subjects": preview.get("subjects", 0),
        "directory_rows": preview.get("directory_rows", 0),
        "identifiers_to_suppress": preview.get("identifiers_to_suppress", 0),
        "legal_hold": preview.get("legal_hold", False),
    }


def _steps(request: PrivacyRequest) -> list[dict]:
    """The job's steps plus the final receipt step, so the list has ``progress_total`` items."""
    rows = list(ErasureStep.objects.using(request._state.db).filter(request_id=request.pk))
    if not rows:
        return []
    registry = {e.label: e for e in personal_data_models()}
    words = {
        "memberships_exit": "leave every segment (audited)",
        "suppression": "block the identifiers from coming back",
        "directory": "remove the control database's lookup rows",
        "sweep": "check nothing is left",
        "dsar.PrivacyRequest": "unlink the person's requests (the records stay as proof)",
        "compliance.SubjectKey": "destroy the person's encryption key",
        "feed.Change": "erase change-feed rows (erasure notices wait for delivery)",
    }
    steps = []
    for row in rows:
        entry = registry.get(row.name)
        label = words.get(row.name) or (
            f"erase {entry.model._meta.verbose_name_plural}" if entry else row.name
        )
        steps.append(
            {"position": len(steps) + 1, "name": label, "status": row.status, "rows": row.rows}
        )
    if request.progress_total and request.progress_total > len(steps):
        done = bool(request.receipt)
        steps.append(
            {
                "position": len(steps) + 1,
                "name": "sign the erasure receipt",
                "status": "done" if done else "pending",
                "rows": "",
            }
        )
    return steps


def request_desk(*, request: PrivacyRequest, preview: dict | None) -> Desk:
    alias = request._state.db
    notes = list(RequestNote.objects.using(alias).filter(request_id=request.pk))
    assignment = RequestAssignment.objects.using(alias).filter(request_id=request.pk).first()
    return Desk(
        reference=short_reference(request.pk),
        identifiers=_identifiers(request),
        filed_by=_filed_by(request),
        assignee=assignment.assignee_username if assignment else "",
        timeline=timeline(request=request, notes=notes),
        notes=notes,
        dry_run=dry_run_words(preview=preview) if preview else None,
        steps=_steps(request),
        approved_by=approver_name(request.approved_by) if request.approved_by else "",
    )


def subject_of_request(*, request: PrivacyRequest) -> Subject | None:
    """The surviving subject a request is about (``None`` once erased or never held)."""
    if request.subject_id is None:
        return None
    return subject_root(alias=request._state.db, subject_id=request.subject_id)
