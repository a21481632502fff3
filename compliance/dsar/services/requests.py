"""Opening requests and the officer/client actions on them (approve, reject, extend, cancel).

``request_open`` is idempotent per (client, ``Idempotency-Key``): the same key with the same body
returns the first request (``created`` false); with a different body it raises
``IdempotencyConflictError``. Identifiers are kept only as blind indexes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance import crypto
from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, audit_append, audit_collected_transaction
from compliance.conf import compliance_settings
from compliance.dsar.models import (
    PrivacyRequest,
    Regulation,
    RequestDirectory,
    RequestType,
    Status,
)
from compliance.dsar.services.deadlines import due_at_for
from compliance.dsar.services.decisions import (
    request_approve,
    request_cancel,
    request_extend,
    request_reject,
    request_start,
)
from compliance.dsar.services.errors import (
    IdempotencyConflictError,
    RequestError,
)
from compliance.dsar.services.transitions import request_entry, request_transition
from compliance.identifiers import IdentifierError, identifier_normalize
from compliance.models import Subject
from compliance.outbound import OutboundUrlError, outbound_url_check
from compliance.regions import region_alias, region_for_country
from compliance.selectors.rows import directory_entries, subject_row
from compliance.services.subjects import identifier_blind_index
from compliance.services.suppressions import suppressed_regions

#: the decisions live in ``decisions``; callers have long imported them from here
__all__ = [
    "OpenResult",
    "VERIFICATION_METHODS",
    "request_approve",
    "request_cancel",
    "request_extend",
    "request_open",
    "request_record_opened",
    "request_reject",
    "subject_root",
]

VERIFICATION_METHODS = (
    "account_login",
    "email_confirmation",
    "sms_code",
    "id_document",
    "knowledge_based",
    "authorized_agent",
    "in_person",
)
#: types that need approval by a privacy officer (unless auto-approved by method)
APPROVAL_TYPES = frozenset({RequestType.ERASURE})


@dataclass(frozen=True)
class OpenResult:
    request: PrivacyRequest
    created: bool


def _body_hash(*, body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return crypto.blind_index(identifier_type="idempotency", normalized_value=canonical)


def _normalize_identifiers(identifiers: Sequence[dict]) -> list[tuple[str, str]]:
    if not identifiers:
        raise RequestError("at least one identifier is required", field="identifiers")
    indexes: list[tuple[str, str]] = []
    for position, item in enumerate(identifiers):
        try:
            identifier = identifier_normalize(
                identifier_type=item.get("type", ""), value=item.get("value", "")
            )
        except IdentifierError as exc:
            raise RequestError(str(exc), field=f"identifiers[{position}].{exc.field}")
        pair = (identifier.type, identifier_blind_index(identifier=identifier))
        if pair not in indexes:
            indexes.append(pair)
    return indexes


def subject_root(*, alias: str, subject_id) -> Subject | None:
    """The surviving subject of ``subject_id`` (follows ``merged_into``)."""
    seen = set()
    subject = subject_row(alias=alias, subject_id=subject_id)
    while subject is not None and subject.merged_into and subject.pk not in seen:
        seen.add(subject.pk)
        survivor = subject_row(alias=alias, subject_id=subject.merged_into)
        if survivor is None:
            break
        subject = survivor
    return subject


def _locate(indexes: list[tuple[str, str]], jurisdiction: str) -> tuple[str, Subject | None]:
    """Region and surviving subject holding any of the identifiers (first match wins)."""
    entries = directory_entries(blind_indexes=[i for _, i in indexes])
    for _, index in indexes:
        entry = entries.get(index)
        if entry is not None:
            subject = subject_root(
                alias=region_alias(region=entry.region), subject_id=entry.subject_id
            )
            if subject is not None:
                return entry.region, subject
    return region_for_country(country=jurisdiction or None), None


def _check_input(
    *,
    type: str,
    regulation: str,
    verification_method: str,
    callback_url: str,
    purposes: Sequence[str],
) -> None:
    """Raise ``RequestError`` naming the first field of a request that cannot be opened."""
    if type not in RequestType.values:
        raise RequestError(
            f"unknown type; use one of {', '.join(RequestType.values)}", field="type"
        )
    if regulation not in Regulation.values:
        raise RequestError(
            f"unknown regulation; use one of {', '.join(Regulation.values)}", field="regulation"
        )
    if verification_method not in VERIFICATION_METHODS:
        raise RequestError(
            f"unknown verification method; use one of {', '.join(VERIFICATION_METHODS)}",
            field="verification_method",
        )
    if callback_url:
        try:
            outbound_url_check(url=callback_url)
        except OutboundUrlError as exc:
            raise RequestError(f"callback_url {exc}", field="callback_url") from None
    if type == RequestType.OBJECTION and not purposes:
        raise RequestError("an objection names the purposes objected to", field="purposes")


def request_open(
    *,
    type: str,
    regulation: str,
    identifiers: Sequence[dict],
    verification_method: str,
    actor: Actor,
    client_id: int | None = None,
    idempotency_key: str = "",
    jurisdiction: str = "",
    callback_url: str = "",
    external_reference: str = "",
    purposes: Sequence[str] = (),
) -> OpenResult:
    """Open a request in the subject's region (or the jurisdiction's when no data is held).

    Verification is recorded (``received -> verifying``); then a request for identifiers nobody
    has completes at once with ``result_counts = {"no_data_held": true}``; an erasure waits for
    approval unless ``verification_method`` is in ``COMPLIANCE_DSAR_AUTO_APPROVE_METHODS``;
    other types start processing. Raises ``RequestError`` (bad input, nothing written).
    """
    _check_input(
        type=type,
        regulation=regulation,
        verification_method=verification_method,
        callback_url=callback_url,
        purposes=purposes,
    )
    indexes = _normalize_identifiers(identifiers)
    body_hash = _body_hash(
        body={
            "type": type,
            "regulation": regulation,
            "identifiers": sorted(indexes),
            "verification_method": verification_method,
            "jurisdiction": jurisdiction,
            "callback_url": callback_url,
            "purposes": sorted(purposes),
            # only when given: keys used before it existed keep their hash
            **({"external_reference": external_reference} if external_reference else {}),
        }
    )
    # An API client's retry with an Idempotency-Key already used is found by the directory's
    # unique (client, key) when its row is inserted (``_open_recorded``): nothing is asked
    # before, so a new request costs no look-up and a retry one rolled-back insert. Without a
    # client (the officers' desk) the constraint cannot see it (NULLs are distinct): ask first.
    if idempotency_key and client_id is None:
        existing = _idempotent_replay(
            client_id=None, idempotency_key=idempotency_key, body_hash=body_hash
        )
        if existing is not None:
            return OpenResult(request=existing, created=False)
    region, subject = _locate(indexes, jurisdiction)
    alias = region_alias(region=region)
    now = timezone.now()
    request = PrivacyRequest(
        type=type,
        regulation=regulation,
        region=region,
        subject_id=subject.pk if subject else None,
        subject_token=subject.audit_token if subject else "",
        identifier_indexes=[{"type": t, "blind_index": i} for t, i in indexes],
        verification_method=verification_method,
        jurisdiction=jurisdiction,
        callback_url=callback_url,
        external_reference=external_reference,
        client_id=client_id,
        idempotency_key=idempotency_key,
        purposes=list(purposes),
        received_at=now,
        due_at=due_at_for(regulation=regulation, received_at=now),
    )
    return _open_recorded(
        request=request, alias=alias, actor=actor, indexes=indexes, body_hash=body_hash
    )


def _open_recorded(
    *, request: PrivacyRequest, alias: str, actor: Actor, indexes, body_hash: str
) -> OpenResult:
    """Write the directory row, then the request in its region; when the idempotency key was
    used before (a retry, or a concurrent retry that won the race) that request is returned
    instead (``IdempotencyConflictError`` if its body differed)."""
    try:
        with transaction.atomic(using="default"):
            RequestDirectory.objects.create(
                request_id=request.pk,
                region=request.region,
                client_id=request.client_id,
                idempotency_key=request.idempotency_key,
                body_hash=body_hash,
            )
            # the opening, verification and start: ONE audit append, which ends the region's
            # transaction
            with audit_collected_transaction(using=alias):
                _open_in_region(request=request, alias=alias, actor=actor, indexes=indexes)
    except IntegrityError:
        # the key was used before (a retry), or a concurrent retry with it won the race
        existing = _idempotent_replay(
            client_id=request.client_id,
            idempotency_key=request.idempotency_key,
            body_hash=body_hash,
        )
        if existing is None:
            raise
        return OpenResult(request=existing, created=False)
    return OpenResult(request=request, created=True)


def _idempotent_replay(*, client_id, idempotency_key: str, body_hash: str):
    entry = RequestDirectory.objects.filter(
        client_id=client_id, idempotency_key=idempotency_key
    ).first()
    if entry is None:
        return None
    if entry.body_hash != body_hash:
        raise IdempotencyConflictError(
            "this Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
        )
    return PrivacyRequest.objects.using(region_alias(region=entry.region)).get(pk=entry.request_id)


def request_record_opened(*, request: PrivacyRequest, alias: str, actor: Actor) -> None:
    """Store a new (unsaved) request in its region, audit ``REQUEST_OPENED`` and move it to
    ``verifying``; the caller holds the region's transaction and has written the directory."""
    _opened(request=request, alias=alias, actor=actor)
    request.save(using=alias, force_insert=True)


def _opened(*, request: PrivacyRequest, alias: str, actor: Actor) -> None:
    """``REQUEST_OPENED`` and the move to ``verifying`` of a request not stored yet: its
    transitions are audited as they happen and leave the row to the caller's insert."""
    request._state.db = alias  # where it is going: the transitions read the region from it
    audit_append(
        using=alias,
        entries=[
            request_entry(
                request=request,
                code=AuditCode.REQUEST_OPENED,
                actor=actor,
                payload={
                    "request_type": request.type,
                    "regulation": request.regulation,
                    "from": "",
                    "to": Status.RECEIVED,
                    "due_at": request.due_at.isoformat(),
                    "verification_method": request.verification_method,
                },
            )
        ],
    )
    request_transition(request=request, to=Status.VERIFYING, actor=actor)


def _open_in_region(*, request: PrivacyRequest, alias: str, actor: Actor, indexes) -> None:
    """Open, verify and move on in memory, then store the request ONCE, in the status its
    opening ends in (every transition audited, none saved on its own)."""
    _opened(request=request, alias=alias, actor=actor)
    _opening_decided(request=request, actor=actor, indexes=indexes)
    request.save(using=alias, force_insert=True)


def _opening_decided(*, request: PrivacyRequest, actor: Actor, indexes) -> None:
    """Where a verified request goes: completed (no data held), awaiting approval, or started."""
    if request.subject_id is None:
        suppressed = bool(suppressed_regions(blind_indexes=[i for _, i in indexes]))
        request_transition(
            request=request,
            to=Status.COMPLETED,
            actor=actor,
            update_fields={
                "result_counts": {"no_data_held": True, "previously_erased": suppressed}
            },
        )
        return
    auto = request.verification_method in compliance_settings.DSAR_AUTO_APPROVE_METHODS
    if request.type in APPROVAL_TYPES and not auto:
        request_transition(request=request, to=Status.AWAITING_APPROVAL, actor=actor)
        return
    request_start(
        request=request, actor=actor, approved_by="auto" if request.type in APPROVAL_TYPES else ""
    )
