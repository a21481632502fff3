"""Read paths over segment definitions (control database)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from django.db.models import Count
from django.utils import timezone

from compliance.regions import region_alias, regions
from segments.models import Segment, SegmentMembership, Status

REVIEWED_STATUSES = (Status.APPROVED, Status.ACTIVE, Status.PAUSED)


def segment_review_due(*, segment: Segment, now: datetime | None = None) -> bool:
    """True when ``segment`` (approved, active or paused) is past its review date."""
    if segment.status not in REVIEWED_STATUSES:
        return False
    due = segment.review_due_at
    return due is not None and due <= (now or timezone.now())


def segments_review_overdue(
    *, now: datetime | None = None, statuses: Sequence[str] = REVIEWED_STATUSES
) -> list[Segment]:
    """Segments of ``statuses`` past their review date (computed in Python: few rows)."""
    now = now or timezone.now()
    candidates = Segment.objects.filter(status__in=list(statuses)).order_by("key")
    return [s for s in candidates if segment_review_due(segment=s, now=now)]


def active_segments_per_motion() -> dict[str, list[str]]:
    """Motion -> keys of its active segments."""
    out: dict[str, list[str]] = {}
    for key, motion in Segment.objects.filter(status=Status.ACTIVE).values_list("key", "motion"):
        out.setdefault(motion, []).append(key)
    return out


def segment_member_counts(*, keys: Sequence[str]) -> dict[str, Counter]:
    """Segment key -> Counter(region -> active members): one grouped query per region."""
    counts: dict[str, Counter] = {key: Counter() for key in keys}
    for region in regions():
        rows = (
            SegmentMembership.objects.using(region_alias(region=region))
            .filter(segment_key__in=list(keys), exited_at__isnull=True)
            .values("segment_key")
            .annotate(n=Count("id"))
        )
        for row in rows:
            counts[row["segment_key"]][region] = row["n"]
    return counts


def segments_requiring(*, purposes: Sequence[str]) -> list[str]:
    """Keys of segments (any status) whose required purposes include any of ``purposes``."""
    wanted = set(purposes)
    return [
        key
        for key, required in Segment.objects.values_list("key", "required_purposes")
        if wanted.intersection(required or [])
    ]
