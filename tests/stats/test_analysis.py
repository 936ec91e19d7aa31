"""End-to-end analysis from SQL-shaped rows (``_analysis``)."""

import numpy as np
import pytest

from kameleoon_server.stats import (
    BayesianResult,
    BayesianSettings,
    ComponentType,
    Correction,
    ErrorCode,
    FrequentistResult,
    FrequentistSettings,
    MeanSums,
    MetricShape,
    SequentialSettings,
    StatisticType,
    analyze_rows,
    bayesian_test,
    compare,
    correct_metric_results,
    holm_bonferroni,
    sequential_test,
    welch_t_test,
)

from ._support import assert_ref, revenue_like

A = MeanSums(n=3407, sum=1396.87, sum_squares=52377.9767)
B = MeanSums(n=3461, sum=2422.7, sum_squares=134698.29)


def _row(variation: str, sums: MeanSums, **extra: object) -> dict[str, object]:
    return {
        "variation": variation,
        "users": sums.n,
        "count": sums.n,
        "main_sum": sums.sum,
        "main_sum_squares": sums.sum_squares,
        **extra,
    }


def test_rows_reproduce_the_reference_t_test():
    """The spec's mean case, split over two dimension slices of the control, end to end."""
    rows = [
        _row("0", MeanSums(1700, 700.0, 26000.0), dimension="fr"),
        _row("0", MeanSums(1707, 696.87, 26377.9767), dimension="de"),
        _row("1", B, dimension="fr"),
    ]
    result = analyze_rows(rows, ["0", "1"], settings=FrequentistSettings())
    control, treatment = result.variations
    assert control.comparison is None
    assert control.summary.n == 3407
    r = treatment.comparison
    assert isinstance(r, FrequentistResult)
    assert_ref(r.effect, "0.70732")
    assert_ref(r.ci_lower, "-0.03526")
    assert_ref(r.p_value, "0.06191")


def test_rows_binomial_bayesian_reference():
    """The spec's Bayesian proportion case from rows with integer SQL values."""
    rows = [
        {"variation": 0, "users": 100, "main_sum": 49},
        {"variation": 1, "users": 100, "main_sum": 51},
    ]
    result = analyze_rows(rows, ["0", "1"], MetricShape(main=ComponentType.BINOMIAL))
    r = result.variations[1].comparison
    assert isinstance(r, BayesianResult)
    assert_ref(r.chance_to_win, "0.60918")
    assert_ref(r.risk_control, "0.0814")


def test_compare_dispatches_on_settings_type():
    """Frequentist, sequential and Bayesian settings pick their test."""
    assert compare(A, B, FrequentistSettings()) == welch_t_test(A, B)
    assert compare(A, B, SequentialSettings()) == sequential_test(A, B)
    assert compare(A, B, BayesianSettings()) == bayesian_test(A, B)


def test_cuped_rows_end_to_end():
    """CUPED rows give the same result as the sums built by hand."""
    rng = np.random.default_rng(3)
    rows = []
    for key, lift in (("a", 0.0), ("b", 0.2)):
        x = revenue_like(rng, 500)
        y = 0.7 * x + revenue_like(rng, 500, lift)
        rows.append(
            {
                "variation": key,
                "users": 500,
                "main_sum": y.sum(),
                "main_sum_squares": (y * y).sum(),
                "covariate_sum": x.sum(),
                "covariate_sum_squares": (x * x).sum(),
                "main_covariate_sum_product": (x * y).sum(),
            }
        )
    shape = MetricShape(StatisticType.MEAN_CUPED)
    result = analyze_rows(rows, ["a", "b"], shape, FrequentistSettings())
    plain = analyze_rows(rows, ["a", "b"], MetricShape(), FrequentistSettings())
    cuped_r, plain_r = result.variations[1].comparison, plain.variations[1].comparison
    assert cuped_r.standard_error < plain_r.standard_error
    assert result.variations[1].summary.mean == pytest.approx(rows[1]["main_sum"] / 500)


def test_missing_variation_is_an_empty_arm_and_fails_srm():
    """A listed variation without rows gets EMPTY_ARM; the SRM check sees 0 units."""
    rows = [_row("0", A), _row("1", B), _row("ghost", A)]
    result = analyze_rows(rows, ["0", "1", "2"], settings=FrequentistSettings())
    assert [v.variation for v in result.variations] == ["0", "1", "2"]
    assert result.variations[2].comparison.error == ErrorCode.EMPTY_ARM
    assert result.srm.p_value < 1e-10
    assert not result.srm.enough_data


def test_srm_uses_the_configured_weights():
    """Units per variation are checked against the given split."""
    rows = [_row("0", MeanSums(2000, 1, 1)), _row("1", MeanSums(8000, 1, 1))]
    assert not analyze_rows(rows, ["0", "1"], weights=[0.2, 0.8]).srm.mismatch
    assert analyze_rows(rows, ["0", "1"]).srm.mismatch


def test_no_rows_at_all_never_raises():
    """An experiment without data yields empty arms and p = 1 SRM."""
    result = analyze_rows([], ["0", "1"], MetricShape(StatisticType.RATIO_CUPED))
    assert result.variations[1].comparison.error == ErrorCode.EMPTY_ARM
    assert result.srm.p_value == 1.0


def test_correct_metric_results_spans_metrics_and_variations():
    """Holm runs over every frequentist comparison of every metric at once."""
    rows = [_row("0", A), _row("1", B), _row("2", MeanSums(3000, 1396.87, 52377.9767))]
    one = analyze_rows(rows, ["0", "1", "2"], settings=FrequentistSettings())
    two = analyze_rows(rows, ["0", "2", "1"], settings=FrequentistSettings())
    raw = [v.comparison.p_value for m in (one, two) for v in m.variations[1:]]
    corrected = correct_metric_results([one, two], Correction.HOLM)
    got = [v.comparison.p_value for m in corrected for v in m.variations[1:]]
    assert tuple(got) == holm_bonferroni(raw)
    assert corrected[0].variations[0] == one.variations[0]


def test_integer_variation_keys_match_string_or_integer_rows():
    """Keys are compared as strings, so ``0`` matches a row whose variation is ``"0"``."""
    rows = [_row("0", A), {**_row("1", B), "variation": 1}]
    result = analyze_rows(rows, [0, 1], settings=FrequentistSettings())
    assert [v.variation for v in result.variations] == ["0", "1"]
    assert result.variations[1].comparison.error is None
