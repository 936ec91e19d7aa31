"""Mixture sequential probability ratio test (Johari et al. 2017), spec section 3.

With ``n`` units per arm, per-unit variance sum ``V`` (``p_A(1-p_A) + p_B(1-p_B)`` for
conversions) and a normal mixing distribution of variance ``tau^2`` on the effect:

    Lambda_n = sqrt(V / (V + n tau^2)) exp(n^2 tau^2 (diff - theta0)^2 / (2 V (V + n tau^2)))

Writing ``s^2 = V / n`` (the variance of the difference of means) gives the equivalent
``sqrt(s^2 / (s^2 + tau^2)) exp(tau^2 (diff - theta0)^2 / (2 s^2 (s^2 + tau^2)))``, which
is what ``msprt_p_value`` takes, so it also serves unequal arms (``s^2 = V_A/n_A + V_B/n_B``).
The always-valid p-value at one look is ``min(1, 1 / Lambda)``; across looks it is the
running minimum (``running_p_values``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ._numeric import all_finite, div, exp, to_float

__all__ = ["msprt_p_value", "running_p_values"]


def msprt_p_value(difference: float, standard_error: float, tau_squared: float, null: float = 0.0) -> float:
    """Always-valid p-value ``min(1, 1/Lambda)`` at a single look; computed in log space.

    ``difference`` and ``standard_error`` are in the effect's units, ``tau_squared`` in
    their square. Returns 1 when an input is non-finite or a variance is not positive.
    """
    difference, standard_error = to_float(difference), to_float(standard_error)
    tau_squared, null = to_float(tau_squared), to_float(null)
    if not all_finite((difference, standard_error, tau_squared, null)):
        return 1.0
    s2 = standard_error * standard_error
    if not (s2 > 0.0 and tau_squared > 0.0):
        return 1.0
    total = s2 + tau_squared
    gap = difference - null
    shrink = 0.5 * (math.log(s2) - math.log(total))
    log_lambda = shrink + div(tau_squared * gap * gap, 2.0 * s2 * total)
    if math.isnan(log_lambda) or log_lambda <= 0.0:
        return 1.0
    return exp(-log_lambda)


def running_p_values(p_values: Iterable[float]) -> tuple[float, ...]:
    """Running minimum of per-look p-values (NaN counts as 1): the always-valid sequence."""
    out: list[float] = []
    current = 1.0
    for p in map(to_float, p_values):
        current = min(current, 1.0 if math.isnan(p) else max(0.0, p))
        out.append(current)
    return tuple(out)
