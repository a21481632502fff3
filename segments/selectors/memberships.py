"""Read paths over memberships (region databases): history, point-in-time, members."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.db.models import Q, QuerySet

from compliance.models import SubjectDirectory
from compliance.regions import region_alias
from segments.models import SegmentMembership


def subject_region(*, subject_id: UUID) -> str | None:
    """The region holding ``subject_id`` (from the control directory), None if unknown."""
    return (
        SubjectDirectory.objects.filter(subject_id=subject_id)
        .values_list("region", flat=True)
        .first()
    )


def membership_history(
    *, region: str, subject_id: UUID, segment_key: str | None = None
) -> QuerySet:
    """Every stay of ``subject_id`` (optionally in one segment), oldest first."""
    qs = SegmentMembership.objects.using(region_alias(region=region)).filter(subject_id=subject_id)
    if segment_key is not None:
        qs = qs.filter(segment_key=segment_key)
    return qs.order_by("entered_at", "id")


def membership_at(
    *, region: str, subject_id: UUID, segment_key: str, at: datetime
) -> SegmentMembership | None:
    """The stay covering time ``at`` ("was X in S at T"): entered at or before ``at`` and not
    exited by then. ``None`` means not a member at ``at`` (or the history was erased)."""
    return (
        membership_history(region=region, subject_id=subject_id, segment_key=segment_key)
        .filter(entered_at__lte=at)
        .filter(Q(exited_at__isnull=True) | Q(exited_at__gt=at))
        .last()
    )


def segment_members(*, region: str, segment_key: str) -> QuerySet:
    """Active memberships of a segment in one region, in entry order."""
    return (
        SegmentMembership.objects.using(region_alias(region=region))
        .filter(segment_key=segment_key, exited_at__isnull=True)
        .order_by("id")
    )
