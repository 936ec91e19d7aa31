"""The data contract: per-arm sums from SQL-shaped rows (spec section 2).

The storage layer answers one family of ``GROUP BY variation [, dimension]`` queries. Each
row is a mapping from column name to number; every column is a sum over the units of the
group:

* ``users``: units (n); ``count``: units with a value (defaults to ``users``);
* ``main_sum``, ``main_sum_squares``: the metric value M (Y for CUPED);
* ``denominator_sum``, ``denominator_sum_squares``: the ratio denominator D;
* ``main_denominator_sum_product``: M * D;
* ``covariate_sum``, ``covariate_sum_squares``: the pre-period value (X, or Mp for ratios);
* ``main_covariate_sum_product``: Y * X (M * Mp for ratios);
* ``denominator_pre_sum``, ``denominator_pre_sum_squares``: the pre-period denominator Dp;
* ``main_post_denominator_pre_sum_product`` (M * Dp),
  ``main_pre_denominator_post_sum_product`` (Mp * D),
  ``main_pre_denominator_pre_sum_product`` (Mp * Dp),
  ``denominator_post_denominator_pre_sum_product`` (D * Dp).

Binomial components need no ``*_sum_squares`` column (for 0/1 values it equals the sum).
SQL ``NULL`` (``None``) is read as 0, as ``SUM`` over no rows returns NULL. A missing
required column raises ``KeyError``: that is a bug in the query, not a property of the data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from ._numeric import to_float
from ._types import (
    ArmSums,
    Component,
    CupedRatioSums,
    CupedSums,
    MeanSums,
    ProportionSums,
    RatioSums,
)

__all__ = [
    "DEFAULT_MAX_DIMENSIONS",
    "OTHER_DIMENSION",
    "ComponentType",
    "MetricShape",
    "StatisticType",
    "group_by_dimension",
    "merge_rows",
    "required_columns",
    "sums_from_row",
]

Row = Mapping[str, object]

DEFAULT_MAX_DIMENSIONS = 20
"""Most dimension values reported before the smallest ones are pooled."""
OTHER_DIMENSION = "(other)"
"""Label of the pooled smallest dimension values."""


class StatisticType(str, Enum):
    """Which sums a metric's rows carry."""

    MEAN = "mean"
    """One value per unit: proportion or mean metric."""
    RATIO = "ratio"
    """Numerator and denominator per unit."""
    MEAN_CUPED = "mean_ra"
    """One value plus its pre-period covariate."""
    RATIO_CUPED = "ratio_ra"
    """Numerator and denominator plus their pre-period versions."""


class ComponentType(str, Enum):
    """How one per-unit variable is distributed."""

    BINOMIAL = "binomial"
    """0/1 per unit (converted or not)."""
    COUNT = "count"
    """Any number per unit (revenue, items, duration)."""


@dataclass(frozen=True, slots=True)
class MetricShape:
    """What a metric's rows contain; decides which sums class ``sums_from_row`` builds.

    Fields also accept their string values (``MetricShape("ratio", "binomial")``); unknown
    values raise ``ValueError``.
    """

    statistic: StatisticType = StatisticType.MEAN
    """Plain, ratio, CUPED or ratio-CUPED sums."""
    main: ComponentType = ComponentType.COUNT
    """Type of the metric (numerator) values; also of their pre-period version."""
    denominator: ComponentType = ComponentType.COUNT
    """Type of the denominator values (ratio metrics only); also of the pre-period one."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "statistic", StatisticType(self.statistic))
        object.__setattr__(self, "main", ComponentType(self.main))
        object.__setattr__(self, "denominator", ComponentType(self.denominator))


def _component_columns(prefix: str, kind: ComponentType) -> tuple[str, ...]:
    if kind is ComponentType.BINOMIAL:
        return (f"{prefix}_sum",)
    return (f"{prefix}_sum", f"{prefix}_sum_squares")


_RATIO_CUPED_PRODUCTS = (
    "main_denominator_sum_product",
    "main_covariate_sum_product",
    "main_post_denominator_pre_sum_product",
    "main_pre_denominator_post_sum_product",
    "main_pre_denominator_pre_sum_product",
    "denominator_post_denominator_pre_sum_product",
)


def required_columns(shape: MetricShape) -> tuple[str, ...]:
    """The columns ``sums_from_row`` reads for ``shape`` (``count`` is optional)."""
    main = _component_columns("main", shape.main)
    if shape.statistic is StatisticType.MEAN:
        return ("users", *main)
    den = _component_columns("denominator", shape.denominator)
    if shape.statistic is StatisticType.RATIO:
        return ("users", *main, *den, "main_denominator_sum_product")
    cov = _component_columns("covariate", shape.main)
    if shape.statistic is StatisticType.MEAN_CUPED:
        return ("users", *main, *cov, "main_covariate_sum_product")
    den_pre = _component_columns("denominator_pre", shape.denominator)
    return ("users", *main, *den, *cov, *den_pre, *_RATIO_CUPED_PRODUCTS)


def _number(value: object) -> float:
    """Column value as float: None -> 0, unconvertible -> NaN (flagged downstream)."""
    return 0.0 if value is None else to_float(value)


def _get(row: Row, column: str) -> float:
    return _number(row[column])


def _component(row: Row, prefix: str, kind: ComponentType, n: float) -> Component:
    total = _get(row, f"{prefix}_sum")
    if kind is ComponentType.BINOMIAL:
        return ProportionSums(n=n, sum=total)
    return MeanSums(n=n, sum=total, sum_squares=_get(row, f"{prefix}_sum_squares"))


def sums_from_row(row: Row, shape: MetricShape = MetricShape()) -> ArmSums:
    """Build the per-arm sums for ``shape`` from one (aggregated) row."""
    users = _get(row, "users")
    n = _number(row["count"]) if "count" in row else users
    main, den = shape.main, shape.denominator
    if shape.statistic is StatisticType.MEAN:
        return _component(row, "main", main, n)
    if shape.statistic is StatisticType.RATIO:
        return RatioSums(
            n=users,
            numerator=_component(row, "main", main, n),
            denominator=_component(row, "denominator", den, n),
            sum_products=_get(row, "main_denominator_sum_product"),
        )
    if shape.statistic is StatisticType.MEAN_CUPED:
        return CupedSums(
            n=users,
            post=_component(row, "main", main, n),
            pre=_component(row, "covariate", main, n),
            sum_products=_get(row, "main_covariate_sum_product"),
        )
    return CupedRatioSums(
        n=users,
        numerator=_component(row, "main", main, n),
        denominator=_component(row, "denominator", den, n),
        numerator_pre=_component(row, "covariate", main, n),
        denominator_pre=_component(row, "denominator_pre", den, n),
        sum_num_den=_get(row, "main_denominator_sum_product"),
        sum_num_num_pre=_get(row, "main_covariate_sum_product"),
        sum_num_den_pre=_get(row, "main_post_denominator_pre_sum_product"),
        sum_num_pre_den=_get(row, "main_pre_denominator_post_sum_product"),
        sum_num_pre_den_pre=_get(row, "main_pre_denominator_pre_sum_product"),
        sum_den_den_pre=_get(row, "denominator_post_denominator_pre_sum_product"),
    )


def merge_rows(rows: Iterable[Row], skip: Iterable[str] = ("variation", "dimension")) -> dict[str, float]:
    """Add up rows column by column (e.g. the dimension slices of one variation).

    Sums are additive, so merged rows describe the union of the units. Columns listed in
    ``skip`` (labels) are left out.
    """
    skipped = set(skip)
    merged: dict[str, float] = {}
    for row in rows:
        for column, value in row.items():
            if column not in skipped:
                merged[column] = merged.get(column, 0.0) + _number(value)
    return merged


def _total_users(rows: list[Row]) -> float:
    total = sum(_number(row.get("users")) for row in rows)
    return total if math.isfinite(total) else 0.0


def group_by_dimension(
    rows: Iterable[Row], max_dimensions: int = DEFAULT_MAX_DIMENSIONS
) -> dict[str, list[Row]]:
    """Rows per ``dimension`` value, largest first by total ``users`` across variations.

    With more than ``max_dimensions`` values, the ``max_dimensions - 1`` largest are kept and
    all others are pooled under ``OTHER_DIMENSION`` (so at most ``max_dimensions`` groups; as
    gbstats' ``reduce_dimensionality``, exactly ``max_dimensions`` values are all kept).
    Pooling is exact because every column is a sum; ``analyze_rows`` merges the pooled rows
    per variation. Ties keep the order of first appearance.
    """
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(str(row.get("dimension")), []).append(row)
    ordered = sorted(groups, key=lambda key: -_total_users(groups[key]))
    if len(ordered) <= max_dimensions:
        return {key: groups[key] for key in ordered}
    kept = max(max_dimensions - 1, 0)
    result = {key: groups[key] for key in ordered[:kept]}
    result[OTHER_DIMENSION] = [row for key in ordered[kept:] for row in groups[key]]
    return result
