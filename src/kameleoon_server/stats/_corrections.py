"""Multiple-comparison corrections across goal metrics x variations (x dimension slices).

Spec section 3, "Multiple-comparison corrections":

* Holm: sort p ascending, ``p_(i) (m - i)`` for 0-based rank ``i``, cap at 1, running max;
* Benjamini-Hochberg: sort descending, ``p m / (m - i)``, cap at 1, running min;
* adjusted interval back-solved from the adjusted p-value:
  ``SE_adj = |effect| / z_{1 - p_adj/2}``, interval ``effect +- z_{1 - alpha/2} SE_adj``
  (one-sided: ``z_{1 - p_adj}`` and ``z_{1 - alpha}``, with the same infinite side).

Results are returned in input order. NaN p-values count as 1 and values outside [0, 1] are
clipped, so the output is always a valid probability.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from enum import Enum

import numpy as np
import numpy.typing as npt

from ._frequentist import FrequentistResult
from ._numeric import div, norm_ppf, require_open_unit, to_float
from ._types import Alternative

__all__ = [
    "Correction",
    "adjust_p_values",
    "adjusted_ci",
    "benjamini_hochberg",
    "correct_results",
    "holm_bonferroni",
]


class Correction(str, Enum):
    """Which family-wise correction to apply (none by default)."""

    NONE = "none"
    """Leave p-values unchanged."""
    HOLM = "holm"
    """Holm-Bonferroni step-down; controls the family-wise error rate."""
    BENJAMINI_HOCHBERG = "benjamini_hochberg"
    """Benjamini-Hochberg step-up; controls the false discovery rate."""


def _clean(p_values: Sequence[float]) -> npt.NDArray[np.float64]:
    arr = np.array([1.0 if math.isnan(p) else p for p in map(to_float, p_values)], dtype=np.float64)
    return np.clip(arr, 0.0, 1.0)


def holm_bonferroni(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm-adjusted p-values, in input order."""
    p = _clean(p_values)
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.maximum.accumulate(scaled) if m else scaled
    return tuple(float(x) for x in out)


def benjamini_hochberg(p_values: Sequence[float]) -> tuple[float, ...]:
    """Benjamini-Hochberg-adjusted p-values, in input order."""
    p = _clean(p_values)
    m = len(p)
    order = np.argsort(-p, kind="stable")
    scaled = np.minimum(1.0, p[order] * (m / (m - np.arange(m))))
    out = np.empty(m)
    out[order] = np.minimum.accumulate(scaled) if m else scaled
    return tuple(float(x) for x in out)


def adjust_p_values(p_values: Sequence[float], method: Correction) -> tuple[float, ...]:
    """Apply ``method`` to a family of p-values (``NONE`` only cleans them)."""
    method = Correction(method)
    if method is Correction.HOLM:
        return holm_bonferroni(p_values)
    if method is Correction.BENJAMINI_HOCHBERG:
        return benjamini_hochberg(p_values)
    return tuple(float(x) for x in _clean(p_values))


def adjusted_ci(
    effect: float,
    adjusted_p: float,
    alpha: float = 0.05,
    alternative: Alternative = Alternative.TWO_SIDED,
) -> tuple[float, float]:
    """Interval consistent with an adjusted p-value, in the units of ``effect``.

    An adjusted p-value of 1 (or a zero effect) carries no information: the interval is
    ``(-inf, inf)``. An adjusted p-value of 0 gives the point ``(effect, effect)``.
    """
    effect, adjusted_p, alpha = to_float(effect), to_float(adjusted_p), to_float(alpha)
    require_open_unit("alpha", alpha)
    p = 1.0 if math.isnan(adjusted_p) else min(1.0, max(0.0, adjusted_p))
    alternative = Alternative(alternative)
    two_sided = alternative is Alternative.TWO_SIDED
    z_p = norm_ppf(1.0 - p / 2.0) if two_sided else norm_ppf(1.0 - p)
    if effect == 0.0 or not z_p > 0.0 or not math.isfinite(effect):
        return -math.inf, math.inf
    width = norm_ppf(1.0 - alpha / 2.0 if two_sided else 1.0 - alpha) * div(abs(effect), z_p)
    if alternative is Alternative.GREATER:
        return effect - width, math.inf
    if alternative is Alternative.LESS:
        return -math.inf, effect + width
    return effect - width, effect + width


def correct_results(
    results: Sequence[FrequentistResult], method: Correction, alpha: float = 0.05
) -> tuple[FrequentistResult, ...]:
    """Adjust the p-values and intervals of a family of frequentist results.

    The family is every result without an error code (pass all goal metrics x variations x
    slices together); results carrying an error are returned unchanged and do not count
    towards the family size. ``NONE`` returns the results unchanged.
    """
    if Correction(method) is Correction.NONE:
        return tuple(results)
    members = [i for i, r in enumerate(results) if r.error is None]
    adjusted = adjust_p_values([results[i].p_value for i in members], method)
    out = list(results)
    for i, p in zip(members, adjusted, strict=True):
        r = results[i]
        lower, upper = adjusted_ci(r.effect, p, alpha, r.alternative)
        out[i] = dataclasses.replace(r, p_value=p, ci_lower=lower, ci_upper=upper)
    return tuple(out)
