"""The officer pages. Each view is wrapped by ``admin.site.admin_view`` (active staff, login
redirect) in ``urls.py`` and checks its own permission (403 otherwise); POST-only actions call
the owning app's service and show its refusal as an admin message, never a 500."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from compliance.audit.services.append import Actor
from compliance.dsar.models import Regulation, RequestType, Status
from compliance.dsar.selectors.requests import request_get
from compliance.dsar.services.errors import RequestError
from compliance.dsar.services.requests import request_approve, request_extend, request_reject
from compliance.identifiers import IdentifierError
from compliance.officer import charts, selectors
from compliance.officer.forms import LookupForm, PeriodForm, ReasonForm
from compliance.officer.permissions import (
    APPROVE_REQUESTS,
    EXPORT_EVIDENCE,
    SEGMENT_ACTIONS,
    VIEW_AUDIT,
    VIEW_IDENTITIES,
    VIEW_REQUESTS,
    VIEW_SEGMENTS,
    is_officer,
    require,
)
from compliance.officer.services import personal_data_viewed
from compliance.regions import regions
from segments.models import Segment
from segments.services import definitions
from segments.services.definitions import SegmentGovernanceError


def _context(request, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


def home(request):
    """The admin's front page: the DSAR queue for whoever may approve requests; everyone else
    (and ``?apps=1``) gets Django's index of the models they may see."""
    if is_officer(request.user) and "apps" not in request.GET:
        return redirect("officer:queue")
    return admin.site.index(request)


# --- DSAR queue and request page --------------------------------------------------------------
def queue(request):
    require(request, VIEW_REQUESTS)
    filters = {
        "type": (request.GET.get("type") or None, RequestType.choices),
        "status": (request.GET.get("status") or None, Status.choices),
        "region": (request.GET.get("region") or None, [(r, r.upper()) for r in regions()]),
        "regulation": (request.GET.get("regulation") or None, Regulation.choices),
    }
    chosen = {
        name: value if value in dict(choices) else None
        for name, (value, choices) in filters.items()
    }
    rows = selectors.queue_requests(**chosen)
    return TemplateResponse(
        request,
        "admin/officer/queue.html",
        _context(
            request,
            "DSAR queue",
            rows=rows,
            filters=[(name, choices, chosen[name]) for name, (_, choices) in filters.items()],
            overdue=sum(1 for r in rows if r.badge == "overdue"),
            due_soon=sum(1 for r in rows if r.badge == "due_soon"),
            can_approve=request.user.has_perm(APPROVE_REQUESTS),
        ),
    )


def _load(request_id):
    found = request_get(request_id=request_id)
    if found is None:
        raise Http404("no such request")
    return found


def request_detail(request, request_id):
    require(request, VIEW_REQUESTS)
    page = selectors.request_page(request=_load(request_id))
    return TemplateResponse(
        request,
        "admin/officer/request.html",
        _context(
            request,
            f"{page.request.get_type_display()} request",
            page=page,
            r=page.request,
            can_approve=request.user.has_perm(APPROVE_REQUESTS),
            running=page.request.status == Status.PROCESSING,
        ),
    )


@require_POST
def request_action(request, request_id, action):
    """approve | reject (reason) | extend (reason): privacy officers only (403 otherwise)."""
    if action not in ("approve", "reject", "extend"):
        raise Http404("unknown action")
    require(request, APPROVE_REQUESTS)
    privacy_request = _load(request_id)
    actor = Actor.user(request.user)
    target = reverse("officer:request", args=[privacy_request.pk])
    try:
        if action == "approve":
            request_approve(request=privacy_request, actor=actor)
            messages.success(request, "Approved: the job runs in the request's region.")
        else:
            form = ReasonForm(request.POST)
            if not form.is_valid():
                messages.error(request, f"A reason is needed to {action} a request.")
                return HttpResponseRedirect(target)
            reason = form.cleaned_data["reason"]
            if action == "reject":
                request_reject(request=privacy_request, actor=actor, reason=reason)
                messages.success(request, "Rejected.")
            else:
                updated = request_extend(request=privacy_request, actor=actor, reason=reason)
                messages.success(request, f"Extended: now due {updated.due_at:%Y-%m-%d}.")
    except RequestError as exc:
        messages.error(request, f"Not done: {exc}")
    return HttpResponseRedirect(target)


# --- subject lookup ---------------------------------------------------------------------------
def subject_lookup(request):
    """Find a person by identifier (blind index -> region); showing them is audited."""
    require(request, VIEW_IDENTITIES)
    form = LookupForm(request.POST or None)
    context = {"form": form, "result": None, "not_found": False, "erased": False}
    if request.method == "POST" and form.is_valid():
        try:
            found = selectors.subject_locate(
                identifier_type=form.cleaned_data["identifier_type"],
                value=form.cleaned_data["value"],
            )
        except IdentifierError as exc:
            form.add_error("value", str(exc))
            found = None
        else:
            if found == "erased":
                context["erased"] = True
            elif found is None:
                context["not_found"] = True
            else:
                region, subject = found
                context["result"] = selectors.subject_view(region=region, subject=subject)
                personal_data_viewed(
                    subject=subject,
                    region=region,
                    actor=Actor.user(request.user),
                    view="subject_lookup",
                )
    return TemplateResponse(
        request, "admin/officer/subject.html", _context(request, "Subject lookup", **context)
    )


# --- segment review ---------------------------------------------------------------------------
def segment_review(request):
    require(request, VIEW_SEGMENTS)
    due = selectors.segments_for_review()
    allowed = {name: request.user.has_perm(perm) for name, perm in SEGMENT_ACTIONS.items()}
    return TemplateResponse(
        request,
        "admin/officer/segments.html",
        _context(request, "Segment review", due=due, allowed=allowed),
    )


@require_POST
def segment_action(request, key, action):
    """approve | activate | pause | review through the governance service (403 without the
    permission; governance refusals come back as messages)."""
    if action not in SEGMENT_ACTIONS:
        raise Http404("unknown action")
    require(request, SEGMENT_ACTIONS[action])
    segment = Segment.objects.filter(key=key).first()
    if segment is None:
        raise Http404("no such segment")
    service = {
        "approve": definitions.segment_approve,
        "activate": definitions.segment_activate,
        "pause": definitions.segment_pause,
        "review": definitions.segment_review,
    }[action]
    try:
        service(segment=segment, user=request.user)
    except SegmentGovernanceError as exc:
        messages.error(request, f"{key}: {exc}")
    else:
        messages.success(request, f"{key}: {action} done.")
    return HttpResponseRedirect(reverse("officer:segments"))


# --- dashboard --------------------------------------------------------------------------------
def dashboard(request):
    require(request, VIEW_REQUESTS)
    weekly = selectors.dsar_weekly()
    labels = [f"{w:%d %b}" for w in weekly["weeks"]]
    types = [t for t in RequestType.values if any(c[t] for c in weekly["received"])]
    segments = selectors.segments_by_layer()
    today = timezone.now().date()
    period = PeriodForm(
        request.GET if "start" in request.GET else None,
        initial={"start": today.replace(day=1), "end": today},
    )
    evidence = None
    if request.user.has_perm(EXPORT_EVIDENCE):
        start, end = today.replace(day=1), today
        if period.is_bound and period.is_valid():
            start, end = period.cleaned_data["start"], period.cleaned_data["end"]
        query = f"from={start.isoformat()}&to={end.isoformat()}"
        evidence = {
            "report": f"{reverse('admin:audit_auditevent_report')}?{query}",
            "bundle": f"{reverse('admin:audit_auditevent_export')}?{query}&download=1",
            "start": start,
            "end": end,
        }
    context = _context(
        request,
        "Privacy dashboard",
        dsar_chart=charts.stacked_columns(
            title="Requests received per week by type",
            labels=labels,
            series={t: [c[t] for c in weekly["received"]] for t in types} or {"none": [0] * 8},
        ),
        on_time_chart=charts.percent_columns(
            title="Requests closed on time per week", labels=labels, values=weekly["on_time"]
        ),
        consent_chart=charts.stacked_bars(
            title="Consent decisions per source (30 days)", rows=selectors.consent_per_source()
        ),
        layer_chart=charts.bars(title="Active segments by layer", items=segments["layers"]),
        review_chart=charts.bars(title="Segments by review state", items=segments["review"]),
        chains=selectors.chains() if request.user.has_perm(VIEW_AUDIT) else None,
        evidence=evidence,
        period=period,
    )
    return TemplateResponse(request, "admin/officer/dashboard.html", context)
