"""Beta-binomial chance to win for conversion metrics (spec section 3, "Bayesian").

Each arm's conversion rate gets the posterior ``Beta(a0 + conversions, b0 + failures)``.
``P(p_B > p_A)`` is computed

* exactly, when the treatment's posterior alpha is a whole number, by Evan Miller's sum
  ``sum_{i < a_B} B(a_A + i, b_A + b_B) / ((b_B + i) B(1 + i, b_B) B(a_A, b_A))``; the same
  identity applied to ``a_A``, ``b_A`` or ``b_B`` covers any whole posterior parameter, and
  the one with the fewest terms is used;
* otherwise (e.g. the Jeffreys prior Beta(0.5, 0.5), or more than ``EXACT_TERMS_LIMIT``
  terms) by Gauss-Legendre quadrature of ``F_A(Q_B(u))`` over ``u`` in (0, 1), with
  panels at quantiles of both posteriors, reflected to ``1 - p`` when the rates are mostly
  above 1/2. The two methods agree to about 1e-9 for ordinary priors (1e-6 for prior
  pseudo-counts near ``MIN_PRIOR_COUNT``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ._numeric import all_finite, require_positive, to_float
from ._types import ErrorCode, ProportionSums

__all__ = [
    "MIN_PRIOR_COUNT",
    "UNIFORM_PRIOR",
    "BetaBinomialResult",
    "BetaPrior",
    "beta_binomial_chance_to_win",
]

EXACT_TERMS_LIMIT = 100_000
"""Largest number of terms summed by the exact formula before switching to quadrature."""

_TAILS = np.array([1e-14, 1e-9, 1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.15, 0.3])
_PANEL_QUANTILES = np.concatenate([_TAILS, [0.5], 1.0 - _TAILS[::-1]])
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(48)


MIN_PRIOR_COUNT = 0.01
"""Smallest prior pseudo-count accepted. Below it a posterior after a single all-or-nothing
observation sits within rounding error of 0 or 1 and double precision cannot integrate it."""


@dataclass(frozen=True, slots=True)
class BetaPrior:
    """Beta prior on a conversion rate; Beta(1, 1) (uniform) by default."""

    alpha: float = 1.0
    """Prior pseudo-count of conversions; finite and at least ``MIN_PRIOR_COUNT``."""
    beta: float = 1.0
    """Prior pseudo-count of non-conversions; finite and at least ``MIN_PRIOR_COUNT``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", to_float(self.alpha))
        object.__setattr__(self, "beta", to_float(self.beta))
        for name, value in (("alpha", self.alpha), ("beta", self.beta)):
            require_positive(f"beta prior {name}", value)
            if value < MIN_PRIOR_COUNT:
                raise ValueError(f"beta prior {name} must be at least {MIN_PRIOR_COUNT}, got {value!r}")


@dataclass(frozen=True, slots=True)
class BetaBinomialResult:
    """Chance to win from the two Beta posteriors.

    When ``error`` is set: chance to win 0.5 and the posterior parameters equal the prior.
    """

    chance_to_win: float
    """``P(p_B > p_A)`` (``P(p_B < p_A)`` for inverse metrics). Unit: probability in [0, 1]."""
    control_alpha: float
    """Posterior alpha of the control rate (prior alpha + conversions). Unit: pseudo-count."""
    control_beta: float
    """Posterior beta of the control rate (prior beta + failures). Unit: pseudo-count."""
    treatment_alpha: float
    """Posterior alpha of the treatment rate. Unit: pseudo-count."""
    treatment_beta: float
    """Posterior beta of the treatment rate. Unit: pseudo-count."""
    exact: bool
    """True when the closed-form sum was used, False for numerical quadrature. Unit: none
    (flag)."""
    error: ErrorCode | None = None
    """Why the default output was returned, or None. Unit: none (code)."""


UNIFORM_PRIOR = BetaPrior()
"""Beta(1, 1), the default prior."""


def _miller_sum(a_a: float, b_a: float, a_b: float, b_b: float) -> float:
    """``P(p_B > p_A)`` for a whole-number ``a_b`` (sum of ``a_b`` terms, in log space)."""
    i = np.arange(int(a_b), dtype=np.float64)
    log_terms = (
        special.betaln(a_a + i, b_a + b_b)
        - np.log(b_b + i)
        - special.betaln(1.0 + i, b_b)
        - special.betaln(a_a, b_a)
    )
    return float(np.exp(special.logsumexp(log_terms)))


def _exact(a_a: float, b_a: float, a_b: float, b_b: float) -> float | None:
    """Closed form when a posterior parameter is a whole number (fewest terms wins), else None.

    Besides the sum over ``a_B`` and its mirror over ``a_A``, ``p_B > p_A`` is the event
    ``1 - p_A > 1 - p_B`` with ``1 - p ~ Beta(beta, alpha)``, which gives sums over ``b_A``
    and ``b_B``.
    """
    options = [  # (number of terms, arguments of the sum, whether it gives P(p_A > p_B))
        (a_b, (a_a, b_a, a_b, b_b), False),
        (a_a, (a_b, b_b, a_a, b_a), True),
        (b_a, (b_b, a_b, b_a, a_a), False),
        (b_b, (b_a, a_a, b_b, a_b), True),
    ]
    whole = [option for option in options if _is_whole(option[0])]
    if not whole:
        return None
    _, args, mirrored = min(whole, key=lambda option: option[0])
    value = _miller_sum(*args)
    return 1.0 - value if mirrored else value


def _quadrature(a_a: float, b_a: float, a_b: float, b_b: float) -> float:
    """``P(p_B > p_A) = int_0^1 F_A(Q_B(u)) du`` by Gauss-Legendre on panels of ``u``.

    The integrand is bounded and monotone; panel edges sit at quantiles of B and at the
    images of A's quantiles, where the integrand changes fastest.
    """
    images = special.betainc(a_b, b_b, special.betaincinv(a_a, b_a, _PANEL_QUANTILES))
    cuts = np.concatenate([[0.0, 1.0], _PANEL_QUANTILES, images])
    edges = np.unique(np.clip(cuts[~np.isnan(cuts)], 0.0, 1.0))
    lo, hi = edges[:-1, None], edges[1:, None]
    u = (lo + hi) / 2.0 + (hi - lo) / 2.0 * _NODES[None, :]
    integrand = special.betainc(a_a, b_a, special.betaincinv(a_b, b_b, u))
    return float(np.sum((hi - lo) / 2.0 * _WEIGHTS[None, :] * integrand))


def _numerical(a_a: float, b_a: float, a_b: float, b_b: float) -> float:
    """Quadrature on the side of 0, where floating point resolves a spike best.

    Rates mostly above 1/2 are reflected (``p_B > p_A`` iff ``1 - p_A > 1 - p_B``, and
    ``1 - p ~ Beta(beta, alpha)``); if one integration order is undefined the other is used.
    """
    if a_a / (a_a + b_a) + a_b / (a_b + b_b) > 1.0:
        a_a, b_a, a_b, b_b = b_b, a_b, b_a, a_a
    p = _quadrature(a_a, b_a, a_b, b_b)
    return p if not math.isnan(p) else 1.0 - _quadrature(a_b, b_b, a_a, b_a)


def _is_whole(x: float) -> bool:
    return float(x).is_integer() and 1.0 <= x <= EXACT_TERMS_LIMIT


def _prob_b_beats_a(a_a: float, b_a: float, a_b: float, b_b: float) -> tuple[float, bool]:
    """``(P(p_B > p_A), exact)``; NaN when neither integration direction is defined."""
    try:
        with np.errstate(all="ignore"):
            p = _exact(a_a, b_a, a_b, b_b)
            if p is not None:
                return min(1.0, max(0.0, p)), True
            p = _numerical(a_a, b_a, a_b, b_b)
    except ArithmeticError:  # Boost-backed beta functions can raise on extreme parameters
        return math.nan, False
    return min(1.0, max(0.0, p)), False


def _arm_error(arm: ProportionSums) -> ErrorCode | None:
    if not all_finite((arm.n, arm.sum)):
        return ErrorCode.NON_FINITE_INPUT
    if arm.n < 0 or not 0.0 <= arm.sum <= arm.n:
        return ErrorCode.INVALID_INPUT
    if arm.n == 0:
        return ErrorCode.EMPTY_ARM
    return None


def beta_binomial_chance_to_win(
    control: ProportionSums,
    treatment: ProportionSums,
    prior: BetaPrior = UNIFORM_PRIOR,
    inverse: bool = False,
) -> BetaBinomialResult:
    """Posterior probability that the treatment's conversion rate beats the control's.

    Errors (non-finite input, conversions outside [0, n], an empty arm) give chance to win
    0.5 with the prior as posterior; never raises.
    """
    error = _arm_error(control) or _arm_error(treatment)
    if error is not None:
        a0, b0 = prior.alpha, prior.beta
        return BetaBinomialResult(0.5, a0, b0, a0, b0, exact=False, error=error)
    a_a, b_a = prior.alpha + control.sum, prior.beta + control.n - control.sum
    a_b, b_b = prior.alpha + treatment.sum, prior.beta + treatment.n - treatment.sum
    p, exact = _prob_b_beats_a(a_a, b_a, a_b, b_b)
    if math.isnan(p):
        return BetaBinomialResult(0.5, a_a, b_a, a_b, b_b, exact, ErrorCode.NUMERICAL_ERROR)
    return BetaBinomialResult(1.0 - p if inverse else p, a_a, b_a, a_b, b_b, exact)
