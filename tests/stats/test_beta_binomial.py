"""Beta-binomial chance to win (``_beta_binomial``)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kameleoon_server.stats import (
    BetaPrior,
    ErrorCode,
    ProportionSums,
    beta_binomial_chance_to_win,
)
from kameleoon_server.stats._beta_binomial import _exact, _miller_sum, _numerical, _quadrature

from ._support import assert_no_nan, assert_ref

JEFFREYS = BetaPrior(0.5, 0.5)


def test_reference_uniform_prior():
    """stats.md section 4: A 100/1000, B 120/1000, uniform prior."""
    r = beta_binomial_chance_to_win(ProportionSums(1000, 100), ProportionSums(1000, 120))
    assert_ref(r.chance_to_win, "0.9231834")
    assert r.exact
    assert (r.control_alpha, r.control_beta, r.treatment_alpha, r.treatment_beta) == (101, 901, 121, 881)


@pytest.mark.parametrize(
    ("a", "b", "prior"),
    [
        ((1000, 100), (1000, 120), BetaPrior()),
        ((500, 30), (480, 25), JEFFREYS),
        ((40, 3), (35, 9), BetaPrior(2, 5)),
    ],
)
def test_matches_monte_carlo(a, b, prior):
    """Seeded Monte Carlo from the two posteriors agrees within 4 standard errors."""
    r = beta_binomial_chance_to_win(ProportionSums(*a), ProportionSums(*b), prior)
    rng = np.random.default_rng(2024)
    draws = 400_000
    pa = rng.beta(r.control_alpha, r.control_beta, draws)
    pb = rng.beta(r.treatment_alpha, r.treatment_beta, draws)
    estimate = (pb > pa).mean()
    assert abs(r.chance_to_win - estimate) < 4 * math.sqrt(estimate * (1 - estimate) / draws) + 1e-4


def test_jeffreys_prior_uses_quadrature():
    """Half-integer posteriors have no finite sum; the numerical path is taken."""
    r = beta_binomial_chance_to_win(ProportionSums(1000, 100), ProportionSums(1000, 120), JEFFREYS)
    assert not r.exact
    assert (r.control_alpha, r.control_beta) == (100.5, 900.5)


@pytest.mark.parametrize(
    "params", [(101, 901, 121, 881), (3, 19, 11, 5), (1, 1, 1, 1), (2001, 8001, 2051, 7951)]
)
def test_quadrature_agrees_with_the_exact_sum(params):
    """Both methods give the same probability on whole-number posteriors."""
    assert _quadrature(*params) == pytest.approx(_miller_sum(*params), abs=1e-9)


@pytest.mark.parametrize(
    "params",
    [(0.1, 1, 0.1, 3), (0.05, 1, 0.05, 2), (0.1, 100, 0.1, 1000), (1, 0.1, 3, 0.1), (100, 0.1, 1000, 0.1)],
)
def test_quadrature_handles_posteriors_piled_up_at_0_or_1(params):
    """Tiny pseudo-counts (spikes at 0, or at 1 after reflection) still integrate accurately."""
    assert _numerical(*params) == pytest.approx(_exact(*params), abs=1e-9)


def test_any_whole_posterior_parameter_gives_the_exact_path():
    """A whole beta parameter (here from a Beta(0.5, 1) prior) also has a closed form."""
    r = beta_binomial_chance_to_win(ProportionSums(40, 3), ProportionSums(40, 9), BetaPrior(0.5, 1.0))
    assert r.exact
    assert r.chance_to_win == pytest.approx(_quadrature(3.5, 38, 9.5, 32), abs=1e-9)


def test_identical_spiky_posteriors_give_one_half():
    """One all-converted unit per arm with the smallest prior: still exactly balanced."""
    a = ProportionSums(1, 1)
    r = beta_binomial_chance_to_win(a, a, BetaPrior(0.01, 0.01))
    assert r.chance_to_win == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("value", [0.0, 0.001, math.inf, math.nan])
def test_prior_counts_must_be_at_least_the_minimum(value):
    """Priors below 0.01 (or non-finite) are rejected when built."""
    with pytest.raises(ValueError, match="beta prior"):
        BetaPrior(alpha=value)


def test_mirrored_sum_is_used_when_only_the_control_alpha_is_whole():
    """P(B > A) = 1 - P(A > B) lets the exact sum run over the control's alpha."""
    r = beta_binomial_chance_to_win(ProportionSums(10, 3), ProportionSums(10, 4), BetaPrior(1.0, 0.5))
    assert r.exact
    assert r.chance_to_win == pytest.approx(_quadrature(4, 7.5, 5, 6.5), abs=1e-9)


def test_symmetry_and_inverse():
    """Swapping arms gives 1 - p; ``inverse`` reports P(p_B < p_A)."""
    a, b = ProportionSums(300, 40), ProportionSums(310, 52)
    p = beta_binomial_chance_to_win(a, b).chance_to_win
    assert beta_binomial_chance_to_win(b, a).chance_to_win == pytest.approx(1 - p, abs=1e-12)
    assert beta_binomial_chance_to_win(a, b, inverse=True).chance_to_win == pytest.approx(1 - p)


def test_identical_arms_give_one_half():
    """Equal data and prior: chance to win 0.5."""
    a = ProportionSums(200, 20)
    assert beta_binomial_chance_to_win(a, a).chance_to_win == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize(
    ("a", "code"),
    [
        (ProportionSums(0, 0), ErrorCode.EMPTY_ARM),
        (ProportionSums(10, 11), ErrorCode.INVALID_INPUT),
        (ProportionSums(-1, 0), ErrorCode.INVALID_INPUT),
        (ProportionSums(math.nan, 1), ErrorCode.NON_FINITE_INPUT),
    ],
)
def test_degenerate_inputs_give_one_half(a, code):
    """Errors give chance to win 0.5 and the prior as posterior."""
    r = beta_binomial_chance_to_win(a, ProportionSums(10, 2))
    assert r.error == code
    assert r.chance_to_win == 0.5
    assert (r.control_alpha, r.control_beta) == (1.0, 1.0)


def test_large_counts_switch_to_quadrature():
    """Beyond the exact-sum term limit the quadrature is used and stays accurate."""
    a, b = ProportionSums(5_000_000, 200_000), ProportionSums(5_000_000, 201_000)
    r = beta_binomial_chance_to_win(a, b)
    assert not r.exact
    z = (201_000 - 200_000) / 5e6 / math.sqrt(2 * 0.04 * 0.96 / 5e6)
    assert r.chance_to_win == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)), abs=1e-3)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 2000),
    st.integers(1, 2000),
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(0.01, 50),
    st.floats(0.01, 50),
)
def test_swapping_arms_complements_the_probability(n_a, n_b, rate_a, rate_b, a0, b0):
    """P(B > A) + P(A > B) = 1 for any prior, whichever method runs."""
    a = ProportionSums(n_a, math.floor(n_a * rate_a))
    b = ProportionSums(n_b, math.floor(n_b * rate_b))
    prior = BetaPrior(a0, b0)
    forward = beta_binomial_chance_to_win(a, b, prior).chance_to_win
    backward = beta_binomial_chance_to_win(b, a, prior).chance_to_win
    assert forward + backward == pytest.approx(1.0, abs=2e-6)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 5000),
    st.integers(0, 5000),
    st.floats(0, 1),
    st.floats(0, 1),
    st.sampled_from([BetaPrior(), JEFFREYS, BetaPrior(3.0, 7.0)]),
)
def test_any_counts_give_a_probability(n_a, n_b, rate_a, rate_b, prior):
    """Chance to win is always a probability, never NaN."""
    a = ProportionSums(n_a, math.floor(n_a * rate_a))
    b = ProportionSums(n_b, math.floor(n_b * rate_b))
    r = beta_binomial_chance_to_win(a, b, prior)
    assert_no_nan(r)
    assert 0.0 <= r.chance_to_win <= 1.0
