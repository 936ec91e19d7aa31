"""Per-arm moments from sufficient statistics, and input validation.

Formulas (spec section 3, "Per-arm moments"):

* mean ``S / n``; sample variance ``(Q - S^2 / n) / (n - 1)``; for a proportion the
  unpooled ``p (1 - p)``;
* covariance from sums ``(Sxy - Sx Sy / n) / (n - 1)``, or ``Sxy / n - Sx Sy / n^2`` when
  both variables are proportions;
* ratio of means by the delta method
  ``Var(M/D) ~ (Var M - 2 r Cov(M, D) + r^2 Var D) / mean_D^2`` with ``r = mean_M / mean_D``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ._numeric import all_finite, div, to_float
from ._types import (
    ArmSums,
    Component,
    ErrorCode,
    MeanSums,
    ProportionSums,
    RatioSums,
)

__all__ = [
    "EMPTY_SUMMARY",
    "ArmSummary",
    "component_mean",
    "component_variance",
    "covariance",
    "delta_ratio_variance",
    "ratio_summary",
    "simple_summary",
    "size_error",
    "summary_is_finite",
    "validate_pair",
]


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """The moments of one arm that the tests work from."""

    n: float
    """Number of units in the arm. Unit: count."""
    mean: float
    """The arm's estimate: plain mean, conversion rate, ratio of sums, or CUPED-adjusted
    mean. Unit: the metric's own units (a rate in [0, 1] for proportions)."""
    unadjusted_mean: float
    """The same estimate before any CUPED adjustment (equal to ``mean`` otherwise); the
    denominator of relative effects. Unit: the metric's own units."""
    variance: float
    """Per-unit variance behind ``mean`` (delta method for ratios, adjusted for CUPED);
    the variance of ``mean`` itself is ``variance / n``. Unit: squared metric units."""


EMPTY_SUMMARY = ArmSummary(n=0.0, mean=0.0, unadjusted_mean=0.0, variance=0.0)


def component_mean(c: Component) -> float:
    """``sum / n``, or 0 for an empty component."""
    return c.sum / c.n if c.n > 0 else 0.0


def component_variance(c: Component) -> float:
    """Per-unit variance: ``p(1-p)`` for proportions, the sample variance for means.

    A mean component with ``n <= 1`` has variance 0.
    """
    if isinstance(c, ProportionSums):
        p = component_mean(c)
        return p * (1.0 - p)
    if c.n <= 1:
        return 0.0
    return (c.sum_squares - c.sum * (c.sum / c.n)) / (c.n - 1.0)


def covariance(n: float, a: Component, b: Component, sum_products: float) -> float:
    """Per-unit covariance of two variables measured on the same ``n`` units (0 if n <= 1)."""
    if n <= 1:
        return 0.0
    if isinstance(a, ProportionSums) and isinstance(b, ProportionSums):
        return sum_products / n - (a.sum / n) * (b.sum / n)
    return (sum_products - a.sum * (b.sum / n)) / (n - 1.0)


def delta_ratio_variance(mean_m: float, var_m: float, mean_d: float, var_d: float, cov_md: float) -> float:
    """Delta-method variance of ``M / D`` given the moments of M and D (0 if mean_D = 0)."""
    if mean_d == 0.0:
        return 0.0
    r = mean_m / mean_d
    return div(div(var_m - 2.0 * r * cov_md + r * r * var_d, mean_d), mean_d)


def simple_summary(c: Component) -> ArmSummary:
    """Summary of a plain mean or proportion metric."""
    m = component_mean(c)
    return ArmSummary(n=c.n, mean=m, unadjusted_mean=m, variance=component_variance(c))


def ratio_summary(r: RatioSums) -> ArmSummary:
    """Summary of a ratio metric: ``sum(M) / sum(D)`` and its delta-method variance."""
    mean = div(r.numerator.sum, r.denominator.sum) if r.denominator.sum != 0 else 0.0
    mean_d = component_mean(r.denominator)
    variance = 0.0
    if mean_d != 0.0 and r.n > 1:
        variance = delta_ratio_variance(
            component_mean(r.numerator),
            component_variance(r.numerator),
            mean_d,
            component_variance(r.denominator),
            covariance(r.n, r.numerator, r.denominator, r.sum_products),
        )
    return ArmSummary(n=r.n, mean=mean, unadjusted_mean=mean, variance=variance)


def _leaves(obj: ArmSums) -> list[float]:
    """All numeric fields of a (nested) sums dataclass, depth first."""
    out: list[float] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        nested = isinstance(value, (ProportionSums, MeanSums))
        out.extend(_leaves(value) if nested else [to_float(value)])
    return out


def _shape(obj: ArmSums) -> tuple[object, ...]:
    """Structural signature: class names of the sums and of its nested components."""
    nested = tuple(_shape(c) for c in _components(obj) if c is not obj)
    return (type(obj).__name__, nested)


def _components(arm: ArmSums) -> list[Component]:
    """The unit-level variables inside ``arm`` (the arm itself for plain metrics)."""
    if isinstance(arm, (ProportionSums, MeanSums)):
        return [arm]
    values = (getattr(arm, f.name) for f in fields(arm))
    return [v for v in values if isinstance(v, (ProportionSums, MeanSums))]


def _counts_valid(arm: ArmSums) -> bool:
    if arm.n < 0:
        return False
    for c in _components(arm):
        if c.n < 0:
            return False
        if isinstance(c, ProportionSums) and not 0.0 <= c.sum <= c.n:
            return False
    return True


def validate_pair(control: ArmSums, treatment: ArmSums) -> ErrorCode | None:
    """Input errors shared by every test: non-finite numbers, bad counts, mismatched shapes."""
    if not (all_finite(_leaves(control)) and all_finite(_leaves(treatment))):
        return ErrorCode.NON_FINITE_INPUT
    if _shape(control) != _shape(treatment):
        return ErrorCode.INVALID_INPUT
    if not (_counts_valid(control) and _counts_valid(treatment)):
        return ErrorCode.INVALID_INPUT
    return None


def summary_is_finite(s: ArmSummary) -> bool:
    """Whether every number in the summary is finite."""
    return all_finite((s.n, s.mean, s.unadjusted_mean, s.variance))


def size_error(a: ArmSummary, b: ArmSummary) -> ErrorCode | None:
    """``EMPTY_ARM`` if an arm has no units, ``TOO_FEW_UNITS`` if one has a single unit."""
    if a.n == 0 or b.n == 0:
        return ErrorCode.EMPTY_ARM
    if a.n <= 1 or b.n <= 1:
        return ErrorCode.TOO_FEW_UNITS
    return None
