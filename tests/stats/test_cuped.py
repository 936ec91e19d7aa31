"""CUPED for mean and ratio metrics (``_cuped``)."""

import numpy as np
import pytest

from kameleoon_server.stats import (
    CupedRatioSums,
    CupedSums,
    DifferenceType,
    MeanSums,
    ProportionSums,
    cuped_ratio_theta,
    cuped_theta,
    effect_moments,
    summarize,
    welch_t_test,
)
from kameleoon_server.stats._cuped import relative_cuped_ratio_variance, relative_cuped_variance

from ._support import assert_ref, cuped_ratio_sums, cuped_sums, ratio_sums, revenue_like


def _cuped_data(seed: int, n_a: int = 800, n_b: int = 900):
    rng = np.random.default_rng(seed)
    x_a, x_b = revenue_like(rng, n_a), revenue_like(rng, n_b)
    y_a = 0.8 * x_a + revenue_like(rng, n_a)
    y_b = 0.8 * x_b + revenue_like(rng, n_b, lift=0.1)
    return y_a, x_a, y_b, x_b


def test_theta_is_the_pooled_regression_slope():
    """theta equals the OLS slope of Y on X over both arms together."""
    y_a, x_a, y_b, x_b = _cuped_data(10)
    theta = cuped_theta(cuped_sums(y_a, x_a), cuped_sums(y_b, x_b))
    slope = np.polyfit(np.concatenate([x_a, x_b]), np.concatenate([y_a, y_b]), 1)[0]
    assert theta == pytest.approx(slope, rel=1e-9)


def test_theta_for_binary_metric_and_covariate_is_the_regression_slope():
    """With 0/1 post and pre values the pooled theta is still the OLS slope."""
    rng = np.random.default_rng(11)
    x = (rng.random(2000) < 0.3).astype(float)
    y = np.where(rng.random(2000) < 0.7, x, (rng.random(2000) < 0.2).astype(float))

    def arm(sl: slice) -> CupedSums:
        return CupedSums(
            float(len(y[sl])),
            ProportionSums(float(len(y[sl])), float(y[sl].sum())),
            ProportionSums(float(len(x[sl])), float(x[sl].sum())),
            float((y[sl] * x[sl]).sum()),
        )

    theta = cuped_theta(arm(slice(0, 1000)), arm(slice(1000, 2000)))
    assert theta == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-9)


def test_adjusted_summary_is_the_moments_of_y_minus_theta_x():
    """Adjusted mean and variance equal those of the unit values Y - theta X."""
    y_a, x_a, y_b, x_b = _cuped_data(12)
    a, b = cuped_sums(y_a, x_a), cuped_sums(y_b, x_b)
    theta = cuped_theta(a, b)
    s = summarize(a, theta)
    adjusted = y_a - theta * x_a
    assert s.mean == pytest.approx(adjusted.mean(), rel=1e-9)
    assert s.variance == pytest.approx(adjusted.var(ddof=1), rel=1e-9)
    assert s.unadjusted_mean == pytest.approx(y_a.mean(), rel=1e-12)


def test_cuped_reduces_the_standard_error():
    """A correlated covariate shrinks the standard error of the effect."""
    y_a, x_a, y_b, x_b = _cuped_data(13)
    plain = effect_moments(cuped_sums(y_a, x_a).post, cuped_sums(y_b, x_b).post)
    adjusted = effect_moments(cuped_sums(y_a, x_a), cuped_sums(y_b, x_b))
    assert adjusted.theta > 0
    assert adjusted.standard_error < 0.9 * plain.standard_error


def test_relative_uses_unadjusted_control_mean_as_denominator():
    """The relative lift is (adj_B - adj_A) / |Y_A|."""
    y_a, x_a, y_b, x_b = _cuped_data(14)
    m = effect_moments(cuped_sums(y_a, x_a), cuped_sums(y_b, x_b))
    assert m.estimate == pytest.approx((m.treatment.mean - m.control.mean) / y_a.mean(), rel=1e-12)


def test_relative_cuped_variance_matches_delta_method_restated():
    """Delta method on (Y_A, X_A) and (Y_B, X_B) with the gradient used by the spec.

    Control gradient (-Y_B / Y_A^2, theta / Y_A) (the covariate means are taken as equal
    across arms, as randomisation implies), treatment gradient (1, -theta) / Y_A.
    """
    y_a, x_a, y_b, x_b = _cuped_data(15)
    a, b = cuped_sums(y_a, x_a), cuped_sums(y_b, x_b)
    theta = cuped_theta(a, b)
    ya, yb = y_a.mean(), y_b.mean()
    g_a = np.array([-yb / ya**2, theta / ya])
    g_b = np.array([1.0, -theta]) / ya
    expected = g_a @ np.cov(y_a, x_a) @ g_a / len(y_a) + g_b @ np.cov(y_b, x_b) @ g_b / len(y_b)
    assert relative_cuped_variance(a, b, theta) == pytest.approx(expected, rel=1e-9)


def test_zero_theta_falls_back_to_the_plain_analysis():
    """A constant covariate gives theta 0 and exactly the unadjusted result."""
    rng = np.random.default_rng(16)
    y_a, y_b = revenue_like(rng, 300), revenue_like(rng, 310)
    const_a, const_b = np.ones_like(y_a), np.ones_like(y_b)
    cuped = effect_moments(cuped_sums(y_a, const_a), cuped_sums(y_b, const_b))
    plain = effect_moments(cuped_sums(y_a, const_a).post, cuped_sums(y_b, const_b).post)
    assert cuped.theta == 0.0
    assert (cuped.estimate, cuped.standard_error) == (plain.estimate, plain.standard_error)


# --- ratio CUPED -----------------------------------------------------------------------------


def _ratio_data(seed: int, n: int = 600):
    rng = np.random.default_rng(seed)
    d, dp = rng.integers(1, 6, n).astype(float), rng.integers(1, 6, n).astype(float)
    mp = dp * rng.gamma(2.0, 3.0, n)
    m = 0.6 * mp + d * rng.gamma(2.0, 3.0, n)
    return m, d, mp, dp


def _ratio_grad(m: np.ndarray, d: np.ndarray) -> np.ndarray:
    return np.array([1 / d.mean(), -m.mean() / d.mean() ** 2])


def test_ratio_theta_is_pooled_delta_method_regression():
    """theta = sum of Cov(R_post, R_pre) over arms / sum of Var(R_pre), per-unit moments."""
    arms = [_ratio_data(20), _ratio_data(21)]
    cov_total = var_total = 0.0
    for m, d, mp, dp in arms:
        lam = np.cov(np.vstack([m, d, mp, dp]))
        g_post, g_pre = _ratio_grad(m, d), _ratio_grad(mp, dp)
        cov_total += g_post @ lam[:2, 2:] @ g_pre
        var_total += g_pre @ lam[2:, 2:] @ g_pre
    theta = cuped_ratio_theta(*(cuped_ratio_sums(*a) for a in arms))
    assert theta == pytest.approx(cov_total / var_total, rel=1e-9)


def _relative_lift(means_a: np.ndarray, means_b: np.ndarray, theta: float) -> float:
    def adjusted(v: np.ndarray) -> float:
        return v[0] / v[1] - theta * v[2] / v[3]

    return (adjusted(means_b) - adjusted(means_a)) / abs(means_a[0] / means_a[1])


def test_relative_ratio_cuped_variance_is_the_exact_delta_method():
    """Matches a finite-difference gradient of the lift over both 4-vectors of means."""
    data_a, data_b = _ratio_data(22), _ratio_data(23)
    a, b = cuped_ratio_sums(*data_a), cuped_ratio_sums(*data_b)
    theta = cuped_ratio_theta(a, b)
    mu_a = np.array([v.mean() for v in data_a])
    mu_b = np.array([v.mean() for v in data_b])
    total = 0.0
    for arm, mu, data in ((0, mu_a, data_a), (1, mu_b, data_b)):
        grad = np.zeros(4)
        for k in range(4):
            step = np.zeros(4)
            step[k] = 1e-6 * mu[k]
            args = [(mu_a + step, mu_b), (mu_a, mu_b + step)][arm]
            back = [(mu_a - step, mu_b), (mu_a, mu_b - step)][arm]
            grad[k] = (_relative_lift(*args, theta) - _relative_lift(*back, theta)) / (2 * step[k])
        total += grad @ np.cov(np.vstack(data)) @ grad / len(data[0])
    assert relative_cuped_ratio_variance(a, b, theta) == pytest.approx(total, rel=1e-5)


def test_ratio_cuped_without_pre_period_variance_falls_back_to_plain_ratio():
    """Constant pre-period values give theta 0 and the plain ratio analysis."""
    m, d, _, _ = _ratio_data(24)
    m2, d2, _, _ = _ratio_data(25)
    ones = np.ones_like(m)
    cuped = effect_moments(cuped_ratio_sums(m, d, ones, ones), cuped_ratio_sums(m2, d2, ones, ones))
    plain = effect_moments(ratio_sums(m, d), ratio_sums(m2, d2))
    assert cuped.theta == 0.0
    assert cuped.estimate == plain.estimate
    assert cuped.standard_error == pytest.approx(plain.standard_error, rel=1e-12)


def _upstream_ratio_arm(values: list[float]) -> CupedRatioSums:
    n, ms, mss, ds, dss, mps, mpss, dps, dpss = values[:9]
    mm, dd, mpdp, md, mdp, mpd = values[9:]
    return CupedRatioSums(
        n=n,
        numerator=MeanSums(n, ms, mss),
        denominator=MeanSums(n, ds, dss),
        numerator_pre=MeanSums(n, mps, mpss),
        denominator_pre=MeanSums(n, dps, dpss),
        sum_num_num_pre=mm,
        sum_den_den_pre=dd,
        sum_num_pre_den_pre=mpdp,
        sum_num_den=md,
        sum_num_den_pre=mdp,
        sum_num_pre_den=mpd,
    )


UPSTREAM_RATIO_A = _upstream_ratio_arm(
    [
        *(100, 485.112236689623, 2715.484666118136, 679.9093275844917, 4939.424001640236),
        *(192.59138069991536, 460.076026390857, 290.1398399750233, 920.9461385038898),
        *(1113.6215759318352, 2130.9404074446747, 634.239482353647, 3602.146836776702),
        *(1559.2878434944676, 1460.3181079276983),
    ]
)
UPSTREAM_RATIO_B = _upstream_ratio_arm(
    [
        *(100, 514.7757826608777, 2994.897482705013, 705.4090874383759, 5291.36604146392),
        *(206.94157227402536, 514.2903702246757, 302.54389139107326, 994.4506208125663),
        *(1237.0953021125997, 2292.081739775257, 698.4173425817908, 3918.1561431600717),
        *(1701.0287270040265, 1604.0759503266522),
    ]
)


def test_ratio_cuped_reproduces_the_published_reference_case():
    """gbstats' published ratio-CUPED t-test case (5 decimals)."""
    r = welch_t_test(UPSTREAM_RATIO_A, UPSTREAM_RATIO_B)
    assert_ref(r.effect, "-0.0007")
    assert_ref(r.standard_error, "0.00391")
    assert_ref(r.ci_lower, "-0.00841")
    assert_ref(r.ci_upper, "0.00700")
    assert_ref(r.p_value, "0.85771")


def test_absolute_ratio_cuped_variance_is_sum_of_arm_variances():
    """Absolute ratio CUPED: Var = Var_A / n_A + Var_B / n_B of the adjusted ratios."""
    m = effect_moments(UPSTREAM_RATIO_A, UPSTREAM_RATIO_B, DifferenceType.ABSOLUTE)
    expected = m.control.variance / 100 + m.treatment.variance / 100
    assert m.standard_error**2 == pytest.approx(expected, rel=1e-12)
    assert m.estimate == pytest.approx(m.treatment.mean - m.control.mean, rel=1e-12)
