"""Lift aggregates: computed in a region from its stays and events, stored in the control
database as counts and sums only (``LiftAggregate``), never a subject, an event or one
person's value.

``lift_compute(region=, segment=)`` reads the region's stays of the segment and its events
named ``segment.conversion_event`` that were ingested for the ``measurement`` purpose (ingest
checked consent for that purpose: nothing consent did not allow is counted). A stay's first
such event after its entry and less than ``horizon`` days later is its conversion: the whole
days from entry to it (the cycle length) and, when the segment names a ``value_property`` and
the event carries a finite number there, its value (intent to treat: a conversion after the
stay ended still counts, the stay was exposed). Per arm and period (all stays, and those that
entered since the segment's last review) it stores: units, entry ages, the histogram of
cycle lengths, and the count, sum and sum of squares of the values within the segment's
attribution window (left empty under ``MIN_VALUED`` values). The region's previous
aggregates of the segment are replaced in one transaction of the control database.

Runs in the region's worker (``segments.lift_compute`` task; hourly by beat once arms are
assigned on entry, issue #17) or in
``manage.py lift_compute``. Cost: the segment's stays counted per arm and entry day in SQL,
the conversion events and the stays of the subjects that have one read once, one decryption
per conversion that counts (values only).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from uuid import UUID

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from compliance import crypto
from compliance.events.services.ingest import properties_aad
from compliance.regions import region_alias
from segments.models import (
    Arm,
    LiftAggregate,
    LiftComputation,
    LiftPeriod,
    Segment,
    SegmentMembership,
    Status,
)
from segments.sql import lift_first_conversions

#: days after entry for which conversions are kept; any window up to it is a sum over days
HORIZON_DAYS = 365
#: fewer valued conversions than this in an aggregate: no value sums are stored
MIN_VALUED = 5
MEASUREMENT = "measurement"
_CHUNK = 5_000
_DAY = 86_400.0


@dataclass
class _Cell:
    """What one (period, arm) aggregate accumulates before it is stored."""

    units: int = 0
    ages: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    cycles: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    values: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Conversion:
    arm: str
    entered_on: date
    day: int
    value: float | None


def lift_segments(*, segment_key: str | None = None) -> list[Segment]:
    """The segments whose lift is computed: activated at least once (a holdout salt was
    drawn) and not retired; or the one named ``segment_key`` (``Segment.DoesNotExist``)."""
    if segment_key is not None:
        return [Segment.objects.get(key=segment_key)]
    return list(
        Segment.objects.exclude(holdout_salt="").exclude(status=Status.RETIRED).order_by("key")
    )


def lift_compute_region(*, region: str, segment_key: str | None = None) -> list[LiftComputation]:
    """``lift_compute`` for every measured segment (or the one named) in ``region``."""
    return [
        lift_compute(region=region, segment=segment)
        for segment in lift_segments(segment_key=segment_key)
    ]


def lift_horizon(*, segment: Segment) -> int:
    """Days of conversions kept for ``segment``: its window or ``HORIZON_DAYS``, the larger."""
    return max(segment.attribution_window_days, HORIZON_DAYS)


def lift_compute(*, region: str, segment: Segment) -> LiftComputation:
    """Compute and store the region's lift aggregates of ``segment`` (see the module)."""
    alias = region_alias(region=region)
    now = timezone.now()
    horizon = lift_horizon(segment=segment)
    since = segment.last_reviewed_at
    periods = {LiftPeriod.ALL: None, LiftPeriod.SINCE_REVIEW: since}
    cells = {(p, arm): _Cell() for p in periods for arm in Arm.values}
    stays = SegmentMembership.objects.using(alias).filter(segment_key=segment.key)
    rows = (
        stays.annotate(day=TruncDate("entered_at", tzinfo=UTC))  # as the SQL of conversions
        .values("arm", "day")
        .annotate(n=Count("id"))
        .values_list("arm", "day", "n")
    )
    for arm, day, n in rows:
        for period, start in periods.items():
            if start is None or day >= start.date():
                # a review mid-day: that day's stays count as after it (whole days)
                cell = cells[(period, arm)]
                cell.units += n
                cell.ages[(now.date() - day).days] += n
    conversions = (
        _conversions(alias=alias, segment=segment, horizon=horizon)
        if segment.conversion_event
        else []
    )
    for conversion in conversions:
        for period, start in periods.items():
            if start is None or conversion.entered_on >= start.date():
                cell = cells[(period, conversion.arm)]
                cell.cycles[conversion.day] += 1
                if conversion.value is not None:
                    cell.values.append(conversion.value)
    return _store(
        region=region,
        segment=segment,
        horizon=horizon,
        now=now,
        periods=periods,
        cells=cells,
        converted=len(conversions),
    )


def _conversions(*, alias: str, segment: Segment, horizon: int) -> list[_Conversion]:
    """The first conversion of each stay that has one within ``horizon`` days, with its
    value when the segment has a ``value_property`` and it falls within the window."""
    window = segment.attribution_window_days
    with_values = bool(segment.value_property)
    found: list[_Conversion] = []
    keys: dict[UUID, bytes | None] = {}
    for arm, entered, day, _event_id, subject_id, *sealed in lift_first_conversions(
        alias=alias,
        segment_key=segment.key,
        event_name=segment.conversion_event,
        purpose=MEASUREMENT,
        with_values=with_values,
    ):
        if day >= horizon:
            continue
        value = None
        if with_values and day < window:
            region, wrapped, blob = sealed
            if subject_id not in keys:
                keys[subject_id] = _unwrap(region=region, subject_id=subject_id, wrapped=wrapped)
            value = _value(
                key=keys[subject_id],
                subject_id=subject_id,
                ciphertext=blob,
                name=segment.value_property,
            )
        found.append(_Conversion(arm, date.fromisoformat(entered), day, value))
    return found


def _unwrap(*, region: str, subject_id: UUID, wrapped) -> bytes | None:
    """The subject's data key; None when erased (no key) or when it does not open."""
    if wrapped is None:
        return None
    try:
        return crypto.unwrap_data_key(
            region=region, subject_id=str(subject_id), wrapped=bytes(wrapped)
        )
    except crypto.DecryptionError:
        return None


def _value(*, key: bytes | None, subject_id: UUID, ciphertext, name: str) -> float | None:
    if key is None:
        return None
    try:
        plaintext = crypto.decrypt(
            data_key=key, ciphertext=bytes(ciphertext), aad=properties_aad(subject_id=subject_id)
        )
    except crypto.DecryptionError:
        return None
    value = json.loads(plaintext).get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _store(
    *,
    region: str,
    segment: Segment,
    horizon: int,
    now: datetime,
    periods: dict[str, datetime | None],
    cells: dict[tuple[str, str], _Cell],
    converted: int,
) -> LiftComputation:
    rows = []
    for (period, arm), cell in cells.items():
        enough = len(cell.values) >= MIN_VALUED
        rows.append(
            LiftAggregate(
                segment_key=segment.key,
                region=region,
                period=period,
                since=periods[period],
                arm=arm,
                units=cell.units,
                ages={str(d): n for d, n in sorted(cell.ages.items())},
                cycles={str(d): n for d, n in sorted(cell.cycles.items())},
                value_window_days=segment.attribution_window_days,
                valued=len(cell.values) if enough else None,
                value_sum=math.fsum(cell.values) if enough else None,
                value_sum_squares=math.fsum(v * v for v in cell.values) if enough else None,
            )
        )
    with transaction.atomic(using="default"):
        LiftAggregate.objects.filter(segment_key=segment.key, region=region).delete()
        LiftAggregate.objects.bulk_create(rows)
        run, _ = LiftComputation.objects.update_or_create(
            segment_key=segment.key,
            region=region,
            defaults={
                "computed_at": now,
                "horizon_days": horizon,
                "stays": sum(c.units for (p, _), c in cells.items() if p == LiftPeriod.ALL),
                "conversions": converted,
            },
        )
    return run
