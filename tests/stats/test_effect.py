"""Effect estimate and standard error for every metric shape (``_effect``)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings

from kameleoon_server.stats import (
    ArmSummary,
    DifferenceType,
    ErrorCode,
    MeanSums,
    ProportionSums,
    effect_moments,
    welch_dof,
)

from ._support import arm_pairs, assert_no_nan, mean_sums, realistic_pairs

A = MeanSums(n=3407, sum=1396.87, sum_squares=52377.9767)
B = MeanSums(n=3461, sum=2422.7, sum_squares=134698.29)


def test_absolute_effect_and_variance():
    """Absolute: mean_B - mean_A with variance Var_A/n_A + Var_B/n_B."""
    m = effect_moments(A, B, DifferenceType.ABSOLUTE)
    assert m.estimate == pytest.approx(0.29, rel=1e-12)
    expected = m.control.variance / 3407 + m.treatment.variance / 3461
    assert m.standard_error == pytest.approx(math.sqrt(expected), rel=1e-12)


def test_relative_effect_uses_delta_method():
    """Relative: Var_B/(n_B mA^2) + Var_A mB^2/(n_A mA^4)."""
    m = effect_moments(A, B)
    ma, mb = m.control.mean, m.treatment.mean
    var = m.treatment.variance / (3461 * ma**2) + m.control.variance * mb**2 / (3407 * ma**4)
    assert m.estimate == pytest.approx((mb - ma) / ma, rel=1e-12)
    assert m.standard_error == pytest.approx(math.sqrt(var), rel=1e-12)


def test_relative_effect_divides_by_absolute_control_mean():
    """With a negative control mean, an increase still shows as a positive lift."""
    rng = np.random.default_rng(5)
    a, b = mean_sums(rng.normal(-10, 2, 200)), mean_sums(rng.normal(-9, 2, 200))
    m = effect_moments(a, b)
    assert m.estimate > 0
    assert m.estimate == pytest.approx((m.treatment.mean - m.control.mean) / abs(m.control.mean))


@pytest.mark.parametrize(
    ("control", "treatment", "difference", "code"),
    [
        (MeanSums(0, 0, 0), B, DifferenceType.RELATIVE, ErrorCode.EMPTY_ARM),
        (A, ProportionSums(0, 0), DifferenceType.ABSOLUTE, ErrorCode.INVALID_INPUT),
        (MeanSums(1, 5, 25), B, DifferenceType.RELATIVE, ErrorCode.TOO_FEW_UNITS),
        (MeanSums(2, 1396.87, 52377.9767), B, DifferenceType.RELATIVE, ErrorCode.ZERO_VARIANCE),
        (MeanSums(10, 20, 40), B, DifferenceType.ABSOLUTE, ErrorCode.ZERO_VARIANCE),
        (ProportionSums(100, 0), ProportionSums(100, 3), DifferenceType.RELATIVE, ErrorCode.ZERO_VARIANCE),
        (MeanSums(4, 0, 8), B, DifferenceType.RELATIVE, ErrorCode.ZERO_CONTROL_MEAN),
        (MeanSums(4, math.nan, 8), B, DifferenceType.RELATIVE, ErrorCode.NON_FINITE_INPUT),
        (MeanSums(4, 1e300, 1e300), B, DifferenceType.RELATIVE, ErrorCode.NUMERICAL_ERROR),
    ],
)
def test_degenerate_inputs_give_the_default_with_a_code(control, treatment, difference, code):
    """Each degenerate case returns estimate 0, SE 0 and its own error code."""
    m = effect_moments(control, treatment, difference)
    assert m.error == code
    assert (m.estimate, m.standard_error) == (0.0, 0.0)


def test_zero_control_mean_is_fine_for_absolute_effects():
    """Only relative effects need a non-zero control mean."""
    m = effect_moments(MeanSums(4, 0, 8), B, DifferenceType.ABSOLUTE)
    assert m.error is None
    assert m.estimate == pytest.approx(B.sum / B.n)


def test_welch_dof_matches_the_satterthwaite_formula():
    """dof = (qA + qB)^2 / (qA^2/(nA-1) + qB^2/(nB-1)), q = Var/n."""
    a = ArmSummary(n=10, mean=0, unadjusted_mean=0, variance=4.0)
    b = ArmSummary(n=20, mean=0, unadjusted_mean=0, variance=9.0)
    qa, qb = 0.4, 0.45
    assert welch_dof(a, b) == pytest.approx((qa + qb) ** 2 / (qa**2 / 9 + qb**2 / 19))


def test_welch_dof_degenerate_is_infinite():
    """Zero variances or single units give the normal limit instead of NaN."""
    a = ArmSummary(n=1, mean=0, unadjusted_mean=0, variance=0.0)
    assert welch_dof(a, a) == math.inf


@settings(max_examples=400, deadline=None)
@given(arm_pairs())
def test_arbitrary_inputs_never_raise_or_leak_nan(pair):
    """Any numbers, even inconsistent or non-finite, give a finite result or a coded default."""
    for difference in DifferenceType:
        m = effect_moments(*pair, difference)
        assert_no_nan(m)
        assert math.isfinite(m.estimate) and math.isfinite(m.standard_error)
        if m.error is not None:
            assert (m.estimate, m.standard_error) == (0.0, 0.0)
        else:
            assert m.standard_error > 0


@settings(deadline=None)
@given(realistic_pairs())
def test_realistic_inputs_give_positive_standard_errors(pair):
    """Consistent sums from simulated data either succeed or fail for a stated reason."""
    m = effect_moments(*pair)
    assert m.error in (None, ErrorCode.ZERO_VARIANCE, ErrorCode.ZERO_CONTROL_MEAN)
    if m.error is None:
        assert m.standard_error > 0
