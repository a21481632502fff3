"""Thin API views of tracking plans and the instrumentation audit."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from compliance.api.views import ApiView
from compliance.audit.services.append import Actor
from compliance.consent.models import EventSource
from compliance.errors import InputError, NotFoundError
from compliance.plans.api import serializers as s
from compliance.plans.documents import plan_document_parse
from compliance.plans.selectors.instrumentation import instrumentation_audit
from compliance.plans.selectors.plans import plan_versions
from compliance.plans.services.plans import tracking_plan_publish

MAX_DAYS = 365


def _source_or_404(key: str) -> EventSource:
    source = EventSource.objects.filter(key=key).first()
    if source is None:
        raise NotFoundError(f"No event source {key!r}.")
    return source


def _plan_body(source: EventSource) -> dict:
    versions = [s.plan_version_data(plan) for plan in plan_versions(source=source.key)]
    return {
        "source": source.key,
        "current": versions[0] if versions else None,
        "versions": versions,
    }


class TrackingPlanView(ApiView):
    """A source's tracking plan: the current version and every past one; ``PUT`` publishes
    a new version."""

    required_scopes = {"GET": "sources:read", "PUT": "sources:write"}

    @extend_schema(
        operation_id="tracking_plan_get",
        summary="A source's tracking plan: the current version and every past one",
        responses={200: s.TrackingPlanOutputSerializer},
        tags=["events"],
    )
    def get(self, request, key):
        return Response(_plan_body(_source_or_404(key)))

    @extend_schema(
        operation_id="tracking_plan_put",
        summary="Publish a new version of the source's tracking plan",
        request=s.TrackingPlanInputSerializer,
        responses={201: s.TrackingPlanOutputSerializer},
        tags=["events"],
    )
    def put(self, request, key):
        source = _source_or_404(key)
        document = plan_document_parse(data=request.data)
        tracking_plan_publish(source=source, document=document, actor=Actor.client(request.auth))
        return Response(_plan_body(source), status=status.HTTP_201_CREATED)


def days_param(*, value: str | None, default: int = 7) -> int:
    """``days`` as an integer from 1 to 365 (``default`` when absent), else ``InputError``."""
    if value is None:
        return default
    try:
        days = int(value)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise InputError(f"an integer from 1 to {MAX_DAYS}", field="days")
    return days


class InstrumentationView(ApiView):
    """Per source over the last ``days`` days: events received, valid and refused shares,
    top violations, unplanned event names and daily counts (counts only)."""

    required_scopes = "sources:read"

    @extend_schema(
        operation_id="sources_instrumentation",
        summary="Instrumentation audit: per source, events received, valid and refused shares, "
        "top violations and unplanned events (counts only)",
        parameters=[
            OpenApiParameter("days", int, required=False, description="1 to 365 (default 7)")
        ],
        responses={200: s.InstrumentationOutputSerializer},
        tags=["events"],
    )
    def get(self, request):
        days = days_param(value=request.query_params.get("days"))
        audits = instrumentation_audit(days=days)
        return Response({"days": days, "sources": [a.as_json() for a in audits]})
