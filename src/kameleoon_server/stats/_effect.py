"""The effect of a treatment over the control and its standard error, for any metric shape.

Spec section 3, "Effect and its variance":

* absolute ``mean_B - mean_A`` with variance ``Var_A / n_A + Var_B / n_B``;
* relative ``(mean_B - mean_A) / |mean_A|`` with the delta-method variance
  ``Var_B / (n_B mean_A^2) + Var_A mean_B^2 / (n_A mean_A^4)`` (on unadjusted means), or the
  CUPED-specific variances of ``_cuped.py``;
* any error (see ``ErrorCode``) yields estimate 0 and standard error 0.

Every frequentist and Bayesian test in this package starts from ``effect_moments``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._cuped import (
    RATIO_THETA_FLOOR,
    cuped_ratio_summary,
    cuped_ratio_theta,
    cuped_summary,
    cuped_theta,
    relative_cuped_ratio_variance,
    relative_cuped_variance,
    without_cuped,
)
from ._moments import (
    EMPTY_SUMMARY,
    ArmSummary,
    delta_ratio_variance,
    ratio_summary,
    simple_summary,
    size_error,
    summary_is_finite,
    validate_pair,
)
from ._numeric import all_finite, div, sqrt
from ._types import (
    ArmSums,
    CupedRatioSums,
    CupedSums,
    DifferenceType,
    ErrorCode,
    RatioSums,
)

__all__ = ["EffectMoments", "effect_moments", "summarize", "welch_dof"]


@dataclass(frozen=True, slots=True)
class EffectMoments:
    """Point estimate and standard error of the treatment effect, before any test."""

    estimate: float
    """Estimated effect. Unit: a fraction of the control mean (0.05 = +5 %) when
    ``difference`` is relative, else the metric's own units. 0 when ``error`` is set."""
    standard_error: float
    """Standard error of ``estimate``. Unit: same as ``estimate``. 0 when ``error`` is set."""
    difference: DifferenceType
    """Whether ``estimate`` is relative or absolute. Unit: none (label)."""
    control: ArmSummary
    """Moments of the control arm (zeros when the inputs were unusable). Unit: see
    ``ArmSummary``."""
    treatment: ArmSummary
    """Moments of the treatment arm (zeros when the inputs were unusable). Unit: see
    ``ArmSummary``."""
    theta: float
    """CUPED coefficient applied to both arms; 0 without CUPED or when the adjustment was
    dropped. Unit: metric units per covariate unit."""
    error: ErrorCode | None = None
    """Why the default output was returned, or None. Unit: none (code)."""


def summarize(arm: ArmSums, theta: float = 0.0) -> ArmSummary:
    """Moments of one arm; ``theta`` applies to CUPED sums only."""
    if isinstance(arm, CupedSums):
        return cuped_summary(arm, theta)
    if isinstance(arm, CupedRatioSums):
        return cuped_ratio_summary(arm, theta)
    if isinstance(arm, RatioSums):
        return ratio_summary(arm)
    return simple_summary(arm)


def _with_theta(control: ArmSums, treatment: ArmSums) -> tuple[ArmSums, ArmSums, float]:
    """Estimate the pooled CUPED theta; drop the adjustment when theta is (near) zero."""
    if isinstance(control, CupedSums) and isinstance(treatment, CupedSums):
        theta = cuped_theta(control, treatment)
        if theta != 0.0:
            return control, treatment, theta
    elif isinstance(control, CupedRatioSums) and isinstance(treatment, CupedRatioSums):
        theta = cuped_ratio_theta(control, treatment)
        if abs(theta) >= RATIO_THETA_FLOOR:
            return control, treatment, theta
    else:
        return control, treatment, 0.0
    return without_cuped(control), without_cuped(treatment), 0.0


def _default(
    difference: DifferenceType,
    error: ErrorCode,
    control: ArmSummary = EMPTY_SUMMARY,
    treatment: ArmSummary = EMPTY_SUMMARY,
    theta: float = 0.0,
) -> EffectMoments:
    return EffectMoments(0.0, 0.0, difference, control, treatment, theta, error)


def _arm_error(a: ArmSummary, b: ArmSummary, relative: bool) -> ErrorCode | None:
    size = size_error(a, b)
    if size is not None:
        return size
    if a.variance <= 0 or b.variance <= 0:
        return ErrorCode.ZERO_VARIANCE
    if relative and (a.mean == 0 or a.unadjusted_mean == 0):
        return ErrorCode.ZERO_CONTROL_MEAN
    return None


def _variance(
    control: ArmSums, treatment: ArmSums, a: ArmSummary, b: ArmSummary, theta: float, relative: bool
) -> float:
    if not relative:
        return a.variance / a.n + b.variance / b.n
    if isinstance(control, CupedSums) and isinstance(treatment, CupedSums):
        return relative_cuped_variance(control, treatment, theta)
    if isinstance(control, CupedRatioSums) and isinstance(treatment, CupedRatioSums):
        return relative_cuped_ratio_variance(control, treatment, theta)
    return delta_ratio_variance(b.unadjusted_mean, b.variance / b.n, a.unadjusted_mean, a.variance / a.n, 0.0)


def effect_moments(
    control: ArmSums,
    treatment: ArmSums,
    difference: DifferenceType = DifferenceType.RELATIVE,
) -> EffectMoments:
    """Effect of ``treatment`` over ``control`` and its standard error; never raises.

    CUPED sums get a pooled theta first. Errors, in order of precedence: non-finite or
    inconsistent inputs, an empty arm, an arm with one unit, a non-positive variance, a zero
    control mean for relative effects, and overflow (``NUMERICAL_ERROR``).
    """
    difference = DifferenceType(difference)
    relative = difference is DifferenceType.RELATIVE
    error = validate_pair(control, treatment)
    if error is not None:
        return _default(difference, error)
    control, treatment, theta = _with_theta(control, treatment)
    a, b = summarize(control, theta), summarize(treatment, theta)
    if not (summary_is_finite(a) and summary_is_finite(b) and all_finite((theta,))):
        return _default(difference, ErrorCode.NUMERICAL_ERROR)
    error = _arm_error(a, b, relative)
    if error is not None:
        return _default(difference, error, a, b, theta)
    diff = b.mean - a.mean
    estimate = div(diff, abs(a.unadjusted_mean)) if relative else diff
    variance = _variance(control, treatment, a, b, theta, relative)
    if not all_finite((estimate, variance)):
        return _default(difference, ErrorCode.NUMERICAL_ERROR, a, b, theta)
    if variance <= 0:
        return _default(difference, ErrorCode.ZERO_VARIANCE, a, b, theta)
    return EffectMoments(estimate, sqrt(variance), difference, a, b, theta)


def welch_dof(control: ArmSummary, treatment: ArmSummary) -> float:
    """Welch-Satterthwaite degrees of freedom from the per-arm variances.

    ``(q_A + q_B)^2 / (q_A^2 / (n_A - 1) + q_B^2 / (n_B - 1))`` with ``q = Var / n``; used for
    relative effects too. Returns ``inf`` (the normal limit) when the ratio is undefined or
    not positive, e.g. when the per-arm terms underflow.
    """
    q_a = div(control.variance, control.n)
    q_b = div(treatment.variance, treatment.n)
    denom = div(q_a * q_a, control.n - 1.0) + div(q_b * q_b, treatment.n - 1.0)
    total = q_a + q_b
    dof = div(total * total, denom)
    return dof if dof > 0 else math.inf
