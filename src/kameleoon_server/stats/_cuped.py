"""CUPED (regression adjustment on a pre-period covariate) for mean and ratio metrics.

Spec section 3, "CUPED / regression adjustment":

* theta is estimated on the **pooled** control + treatment sums of the comparison; when it is
  0 (mean) or below 1e-8 in magnitude (ratio) the adjustment is dropped and the plain
  statistic is analysed instead;
* adjusted mean ``Y - theta X``, per-unit variance ``Var Y + theta^2 Var X - 2 theta Cov``;
* relative lifts divide by the **unadjusted** control mean, with the delta-method
  variances below;
* ratio CUPED works on the 4-vector (M, D, Mp, Dp) with a 4x4 per-unit covariance matrix.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._moments import (
    ArmSummary,
    component_mean,
    component_variance,
    covariance,
)
from ._numeric import div
from ._types import Component, CupedRatioSums, CupedSums, MeanSums, ProportionSums, RatioSums

__all__ = [
    "RATIO_THETA_FLOOR",
    "cuped_ratio_summary",
    "cuped_ratio_theta",
    "cuped_summary",
    "cuped_theta",
    "relative_cuped_ratio_variance",
    "relative_cuped_variance",
    "without_cuped",
]

RATIO_THETA_FLOOR = 1e-8
"""Ratio CUPED is dropped when ``|theta|`` is below this value."""

_Vector = npt.NDArray[np.float64]


def _joint(a: Component, b: Component, n: float) -> Component:
    """Both arms' sums of one variable as a single sample of ``n`` units."""
    if isinstance(a, ProportionSums) and isinstance(b, ProportionSums):
        return ProportionSums(n=n, sum=a.sum + b.sum)
    sq_a = a.sum if isinstance(a, ProportionSums) else a.sum_squares
    sq_b = b.sum if isinstance(b, ProportionSums) else b.sum_squares
    return MeanSums(n=n, sum=a.sum + b.sum, sum_squares=sq_a + sq_b)


def cuped_theta(control: CupedSums, treatment: CupedSums) -> float:
    """Pooled ``theta = Cov(Y, X) / Var(X)`` over both arms (0 if either variance is 0)."""
    n = control.n + treatment.n
    post = _joint(control.post, treatment.post, n)
    pre = _joint(control.pre, treatment.pre, n)
    var_pre = component_variance(pre)
    if var_pre == 0.0 or component_variance(post) == 0.0:
        return 0.0
    cov = covariance(n, post, pre, control.sum_products + treatment.sum_products)
    return div(cov, var_pre)


def cuped_summary(arm: CupedSums, theta: float) -> ArmSummary:
    """Adjusted mean ``Y - theta X`` and its per-unit variance (0 if n <= 1)."""
    post_mean = component_mean(arm.post)
    variance = 0.0
    if arm.n > 1:
        cov = covariance(arm.n, arm.post, arm.pre, arm.sum_products)
        var_post, var_pre = component_variance(arm.post), component_variance(arm.pre)
        variance = var_post + theta * theta * var_pre - 2.0 * theta * cov
    mean = post_mean - theta * component_mean(arm.pre)
    return ArmSummary(n=arm.n, mean=mean, unadjusted_mean=post_mean, variance=variance)


def relative_cuped_variance(control: CupedSums, treatment: CupedSums, theta: float) -> float:
    """Delta-method variance of ``(adj_B - adj_A) / |Y_A|`` (0 if the control mean is 0).

    Treatment term ``Var(adj_B) / (n_B Y_A^2)``; control term
    ``(Var Y_A r^2 - 2 theta Cov_A r + theta^2 Var X_A) / (n_A Y_A^2)`` with ``r = Y_B / Y_A``.
    """
    mean_a = component_mean(control.post)
    if mean_a == 0.0 or control.n == 0 or treatment.n == 0:
        return 0.0
    r = component_mean(treatment.post) / mean_a
    cov_a = covariance(control.n, control.post, control.pre, control.sum_products)
    var_a = (
        component_variance(control.post) * r * r
        - 2.0 * theta * cov_a * r
        + theta * theta * component_variance(control.pre)
    )
    var_b = cuped_summary(treatment, theta).variance
    return div(div(var_b / treatment.n + var_a / control.n, mean_a), mean_a)


def without_cuped(arm: CupedSums | CupedRatioSums) -> Component | RatioSums:
    """The same arm with the pre-period information dropped."""
    if isinstance(arm, CupedSums):
        return arm.post
    return RatioSums(
        n=arm.n, numerator=arm.numerator, denominator=arm.denominator, sum_products=arm.sum_num_den
    )


# --- ratio CUPED -----------------------------------------------------------------------


def _lambda(arm: CupedRatioSums) -> npt.NDArray[np.float64]:
    """Per-unit covariance matrix of (M, D, Mp, Dp)."""
    m, d, mp, dp = arm.numerator, arm.denominator, arm.numerator_pre, arm.denominator_pre
    n = arm.n
    c_md = covariance(n, m, d, arm.sum_num_den)
    c_mmp = covariance(n, m, mp, arm.sum_num_num_pre)
    c_mdp = covariance(n, m, dp, arm.sum_num_den_pre)
    c_dmp = covariance(n, d, mp, arm.sum_num_pre_den)
    c_ddp = covariance(n, d, dp, arm.sum_den_den_pre)
    c_mpdp = covariance(n, mp, dp, arm.sum_num_pre_den_pre)
    return np.array(
        [
            [component_variance(m), c_md, c_mmp, c_mdp],
            [c_md, component_variance(d), c_dmp, c_ddp],
            [c_mmp, c_dmp, component_variance(mp), c_mpdp],
            [c_mdp, c_ddp, c_mpdp, component_variance(dp)],
        ],
        dtype=np.float64,
    )


def _ratio_gradient(num: Component, den: Component) -> tuple[float, float]:
    """Gradient of ``mean_M / mean_D`` with respect to (mean_M, mean_D)."""
    mean_d = component_mean(den)
    return 1.0 / mean_d, -component_mean(num) / mean_d / mean_d


def _has_zero_denominator(arm: CupedRatioSums) -> bool:
    return component_mean(arm.denominator) == 0.0 or component_mean(arm.denominator_pre) == 0.0


def _gradient(arm: CupedRatioSums, theta: float) -> _Vector:
    """Gradient of ``R_post - theta R_pre`` in (M, D, Mp, Dp); zeros if a mean_D is 0."""
    if _has_zero_denominator(arm):
        return np.zeros(4)
    g_post = _ratio_gradient(arm.numerator, arm.denominator)
    g_pre = _ratio_gradient(arm.numerator_pre, arm.denominator_pre)
    return np.array([g_post[0], g_post[1], -theta * g_pre[0], -theta * g_pre[1]])


def _quad(u: _Vector, lam: npt.NDArray[np.float64], v: _Vector) -> float:
    with np.errstate(all="ignore"):
        return float(u @ lam @ v)


def cuped_ratio_theta(control: CupedRatioSums, treatment: CupedRatioSums) -> float:
    """Pooled theta for ratio CUPED: ``sum Cov(R_post, R_pre) / sum Var(R_pre)`` over arms.

    Both terms are per-unit delta-method moments of the two arms, summed unweighted; an arm
    with a zero mean denominator contributes nothing. Returns 0 when the sum of variances is 0.
    """
    cov_total, var_total = 0.0, 0.0
    for arm in (control, treatment):
        if _has_zero_denominator(arm):
            continue
        lam = _lambda(arm)
        post = np.array([*_ratio_gradient(arm.numerator, arm.denominator), 0.0, 0.0])
        pre = np.array([0.0, 0.0, *_ratio_gradient(arm.numerator_pre, arm.denominator_pre)])
        cov_total += _quad(post, lam, pre)
        var_total += _quad(pre, lam, pre)
    return div(cov_total, var_total) if var_total != 0.0 else 0.0


def _ratio_mean(num: Component, den: Component) -> float:
    return div(num.sum, den.sum) if den.sum != 0 else 0.0


def cuped_ratio_summary(arm: CupedRatioSums, theta: float) -> ArmSummary:
    """Adjusted ratio ``R_post - theta R_pre`` and its per-unit delta-method variance."""
    r_post = _ratio_mean(arm.numerator, arm.denominator)
    r_pre = _ratio_mean(arm.numerator_pre, arm.denominator_pre)
    has_zero = arm.denominator.sum == 0 or arm.denominator_pre.sum == 0
    mean = 0.0 if has_zero else r_post - theta * r_pre
    grad = _gradient(arm, theta)
    variance = _quad(grad, _lambda(arm), grad)
    return ArmSummary(n=arm.n, mean=mean, unadjusted_mean=r_post, variance=variance)


def relative_cuped_ratio_variance(control: CupedRatioSums, treatment: CupedRatioSums, theta: float) -> float:
    """Delta-method variance of ``(adj_B - adj_A) / |R_post,A|`` over both 4-vectors.

    With ``g`` the absolute difference of adjusted ratios and ``c = |R_post,A|``, the control
    gradient is ``(-(c + g) / (mD c^2), mM (c + g) / (mD^2 c^2), theta dR_pre / c)`` and the
    treatment gradient is its adjusted-ratio gradient divided by ``c``. Returns 0 when the
    control ratio or its mean denominator is 0.
    """
    r_a = _ratio_mean(control.numerator, control.denominator)
    mean_d = component_mean(control.denominator)
    if r_a == 0.0 or mean_d == 0.0 or control.n == 0 or treatment.n == 0:
        return 0.0
    c = abs(r_a)
    g = cuped_ratio_summary(treatment, theta).mean - cuped_ratio_summary(control, theta).mean
    grad_a = _gradient(control, theta)
    lead = div(c + g, c * c)
    mean_m = component_mean(control.numerator)
    with np.errstate(all="ignore"):
        ctrl = np.array(
            [
                -lead / mean_d,
                div(mean_m * lead / mean_d, mean_d),
                -grad_a[2] / c,
                -grad_a[3] / c,
            ]
        )
        trt = _gradient(treatment, theta) / c
    return _quad(ctrl, _lambda(control), ctrl) / control.n + _quad(trt, _lambda(treatment), trt) / treatment.n
