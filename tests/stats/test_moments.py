"""Per-arm moments and input validation of ``_moments``."""

import math

import numpy as np
import pytest

from kameleoon_server.stats import (
    CupedSums,
    ErrorCode,
    MeanSums,
    ProportionSums,
    RatioSums,
    summarize,
)
from kameleoon_server.stats._moments import (
    component_variance,
    covariance,
    delta_ratio_variance,
    validate_pair,
)

from ._support import mean_sums, ratio_sums


def test_mean_and_sample_variance_match_numpy():
    """Mean is S/n and variance the n-1 sample variance of the unit values."""
    x = np.random.default_rng(1).normal(3.0, 2.0, 500)
    s = summarize(mean_sums(x))
    assert s.mean == pytest.approx(x.mean(), rel=1e-12)
    assert s.variance == pytest.approx(x.var(ddof=1), rel=1e-9)
    assert s.unadjusted_mean == s.mean


def test_proportion_variance_is_unpooled_p_times_one_minus_p():
    """A proportion's per-unit variance is p(1 - p), not the n-1 sample variance."""
    assert summarize(ProportionSums(n=100, sum=49)).variance == pytest.approx(0.49 * 0.51)


@pytest.mark.parametrize("n", [0.0, 1.0])
def test_mean_variance_is_zero_without_two_units(n):
    """Fewer than two units give variance 0 (never a division by zero)."""
    assert component_variance(MeanSums(n=n, sum=n * 3.0, sum_squares=n * 9.0)) == 0.0


def test_empty_component_has_zero_mean():
    """n = 0 gives mean 0."""
    assert summarize(MeanSums(0, 0, 0)).mean == 0.0
    assert summarize(ProportionSums(0, 0)).mean == 0.0


def test_covariance_matches_numpy():
    """Covariance from sums equals numpy's n-1 covariance."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=300)
    y = 2 * x + rng.normal(size=300)
    got = covariance(300, mean_sums(x), mean_sums(y), float((x * y).sum()))
    assert got == pytest.approx(np.cov(x, y)[0, 1], rel=1e-9)


def test_covariance_of_two_proportions_uses_n_denominator():
    """For two 0/1 variables the covariance is Sxy/n - Sx Sy / n^2."""
    a, b = ProportionSums(10, 4), ProportionSums(10, 5)
    assert covariance(10, a, b, 3) == pytest.approx(3 / 10 - 4 * 5 / 100)


def test_ratio_summary_uses_ratio_of_sums_and_delta_variance():
    """Ratio mean is sum(M)/sum(D); variance follows the delta method on numpy moments."""
    rng = np.random.default_rng(3)
    d = rng.integers(1, 6, 1000).astype(float)
    m = d * rng.gamma(2.0, 10.0, 1000)
    s = summarize(ratio_sums(m, d))
    assert s.mean == pytest.approx(m.sum() / d.sum(), rel=1e-12)
    cov = np.cov(m, d)
    r = m.mean() / d.mean()
    expected = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / d.mean() ** 2
    assert s.variance == pytest.approx(expected, rel=1e-9)


def test_ratio_delta_variance_matches_sampling_variance():
    """Variance/n approximates the repeated-sampling variance of the ratio (Monte Carlo)."""
    rng = np.random.default_rng(4)
    n, reps = 400, 2000
    d = rng.integers(1, 6, (reps, n)).astype(float)
    m = d * rng.gamma(2.0, 10.0, (reps, n)) + rng.normal(0, 5, (reps, n))
    ratios = m.sum(axis=1) / d.sum(axis=1)
    predicted = summarize(ratio_sums(m[0], d[0])).variance / n
    assert predicted == pytest.approx(ratios.var(), rel=0.15)


def test_ratio_with_zero_denominator_is_degenerate_not_an_error():
    """A zero denominator sum gives mean 0 and variance 0."""
    s = summarize(RatioSums(5, MeanSums(5, 3, 3), MeanSums(5, 0, 0), 0))
    assert (s.mean, s.variance) == (0.0, 0.0)


def test_delta_ratio_variance_with_zero_mean_denominator_is_zero():
    """The generic delta method returns 0 instead of dividing by zero."""
    assert delta_ratio_variance(1.0, 1.0, 0.0, 1.0, 0.0) == 0.0


@pytest.mark.parametrize(
    ("a", "b", "code"),
    [
        (MeanSums(10, math.nan, 1), MeanSums(10, 1, 1), ErrorCode.NON_FINITE_INPUT),
        (MeanSums(10, 1, 1), MeanSums(math.inf, 1, 1), ErrorCode.NON_FINITE_INPUT),
        (MeanSums(10, 1, 1), ProportionSums(10, 1), ErrorCode.INVALID_INPUT),
        (MeanSums(-1, 1, 1), MeanSums(10, 1, 1), ErrorCode.INVALID_INPUT),
        (ProportionSums(10, 11), ProportionSums(10, 1), ErrorCode.INVALID_INPUT),
        (ProportionSums(10, -1), ProportionSums(10, 1), ErrorCode.INVALID_INPUT),
        (
            CupedSums(10, MeanSums(10, 1, 1), MeanSums(10, 1, 1), 1),
            CupedSums(10, MeanSums(10, 1, 1), ProportionSums(10, 1), 1),
            ErrorCode.INVALID_INPUT,
        ),
        (MeanSums(10, 1, 1), MeanSums(10, 1, 1), None),
    ],
)
def test_validate_pair(a, b, code):
    """Non-finite numbers, bad counts and mismatched shapes are reported; good input passes."""
    assert validate_pair(a, b) == code


def test_validate_pair_flags_unconvertible_numbers():
    """A value that has no float form (e.g. a huge int) counts as non-finite."""
    assert validate_pair(MeanSums(10, 10**400, 1), MeanSums(10, 1, 1)) == ErrorCode.NON_FINITE_INPUT
