"""The job behind a request in ``processing``: dispatch on its type; failures land in
``failed`` with the reason (``request_fail``)."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction
from django.utils import timezone

from compliance.audit.services.append import Actor
from compliance.consent.models import EventSource
from compliance.consent.services.record import consent_record
from compliance.dsar.models import PrivacyRequest, RequestType, Status
from compliance.dsar.services.erasure import request_erase_run
from compliance.dsar.services.errors import RequestError
from compliance.dsar.services.export import request_export_run
from compliance.dsar.services.restriction import request_restrict_run
from compliance.dsar.services.transitions import request_transition
from compliance.models import Subject
from compliance.regions import region_alias

SYSTEM = Actor.system("dsar")
#: preferred event source for objections received through a support tool. An objection (GDPR
#: Art. 21) is to the processing as a whole, so it is recorded at a source whose decisions apply
#: everywhere (``consent_scope`` global); a source-scoped one (e.g. ``crm``) would bind only there.
OBJECTION_SOURCE = "web"


def request_process(*, region: str, request_id: UUID | str) -> PrivacyRequest:
    """Run the request's job (idempotent: anything not ``processing`` is left alone)."""
    alias = region_alias(region=region)
    request = PrivacyRequest.objects.using(alias).get(pk=request_id)
    if request.status != Status.PROCESSING:
        return request
    if request.type == RequestType.ERASURE:
        return request_erase_run(region=region, request_id=request_id)
    if request.type in (RequestType.ACCESS, RequestType.PORTABILITY):
        return request_export_run(region=region, request_id=request_id)
    if request.type == RequestType.RESTRICTION:
        with transaction.atomic(using=alias):
            counts = request_restrict_run(request=request, actor=SYSTEM)
            return _complete(request=request, counts=counts)
    if request.type == RequestType.OBJECTION:
        with transaction.atomic(using=alias):
            counts = _object(request=request)
            return _complete(request=request, counts=counts)
    raise RequestError(f"unknown request type {request.type!r}", field="type")


def _complete(*, request: PrivacyRequest, counts: dict) -> PrivacyRequest:
    request = PrivacyRequest.objects.using(request._state.db).select_for_update().get(pk=request.pk)
    if request.status != Status.PROCESSING:
        return request
    return request_transition(
        request=request,
        to=Status.COMPLETED,
        actor=SYSTEM,
        update_fields={"result_counts": counts, "progress_done": 1, "progress_total": 1},
    )


def _object(*, request: PrivacyRequest) -> dict:
    """Record an objection to each purpose through the consent service."""
    subject = Subject.objects.using(request._state.db).get(pk=request.subject_id)
    source = _objection_source()
    for purpose in request.purposes:
        consent_record(
            subject=subject,
            purpose=purpose,
            decision="objected",
            source=source,
            actor=SYSTEM,
            method="api",
            jurisdiction=request.jurisdiction or None,
        )
    return {"purposes_objected": len(request.purposes)}


def _objection_source() -> str:
    """``OBJECTION_SOURCE`` if its decisions apply globally, else the first global source."""
    keys = list(
        EventSource.objects.filter(consent_scope="global", is_active=True)
        .order_by("key")
        .values_list("key", flat=True)
    )
    if not keys:
        raise RequestError("no event source with global consent scope to record objections")
    return OBJECTION_SOURCE if OBJECTION_SOURCE in keys else keys[0]


def request_fail(*, region: str, request_id: UUID | str, reason: str) -> PrivacyRequest:
    """Move a processing request to ``failed`` with ``reason`` (after the job's retries)."""
    alias = region_alias(region=region)
    with transaction.atomic(using=alias):
        request = PrivacyRequest.objects.using(alias).select_for_update().get(pk=request_id)
        if request.status != Status.PROCESSING:
            return request
        return request_transition(
            request=request,
            to=Status.FAILED,
            actor=SYSTEM,
            reason=reason,
            update_fields={"heartbeat_at": timezone.now()},
        )
