"""The SQL-row data contract (``_rows``)."""

from decimal import Decimal

import pytest

from kameleoon_server.stats import (
    DEFAULT_MAX_DIMENSIONS,
    OTHER_DIMENSION,
    ComponentType,
    CupedRatioSums,
    CupedSums,
    ErrorCode,
    MeanSums,
    MetricShape,
    ProportionSums,
    RatioSums,
    StatisticType,
    effect_moments,
    group_by_dimension,
    merge_rows,
    required_columns,
    sums_from_row,
)

BINOMIAL, COUNT = ComponentType.BINOMIAL, ComponentType.COUNT


def test_binomial_mean_row():
    """A binomial metric reads ``users`` (or ``count``) and ``main_sum``."""
    row = {"variation": "1", "users": 1000, "count": 1000, "main_sum": 120}
    assert sums_from_row(row, MetricShape(main=BINOMIAL)) == ProportionSums(1000, 120)


def test_count_mean_row_uses_count_for_n_and_reads_squares():
    """A numeric metric reads main_sum and main_sum_squares; count defaults to users."""
    row = {"users": 50, "main_sum": 12.5, "main_sum_squares": 40.25}
    assert sums_from_row(row) == MeanSums(50, 12.5, 40.25)


def test_ratio_row():
    """Ratio rows add the denominator sums and the M*D cross product."""
    row = {
        "users": 10,
        "main_sum": 30,
        "main_sum_squares": 120,
        "denominator_sum": 15,
        "denominator_sum_squares": 25,
        "main_denominator_sum_product": 50,
    }
    got = sums_from_row(row, MetricShape(StatisticType.RATIO))
    assert got == RatioSums(10, MeanSums(10, 30, 120), MeanSums(10, 15, 25), 50)


def test_cuped_row_with_binary_metric():
    """CUPED rows read the covariate with the metric's own type."""
    row = {"users": 10, "main_sum": 4, "covariate_sum": 3, "main_covariate_sum_product": 2}
    got = sums_from_row(row, MetricShape(StatisticType.MEAN_CUPED, main=BINOMIAL))
    assert got == CupedSums(10, ProportionSums(10, 4), ProportionSums(10, 3), 2)


def test_ratio_cuped_row_reads_all_sixteen_numbers():
    """Ratio CUPED: four variables, their squares, six cross products, and n."""
    shape = MetricShape(StatisticType.RATIO_CUPED)
    row = {column: float(i + 1) for i, column in enumerate(required_columns(shape))}
    got = sums_from_row(row, shape)
    assert isinstance(got, CupedRatioSums)
    assert len(required_columns(shape)) == 15
    assert got.denominator_pre == MeanSums(
        1.0, row["denominator_pre_sum"], row["denominator_pre_sum_squares"]
    )
    assert got.sum_den_den_pre == row["denominator_post_denominator_pre_sum_product"]
    assert got.sum_num_pre_den == row["main_pre_denominator_post_sum_product"]


@pytest.mark.parametrize(
    ("shape", "columns"),
    [
        (MetricShape(main=BINOMIAL), ("users", "main_sum")),
        (MetricShape(), ("users", "main_sum", "main_sum_squares")),
        (
            MetricShape(StatisticType.RATIO, main=COUNT, denominator=BINOMIAL),
            ("users", "main_sum", "main_sum_squares", "denominator_sum", "main_denominator_sum_product"),
        ),
    ],
)
def test_required_columns(shape, columns):
    """The contract lists exactly the columns each shape reads."""
    assert required_columns(shape) == columns


def test_sql_null_is_zero_and_decimals_convert():
    """NULL sums (no rows) read as 0; Decimal columns convert to float."""
    row = {"users": Decimal(3), "main_sum": None, "main_sum_squares": Decimal("1.5")}
    assert sums_from_row(row) == MeanSums(3.0, 0.0, 1.5)


def test_garbage_values_become_non_finite_and_are_flagged():
    """An unconvertible value becomes NaN and the engine reports NON_FINITE_INPUT."""
    bad = sums_from_row({"users": 3, "main_sum": "oops", "main_sum_squares": 1})
    good = sums_from_row({"users": 3, "main_sum": 1, "main_sum_squares": 1})
    assert effect_moments(bad, good).error == ErrorCode.NON_FINITE_INPUT


def test_missing_column_raises_key_error():
    """A missing column is a query bug and is reported loudly."""
    with pytest.raises(KeyError, match="main_sum_squares"):
        sums_from_row({"users": 3, "main_sum": 1})


def test_merge_rows_adds_dimension_slices():
    """Merged rows are the column-wise sums; label columns are dropped."""
    rows = [
        {"variation": "1", "dimension": "fr", "users": 10, "main_sum": 2.0},
        {"variation": "1", "dimension": "de", "users": 5, "main_sum": None},
    ]
    assert merge_rows(rows) == {"users": 15.0, "main_sum": 2.0}


def _dim_rows(sizes: dict[str, int]) -> list[dict[str, object]]:
    return [
        {"variation": v, "dimension": d, "users": n, "main_sum": n / 2}
        for d, n in sizes.items()
        for v in ("0", "1")
    ]


def test_group_by_dimension_orders_by_total_units():
    """Dimension values come largest first when there are fewer than the maximum."""
    groups = group_by_dimension(_dim_rows({"fr": 10, "de": 30, "it": 20}), max_dimensions=4)
    assert list(groups) == ["de", "it", "fr"]
    assert all(r["dimension"] == "de" for r in groups["de"])


def test_group_by_dimension_pools_the_smallest_into_other():
    """With more than max_dimensions values, the smallest are pooled under "(other)"; with
    exactly max_dimensions, every value is kept (gbstats' reduce_dimensionality)."""
    groups = group_by_dimension(_dim_rows({"a": 5, "b": 50, "c": 40, "d": 1}), max_dimensions=3)
    assert list(groups) == ["b", "c", OTHER_DIMENSION]
    assert merge_rows([r for r in groups[OTHER_DIMENSION] if r["variation"] == "1"])["users"] == 6
    exactly = group_by_dimension(_dim_rows({"a": 5, "b": 50, "c": 40}), max_dimensions=3)
    assert list(exactly) == ["b", "c", "a"]
    assert len(group_by_dimension(_dim_rows({str(i): i + 1 for i in range(30)}))) == DEFAULT_MAX_DIMENSIONS


def test_group_by_dimension_tolerates_missing_or_bad_users():
    """Rows without a usable ``users`` value sort as empty instead of raising."""
    rows = [{"dimension": "x", "users": "n/a"}, {"dimension": "y", "users": 3}, {"users": 1}]
    assert list(group_by_dimension(rows)) == ["y", "None", "x"]


def test_metric_shape_accepts_string_values():
    """Shapes can be built from stored metric definitions (plain strings)."""
    assert MetricShape("ratio", "binomial", "count") == MetricShape(StatisticType.RATIO, BINOMIAL, COUNT)
    with pytest.raises(ValueError, match="cuped"):
        MetricShape("cuped")
