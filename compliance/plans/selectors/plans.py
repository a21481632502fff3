"""Reads of tracking plans (control database): current plans, compiled, and a source's
versions."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import OuterRef, Subquery

from compliance.consent.selectors.cached import configuration
from compliance.plans.checking import CompiledPlan, plan_cached, plan_compiled
from compliance.plans.models import TrackingPlan


def _current(queryset):
    latest = (
        TrackingPlan.objects.filter(source=OuterRef("source")).order_by("-version").values("pk")
    )
    return queryset.filter(pk=Subquery(latest[:1]))


def current_plans(*, sources: Iterable[str]) -> dict[str, CompiledPlan]:
    """The current (highest) version of each source's plan, compiled; sources without a plan
    are absent. Ids and hashes from the process's cached configuration (no query while it is
    fresh); a version not compiled yet in this process costs one query for its events."""
    current = configuration().plans
    rows = [(*current[source], source) for source in set(sources) if source in current]
    found: dict[str, CompiledPlan] = {}
    missing = {}
    for pk, sha256, source in rows:
        compiled = plan_cached(plan_id=pk, sha256=sha256)
        if compiled is None:
            missing[pk] = source
        else:
            found[source] = compiled
    if missing:  # no queryset built when nothing is (an empty one still costs the ORM's work)
        for plan in TrackingPlan.objects.filter(pk__in=missing):
            found[missing[plan.pk]] = plan_compiled(plan=plan, source=missing[plan.pk])
    return found


def current_plan(*, source: str) -> TrackingPlan | None:
    return TrackingPlan.objects.filter(source__key=source).order_by("-version").first()


def plan_versions(*, source: str) -> list[TrackingPlan]:
    """Every version of the source's plan, newest first."""
    return list(TrackingPlan.objects.filter(source__key=source).order_by("-version"))


def current_plan_ids() -> dict[str, tuple[int, str]]:
    """``(id, sha256)`` of the current plan of every source that has one, by source key (one
    query: what the cached configuration keeps)."""
    rows = _current(TrackingPlan.objects.all()).values_list("source__key", "pk", "sha256")
    return {key: (pk, sha256) for key, pk, sha256 in rows}


def plan_sources() -> dict[str, TrackingPlan]:
    """The current plan of every source that has one, by source key."""
    return {
        plan.source.key: plan for plan in _current(TrackingPlan.objects.select_related("source"))
    }
