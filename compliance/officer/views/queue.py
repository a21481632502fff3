"""The front page, the DSAR queue and the dashboard."""

from __future__ import annotations

from django.contrib import admin
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from compliance.dsar.models import Regulation, RequestType, Status
from compliance.officer import charts, selectors
from compliance.officer.forms import (
    PeriodForm,
)
from compliance.officer.permissions import (
    APPROVE_REQUESTS,
    EXPORT_EVIDENCE,
    VIEW_AUDIT,
    VIEW_REQUESTS,
    VIEW_SEGMENTS,
    is_officer,
    require,
)
from compliance.officer.views.common import page_context
from compliance.regions import regions
from segments.selectors.lift import lift_reports


def home(request):
    """The admin's front page: the DSAR queue for whoever may approve requests; everyone else
    (and ``?apps=1``) gets Django's index of the models they may see."""
    if is_officer(request.user) and "apps" not in request.GET:
        return redirect("officer:queue")
    return admin.site.index(request)


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
        page_context(
            request,
            "DSAR queue",
            rows=rows,
            filters=[(name, choices, chosen[name]) for name, (_, choices) in filters.items()],
            overdue=sum(1 for r in rows if r.badge == "overdue"),
            due_soon=sum(1 for r in rows if r.badge == "due_soon"),
            can_approve=request.user.has_perm(APPROVE_REQUESTS),
        ),
    )


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
    context = page_context(
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
        lift=lift_overview() if request.user.has_perm(VIEW_SEGMENTS) else None,
        evidence=evidence,
        period=period,
    )
    return TemplateResponse(request, "admin/officer/dashboard.html", context)


def lift_overview() -> dict:
    """The dashboard's lift module: the report of every active segment whose lift has been
    computed, and a forest plot of their absolute lifts with 95% intervals."""
    reports = lift_reports()
    rows = [
        (
            r["segment"],
            r["absolute_lift"],
            *(r["absolute_lift_ci"] or (None, None)),
            r["srm_flag"],
        )
        for r in reports
    ]
    return {
        "reports": reports,
        "chart": charts.intervals(
            title="Absolute lift with 95% interval, per active segment", rows=rows
        ),
    }
