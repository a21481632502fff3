"""The instrumentation audit: per source, what every region received and what its tracking
plan found, from the regions' counters (counts only; nothing is copied to the control
database: the sums are computed when read).

``instrumentation_audit(days=...)`` answers the officer page and
``GET /api/v1/sources/instrumentation/``; ``unreliable_sources`` and ``unreliable_segments``
name the sources (and the segments whose layers draw on them) whose share of violating events
over the last days is above ``PLANS_UNRELIABLE_SHARE``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Max, Sum
from django.utils import timezone

from compliance.conf import compliance_settings
from compliance.consent.models import EventSource
from compliance.plans.models import InstrumentationCount
from compliance.plans.selectors.plans import plan_sources
from compliance.plans.services.enforcement import (
    ACCEPTED,
    RECEIVED,
    REFUSED,
    STITCHED,
    TOTAL_KINDS,
    VIOLATING,
)
from compliance.regions import region_alias, regions

TOP_VIOLATIONS = 10
UNRELIABLE_DAYS = 7


@dataclass
class SourceAudit:
    """One source's counts over the period; ``daily`` is one entry per day, oldest first."""

    source: str
    plan_version: int | None = None
    mode: str = ""
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOTAL_KINDS, 0))
    violations: list[dict] = field(default_factory=list)
    unplanned: list[dict] = field(default_factory=list)
    daily: list[dict] = field(default_factory=list)

    @property
    def received(self) -> int:
        return self.totals[RECEIVED]

    def share(self, kind: str) -> float:
        return round(self.totals[kind] / self.received, 4) if self.received else 0.0

    @property
    def share_valid(self) -> float:
        return round(1 - self.share(VIOLATING), 4) if self.received else 0.0

    def as_json(self) -> dict:
        return {
            "source": self.source,
            "plan_version": self.plan_version,
            "mode": self.mode or None,
            "received": self.received,
            "accepted": self.totals[ACCEPTED],
            "refused": self.totals[REFUSED],
            "violating": self.totals[VIOLATING],
            "identifiers_stitched": self.totals[STITCHED],
            "share_valid": self.share_valid,
            "share_violating": self.share(VIOLATING),
            "share_refused": self.share(REFUSED),
            "top_violations": self.violations,
            "unplanned_events": self.unplanned,
            "daily": self.daily,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def counter_rows(*, since: date) -> list[dict]:
    """Every region's counters from ``since`` on, summed per day, source, event, kind and
    path (one query per region)."""
    out = []
    for region in regions():
        out.extend(
            InstrumentationCount.objects.using(region_alias(region=region))
            .filter(day__gte=since)
            .values("day", "source", "event", "kind", "path")
            .annotate(n=Sum("count"), last=Max("last_seen_at"))
        )
    return out


def instrumentation_audit(*, days: int, today: date | None = None) -> list[SourceAudit]:
    """Per source (every active source, and any other seen), over the last ``days`` days
    including today: totals, top violations (type, path, event, count, last seen), unplanned
    event names and daily received/violating/refused counts."""
    today = today or timezone.now().date()
    since = today - timedelta(days=days - 1)
    plans = plan_sources()
    keys = set(EventSource.objects.filter(is_active=True).values_list("key", flat=True))
    audits: dict[str, SourceAudit] = {}
    violations: dict[str, dict[tuple, dict]] = defaultdict(dict)
    daily: dict[str, dict[date, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(TOTAL_KINDS, 0))
    )
    for row in counter_rows(since=since):
        source, kind = row["source"], row["kind"]
        keys.add(source)
        audit = audits.setdefault(source, SourceAudit(source=source))
        if kind in TOTAL_KINDS:
            audit.totals[kind] += row["n"]
            daily[source][row["day"]][kind] += row["n"]
            continue
        entry = violations[source].setdefault(
            (kind, row["path"], row["event"]),
            {"type": kind, "path": row["path"], "event": row["event"], "count": 0, "last": None},
        )
        entry["count"] += row["n"]
        entry["last"] = max(filter(None, (entry["last"], row["last"])), default=None)
    out = []
    for source in sorted(keys):
        audit = audits.get(source) or SourceAudit(source=source)
        plan = plans.get(source)
        if plan is not None:
            audit.plan_version, audit.mode = plan.version, plan.mode
        found = sorted(violations[source].values(), key=lambda e: (-e["count"], e["type"]))
        audit.violations = [
            {**{k: v for k, v in e.items() if k != "last"}, "last_seen": _iso(e["last"])}
            for e in found[:TOP_VIOLATIONS]
        ]
        audit.unplanned = [
            {"name": e["event"], "count": e["count"], "last_seen": _iso(e["last"])}
            for e in found
            if e["type"] == "unplanned_event"
        ]
        audit.daily = [
            {"day": (since + timedelta(days=i)).isoformat(), **daily[source][since + timedelta(i)]}
            for i in range(days)
        ]
        out.append(audit)
    return out


def unreliable_sources(
    *, days: int = UNRELIABLE_DAYS, threshold: float | None = None
) -> dict[str, float]:
    """Sources whose share of violating events over the last ``days`` days is above
    ``threshold`` (default ``PLANS_UNRELIABLE_SHARE``), with that share."""
    limit = compliance_settings.PLANS_UNRELIABLE_SHARE if threshold is None else threshold
    since = timezone.now().date() - timedelta(days=days - 1)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {RECEIVED: 0, VIOLATING: 0})
    for region in regions():
        rows = (
            InstrumentationCount.objects.using(region_alias(region=region))
            .filter(day__gte=since, kind__in=(RECEIVED, VIOLATING))
            .values("source", "kind")
            .annotate(n=Sum("count"))
        )
        for row in rows:
            totals[row["source"]][row["kind"]] += row["n"]
    return {
        source: round(t[VIOLATING] / t[RECEIVED], 4)
        for source, t in sorted(totals.items())
        if t[RECEIVED] and t[VIOLATING] / t[RECEIVED] > limit
    }


def layer_sources(*, layers) -> set[str]:
    """The event sources a segment's layers draw on (``PLANS_LAYER_SOURCES``)."""
    mapping = {str(k).upper(): v for k, v in compliance_settings.PLANS_LAYER_SOURCES.items()}
    return {
        source
        for layer in layers
        for source in str(mapping.get(str(layer).upper(), "")).replace("|", " ").split()
    }


def unreliable_segments(*, segments) -> dict[str, dict[str, float]]:
    """Of ``segments`` (not retired), those whose layers draw on an unreliable source:
    segment key -> {source: share of violating events}."""
    shaky = unreliable_sources()
    if not shaky:
        return {}
    out = {}
    for segment in segments:
        found = {s: shaky[s] for s in sorted(layer_sources(layers=segment.layers)) if s in shaky}
        if found and segment.status != "retired":
            out[segment.key] = found
    return out
