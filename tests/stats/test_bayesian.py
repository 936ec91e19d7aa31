"""Gaussian Bayesian comparison (``_bayesian``)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kameleoon_server.stats import (
    DEFAULT_PRIOR_STDDEV,
    BayesianSettings,
    DifferenceType,
    ErrorCode,
    GaussianPrior,
    MeanSums,
    ProportionSums,
    bayesian_test,
    effect_moments,
    gaussian_risk,
)

from ._support import arm_pairs, assert_no_nan, assert_ref, realistic_pairs

A = MeanSums(n=10, sum=100, sum_squares=1002.25)
B = MeanSums(n=10, sum=105, sum_squares=1111.5)


def _check(r, mean, sd, lower, upper, ctw, risk):
    assert r.error is None
    assert_ref(r.effect, mean)
    assert_ref(r.standard_deviation, sd)
    assert_ref(r.ci_lower, lower)
    assert_ref(r.ci_upper, upper)
    assert_ref(r.chance_to_win, ctw)
    assert_ref(r.risk_control, risk[0])
    assert_ref(r.risk_treatment, risk[1])


def test_reference_proportion():
    """stats.md section 4: proportions 49/100 vs 51/100, improper prior."""
    r = bayesian_test(ProportionSums(100, 49), ProportionSums(100, 51))
    _check(r, "0.04082", "0.14725", "-0.24779", "0.32943", "0.60918", ("0.0814", "0.04058"))


def test_reference_mean():
    """stats.md section 4: mean metric, improper prior."""
    r = bayesian_test(A, B)
    _check(r, "0.05", "0.03572", "-0.02", "0.12", "0.91923", ("0.05131", "0.00131"))


def test_reference_mean_with_proper_prior():
    """stats.md section 4: prior N(0.1, variance 0.1), proper."""
    r = bayesian_test(A, B, BayesianSettings(prior=GaussianPrior(mean=0.1, variance=0.1, proper=True)))
    _check(r, "0.05063", "0.03549", "-0.01893", "0.12019", "0.92315", ("0.05186", "0.00123"))


def test_reference_risk_function():
    """stats.md section 4: risk for mu = 0.1, sigma = 0.05."""
    keep, ship = gaussian_risk(0.1, 0.05)
    assert_ref(keep, "0.1004245351308")
    assert_ref(ship, "0.0004245351308414")


def test_default_prior_is_improper_with_stddev_0_3_when_enabled():
    """Improper by default (posterior = data); the proper default is N(0, 0.3^2)."""
    prior = GaussianPrior()
    assert not prior.proper
    assert prior.variance == pytest.approx(0.09)
    assert DEFAULT_PRIOR_STDDEV == 0.3
    m = effect_moments(A, B)
    r = bayesian_test(A, B)
    assert (r.effect, r.standard_deviation) == (m.estimate, m.standard_error)


def test_proper_prior_shrinks_towards_its_mean():
    """The posterior mean is the precision-weighted average of data and prior."""
    m = effect_moments(A, B)
    r = bayesian_test(A, B, BayesianSettings(prior=GaussianPrior(proper=True)))
    w_data, w_prior = 1 / m.standard_error**2, 1 / 0.09
    assert r.effect == pytest.approx(m.estimate * w_data / (w_data + w_prior))
    assert r.standard_deviation == pytest.approx(math.sqrt(1 / (w_data + w_prior)))


def test_absolute_effect_rescales_the_relative_prior():
    """For absolute effects the prior becomes N(mu0 |mean_A|, s0^2 mean_A^2)."""
    prior = GaussianPrior(mean=0.1, variance=0.1, proper=True)
    r = bayesian_test(A, B, BayesianSettings(difference=DifferenceType.ABSOLUTE, prior=prior))
    m = effect_moments(A, B, DifferenceType.ABSOLUTE)
    mu0, var0 = 0.1 * 10, 0.1 * 100
    prec = 1 / m.standard_error**2 + 1 / var0
    assert r.effect == pytest.approx((m.estimate / m.standard_error**2 + mu0 / var0) / prec)


def test_absolute_proper_prior_needs_a_nonzero_control_mean():
    """A relative prior cannot be rescaled around a zero control mean."""
    prior = GaussianPrior(proper=True)
    s = BayesianSettings(difference=DifferenceType.ABSOLUTE, prior=prior)
    assert bayesian_test(MeanSums(4, 0, 8), B, s).error == ErrorCode.ZERO_CONTROL_MEAN


def test_inverse_metric_flips_chance_to_win_and_risks():
    """For lower-is-better metrics, chance to win is P(lift < 0) and the risks swap."""
    normal = bayesian_test(A, B)
    inverse = bayesian_test(A, B, BayesianSettings(inverse=True))
    assert inverse.chance_to_win == pytest.approx(1 - normal.chance_to_win)
    assert (inverse.risk_control, inverse.risk_treatment) == (normal.risk_treatment, normal.risk_control)


def test_credible_interval_uses_normal_quantiles():
    """mean +- z_{1-alpha/2} sd, narrower than the t-based frequentist interval."""
    r = bayesian_test(A, B, BayesianSettings(alpha=0.1))
    assert r.ci_upper - r.effect == pytest.approx(1.6448536269514722 * r.standard_deviation)


def test_risk_and_chance_to_win_match_monte_carlo():
    """Closed forms agree with sampling from the posterior (seeded)."""
    rng = np.random.default_rng(42)
    draws = rng.normal(0.03, 0.05, 2_000_000)
    keep, ship = gaussian_risk(0.03, 0.05)
    assert keep == pytest.approx(np.maximum(draws, 0).mean(), rel=5e-3)
    assert ship == pytest.approx(np.maximum(-draws, 0).mean(), rel=5e-3)


def test_risk_limits():
    """Zero sd gives the point-mass risks; non-finite input gives zeros."""
    assert gaussian_risk(0.2, 0.0) == (0.2, 0.0)
    assert gaussian_risk(-0.2, 0.0) == (0.0, 0.2)
    assert gaussian_risk(math.nan, 1.0) == (0.0, 0.0)
    keep, ship = gaussian_risk(40.0, 1.0)
    assert keep == pytest.approx(40.0) and ship == 0.0


@pytest.mark.parametrize(
    ("a", "code"),
    [
        (MeanSums(0, 0, 0), ErrorCode.EMPTY_ARM),
        (MeanSums(5, 10, 20), ErrorCode.ZERO_VARIANCE),
        (MeanSums(5, 0, 20), ErrorCode.ZERO_CONTROL_MEAN),
        (MeanSums(5, math.nan, 20), ErrorCode.NON_FINITE_INPUT),
    ],
)
def test_degenerate_cases_give_the_default(a, code):
    """Default output: chance to win 0.5, interval (0, 0), zero risks."""
    r = bayesian_test(a, B)
    assert r.error == code
    assert (r.chance_to_win, r.ci_lower, r.ci_upper, r.risk_control, r.risk_treatment) == (0.5, 0, 0, 0, 0)


@pytest.mark.parametrize("kwargs", [{"variance": 0.0}, {"variance": math.inf}, {"mean": math.nan}])
def test_invalid_prior_is_rejected(kwargs):
    """A prior needs a finite mean and a positive finite variance."""
    with pytest.raises(ValueError, match="prior"):
        GaussianPrior(**kwargs)


@settings(max_examples=300, deadline=None)
@given(arm_pairs(), st.sampled_from(list(DifferenceType)), st.booleans(), st.booleans())
def test_arbitrary_inputs_give_valid_results(pair, difference, proper, inverse):
    """No exception or NaN; probabilities in [0, 1]; risks >= 0; interval contains the mean."""
    s = BayesianSettings(difference=difference, prior=GaussianPrior(proper=proper), inverse=inverse)
    r = bayesian_test(*pair, s)
    assert_no_nan(r)
    assert 0.0 <= r.chance_to_win <= 1.0
    assert r.risk_control >= 0 and r.risk_treatment >= 0
    assert r.ci_lower <= r.effect <= r.ci_upper


@settings(deadline=None)
@given(realistic_pairs())
def test_risk_difference_is_the_posterior_mean(pair):
    """E[max(L,0)] - E[max(-L,0)] = E[L] for every posterior."""
    r = bayesian_test(*pair)
    assert r.risk_control - r.risk_treatment == pytest.approx(r.effect, abs=1e-9)


def test_settings_accept_difference_as_string():
    """``"absolute"`` selects the absolute effect."""
    assert BayesianSettings(difference="absolute").difference is DifferenceType.ABSOLUTE


def test_numeric_settings_are_converted_to_float():
    """Decimal settings (e.g. from a database) behave like floats."""
    from decimal import Decimal

    s = BayesianSettings(alpha=Decimal("0.1"), prior=GaussianPrior(Decimal("0.1"), Decimal("0.1"), True))
    assert bayesian_test(A, B, s) == bayesian_test(
        A, B, BayesianSettings(alpha=0.1, prior=GaussianPrior(0.1, 0.1, True))
    )
