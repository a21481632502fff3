"""The lift report of a segment, read from the control database's aggregates (``LiftAggregate``).

``lift_report(segment=, window_days=, period=)`` sums every region's aggregates of the period
(``all`` stays, or ``since_review``: those that entered since the last review) and reports for
each arm: ``units`` (stays),
``conversions`` (stays whose first conversion came less than ``window_days`` days after entry),
``conversion_rate``, ``valued_conversions`` and ``mean_value`` (of the conversions that carried
a value: the deal size; computed for the segment's own window only), ``median_cycle_days`` (whole days from entry to conversion); and the
comparison: ``absolute_lift`` and ``relative_lift`` with their 95% intervals, the Welch interval
of the mean value difference, the sample-ratio-mismatch test, and warnings. Formulas:
``segments.stats`` and docs/segments.md. Lift figures are ``None`` below ``min_units`` per arm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compliance.errors import InputError
from segments import stats
from segments.models import Arm, LiftAggregate, LiftComputation, LiftPeriod, Segment
from segments.services.lift import lift_horizon

#: units per arm below which the report says "not enough data" instead of a lift
MIN_UNITS = 100
#: sample ratio mismatch is flagged below this p-value
SRM_ALPHA = 0.001
#: a control share under this is too small to measure anything useful
LOW_CONTROL_SHARE = 0.01


class LiftInputError(InputError):
    """A report parameter out of range; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


@dataclass
class _Arm:
    units: int = 0
    matured: int = 0
    conversions: int = 0
    values: list[float] = field(default_factory=lambda: [0, 0.0, 0.0])  # n, sum, sum of squares
    values_for_window: bool = True
    values_withheld: bool = False
    cycles: dict[int, int] = field(default_factory=dict)

    def add(self, row: LiftAggregate, *, window: int) -> None:
        self.units += row.units
        self.matured += sum(n for age, n in row.ages.items() if int(age) >= window)
        for day, count in row.cycles.items():
            if int(day) < window:
                self.conversions += count
                self.cycles[int(day)] = self.cycles.get(int(day), 0) + count
        if row.value_window_days != window:
            self.values_for_window = False
            return
        if row.valued is None:  # under MIN_VALUED values in that region: kept out
            self.values_withheld = self.values_withheld or bool(row.cycles)
            return
        self.values[0] += row.valued
        self.values[1] += row.value_sum
        self.values[2] += row.value_sum_squares

    @property
    def moments(self) -> stats.Moments | None:
        if not self.values_for_window or not self.values[0]:
            return None
        return stats.Moments(int(self.values[0]), self.values[1], self.values[2])

    def curve(self, window: int) -> list[float]:
        """Cumulative conversion rate after 1..window days from entry."""
        rates, seen = [], 0
        for day in range(window):
            seen += self.cycles.get(day, 0)
            rates.append(seen / self.units if self.units else 0.0)
        return rates

    def as_dict(self, window: int) -> dict:
        moments = self.moments
        return {
            "units": self.units,
            "conversions": self.conversions,
            "conversion_rate": self.conversions / self.units if self.units else None,
            "valued_conversions": moments.n if moments else None,
            "mean_value": moments.mean if moments else None,
            "median_cycle_days": stats.histogram_median(self.cycles),
            "cumulative_conversion_rate": self.curve(window),
        }


def lift_report(
    *,
    segment: Segment,
    window_days: int | None = None,
    period: str = LiftPeriod.ALL,
    min_units: int = MIN_UNITS,
) -> dict:
    """The report (see the module). Raises ``LiftInputError`` for a window outside
    ``1..horizon`` or an unknown period."""
    window = segment.attribution_window_days if window_days is None else window_days
    runs = list(LiftComputation.objects.filter(segment_key=segment.key).order_by("region"))
    horizon = min((r.horizon_days for r in runs), default=lift_horizon(segment=segment))
    if not 1 <= window <= horizon:
        raise LiftInputError("window_days", f"window_days must be between 1 and {horizon}")
    if period not in LiftPeriod.values:
        raise LiftInputError("period", f"period must be one of {', '.join(LiftPeriod.values)}")
    arms = {Arm.TREATMENT: _Arm(), Arm.CONTROL: _Arm()}
    rows = LiftAggregate.objects.filter(segment_key=segment.key, period=period)
    since = None
    for row in rows:
        arms[row.arm].add(row, window=window)
        since = since or row.since
    share = float(segment.control_group_share or 0)
    report = {
        "segment": segment.key,
        "window_days": window,
        "period": period,
        "since": since,
        "computed_at": min((r.computed_at for r in runs), default=None),
        "regions": [r.region for r in runs],
        "conversion_event": segment.conversion_event,
        "value_property": segment.value_property,
        "control_share": share,
        "min_units": min_units,
        "treatment": arms[Arm.TREATMENT].as_dict(window),
        "control": arms[Arm.CONTROL].as_dict(window),
    }
    report.update(_comparison(arms[Arm.TREATMENT], arms[Arm.CONTROL], share, min_units))
    report["warnings"] = _warnings(report, arms, runs, segment=segment)
    return report


def lift_report_if_computed(*, segment: Segment, period: str = LiftPeriod.ALL) -> dict | None:
    """``lift_report`` of the segment's own window, or ``None`` before any ``lift_compute``
    (or while its window was lengthened past the computed horizon, until the next one)."""
    if not LiftComputation.objects.filter(segment_key=segment.key).exists():
        return None
    try:
        return lift_report(segment=segment, period=period)
    except LiftInputError:
        return None


def lift_reports(*, statuses: tuple[str, ...] = ("active",)) -> list[dict]:
    """The reports (own window, since activation) of every segment in ``statuses`` that has
    been computed, by key, each with the segment's ``name`` and ``status`` added."""
    computed = set(LiftComputation.objects.values_list("segment_key", flat=True))
    segments = Segment.objects.filter(status__in=statuses, key__in=computed).order_by("key")
    reports = ((s, lift_report_if_computed(segment=s)) for s in segments)
    return [{**r, "name": s.name, "status": s.status} for s, r in reports if r is not None]


#: the figures ``lift_figures`` keeps, per arm and for the comparison
ARM_FIGURES = ("units", "conversions", "conversion_rate")
FIGURES = (
    "enough_data",
    "absolute_lift",
    "absolute_lift_ci",
    "relative_lift",
    "relative_lift_ci",
    "srm_p_value",
    "srm_flag",
)


def _plain(value):
    """JSON and audit-payload safe: floats as 6-decimal strings (payloads hash no floats),
    datetimes as ISO 8601."""
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def lift_figures(report: dict) -> dict:
    """The figures a decision or an evidence report keeps of a ``lift_report``: period, since,
    computed_at, window, units, conversions and rate per arm, absolute and relative lift with
    their intervals, the SRM p-value and flag. Aggregates only; floats become strings."""
    out = {k: _plain(report[k]) for k in ("period", "since", "computed_at", "window_days")}
    for arm in (Arm.TREATMENT, Arm.CONTROL):
        out[arm] = {k: _plain(report[arm][k]) for k in ARM_FIGURES}
    out.update({k: _plain(report[k]) for k in FIGURES})
    return out


def _comparison(t: _Arm, c: _Arm, share: float, min_units: int) -> dict:
    chi2, p_value = stats.srm_test(treatment=t.units, control=c.units, control_share=share)
    enough = t.units >= min_units and c.units >= min_units
    counts = {"conv_t": t.conversions, "n_t": t.units, "conv_c": c.conversions, "n_c": c.units}
    absolute = stats.absolute_lift(**counts) if enough else None
    relative = stats.relative_lift(**counts) if enough else None
    known = enough and t.moments is not None and c.moments is not None
    value = stats.welch_difference(treatment=t.moments, control=c.moments) if known else None
    return {
        "enough_data": enough,
        "absolute_lift": absolute.value if absolute else None,
        "absolute_lift_ci": [absolute.low, absolute.high] if absolute else None,
        "relative_lift": relative.value if relative else None,
        "relative_lift_ci": [relative.low, relative.high] if relative else None,
        "mean_value_difference": value.value if value else None,
        "mean_value_difference_ci": [value.low, value.high] if value else None,
        "srm_chi2": chi2,
        "srm_p_value": p_value,
        "srm_flag": bool(t.units + c.units) and p_value < SRM_ALPHA,
    }


def _warnings(
    report: dict, arms: dict[str, _Arm], runs: list[LiftComputation], *, segment: Segment
) -> list[dict]:
    out: list[dict] = []

    def warn(code: str, message: str) -> None:
        out.append({"code": code, "message": message})

    if not runs:
        warn("not_computed", "no region has computed this segment's lift yet (lift_compute)")
    if not report["conversion_event"]:
        warn("no_conversion_event", "the segment names no conversion_event: nothing converts")
    if not report["enough_data"]:
        warn("not_enough_data", f"fewer than {report['min_units']} units in an arm")
    if report["control_share"] < LOW_CONTROL_SHARE:
        warn("low_control_share", "the control share is under 1%: lift cannot be measured")
    units = sum(a.units for a in arms.values())
    if units and sum(a.matured for a in arms.values()) * 2 < units:
        warn("window_not_elapsed", "the attribution window has not elapsed for most stays")
    if report["window_days"] != segment.attribution_window_days:
        warn(
            "values_for_own_window",
            f"values are kept for the segment's window ({segment.attribution_window_days} days)"
            " only",
        )
    if any(a.values_withheld for a in arms.values()):
        warn("values_withheld", "a region with fewer than 5 values kept them out of the means")
    if report["srm_flag"]:
        warn("sample_ratio_mismatch", "arm sizes do not match the control share (p < 0.001)")
    return out
