"""Shared vocabulary: enums and the per-arm sufficient statistics the engine consumes.

The engine never sees unit-level data. For every arm (variation, or variation x dimension
value) the storage layer hands over a handful of sums from one ``GROUP BY`` query; the
classes below are those sums, one class per metric shape (spec section 2, "data contract").
Every field maps to one SQL column; ``sums_from_row`` in ``_rows.py`` does that mapping.

Every number is converted to ``float`` on construction, so ``int``, ``Decimal`` (e.g. from
PostgreSQL ``SUM``) and numpy scalars can be passed as they come; a value without a float
form becomes NaN and is later reported as ``NON_FINITE_INPUT``. Counts are expected to be
non-negative whole numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import TypeAlias

from ._numeric import to_float

__all__ = [
    "Alternative",
    "ArmSums",
    "Component",
    "CupedRatioSums",
    "CupedSums",
    "DifferenceType",
    "ErrorCode",
    "MeanSums",
    "ProportionSums",
    "RatioSums",
]


class DifferenceType(str, Enum):
    """How the treatment is compared with the control."""

    RELATIVE = "relative"
    """(mean_B - mean_A) / |mean_A|: a fraction, 0.05 means +5 %."""
    ABSOLUTE = "absolute"
    """mean_B - mean_A, in the metric's own units."""


class Alternative(str, Enum):
    """The alternative hypothesis of a frequentist test."""

    TWO_SIDED = "two_sided"
    """Treatment differs from control in either direction."""
    GREATER = "greater"
    """Treatment is greater than control; the interval is (lower, +inf)."""
    LESS = "less"
    """Treatment is less than control; the interval is (-inf, upper)."""


class ErrorCode(str, Enum):
    """Why a computation fell back to its documented default output.

    A result carrying an error code holds the default values of its type (for example
    ``p_value=1`` and a ``(0, 0)`` interval); it is never a partial computation.
    """

    NON_FINITE_INPUT = "non_finite_input"
    """An input number was NaN or infinite."""
    INVALID_INPUT = "invalid_input"
    """Inputs are inconsistent: a negative count, conversions outside [0, n], or the two
    arms do not have the same shape (e.g. a ratio compared with a mean)."""
    EMPTY_ARM = "empty_arm"
    """An arm has no units (n = 0)."""
    TOO_FEW_UNITS = "too_few_units"
    """An arm has a single unit, so no variance can be estimated (n <= 1)."""
    ZERO_VARIANCE = "zero_variance"
    """An arm's variance, or the variance of the effect, is zero or negative."""
    ZERO_CONTROL_MEAN = "zero_control_mean"
    """A relative effect (or a relative prior) needs a non-zero control mean."""
    NUMERICAL_ERROR = "numerical_error"
    """An intermediate value overflowed or became undefined (e.g. extreme magnitudes)."""


def _coerce_numbers(sums: object) -> None:
    """Replace every non-component field of a frozen sums instance by its float value."""
    for f in fields(sums):  # type: ignore[arg-type]
        value = getattr(sums, f.name)
        if not isinstance(value, (ProportionSums, MeanSums)):
            object.__setattr__(sums, f.name, to_float(value))


@dataclass(frozen=True, slots=True)
class ProportionSums:
    """A binary (0/1) metric for one arm: ``n`` units of which ``sum`` converted.

    Variance is the unpooled ``p(1 - p)`` with ``p = sum / n``. SQL columns: ``count``
    (or ``users``) and ``main_sum``.
    """

    n: float
    """Number of units (visitors) in the arm."""
    sum: float
    """Number of units that converted, between 0 and ``n``."""

    def __post_init__(self) -> None:
        _coerce_numbers(self)


@dataclass(frozen=True, slots=True)
class MeanSums:
    """A numeric per-unit metric (revenue, count, duration) for one arm.

    Units without any event count as zero and are included in ``n``. SQL columns:
    ``count`` (or ``users``), ``main_sum``, ``main_sum_squares``.
    """

    n: float
    """Number of units in the arm."""
    sum: float
    """Sum over units of the unit-level value."""
    sum_squares: float
    """Sum over units of the squared unit-level value."""

    def __post_init__(self) -> None:
        _coerce_numbers(self)


Component: TypeAlias = ProportionSums | MeanSums
"""One unit-level variable (a numerator, a denominator, a pre-period covariate)."""


@dataclass(frozen=True, slots=True)
class RatioSums:
    """A ratio metric (e.g. revenue per order) for one arm: sum(M) / sum(D) over units.

    The variance comes from the delta method on the per-unit pair (M, D). SQL columns:
    ``users``, ``main_*``, ``denominator_*``, ``main_denominator_sum_product``.
    """

    n: float
    """Number of units in the arm."""
    numerator: Component
    """Per-unit numerator M."""
    denominator: Component
    """Per-unit denominator D."""
    sum_products: float
    """Sum over units of M * D."""

    def __post_init__(self) -> None:
        _coerce_numbers(self)


@dataclass(frozen=True, slots=True)
class CupedSums:
    """A mean (or proportion) metric with a pre-period covariate, for CUPED.

    SQL columns: ``users``, ``main_*``, ``covariate_*``, ``main_covariate_sum_product``.
    """

    n: float
    """Number of units in the arm."""
    post: Component
    """The metric measured during the experiment (Y)."""
    pre: Component
    """The same metric over the pre-exposure lookback window (X)."""
    sum_products: float
    """Sum over units of Y * X."""

    def __post_init__(self) -> None:
        _coerce_numbers(self)


@dataclass(frozen=True, slots=True)
class CupedRatioSums:
    """A ratio metric with pre-period numerator and denominator, for ratio CUPED.

    The four per-unit variables are M (numerator), D (denominator) and their pre-period
    versions Mp, Dp; besides their own sums the six cross products are needed. SQL columns:
    ``main_*``, ``denominator_*``, ``covariate_*`` (Mp), ``denominator_pre_*`` (Dp) and
    the six ``*_sum_product`` columns (see ``_rows.py``).
    """

    n: float
    """Number of units in the arm."""
    numerator: Component
    """Per-unit numerator M during the experiment."""
    denominator: Component
    """Per-unit denominator D during the experiment."""
    numerator_pre: Component
    """Per-unit numerator Mp over the lookback window."""
    denominator_pre: Component
    """Per-unit denominator Dp over the lookback window."""
    sum_num_den: float
    """Sum over units of M * D."""
    sum_num_num_pre: float
    """Sum over units of M * Mp."""
    sum_num_den_pre: float
    """Sum over units of M * Dp."""
    sum_num_pre_den: float
    """Sum over units of Mp * D."""
    sum_num_pre_den_pre: float
    """Sum over units of Mp * Dp."""
    sum_den_den_pre: float
    """Sum over units of D * Dp."""

    def __post_init__(self) -> None:
        _coerce_numbers(self)


ArmSums: TypeAlias = ProportionSums | MeanSums | RatioSums | CupedSums | CupedRatioSums
"""Any per-arm input the effect functions accept; both arms must have the same shape."""
