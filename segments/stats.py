"""The statistics of the lift report, from aggregates only (counts, sums, sums of squares,
histograms); no subject-level data ever reaches this module.

Formulas (docs/segments.md, "Lift against a control group"):

* sample ratio mismatch: chi-square goodness of fit of the arm counts against the configured
  control share (1 degree of freedom), p-value ``erfc(sqrt(chi2 / 2))``;
* absolute lift ``p_t - p_c`` with the 95% interval
  ``+- 1.96 * sqrt(p_t(1-p_t)/n_t + p_c(1-p_c)/n_c)``;
* relative lift ``(p_t - p_c) / p_c`` with the delta-method 95% interval, variance
  ``p_t(1-p_t)/(n_t p_c^2) + p_t^2 p_c(1-p_c)/(n_c p_c^4)``;
* difference of means with Welch's 95% interval (Welch-Satterthwaite degrees of freedom,
  Student's t quantile computed here, checked against scipy in the tests);
* the median of a histogram of whole days, as ``statistics.median`` gives on the raw values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the 0.975 quantile of the standard normal


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval (``low``, ``high``)."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict:
        return {"value": self.value, "ci": [self.low, self.high]}


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of one arm's values."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1 in the denominator); None below two values."""
        if self.n < 2:
            return None
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


def srm_test(*, treatment: int, control: int, control_share: float) -> tuple[float, float]:
    """Chi-square goodness of fit of the arm counts against ``control_share``:
    ``(chi2, p_value)``; ``(0.0, 1.0)`` when there is nothing to test."""
    n = treatment + control
    if n == 0 or not 0 < control_share < 1:
        return 0.0, 1.0
    expected_c = n * control_share
    expected_t = n - expected_c
    chi2 = (control - expected_c) ** 2 / expected_c + (treatment - expected_t) ** 2 / expected_t
    return chi2, math.erfc(math.sqrt(chi2 / 2))


def absolute_lift(*, conv_t: int, n_t: int, conv_c: int, n_c: int) -> Estimate | None:
    """``p_t - p_c`` with its normal 95% interval; None when an arm is empty."""
    if not n_t or not n_c:
        return None
    p_t, p_c = conv_t / n_t, conv_c / n_c
    half = Z_95 * math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    diff = p_t - p_c
    return Estimate(diff, diff - half, diff + half)


def relative_lift(*, conv_t: int, n_t: int, conv_c: int, n_c: int) -> Estimate | None:
    """``(p_t - p_c) / p_c`` with the delta-method 95% interval; None when an arm is empty
    or the control never converted (the ratio is undefined)."""
    if not n_t or not n_c or not conv_c:
        return None
    p_t, p_c = conv_t / n_t, conv_c / n_c
    variance = p_t * (1 - p_t) / (n_t * p_c**2) + p_t**2 * p_c * (1 - p_c) / (n_c * p_c**4)
    half = Z_95 * math.sqrt(variance)
    ratio = (p_t - p_c) / p_c
    return Estimate(ratio, ratio - half, ratio + half)


def welch_difference(*, treatment: Moments, control: Moments) -> Estimate | None:
    """``mean_t - mean_c`` with Welch's 95% interval; None below two values per arm."""
    var_t, var_c = treatment.variance, control.variance
    if var_t is None or var_c is None:
        return None
    diff = treatment.mean - control.mean
    a, b = var_t / treatment.n, var_c / control.n
    se = math.sqrt(a + b)
    if se == 0:
        return Estimate(diff, diff, diff)
    df = (a + b) ** 2 / (a * a / (treatment.n - 1) + b * b / (control.n - 1))
    half = t_quantile(0.975, df) * se
    return Estimate(diff, diff - half, diff + half)


def histogram_median(histogram: Mapping[int, int]) -> float | None:
    """The median of the values a ``{value: count}`` histogram holds (the mean of the two
    middle values when their number is even, as ``statistics.median``); None when empty."""
    n = sum(histogram.values())
    if n == 0:
        return None
    lower_rank, upper_rank = (n - 1) // 2, n // 2  # 0-based ranks of the middle value(s)
    lower = upper = None
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if lower is None and seen > lower_rank:
            lower = value
        if seen > upper_rank:
            upper = value
            break
    return (lower + upper) / 2


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` (real, > 0) degrees of freedom, by
    bisection on the distribution function (accurate to 1e-10)."""
    if not 0 < p < 1 or df <= 0:
        raise ValueError("t_quantile needs 0 < p < 1 and df > 0")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if _t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return (low + high) / 2


def _t_cdf(t: float, df: float) -> float:
    """Student's t distribution function for ``t >= 0``."""
    x = df / (df + t * t)
    return 1 - 0.5 * _betainc(df / 2, 0.5, x)


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (continued fraction, Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return result
