"""Confidence sequences and always-valid p-values (``_sequential``)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kameleoon_server.stats import (
    Alternative,
    CupedSums,
    DifferenceType,
    ErrorCode,
    MeanSums,
    ProportionSums,
    SequentialSettings,
    effect_moments,
    sequential_halfwidth,
    sequential_p_value,
    sequential_rho,
    sequential_test,
    welch_t_test,
)
from kameleoon_server.stats import _sequential as seq_module
from kameleoon_server.stats._sequential import _closed_form_p

from ._support import arm_pairs, assert_no_nan, assert_ref, assert_rel, realistic_pairs
from .test_cuped import UPSTREAM_RATIO_A, UPSTREAM_RATIO_B

A = MeanSums(n=3000, sum=1396.87, sum_squares=52377.9767)
B = MeanSums(n=3461, sum=2422.7, sum_squares=134698.29)
ABS = DifferenceType.ABSOLUTE
GREATER, LESS = Alternative.GREATER, Alternative.LESS


def test_rho_formula():
    """rho = sqrt((-2 ln a + ln(-2 ln a + 1)) / N*), a = alpha or 2 alpha (one-sided)."""
    la = math.log(0.05)
    assert sequential_rho(0.05, 5000) == pytest.approx(math.sqrt((-2 * la + math.log(-2 * la + 1)) / 5000))
    la2 = math.log(0.1)
    assert sequential_rho(0.05, 5000, two_sided=False) == pytest.approx(
        math.sqrt((-2 * la2 + math.log(-2 * la2 + 1)) / 5000)
    )


def test_multiplier_at_the_tuning_point_matches_the_other_parameterisation():
    """At N = N* = 5000 the half-width is 3.0352 SE, as Eppo's form gives at t = N_tune."""
    hw = sequential_halfwidth(1.0, 5000, 0.05, sequential_rho(0.05, 5000))
    c, t = 0.95, 10_000
    rho = t / (math.log(math.log(math.e / (1 - c) ** 2)) - 2 * math.log(1 - c))
    eppo = math.sqrt((t + rho) / t * math.log((t + rho) / (rho * (1 - c) ** 2)))
    assert hw == pytest.approx(3.0352, abs=5e-5)
    assert hw == pytest.approx(eppo, rel=1e-12)


def test_p_value_is_the_inverse_e_value():
    """p = min(1, 1/E), E = exp(rho^2 T^2 / (2(N rho^2 + 1))) / sqrt(N rho^2 + 1)."""
    rho, n, est, se = sequential_rho(0.05, 5000), 6000.0, 0.3, 0.1
    t2 = n * est**2 / se**2
    e = math.exp(rho**2 * t2 / (2 * (n * rho**2 + 1))) / math.sqrt(n * rho**2 + 1)
    assert sequential_p_value(est, se, n, rho) == pytest.approx(1 / e, rel=1e-12)
    assert sequential_p_value(0.01, se, n, rho) == 1.0


def test_p_value_does_not_overflow():
    """Huge evidence gives p = 0.0, not an overflow error."""
    assert sequential_p_value(1e6, 1e-6, 1e6, 0.1) == 0.0


@pytest.mark.parametrize(("tuning", "lower", "upper"), [(1000, "-0.55844", "1.56516")])
def test_reference_two_sided_mean(tuning, lower, upper):
    """Published case: mean metric, N* = 1000."""
    r = sequential_test(A, B, SequentialSettings(tuning=tuning))
    assert_ref(r.effect, "0.50336")
    assert_ref(r.standard_error, "0.33341")
    assert_ref(r.ci_lower, lower)
    assert_ref(r.ci_upper, upper)
    assert r.p_value == 1.0


def test_reference_two_sided_proportion():
    """Published case: proportions 1396/3000 vs 2422/3461, default N* = 5000."""
    r = sequential_test(ProportionSums(3000, 1396), ProportionSums(3461, 2422))
    assert_ref(r.effect, "0.50386")
    assert_ref(r.standard_error, "0.03386")
    assert_ref(r.ci_lower, "0.40098")
    assert_ref(r.ci_upper, "0.60675")
    assert_ref(r.p_value, "0.00000")


def test_reference_two_sided_cuped():
    """Published case: CUPED mean metric."""
    pre_a = MeanSums(3000, 16.87, 527.9767)
    pre_b = MeanSums(3461, 22.7, 1348.29)
    r = sequential_test(CupedSums(3000, A, pre_a, 1), CupedSums(3461, B, pre_b, 1))
    assert_ref(r.effect, "0.50338")
    assert_ref(r.standard_error, "0.33341")
    assert_ref(r.ci_lower, "-0.50969")
    assert_ref(r.ci_upper, "1.51646")
    assert r.p_value == 1.0


def test_reference_two_sided_ratio_cuped():
    """Published case: ratio CUPED metric."""
    r = sequential_test(UPSTREAM_RATIO_A, UPSTREAM_RATIO_B)
    assert_ref(r.ci_lower, "-0.02063")
    assert_ref(r.ci_upper, "0.01923")
    assert r.p_value == 1.0


@pytest.mark.parametrize(
    ("alternative", "difference", "bound", "p"),
    [
        (GREATER, DifferenceType.RELATIVE, -0.42356454602790883, 0.4999),
        (GREATER, ABS, -0.12656844172804982, 0.46316491943359384),
        (LESS, DifferenceType.RELATIVE, 1.4302867177403806, 0.4999),
        (LESS, ABS, 0.5953217750613832, 0.4999),
    ],
)
def test_reference_one_sided(alternative, difference, bound, p):
    """Published one-sided cases: bound from eq. 134, p-value from the bisection."""
    r = sequential_test(A, B, SequentialSettings(difference=difference, alternative=alternative))
    finite = r.ci_lower if alternative is GREATER else r.ci_upper
    infinite = r.ci_upper if alternative is GREATER else -r.ci_lower
    assert_rel(finite, bound)
    assert infinite == math.inf
    assert_rel(r.p_value, p)


def test_one_sided_p_value_is_where_the_bound_touches_zero():
    """At alpha = p the one-sided bound (with rho fixed) is 0, up to the bisection step."""
    r = sequential_test(A, B, SequentialSettings(difference=ABS, alternative=GREATER))
    m = effect_moments(A, B, ABS)
    rho = sequential_rho(0.05, 5000, two_sided=False)
    hw = sequential_halfwidth(m.standard_error, 6461, r.p_value, rho, two_sided=False)
    assert m.estimate - hw == pytest.approx(0.0, abs=1e-4)
    assert r.p_value == pytest.approx(_closed_form_p(m, 6461, rho, True), rel=1e-3)


def test_one_sided_p_value_is_scale_invariant():
    """Rescaling the metric by 1e12 leaves the one-sided p-value unchanged."""
    big_a = MeanSums(3000, 1396.87e12, 52377.9767e24)
    big_b = MeanSums(3461, 2422.7e12, 134698.29e24)
    s = SequentialSettings(difference=ABS, alternative=GREATER)
    assert sequential_test(big_a, big_b, s).p_value == pytest.approx(
        sequential_test(A, B, s).p_value, rel=1e-3
    )


def test_unconverged_bisection_falls_back_to_the_exact_root(monkeypatch):
    """If the bisection cannot reach its tolerance, the closed-form root is returned."""
    monkeypatch.setattr(seq_module, "_BISECT_STEPS", 1)
    s = SequentialSettings(difference=ABS, alternative=GREATER)
    m = effect_moments(A, B, ABS)
    rho = sequential_rho(0.05, 5000, two_sided=False)
    assert sequential_test(A, B, s).p_value == _closed_form_p(m, 6461, rho, True)


def test_tuning_near_the_sample_size_gives_the_tightest_interval():
    """N* far below or above the current N widens the sequence."""

    def width(tuning: float) -> float:
        r = sequential_test(A, B, SequentialSettings(tuning=tuning))
        return r.ci_upper - r.ci_lower

    assert width(6461) < width(10_000) < width(10)


def test_sequence_is_wider_than_the_fixed_horizon_interval():
    """Always-valid coverage costs width and evidence compared with the t-test."""
    fixed, seq = welch_t_test(A, B), sequential_test(A, B)
    assert seq.ci_lower < fixed.ci_lower and seq.ci_upper > fixed.ci_upper
    assert seq.p_value >= fixed.p_value
    assert seq.degrees_of_freedom == math.inf


@pytest.mark.parametrize(
    "kwargs",
    [{"tuning": 0}, {"tuning": math.inf}, {"alpha": 0.6, "alternative": GREATER}, {"alpha": 1.0}],
)
def test_invalid_settings_raise(kwargs):
    """Non-positive tuning, alpha outside (0, 1), or alpha >= 0.5 one-sided are rejected."""
    with pytest.raises(ValueError, match=r"tuning|alpha"):
        SequentialSettings(**kwargs)


def test_degenerate_input_gives_default_output():
    """Errors give p = 1 and a (0, 0) interval for every alternative."""
    for alternative in Alternative:
        r = sequential_test(MeanSums(1, 1, 1), B, SequentialSettings(alternative=alternative))
        assert r.error == ErrorCode.TOO_FEW_UNITS
        assert (r.p_value, r.ci_lower, r.ci_upper) == (1.0, 0.0, 0.0)


def test_helpers_handle_no_information():
    """No units yet: infinite half-width and p = 1."""
    assert sequential_halfwidth(1.0, 0.0, 0.05, 0.1) == math.inf
    assert sequential_p_value(1.0, 0.0, 100.0, 0.1) == 1.0


@settings(max_examples=300, deadline=None)
@given(arm_pairs(), st.sampled_from(list(Alternative)), st.sampled_from(list(DifferenceType)))
def test_arbitrary_inputs_give_valid_results(pair, alternative, difference):
    """No exception, no NaN, p in [0, 1], interval contains the estimate."""
    r = sequential_test(*pair, SequentialSettings(difference=difference, alternative=alternative))
    assert_no_nan(r)
    assert 0.0 <= r.p_value <= 1.0
    assert r.ci_lower <= r.effect <= r.ci_upper


@settings(deadline=None)
@given(realistic_pairs(), st.sampled_from(list(Alternative)), st.floats(10, 1e6))
def test_realistic_inputs_give_valid_results(pair, alternative, tuning):
    """Simulated data: valid probabilities; one-sided p-values stay in [1e-5, 0.4999]."""
    r = sequential_test(*pair, SequentialSettings(alternative=alternative, tuning=tuning))
    assert 0.0 <= r.p_value <= 1.0
    assert r.ci_lower <= r.effect <= r.ci_upper
    if r.error is None and alternative is not Alternative.TWO_SIDED:
        assert 1e-5 <= r.p_value <= 0.4999


def test_settings_accept_enum_values_as_strings():
    """Strings work for the difference and the alternative."""
    s = SequentialSettings(difference="absolute", alternative="less")
    assert s.alternative is LESS and s.difference is ABS
