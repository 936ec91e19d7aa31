"""Fixed-horizon frequentist test: Welch's t-test on the (relative or absolute) effect.

Spec section 3, "Frequentist": ``t = estimate / SE`` with Welch-Satterthwaite degrees of
freedom from the per-arm variances; two-sided ``p = 2 P(T > |t|)`` and interval
``estimate +- t_{1 - alpha/2} SE``; one-sided variants use ``t_{1 - alpha}`` and an infinite
bound. For absolute effects this equals ``scipy.stats.ttest_ind_from_stats(equal_var=False)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._effect import EffectMoments, effect_moments, welch_dof
from ._numeric import all_finite, require_open_unit, t_cdf, t_ppf, t_sf, to_float
from ._types import Alternative, ArmSums, DifferenceType, ErrorCode

__all__ = [
    "FrequentistResult",
    "FrequentistSettings",
    "default_frequentist_result",
    "frequentist_result",
    "welch_t_test",
]


@dataclass(frozen=True, slots=True)
class FrequentistSettings:
    """Options of the fixed-horizon t-test. Enum fields also accept their string values
    (e.g. ``"absolute"``); invalid values raise ``ValueError``."""

    alpha: float = 0.05
    """Significance level; the interval has coverage ``1 - alpha``."""
    difference: DifferenceType = DifferenceType.RELATIVE
    """Relative (default) or absolute effect."""
    alternative: Alternative = Alternative.TWO_SIDED
    """Two-sided (default) or one-sided alternative."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", to_float(self.alpha))
        require_open_unit("alpha", self.alpha)
        object.__setattr__(self, "difference", DifferenceType(self.difference))
        object.__setattr__(self, "alternative", Alternative(self.alternative))


@dataclass(frozen=True, slots=True)
class FrequentistResult:
    """Outcome of a frequentist comparison (fixed-horizon or sequential).

    When ``error`` is set every number holds its default: effect 0, standard error 0,
    interval (0, 0), p-value 1, degrees of freedom 0.
    """

    effect: float
    """Estimated effect. Unit: a fraction of the control mean (0.05 = +5 %) when
    ``difference`` is relative, else the metric's own units."""
    standard_error: float
    """Standard error of ``effect``. Unit: same as ``effect``."""
    ci_lower: float
    """Lower bound of the confidence interval (or confidence sequence); ``-inf`` for the
    ``less`` alternative. Unit: same as ``effect``."""
    ci_upper: float
    """Upper bound of the interval; ``+inf`` for the ``greater`` alternative. Unit: same as
    ``effect``."""
    p_value: float
    """p-value of the null hypothesis "no effect" (always-valid for sequential tests).
    Unit: probability in [0, 1]."""
    degrees_of_freedom: float
    """Welch-Satterthwaite degrees of freedom of the t reference; ``inf`` for normal-based
    (sequential) intervals; 0 in the default output. Unit: count."""
    difference: DifferenceType
    """Whether ``effect`` is relative or absolute. Unit: none (label)."""
    alternative: Alternative
    """The alternative hypothesis tested. Unit: none (label)."""
    error: ErrorCode | None = None
    """Why the default output was returned, or None. Unit: none (code)."""


def default_frequentist_result(
    difference: DifferenceType, alternative: Alternative, error: ErrorCode
) -> FrequentistResult:
    """The documented output when no test could be run: p = 1 and interval (0, 0)."""
    return FrequentistResult(0.0, 0.0, 0.0, 0.0, 1.0, 0.0, difference, alternative, error)


def _p_value(t: float, dof: float, alternative: Alternative) -> float:
    if alternative is Alternative.GREATER:
        return t_sf(t, dof)
    if alternative is Alternative.LESS:
        return t_cdf(t, dof)
    return min(1.0, 2.0 * t_sf(abs(t), dof))


def _interval(
    estimate: float, se: float, dof: float, alpha: float, alternative: Alternative
) -> tuple[float, float]:
    if alternative is Alternative.TWO_SIDED:
        width = t_ppf(1.0 - alpha / 2.0, dof) * se
        return estimate - width, estimate + width
    width = t_ppf(1.0 - alpha, dof) * se
    if alternative is Alternative.GREATER:
        return estimate - width, math.inf
    return -math.inf, estimate + width


def frequentist_result(
    moments: EffectMoments,
    p_value: float,
    interval: tuple[float, float],
    dof: float,
    alternative: Alternative,
) -> FrequentistResult:
    """Assemble a result, replacing it by the default when a number came out undefined."""
    lower, upper = interval
    if math.isnan(lower) or math.isnan(upper) or not 0.0 <= p_value <= 1.0 or math.isnan(dof):
        return default_frequentist_result(moments.difference, alternative, ErrorCode.NUMERICAL_ERROR)
    if not all_finite((moments.estimate, moments.standard_error)):
        return default_frequentist_result(moments.difference, alternative, ErrorCode.NUMERICAL_ERROR)
    return FrequentistResult(
        moments.estimate,
        moments.standard_error,
        lower,
        upper,
        p_value,
        dof,
        moments.difference,
        alternative,
    )


def welch_t_test(
    control: ArmSums,
    treatment: ArmSums,
    settings: FrequentistSettings = FrequentistSettings(),
) -> FrequentistResult:
    """Welch t-test of ``treatment`` against ``control``; never raises.

    Degenerate inputs (see ``effect_moments``) give the default output with an error code.
    """
    moments = effect_moments(control, treatment, settings.difference)
    if moments.error is not None:
        return default_frequentist_result(settings.difference, settings.alternative, moments.error)
    dof = welch_dof(moments.control, moments.treatment)
    t = moments.estimate / moments.standard_error
    p = _p_value(t, dof, settings.alternative)
    interval = _interval(moments.estimate, moments.standard_error, dof, settings.alpha, settings.alternative)
    return frequentist_result(moments, p, interval, dof, settings.alternative)
