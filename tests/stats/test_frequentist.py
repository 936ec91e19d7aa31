"""Fixed-horizon Welch t-test (``_frequentist``)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from kameleoon_server.stats import (
    Alternative,
    DifferenceType,
    ErrorCode,
    FrequentistSettings,
    MeanSums,
    ProportionSums,
    welch_t_test,
)

from ._support import arm_pairs, assert_no_nan, assert_ref, mean_sums, realistic_pairs

A = MeanSums(n=3407, sum=1396.87, sum_squares=52377.9767)
B = MeanSums(n=3461, sum=2422.7, sum_squares=134698.29)
A_3000 = MeanSums(n=3000, sum=1396.87, sum_squares=52377.9767)
ABS = DifferenceType.ABSOLUTE


def _check(result, effect, se, lower, upper, p):
    assert result.error is None
    assert_ref(result.effect, effect)
    assert_ref(result.standard_error, se)
    assert_ref(result.ci_lower, lower)
    assert_ref(result.ci_upper, upper)
    assert_ref(result.p_value, p)


def test_reference_mean_relative():
    """stats.md section 4: mean metric, relative."""
    _check(welch_t_test(A, B), "0.70732", "0.37879", "-0.03526", "1.44989", "0.06191")


def test_reference_mean_absolute():
    """stats.md section 4: same data, absolute."""
    r = welch_t_test(A, B, FrequentistSettings(difference=ABS))
    _check(r, "0.29", "0.12478", "0.04538", "0.53462", "0.02016")
    assert_ref(r.p_value, "0.020158")


def test_reference_proportion_relative():
    """stats.md section 4: proportions 14/28 vs 16/30, relative."""
    r = welch_t_test(ProportionSums(28, 14), ProportionSums(30, 16))
    _check(r, "0.06667", "0.2717", "-0.47767", "0.61101", "0.80707")


def test_reference_one_sided_greater():
    """stats.md section 4: one-sided greater, relative."""
    r = welch_t_test(A_3000, B, FrequentistSettings(alternative=Alternative.GREATER))
    _check(r, "0.503361", "0.333412", "-0.045137", "inf", "0.065583")


def test_reference_one_sided_greater_absolute():
    """stats.md section 4: one-sided greater, absolute."""
    s = FrequentistSettings(difference=ABS, alternative=Alternative.GREATER)
    _check(welch_t_test(A_3000, B, s), "0.234377", "0.129831", "0.020791", "inf", "0.035543")


def test_reference_one_sided_lesser():
    """stats.md section 4: one-sided lesser, relative."""
    r = welch_t_test(A_3000, B, FrequentistSettings(alternative=Alternative.LESS))
    _check(r, "0.503361", "0.333412", "-inf", "1.051859", "0.934417")


def test_absolute_test_equals_scipy_welch():
    """The absolute two-sided test is scipy's ttest_ind_from_stats(equal_var=False)."""
    rng = np.random.default_rng(7)
    x, y = rng.exponential(2.0, 150), rng.exponential(2.4, 90)
    r = welch_t_test(mean_sums(x), mean_sums(y), FrequentistSettings(difference=ABS))
    ref = stats.ttest_ind(y, x, equal_var=False)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.effect / r.standard_error == pytest.approx(ref.statistic, rel=1e-9)
    assert r.degrees_of_freedom == pytest.approx(ref.df, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (r.ci_lower, r.ci_upper) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 10_000),
    st.integers(2, 10_000),
    st.floats(-100, 100),
    st.floats(-100, 100),
    st.floats(0.01, 50),
    st.floats(0.01, 50),
)
def test_absolute_test_matches_scipy_from_stats(n_a, n_b, mean_a, mean_b, sd_a, sd_b):
    """For any summary statistics the p-value equals scipy's Welch test."""
    a = MeanSums(n_a, mean_a * n_a, (sd_a**2 * (n_a - 1) + mean_a**2 * n_a))
    b = MeanSums(n_b, mean_b * n_b, (sd_b**2 * (n_b - 1) + mean_b**2 * n_b))
    r = welch_t_test(a, b, FrequentistSettings(difference=ABS))
    ref = stats.ttest_ind_from_stats(mean_b, sd_b, n_b, mean_a, sd_a, n_a, equal_var=False)
    assert r.error is None
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)


def test_one_sided_p_values_split_the_two_sided_one():
    """greater + less = 1 and the smaller one is half the two-sided p-value."""
    two = welch_t_test(A_3000, B).p_value
    greater = welch_t_test(A_3000, B, FrequentistSettings(alternative=Alternative.GREATER)).p_value
    less = welch_t_test(A_3000, B, FrequentistSettings(alternative=Alternative.LESS)).p_value
    assert greater + less == pytest.approx(1.0)
    assert min(greater, less) == pytest.approx(two / 2)


def test_alpha_changes_the_interval_width():
    """A smaller alpha gives a wider interval around the same estimate."""
    narrow = welch_t_test(A, B, FrequentistSettings(alpha=0.2))
    wide = welch_t_test(A, B, FrequentistSettings(alpha=0.01))
    assert wide.ci_lower < narrow.ci_lower < narrow.effect < narrow.ci_upper < wide.ci_upper


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.5, math.nan])
def test_invalid_alpha_is_rejected_at_construction(alpha):
    """Settings validate themselves; the tests never see a bad alpha."""
    with pytest.raises(ValueError, match="alpha"):
        FrequentistSettings(alpha=alpha)


@pytest.mark.parametrize(
    ("a", "code"),
    [
        (MeanSums(0, 0, 0), ErrorCode.EMPTY_ARM),
        (MeanSums(1, 1, 1), ErrorCode.TOO_FEW_UNITS),
        (MeanSums(5, 10, 20), ErrorCode.ZERO_VARIANCE),
        (MeanSums(5, 0, 20), ErrorCode.ZERO_CONTROL_MEAN),
        (MeanSums(5, math.inf, 20), ErrorCode.NON_FINITE_INPUT),
    ],
)
def test_degenerate_cases_return_p_one_and_zero_interval(a, code):
    """Default output: effect 0, p = 1, interval (0, 0), with the error code."""
    for alternative in Alternative:
        r = welch_t_test(a, B, FrequentistSettings(alternative=alternative))
        assert r.error == code
        assert (r.effect, r.p_value, r.ci_lower, r.ci_upper) == (0.0, 1.0, 0.0, 0.0)


@settings(max_examples=300, deadline=None)
@given(arm_pairs(), st.sampled_from(list(Alternative)), st.sampled_from(list(DifferenceType)))
def test_arbitrary_inputs_give_valid_results(pair, alternative, difference):
    """No exception, no NaN, p in [0, 1], and the interval contains the estimate."""
    r = welch_t_test(*pair, FrequentistSettings(difference=difference, alternative=alternative))
    assert_no_nan(r)
    assert 0.0 <= r.p_value <= 1.0
    assert r.ci_lower <= r.effect <= r.ci_upper


@settings(deadline=None)
@given(realistic_pairs(), st.sampled_from(list(Alternative)))
def test_realistic_inputs_give_valid_results(pair, alternative):
    """Simulated data: p in [0, 1], interval contains the estimate, finite standard error."""
    r = welch_t_test(*pair, FrequentistSettings(alternative=alternative))
    assert 0.0 <= r.p_value <= 1.0
    assert r.ci_lower <= r.effect <= r.ci_upper
    assert math.isfinite(r.standard_error)


def test_settings_accept_enum_values_as_strings():
    """Strings from a JSON request select the same test as the enum members."""
    s = FrequentistSettings(difference="absolute", alternative="greater")
    assert s.difference is DifferenceType.ABSOLUTE and s.alternative is Alternative.GREATER
    assert welch_t_test(A_3000, B, s) == welch_t_test(
        A_3000, B, FrequentistSettings(difference=ABS, alternative=Alternative.GREATER)
    )
    with pytest.raises(ValueError, match="relativ"):
        FrequentistSettings(difference="relativ")
