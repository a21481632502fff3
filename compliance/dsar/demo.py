"""Demo data of the dsar app: the officer's queue tells a story (idempotent, in any state).

After every run there is, across regions:

* a completed erasure with its signed receipt (``riley.morgan@example.com``, erased here, once);
* an erasure awaiting the officer's approval (``jonas.becker@example.de``);
* an overdue access request whose identity check is pending (``lucia.rossi@example.it``,
  received 35 days ago, so past its one-month GDPR deadline);
* a completed access request with its package (``amelie.martin@example.fr``).

Requests are found by their idempotency keys (``demo-...``, no API client). When the officer
has dealt with one (approved, rejected, extended, cancelled) or its person was erased, the
next run opens the same kind of request for the next person of that role (a stand-in), so the
story is there again; nothing the officer did is undone.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from compliance.consent.services.record import DecisionInput, consent_record_many
from compliance.demo import demo_candidates, demo_person, demo_subject
from compliance.dsar.models import TERMINAL_STATUSES, PrivacyRequest, RequestDirectory, Status
from compliance.dsar.services import processing
from compliance.dsar.services.deadlines import due_at_for
from compliance.dsar.services.maintenance import requests_flag_due
from compliance.dsar.services.requests import (
    request_approve,
    request_cancel,
    request_open,
    request_record_opened,
    subject_root,
)
from compliance.identifiers import identifier_normalize
from compliance.regions import region_alias, regions
from compliance.services.subjects import identifier_blind_index

ACCESS_DONE = "demo-access-1"
ERASURE_DONE = "demo-erasure-completed"
ERASURE_AWAITING = "demo-erasure-awaiting"
ACCESS_OVERDUE = "demo-access-overdue"
OVERDUE_BY = timedelta(days=35)


def _demo_requests(prefix: str) -> list[PrivacyRequest]:
    found = []
    for region in regions():
        found.extend(
            PrivacyRequest.objects.using(region_alias(region=region)).filter(
                client_id__isnull=True, idempotency_key__startswith=prefix
            )
        )
    return found


def _next_key(prefix: str) -> str:
    return f"{prefix}-{len(_demo_requests(prefix)) + 1}"


def _subject_present(request: PrivacyRequest) -> bool:
    if request.subject_id is None:
        return False
    return subject_root(alias=request._state.db, subject_id=request.subject_id) is not None


def _has_request(requests: list[PrivacyRequest], subject_id) -> bool:
    return any(r.subject_id == subject_id for r in requests)


def load(*, actor, stdout) -> None:
    _access_done(actor=actor)
    _erasure_done(actor=actor)
    _erasure_awaiting(actor=actor)
    _access_overdue(actor=actor)
    for region in regions():
        requests_flag_due(region=region)
    stdout.write(f"demo privacy requests: {story_summary()}")


def story_summary() -> str:
    """What the officer finds in the queue: the four demo story items, counted."""
    now = timezone.now()
    awaiting = [r for r in _demo_requests(ERASURE_AWAITING) if r.status == Status.AWAITING_APPROVAL]
    overdue = [
        r
        for r in _demo_requests(ACCESS_OVERDUE)
        if r.status not in TERMINAL_STATUSES and r.due_at < now
    ]
    done = [r for r in _demo_requests(ERASURE_DONE) if r.status == Status.COMPLETED and r.receipt]
    return (
        f"{len(awaiting)} erasure awaiting approval, {len(overdue)} overdue access request, "
        f"{len(done)} completed erasure with receipt"
    )


def _access_done(*, actor) -> None:
    if _demo_requests(ACCESS_DONE):
        return
    person = demo_person("amelie.martin@example.fr")
    if demo_subject(person=person, actor=actor) is None:
        return
    request_open(
        type="access",
        regulation="gdpr",
        identifiers=[{"type": "email", "value": person.email}],
        verification_method="account_login",
        jurisdiction=person.jurisdiction,
        idempotency_key=ACCESS_DONE,
        actor=actor,
    )


def _erasure_done(*, actor) -> None:
    """Erase riley.morgan once, here and now (the job runs in this process; the queued copy
    finds the request completed and does nothing)."""
    existing = _demo_requests(ERASURE_DONE)
    if existing:
        for request in existing:
            if request.status == Status.PROCESSING:
                processing.request_process(region=request.region, request_id=request.pk)
        return
    for person in demo_candidates("riley.morgan@example.com"):
        subject = demo_subject(person=person, actor=actor)
        if subject is not None:
            break
    else:
        return
    consent_record_many(
        subject=subject,
        decisions=[DecisionInput(purpose="measurement", decision="granted")],
        source="web",
        actor=actor,
        method="ui",
        jurisdiction=person.jurisdiction,
        collection_point="demo",
    )
    opened = request_open(
        type="erasure",
        regulation="ccpa",
        identifiers=[{"type": "email", "value": person.email}],
        verification_method="account_login",
        jurisdiction=person.jurisdiction,
        idempotency_key=ERASURE_DONE,
        actor=actor,
    )
    request = PrivacyRequest.objects.using(opened.request.region).get(pk=opened.request.pk)
    if request.status == Status.AWAITING_APPROVAL:
        request = request_approve(request=request, actor=actor)
    processing.request_process(region=request.region, request_id=request.pk)


def _erasure_awaiting(*, actor) -> None:
    existing = _demo_requests(ERASURE_AWAITING)
    for request in existing:
        if request.status == Status.AWAITING_APPROVAL and not _subject_present(request):
            # its person was erased by another request meanwhile: nothing left to approve
            request_cancel(request=request, actor=actor)
            request.status = Status.CANCELLED
    if any(r.status == Status.AWAITING_APPROVAL for r in existing):
        return
    for person in demo_candidates("jonas.becker@example.de"):
        subject = demo_subject(person=person, actor=actor)
        if subject is None or _has_request(existing, subject.pk):
            continue
        request_open(
            type="erasure",
            regulation="gdpr",
            identifiers=[{"type": "email", "value": person.email}],
            verification_method="email_confirmation",
            jurisdiction=person.jurisdiction,
            idempotency_key=_next_key(ERASURE_AWAITING),
            actor=actor,
        )
        return


def _access_overdue(*, actor) -> None:
    now = timezone.now()
    existing = _demo_requests(ACCESS_OVERDUE)
    if any(r.status not in TERMINAL_STATUSES and r.due_at < now for r in existing):
        return
    open_ids = {r.subject_id for r in existing if r.status not in TERMINAL_STATUSES}
    for person in demo_candidates("lucia.rossi@example.it"):
        subject = demo_subject(person=person, actor=actor)
        if subject is None or subject.pk in open_ids:
            continue
        _open_pending_verification(
            subject=subject,
            email=person.email,
            jurisdiction=person.jurisdiction,
            received_at=now - OVERDUE_BY,
            idempotency_key=_next_key(ACCESS_OVERDUE),
            actor=actor,
        )
        return


def _open_pending_verification(
    *, subject, email: str, jurisdiction: str, received_at, idempotency_key: str, actor
) -> PrivacyRequest:
    """An access request received ``received_at`` whose identity check (an ID document) is
    still pending: it stays in ``verifying`` until the officer extends, rejects or cancels it.
    Audited like any opened request; only its received date lies in the past."""
    alias = region_alias(region=subject.region)
    index = identifier_blind_index(
        identifier=identifier_normalize(identifier_type="email", value=email)
    )
    request = PrivacyRequest(
        type="access",
        regulation="gdpr",
        region=subject.region,
        subject_id=subject.pk,
        subject_token=subject.audit_token,
        identifier_indexes=[{"type": "email", "blind_index": index}],
        verification_method="id_document",
        jurisdiction=jurisdiction,
        idempotency_key=idempotency_key,
        received_at=received_at,
        due_at=due_at_for(regulation="gdpr", received_at=received_at),
    )
    with transaction.atomic(using="default"):
        RequestDirectory.objects.create(
            request_id=request.pk,
            region=subject.region,
            client_id=None,
            idempotency_key=idempotency_key,
            body_hash="demo",
        )
        with transaction.atomic(using=alias):
            request_record_opened(request=request, alias=alias, actor=actor)
    return request
