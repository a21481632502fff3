"""The instrumentation audit: what each event source sends against its tracking plan."""

from __future__ import annotations

from django.template.response import TemplateResponse

from compliance.officer.charts import stacked_columns
from compliance.officer.permissions import VIEW_PLANS, require
from compliance.officer.views.common import page_context
from compliance.plans.selectors.instrumentation import (
    UNRELIABLE_DAYS,
    instrumentation_audit,
    unreliable_segments,
)
from segments.models import Segment

DAY_CHOICES = (7, 30, 90, 365)


def instrumentation(request):
    """Per source over 7, 30, 90 or 365 days (``?days=``, else 7): received, valid and refused
    shares, top violations with last seen, unplanned event names and a daily chart; and the
    segments built on unreliable data. Counts only, read from every region."""
    require(request, VIEW_PLANS)
    try:
        days = int(request.GET.get("days", 7))
    except ValueError:
        days = 7
    days = days if days in DAY_CHOICES else 7
    audits = instrumentation_audit(days=days)
    rows = [
        {"data": audit.as_json(), "chart": _trend(audit.daily) if audit.received else None}
        for audit in audits
    ]
    return TemplateResponse(
        request,
        "admin/officer/instrumentation.html",
        page_context(
            request,
            "Instrumentation audit",
            rows=rows,
            days=days,
            day_choices=DAY_CHOICES,
            unreliable=unreliable_segments(segments=Segment.objects.exclude(status="retired")),
            unreliable_days=UNRELIABLE_DAYS,
        ),
    )


def _trend(daily: list[dict]):
    """Valid and violating events per day (per week beyond 14 days, per 30 days beyond 90)."""
    size = 1 if len(daily) <= 14 else (7 if len(daily) <= 90 else 30)
    buckets = [daily[i : i + size] for i in range(0, len(daily), size)]
    return stacked_columns(
        title="events received: valid and violating the tracking plan"
        + ("" if size == 1 else f" (per {size} days)"),
        labels=[bucket[0]["day"][5:] for bucket in buckets],
        series={
            "valid": [sum(d["received"] - d["violating"] for d in b) for b in buckets],
            "violating": [sum(d["violating"] for d in b) for b in buckets],
        },
    )
