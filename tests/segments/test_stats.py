"""The lift statistics against values computed independently (scipy, statistics)."""

import random
import statistics

import pytest

from segments import stats

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("df", [1, 2.5, 4, 10, 29.7, 100, 1000, 1e6])
@pytest.mark.parametrize("p", [0.5, 0.8, 0.975, 0.995, 0.025])
def test_t_quantile_matches_scipy(p, df):
    assert stats.t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-8, abs=1e-9)


def test_t_quantile_refuses_nonsense():
    with pytest.raises(ValueError):
        stats.t_quantile(1.0, 10)
    with pytest.raises(ValueError):
        stats.t_quantile(0.9, 0)


@pytest.mark.parametrize(
    "treatment,control,share",
    [(9000, 1000, 0.1), (9100, 900, 0.1), (9400, 600, 0.1), (500, 500, 0.5), (10, 0, 0.2)],
)
def test_srm_matches_scipy_chisquare(treatment, control, share):
    n = treatment + control
    expected = [n * (1 - share), n * share]
    want = scipy_stats.chisquare([treatment, control], expected)
    chi2, p = stats.srm_test(treatment=treatment, control=control, control_share=share)
    assert chi2 == pytest.approx(want.statistic, rel=1e-12)
    assert p == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)


def test_srm_flags_a_broken_split_and_not_a_fair_one():
    assert stats.srm_test(treatment=9400, control=600, control_share=0.1)[1] < 0.001
    assert stats.srm_test(treatment=9010, control=990, control_share=0.1)[1] > 0.001


def test_absolute_and_relative_lift_by_hand():
    n_t, conv_t, n_c, conv_c = 8000, 960, 2000, 200
    p_t, p_c = conv_t / n_t, conv_c / n_c
    se = (p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c) ** 0.5
    z = statistics.NormalDist().inv_cdf(0.975)
    got = stats.absolute_lift(conv_t=conv_t, n_t=n_t, conv_c=conv_c, n_c=n_c)
    assert got.value == pytest.approx(0.02)
    assert (got.low, got.high) == pytest.approx((0.02 - z * se, 0.02 + z * se))
    rel = stats.relative_lift(conv_t=conv_t, n_t=n_t, conv_c=conv_c, n_c=n_c)
    var = p_t * (1 - p_t) / (n_t * p_c**2) + p_t**2 * p_c * (1 - p_c) / (n_c * p_c**4)
    assert rel.value == pytest.approx(0.2)
    assert (rel.low, rel.high) == pytest.approx((0.2 - z * var**0.5, 0.2 + z * var**0.5))


def test_lift_undefined_cases():
    assert stats.absolute_lift(conv_t=1, n_t=10, conv_c=0, n_c=0) is None
    assert stats.relative_lift(conv_t=1, n_t=10, conv_c=0, n_c=10) is None


def test_welch_matches_scipy_on_random_samples():
    rng = random.Random(7)
    treatment = [rng.lognormvariate(8.1, 0.6) for _ in range(400)]
    control = [rng.lognormvariate(8.0, 0.9) for _ in range(90)]

    def moments(values):
        return stats.Moments(len(values), sum(values), sum(v * v for v in values))

    got = stats.welch_difference(treatment=moments(treatment), control=moments(control))
    want = scipy_stats.ttest_ind(treatment, control, equal_var=False).confidence_interval(0.95)
    assert got.value == pytest.approx(statistics.mean(treatment) - statistics.mean(control))
    assert (got.low, got.high) == pytest.approx((want.low, want.high), rel=1e-7)


def test_welch_needs_two_values_per_arm():
    one = stats.Moments(1, 5.0, 25.0)
    two = stats.Moments(2, 3.0, 5.0)
    assert stats.welch_difference(treatment=two, control=one) is None


@pytest.mark.parametrize("seed", range(6))
def test_histogram_median_is_statistics_median(seed):
    rng = random.Random(seed)
    values = [rng.randrange(0, 90) for _ in range(rng.randrange(1, 60))]
    histogram: dict[int, int] = {}
    for v in values:
        histogram[v] = histogram.get(v, 0) + 1
    assert stats.histogram_median(histogram) == statistics.median(values)
    assert stats.histogram_median({}) is None
