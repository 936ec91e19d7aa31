"""Sample-ratio-mismatch check: chi-square goodness of fit of units per variation.

Spec section 3, "SRM": ``chi2 = sum (o_i - e_i)^2 / e_i`` with ``e_i = w_i / sum(w) * sum(o)``
(variations with weight <= 0 are skipped in the sum), ``p = P(chi2_{k-1} > chi2)`` with
``k`` the number of variations; ``p = 1`` when there are no units. A mismatch is flagged when
``p < threshold`` (default 0.001) and every variation with positive weight has at least
``min_count`` units (default 8).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._numeric import all_finite, chi2_sf, div, to_float

__all__ = [
    "DEFAULT_SRM_MIN_COUNT",
    "DEFAULT_SRM_THRESHOLD",
    "SrmResult",
    "srm_check",
    "srm_p_value",
]

DEFAULT_SRM_THRESHOLD = 0.001
"""p-value below which a sample ratio mismatch is reported."""
DEFAULT_SRM_MIN_COUNT = 8
"""Units every variation needs before a mismatch can be reported."""


@dataclass(frozen=True, slots=True)
class SrmResult:
    """Outcome of the sample-ratio-mismatch check.

    Invalid input (non-finite or negative counts, a weights list of another length, no
    positive weight) gives ``p_value=1``, ``chi_square=0``, ``mismatch=False`` and
    ``valid=False``.
    """

    p_value: float
    """Chi-square goodness-of-fit p-value of the observed split against the configured one.
    Unit: probability in [0, 1]."""
    chi_square: float
    """The chi-square statistic. Unit: none (dimensionless, >= 0)."""
    degrees_of_freedom: int
    """Number of variations minus one. Unit: count."""
    enough_data: bool
    """Whether every variation with a positive weight has at least ``min_count`` units.
    Unit: none (flag)."""
    mismatch: bool
    """True when ``enough_data`` and ``p_value < threshold``: the split is suspicious and
    results should not be trusted. Unit: none (flag)."""
    valid: bool = True
    """False when the inputs were unusable and the default output was returned. Unit: none
    (flag)."""


def _chi_square(counts: Sequence[float], weights: Sequence[float]) -> float:
    total_obs = sum(counts)
    total_w = sum(w for w in weights if w > 0)
    stat = 0.0
    for o, w in zip(counts, weights, strict=True):
        if w > 0:
            expected = w / total_w * total_obs
            gap = o - expected
            stat += 0.0 if gap == 0 else div(gap * gap, expected)
    return stat


def _usable(counts: Sequence[float], weights: Sequence[float]) -> bool:
    return (
        len(counts) == len(weights)
        and all_finite([*counts, *weights])
        and all(c >= 0 for c in counts)
        and any(w > 0 for w in weights)
    )


def _floats(counts: Sequence[float], weights: Sequence[float] | None) -> tuple[list[float], list[float]]:
    """Counts and weights as float lists; equal weights when none are given."""
    values = [to_float(c) for c in counts]
    return values, [1.0] * len(values) if weights is None else [to_float(w) for w in weights]


def srm_p_value(counts: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """p-value of the observed units per variation against ``weights`` (equal by default).

    Returns 1 with no units, fewer than two variations, or unusable input.
    """
    counts, weights = _floats(counts, weights)
    if len(counts) < 2 or not _usable(counts, weights) or sum(counts) == 0:
        return 1.0
    stat = _chi_square(counts, weights)
    p = chi2_sf(stat, len(counts) - 1) if math.isfinite(stat) else 0.0
    return 1.0 if math.isnan(p) else p


def srm_check(
    counts: Sequence[float],
    weights: Sequence[float] | None = None,
    threshold: float = DEFAULT_SRM_THRESHOLD,
    min_count: float = DEFAULT_SRM_MIN_COUNT,
) -> SrmResult:
    """Run the SRM check on units per variation (same order as ``weights``); never raises."""
    counts, weights = _floats(counts, weights)
    dof = max(len(counts) - 1, 0)
    if not _usable(counts, weights):
        return SrmResult(1.0, 0.0, dof, enough_data=False, mismatch=False, valid=False)
    p = srm_p_value(counts, weights)
    stat = _chi_square(counts, weights) if sum(counts) > 0 else 0.0
    enough = all(c >= min_count for c, w in zip(counts, weights, strict=True) if w > 0)
    return SrmResult(p, stat, dof, enough_data=enough, mismatch=enough and p < threshold)
