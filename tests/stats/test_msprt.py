"""Mixture SPRT always-valid p-values (``_msprt``)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kameleoon_server.stats import msprt_p_value, running_p_values


def test_matches_the_published_closed_form_for_equal_arms():
    """With s^2 = V/n the p-value is 1/Lambda_n of Johari et al. (Bernoulli V)."""
    n, p_a, p_b, tau2 = 5000, 0.10, 0.115, 0.001
    v = p_a * (1 - p_a) + p_b * (1 - p_b)
    diff = p_b - p_a
    lam = math.sqrt(v / (v + n * tau2)) * math.exp(n**2 * tau2 * diff**2 / (2 * v * (v + n * tau2)))
    assert msprt_p_value(diff, math.sqrt(v / n), tau2) == pytest.approx(min(1.0, 1 / lam), rel=1e-12)


def test_null_value_shifts_the_test():
    """Testing against theta0 = the observed difference gives no evidence (p = 1)."""
    assert msprt_p_value(0.2, 0.05, 0.01, null=0.2) == 1.0
    assert msprt_p_value(0.2, 0.05, 0.01) < 0.01


def test_overwhelming_evidence_gives_zero_not_overflow():
    """Computed in log space: extreme evidence returns 0.0."""
    assert msprt_p_value(1e3, 1e-3, 1.0) == 0.0


@pytest.mark.parametrize(
    "args",
    [(0.1, 0.0, 0.1), (0.1, 0.1, 0.0), (math.nan, 0.1, 0.1), (0.1, math.inf, 0.1), (0.1, 1e-200, 1e-300)],
)
def test_degenerate_inputs_give_p_one_or_a_probability(args):
    """Zero or non-finite variances give p = 1; nothing raises."""
    p = msprt_p_value(*args)
    assert 0.0 <= p <= 1.0


def test_running_p_values_never_increase():
    """The always-valid sequence is the running minimum; NaN counts as 1."""
    assert running_p_values([0.5, 0.7, math.nan, 0.2, 0.3]) == (0.5, 0.5, 0.5, 0.2, 0.2)


@settings(deadline=None)
@given(st.floats(), st.floats(), st.floats(), st.floats())
def test_any_input_gives_a_probability(diff, se, tau2, null):
    """No exception and a p-value in [0, 1] for any floats."""
    assert 0.0 <= msprt_p_value(diff, se, tau2, null) <= 1.0
