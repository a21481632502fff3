"""Read paths of the officer pages: the queue across regions, the request page, the subject
lookup (through the blind index) and the dashboard figures. Nothing here writes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from compliance.audit.selectors.status import chain_status
from compliance.consent.models import ConsentEvent, ConsentState, NoticeVersion, Purpose
from compliance.consent.selectors.subjects import consent_evaluation
from compliance.dsar.models import (
    TERMINAL_STATUSES,
    ErasureStep,
    PrivacyRequest,
    RequestType,
    Status,
)
from compliance.dsar.selectors.requests import callback_attempts
from compliance.dsar.services.erasure import erasure_preview, subjects_reached
from compliance.dsar.services.errors import RequestError
from compliance.dsar.services.receipts import receipt_verify
from compliance.identifiers import identifier_normalize
from compliance.models import Identity, Subject, SubjectDirectory
from compliance.regions import region_alias, regions
from compliance.services.subjects import identifier_blind_index, identity_value, is_suppressed
from segments.models import Segment
from segments.models import Status as SegmentStatus
from segments.selectors.memberships import membership_history
from segments.selectors.segments import segment_review_due, segments_review_overdue

DUE_SOON = timedelta(days=7)
OPEN_STATUSES = [s for s in Status.values if s not in TERMINAL_STATUSES]


# --- the DSAR queue ---------------------------------------------------------------------------
def due_badge(*, request: PrivacyRequest, now: datetime | None = None) -> str:
    """``"overdue"``, ``"due_soon"`` (within 7 days) or ``""`` - from the due date, live."""
    if request.is_terminal:
        return ""
    now = now or timezone.now()
    if request.due_at < now:
        return "overdue"
    if request.due_at <= now + DUE_SOON:
        return "due_soon"
    return ""


def queue_requests(
    *,
    type: str | None = None,
    status: str | None = None,
    region: str | None = None,
    regulation: str | None = None,
    limit: int = 500,
) -> list[PrivacyRequest]:
    """Requests of every region (one query per region), earliest due first.

    Without ``status`` only open requests are listed. Each request gets a ``badge``."""
    now = timezone.now()
    found: list[PrivacyRequest] = []
    for name in [region] if region in regions() else regions():
        qs = PrivacyRequest.objects.using(region_alias(region=name)).defer(
            "identifier_indexes", "receipt", "erasure_subjects", "result_counts"
        )
        qs = qs.filter(status=status) if status else qs.filter(status__in=OPEN_STATUSES)
        if type:
            qs = qs.filter(type=type)
        if regulation:
            qs = qs.filter(regulation=regulation)
        found.extend(qs.order_by("due_at")[:limit])
    found.sort(key=lambda r: r.due_at)
    for item in found:
        item.badge = due_badge(request=item, now=now)
    return found[:limit]


@dataclass
class RequestPage:
    request: PrivacyRequest
    badge: str
    steps: list[ErasureStep]
    preview: dict | None
    receipt_valid: bool | None
    percent: int
    #: status callback deliveries, oldest first
    callbacks: list = field(default_factory=list)


def request_page(*, request: PrivacyRequest) -> RequestPage:
    """What the request page shows: progress, the erasure dry run while it may still run, the
    receipt and whether its signature verifies."""
    alias = request._state.db
    preview = None
    if request.type == RequestType.ERASURE and not request.is_terminal:
        try:
            preview = erasure_preview(request=request)
        except RequestError:
            preview = None
    receipt_valid = None
    if request.receipt:
        receipt_valid = receipt_verify(receipt=request.receipt, signature=request.receipt_signature)
    total = request.progress_total or 0
    return RequestPage(
        request=request,
        badge=due_badge(request=request),
        steps=list(ErasureStep.objects.using(alias).filter(request_id=request.pk)),
        preview=preview,
        receipt_valid=receipt_valid,
        percent=round(100 * request.progress_done / total) if total else 0,
        callbacks=list(callback_attempts(request=request)),
    )


# --- the subject lookup -----------------------------------------------------------------------
@dataclass
class ConsentRow:
    purpose: str
    source: str  # "" = every source (global scope)
    decision: str
    lawful_basis: str
    captured_at: datetime
    expires_at: datetime | None
    event: ConsentEvent | None
    notice: NoticeVersion | None


@dataclass
class SubjectView:
    subject: Subject
    region: str
    subjects: list[Subject]
    identities: list[tuple[str, str]]  # (type, decrypted value)
    consent: list[ConsentRow]
    evaluation: dict  # purpose -> Decision (can_process now, any source)
    memberships: list
    requests: list[PrivacyRequest] = field(default_factory=list)


def subject_locate(*, identifier_type: str, value: str) -> tuple[str, Subject] | None | str:
    """The region and surviving subject holding an identifier, through the blind index.

    Returns ``None`` when nobody holds it and ``"erased"`` when it is on a suppression list.
    Raises ``IdentifierError`` for a malformed identifier."""
    identifier = identifier_normalize(identifier_type=identifier_type, value=value)
    index = identifier_blind_index(identifier=identifier)
    entry = SubjectDirectory.objects.filter(blind_index=index).first()
    if entry is None:
        return "erased" if is_suppressed(blind_index=index) else None
    alias = region_alias(region=entry.region)
    subject = Subject.objects.using(alias).filter(pk=entry.subject_id).first()
    seen = set()
    while subject is not None and subject.merged_into and subject.pk not in seen:
        seen.add(subject.pk)
        subject = Subject.objects.using(alias).filter(pk=subject.merged_into).first() or subject
    if subject is None:
        return None
    return entry.region, subject


def subject_view(*, region: str, subject: Subject) -> SubjectView:
    """Everything the lookup shows about a person (decrypted identifiers included: the caller
    must audit the view with ``personal_data_viewed``)."""
    alias = region_alias(region=region)
    reached = subjects_reached(alias=alias, subject_id=subject.pk)
    ids = [s.pk for s in reached]
    by_id = {s.pk: s for s in reached}
    identities = [
        (
            identity.identifier_type,
            identity_value(identity=identity, subject=by_id[identity.subject_id]),
        )
        for identity in Identity.objects.using(alias)
        .filter(subject_id__in=ids)
        .order_by("identifier_type", "created_at")
    ]
    states = list(
        ConsentState.objects.using(alias)
        .filter(subject_id=subject.pk)
        .order_by("purpose", "source")
    )
    events = ConsentEvent.objects.using(alias).in_bulk([s.event_id for s in states])
    notice_ids = {e.notice_version_id for e in events.values() if e.notice_version_id}
    notices = NoticeVersion.objects.in_bulk(list(notice_ids))
    consent = [
        ConsentRow(
            purpose=s.purpose,
            source=s.source,
            decision=s.decision,
            lawful_basis=s.lawful_basis,
            captured_at=s.captured_at,
            expires_at=s.expires_at,
            event=events.get(s.event_id),
            notice=notices.get(getattr(events.get(s.event_id), "notice_version_id", None)),
        )
        for s in states
    ]
    memberships = []
    for reached_id in ids:
        memberships.extend(membership_history(region=region, subject_id=reached_id))
    memberships.sort(key=lambda m: (m.entered_at, m.pk))
    requests = list(
        PrivacyRequest.objects.using(alias).filter(subject_id__in=ids).order_by("-received_at")
    )
    return SubjectView(
        subject=subject,
        region=region,
        subjects=reached,
        identities=identities,
        consent=consent,
        evaluation=consent_evaluation(subject=subject),
        memberships=memberships,
        requests=requests,
    )


# --- segment review ---------------------------------------------------------------------------
def segments_for_review() -> dict[str, list[Segment]]:
    """Segments past their review date, AI-suggested drafts awaiting approval, other drafts,
    and approved segments not yet live (so an approval does not make a segment vanish)."""
    overdue = segments_review_overdue()
    drafts = list(
        Segment.objects.filter(status=SegmentStatus.DRAFT)
        .select_related("owner", "proposed_by", "proposed_by_client")
        .order_by("created_at")
    )
    approved = list(
        Segment.objects.filter(status=SegmentStatus.APPROVED)
        .select_related("owner", "proposed_by", "proposed_by_client")
        .order_by("approved_at")
    )
    return {
        "overdue": overdue,
        "suggested": [s for s in drafts if s.origin == "ai_suggested"],
        "drafts": [s for s in drafts if s.origin != "ai_suggested"],
        "approved": approved,
    }


def purposes_named(*, keys) -> list[tuple[str, str]]:
    """(key, name) of purposes, in the given order (unknown keys keep their key as name)."""
    names = dict(Purpose.objects.filter(key__in=list(keys)).values_list("key", "name"))
    return [(key, names.get(key, key)) for key in keys]


# --- dashboard --------------------------------------------------------------------------------
def week_start(moment: datetime) -> datetime:
    day = timezone.localtime(moment).date()
    return day - timedelta(days=day.weekday())


def dsar_weekly(*, weeks: int = 8, now: datetime | None = None) -> dict:
    """Requests received per ISO week by type, and the on-time rate of those closed per week
    (completed, rejected, cancelled or failed before their due date), over every region."""
    now = now or timezone.now()
    first = week_start(now) - timedelta(weeks=weeks - 1)
    since = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    labels = [first + timedelta(weeks=i) for i in range(weeks)]
    received: dict = {w: Counter() for w in labels}
    closed: dict = {w: [0, 0] for w in labels}  # [on time, total]
    for region in regions():
        qs = PrivacyRequest.objects.using(region_alias(region=region))
        for type_, at in qs.filter(received_at__gte=since).values_list("type", "received_at"):
            received[week_start(at)][type_] += 1
        finished = qs.filter(status__in=list(TERMINAL_STATUSES), updated_at__gte=since)
        for done_at, updated, due in finished.values_list("completed_at", "updated_at", "due_at"):
            moment = done_at or updated
            week = week_start(moment)
            if week in closed:
                closed[week][1] += 1
                closed[week][0] += moment <= due
    return {
        "weeks": labels,
        "received": [received[w] for w in labels],
        "on_time": [(ok / n if n else None, n) for ok, n in (closed[w] for w in labels)],
    }


def consent_per_source(*, days: int = 30) -> dict[str, Counter]:
    """Consent decisions of the last ``days`` days per source and decision (all regions)."""
    since = timezone.now() - timedelta(days=days)
    out: dict[str, Counter] = {}
    for region in regions():
        rows = (
            ConsentEvent.objects.using(region_alias(region=region))
            .filter(captured_at__gte=since)
            .values("source", "decision")
            .annotate(n=Count("id"))
        )
        for row in rows:
            out.setdefault(row["source"], Counter())[row["decision"]] += row["n"]
    return dict(sorted(out.items()))


def segments_by_layer() -> dict:
    """Active segments per layer, and every live segment's review state."""
    layers: Counter = Counter()
    review: Counter = Counter()
    for segment in Segment.objects.exclude(status=SegmentStatus.RETIRED):
        if segment.status == SegmentStatus.ACTIVE:
            for layer in segment.layers or ["(none)"]:
                layers[layer] += 1
        if segment.status == SegmentStatus.DRAFT:
            review["awaiting approval"] += 1
        elif segment_review_due(segment=segment):
            review["review overdue"] += 1
        else:
            review[f"{segment.status}, reviewed"] += 1
    return {"layers": dict(sorted(layers.items())), "review": dict(sorted(review.items()))}


def chains() -> list[dict]:
    """Audit chain status of every database (audit's own selector)."""
    return [chain_status(using=alias) for alias in settings.DATABASES]
