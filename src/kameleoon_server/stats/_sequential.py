"""Sequential testing: asymptotic confidence sequences and their always-valid p-values.

Spec section 3, "Sequential testing" (Waudby-Smith et al. 2023, arXiv 2103.06476v7,
eq. 9, 134, 155, 161). With ``N = n_A + n_B`` units so far, ``N*`` the tuning constant
(the total sample size at which the sequence is tightest) and ``v = N rho^2``:

* ``rho = sqrt((-2 ln a + ln(-2 ln a + 1)) / N*)`` with ``a = alpha`` (two-sided) or
  ``a = 2 alpha`` (one-sided);
* two-sided half-width ``SE sqrt(2 (v + 1) / v * ln(sqrt(v + 1) / alpha))``;
* one-sided half-width ``SE sqrt(2 (v + 1) / v * ln(1 + sqrt(v + 1) / (2 alpha)))``;
* two-sided p-value ``min(1, 1/E)``, ``E = exp(v z^2 / (2 (v + 1))) / sqrt(v + 1)``,
  ``z = estimate / SE`` (a normal-mixture e-value);
* one-sided p-value: the alpha at which the one-sided bound touches 0, found by bisection
  over [1e-5, 0.4999] with ``rho`` held at the configured alpha (so p-values are clipped to
  that range, as in the reference engine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._effect import EffectMoments, effect_moments
from ._frequentist import FrequentistResult, default_frequentist_result, frequentist_result
from ._numeric import div, exp, require_open_unit, require_positive, sqrt, to_float
from ._types import Alternative, ArmSums, DifferenceType

__all__ = [
    "DEFAULT_SEQUENTIAL_TUNING",
    "SequentialSettings",
    "sequential_halfwidth",
    "sequential_p_value",
    "sequential_rho",
    "sequential_test",
]

DEFAULT_SEQUENTIAL_TUNING = 5000.0
"""Default ``N*``: the total sample size (both arms) where the sequence is tightest."""

_P_MIN, _P_MAX = 1e-5, 0.4999
_BISECT_TOL, _BISECT_STEPS = 1e-6, 100


@dataclass(frozen=True, slots=True)
class SequentialSettings:
    """Options of the sequential test. Enum fields also accept their string values
    (e.g. ``"absolute"``); invalid values raise ``ValueError``."""

    alpha: float = 0.05
    """Significance level; the sequence has time-uniform coverage ``1 - alpha``. Must be
    below 0.5 for one-sided alternatives."""
    difference: DifferenceType = DifferenceType.RELATIVE
    """Relative (default) or absolute effect."""
    alternative: Alternative = Alternative.TWO_SIDED
    """Two-sided (default) or one-sided alternative."""
    tuning: float = DEFAULT_SEQUENTIAL_TUNING
    """``N*``, the total number of units (both arms) at which the sequence is tightest."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "difference", DifferenceType(self.difference))
        object.__setattr__(self, "alternative", Alternative(self.alternative))
        object.__setattr__(self, "alpha", to_float(self.alpha))
        object.__setattr__(self, "tuning", to_float(self.tuning))
        require_open_unit("alpha", self.alpha)
        require_positive("tuning", self.tuning)
        if self.alternative is not Alternative.TWO_SIDED and self.alpha >= 0.5:
            raise ValueError("one-sided sequential tests need alpha < 0.5")


def sequential_rho(alpha: float, tuning: float = DEFAULT_SEQUENTIAL_TUNING, two_sided: bool = True) -> float:
    """Mixing parameter ``rho`` of the confidence sequence for ``N* = tuning``.

    Raises ``ValueError`` unless ``0 < alpha < 1`` (``< 0.5`` one-sided) and ``tuning > 0``.
    """
    alpha, tuning = to_float(alpha), to_float(tuning)
    require_open_unit("alpha", alpha if two_sided else 2.0 * alpha)
    require_positive("tuning", tuning)
    a = alpha if two_sided else 2.0 * alpha
    log_a = math.log(a)
    return math.sqrt((-2.0 * log_a + math.log(-2.0 * log_a + 1.0)) / tuning)


def sequential_halfwidth(
    standard_error: float, n_total: float, alpha: float, rho: float, two_sided: bool = True
) -> float:
    """Half-width of the confidence sequence after ``n_total`` units (both arms).

    In the units of ``standard_error``; ``inf`` when ``n_total * rho^2`` is not positive
    (no information yet).
    """
    standard_error, n_total, alpha, rho = map(to_float, (standard_error, n_total, alpha, rho))
    v = n_total * rho * rho
    if not v > 0.0:
        return math.inf
    spread = sqrt(v + 1.0)
    log_term = math.log(spread / alpha) if two_sided else math.log1p(spread / (2.0 * alpha))
    return standard_error * sqrt(2.0 * (v + 1.0) / v * log_term)


def sequential_p_value(estimate: float, standard_error: float, n_total: float, rho: float) -> float:
    """Always-valid two-sided p-value ``min(1, 1/E)``, computed in log space (no overflow).

    Returns 1 when the standard error or ``n_total * rho^2`` is not positive.
    """
    estimate, standard_error, n_total, rho = map(to_float, (estimate, standard_error, n_total, rho))
    v = n_total * rho * rho
    if not (standard_error > 0.0 and v > 0.0):
        return 1.0
    z = estimate / standard_error
    log_e = v * z * z / (2.0 * (v + 1.0)) - 0.5 * math.log1p(v)
    return 1.0 if not log_e > 0.0 else exp(-log_e)


def _bound_margin(m: EffectMoments, n: float, alpha: float, rho: float, greater: bool) -> float:
    """Distance of the one-sided bound beyond 0 in the rejecting direction (> 0: reject)."""
    hw = sequential_halfwidth(m.standard_error, n, alpha, rho, two_sided=False)
    return m.estimate - hw if greater else -(m.estimate + hw)


def _closed_form_p(m: EffectMoments, n: float, rho: float, greater: bool) -> float:
    """The exact alpha at which the one-sided bound is 0, clipped to [1e-5, 0.4999]."""
    if (m.estimate <= 0.0) if greater else (m.estimate >= 0.0):
        return _P_MAX
    v = n * rho * rho
    scale = m.standard_error * m.standard_error * 2.0 * (v + 1.0) / v
    growth = math.expm1(min(div(m.estimate * m.estimate, scale), 700.0))
    return min(_P_MAX, max(_P_MIN, div(sqrt(v + 1.0), 2.0 * growth)))


def _one_sided_p(m: EffectMoments, n: float, rho: float, greater: bool) -> float:
    """Bisection on alpha until the bound is within 1e-6 of 0 (reference procedure).

    Falls back to the closed-form root when the bisection cannot reach that tolerance
    (effects of very large magnitude, where the bound cannot be resolved to 1e-6).
    """
    lo, hi = _P_MIN, _P_MAX
    if _bound_margin(m, n, lo, rho, greater) > 0.0:
        return lo
    if _bound_margin(m, n, hi, rho, greater) < 0.0:
        return hi
    mid = 0.5 * (lo + hi)
    for _ in range(_BISECT_STEPS):
        margin = _bound_margin(m, n, mid, rho, greater)
        lo, hi = (mid, hi) if margin < 0.0 else (lo, mid)
        mid = 0.5 * (lo + hi)
        if abs(margin) < _BISECT_TOL:
            return mid
    return _closed_form_p(m, n, rho, greater)


def sequential_test(
    control: ArmSums,
    treatment: ArmSums,
    settings: SequentialSettings = SequentialSettings(),
) -> FrequentistResult:
    """Confidence sequence and always-valid p-value for ``treatment`` vs ``control``.

    Valid at every look, however often the data are checked. Degenerate inputs give the
    default output (p = 1, interval (0, 0)) with an error code; never raises.
    """
    alt = settings.alternative
    moments = effect_moments(control, treatment, settings.difference)
    if moments.error is not None:
        return default_frequentist_result(settings.difference, alt, moments.error)
    n = moments.control.n + moments.treatment.n
    two_sided = alt is Alternative.TWO_SIDED
    rho = sequential_rho(settings.alpha, settings.tuning, two_sided)
    hw = sequential_halfwidth(moments.standard_error, n, settings.alpha, rho, two_sided)
    est = moments.estimate
    if two_sided:
        p = sequential_p_value(est, moments.standard_error, n, rho)
        interval = (est - hw, est + hw)
    else:
        greater = alt is Alternative.GREATER
        p = _one_sided_p(moments, n, rho, greater)
        interval = (est - hw, math.inf) if greater else (-math.inf, est + hw)
    return frequentist_result(moments, p, interval, math.inf, alt)
