"""Who would enter a segment: an estimate shown before a person approves or activates it.

Segments hold no machine-readable criteria here (the collecting systems decide who matches), so
the estimate takes every live person of each region (not merged away, not erased) as a
candidate and runs the same gates ``memberships_apply`` runs before an entry: restriction of
processing (and any other enter blocker) and consent for every required purpose, in bulk
(``consent_gate_positions``). The counts say how many could enter at most, and what share the
consent gate would refuse, per region and per missing purpose. Regions with more than
``limit`` people are estimated from the ``limit`` oldest (the result says so). Nothing is
written and nobody is named.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from compliance import hooks
from compliance.consent.selectors.evaluation import consent_gate_positions
from compliance.models import Subject
from compliance.regions import region_alias, regions
from segments.models import Segment

SAMPLE_LIMIT = 20_000


@dataclass
class RegionEstimate:
    region: str
    people: int  # live people in the region
    checked: int  # how many were checked (all, or the sample)
    allowed: int  # of those checked: would pass every gate
    refused_consent: int
    blocked: int  # restricted processing and other enter blockers
    missing: Counter = field(default_factory=Counter)  # purpose -> refused for it

    @property
    def missing_items(self) -> list[tuple[str, int]]:
        """(purpose, refused for it), most first (templates cannot call ``Counter.items``)."""
        return self.missing.most_common()

    @property
    def sampled(self) -> bool:
        return self.checked < self.people

    @property
    def refused_share(self) -> float:
        return self.refused_consent / self.checked if self.checked else 0.0

    @property
    def would_enter(self) -> int:
        """Allowed, scaled up to the whole region when a sample was checked."""
        if not self.checked:
            return 0
        return round(self.allowed * self.people / self.checked)


def segment_entry_estimate(*, segment: Segment, limit: int = SAMPLE_LIMIT) -> list[RegionEstimate]:
    """Per region: live people, how many would pass the gates, how many the consent gate
    refuses (and for which purpose)."""
    out = []
    purposes = list(segment.required_purposes or [])
    for region in regions():
        alias = region_alias(region=region)
        live = Subject.objects.using(alias).filter(merged_into__isnull=True)
        people = live.count()
        ids = list(live.order_by("created_at").values_list("pk", flat=True)[:limit])
        blocked = hooks.enter_blocked(region=region, subject_ids=ids) if ids else {}
        candidates = [sid for sid in ids if sid not in blocked]
        missing: Counter = Counter()
        if purposes and candidates:
            refused, _ = consent_gate_positions(
                region=region,
                subject_ids=candidates,
                purposes=purposes,
                merged_excluded=True,  # live subjects only
            )
            missing.update(refused.values())
        out.append(
            RegionEstimate(
                region=region,
                people=people,
                checked=len(ids),
                allowed=len(candidates) - sum(missing.values()),
                refused_consent=sum(missing.values()),
                blocked=len(blocked),
                missing=missing,
            )
        )
    return out
