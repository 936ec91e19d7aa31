"""Results documents from a real storage against the engine fed with hand-computed sums."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from kameleoon_server.results.assemble import MAX_SLICES, ResultsRequest, compute_results
from kameleoon_server.results.experiment import ExperimentInfo, VariationInfo
from kameleoon_server.results.query import DAY_MS, Breakdown
from kameleoon_server.results.schema import ResultsDocument
from kameleoon_server.stats import (
    BayesianSettings,
    ComponentType,
    Correction,
    FrequentistSettings,
    MetricShape,
    SequentialSettings,
    StatisticType,
    analyze_rows,
    correct_metric_results,
    srm_check,
)

from ._data import EXP, SITE, T0, Events, random_experiment, reference, with_storage

EXPERIMENT = ExperimentInfo(
    id=EXP,
    flag_key="checkout",
    rule_id=1,
    environment="production",
    name="checkout test",
    variations=(
        VariationInfo(7001, "off", 0.4),
        VariationInfo(7002, "on", 0.3),
        VariationInfo(7003, "alt", 0.3),
    ),
    goals={42: "purchase", 43: "signup"},
)
NOW = T0 + 30 * DAY_MS


def document(tmp_path: Path, events: Events, request: ResultsRequest) -> ResultsDocument:
    async def body(storage: Any) -> ResultsDocument:
        return await compute_results(storage, SITE, "shop", EXPERIMENT, request, now_ms=NOW)

    return with_storage(tmp_path / "r.db", events, body)


def engine_rows(expected: dict[Any, Any], key: str) -> list[dict[str, Any]]:
    return [
        {"variation": str(var), "dimension": dim or "(none)", "users": group["users"], **group[key]}
        for (var, excluded, dim), group in expected.items()
        if excluded is None
    ]


CASES = {
    "frequentist": (ResultsRequest(), FrequentistSettings(), Correction.NONE),
    "holm": (ResultsRequest(correction="holm"), FrequentistSettings(), Correction.HOLM),
    "sequential-bh": (
        ResultsRequest(sequential=True, correction="bh"),
        SequentialSettings(),
        Correction.BENJAMINI_HOCHBERG,
    ),
    "bayesian": (ResultsRequest(method="bayesian"), BayesianSettings(), Correction.NONE),
    "cuped-capped-absolute": (
        ResultsRequest(cuped=True, cap_percentile=0.95, difference="absolute", goal_ids=(42,)),
        FrequentistSettings(difference="absolute"),  # type: ignore[arg-type]
        Correction.NONE,
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_every_comparison_is_the_engine_on_the_reference_sums(tmp_path: Path, case: str) -> None:
    request, settings, correction = CASES[case]
    events = random_experiment(seed=7, visitors=600)
    doc = document(tmp_path, events, request)
    query = request.query(SITE, EXPERIMENT, NOW)
    expected = reference(query, events)
    cuped = request.cuped
    weights = [0.4, 0.3, 0.3]
    metrics = []
    for spec in query.metrics:
        main = ComponentType.BINOMIAL if spec.value.value == "conversion" else ComponentType.COUNT
        shape = MetricShape(StatisticType.MEAN_CUPED if cuped else StatisticType.MEAN, main)
        rows = engine_rows(expected, spec.key)
        metrics.append(analyze_rows(rows, ["7001", "7002", "7003"], shape, settings, weights))
    corrected = correct_metric_results(metrics, correction)
    assert [(m.goal_id, m.metric) for m in doc.metrics] == [(s.goal_id, s.value.value) for s in query.metrics]
    for got, raw, fixed in zip(doc.metrics, metrics, corrected, strict=True):
        for out, arm, arm_fixed in zip(got.variations, raw.variations, fixed.variations, strict=True):
            assert out.visitors == arm.summary.n
            assert out.mean == pytest.approx(arm.summary.unadjusted_mean, rel=1e-9)
            if arm.comparison is None:
                assert out.comparison is None
                continue
            assert out.comparison is not None
            assert out.comparison.effect == pytest.approx(arm.comparison.effect, rel=1e-9, abs=1e-12)
            if isinstance(settings, BayesianSettings):
                assert out.comparison.chance_to_win == pytest.approx(arm.comparison.chance_to_win)  # type: ignore[union-attr]
            else:
                assert out.comparison.p_value == pytest.approx(arm.comparison.p_value)  # type: ignore[union-attr]
                assert out.comparison.p_value_adjusted == pytest.approx(arm_fixed.comparison.p_value)  # type: ignore[union-attr]
                lower = arm_fixed.comparison.ci_lower  # type: ignore[union-attr]
                assert out.comparison.ci_lower == (pytest.approx(lower) if math.isfinite(lower) else None)


def test_population_variations_and_srm_use_the_configured_split(tmp_path: Path) -> None:
    events = random_experiment(seed=3)
    doc = document(tmp_path, events, ResultsRequest(goal_ids=(42,)))
    expected = reference(ResultsRequest(goal_ids=(42,)).query(SITE, EXPERIMENT, NOW), events)
    counts = dict.fromkeys((7001, 7002, 7003), 0)
    for (var, excluded, _), group in expected.items():
        if excluded is None:
            counts[var] += group["users"]
    assert [v.visitors for v in doc.variations] == list(counts.values())
    assert [v.key for v in doc.variations] == ["off", "on", "alt"] and doc.variations[0].control
    assert doc.srm.p_value == pytest.approx(srm_check(list(counts.values()), [0.4, 0.3, 0.3]).p_value)
    excluded = {k[1]: 0 for k in expected}
    for (_, why, _), group in expected.items():
        excluded[why] += group["users"]
    assert doc.population.analyzed_visitors == excluded[None]
    assert doc.population.bot_visitors == excluded.get("bot", 0) > 0
    assert doc.population.multiple_variation_visitors == excluded.get("multiple", 0) > 0


def test_a_breakdown_gives_one_slice_per_value_with_the_smallest_pooled(tmp_path: Path) -> None:
    events = Events()
    for i in range(300):  # 25 browser-like custom data values of decreasing size
        events.exposure(f"v{i}", 7001 + i % 2, T0)
        events.custom(f"v{i}", 1, [f"value{min(i // 10, 24)}"], T0)
    request = ResultsRequest(
        goal_ids=(42,),
        metrics=("conversion",),
        breakdown=Breakdown.CUSTOM_DATA,  # type: ignore[arg-type]
        custom_data_index=1,
    )
    doc = document(tmp_path, events, request)
    dims = [m.dimension for m in doc.metrics]
    # at most 20 slices, "(other)" included (stats.md: the 20th bucket becomes "(other)")
    assert len(dims) == MAX_SLICES == 20 and dims[-1] == "(other)" and {"value24", "value0"} <= set(dims)
    assert sum(v.visitors for m in doc.metrics for v in m.variations) == 300


def test_control_can_be_chosen_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    events = random_experiment(seed=5, visitors=100)
    doc = document(tmp_path, events, ResultsRequest(goal_ids=(42,), control="on"))
    assert [v.key for v in doc.variations] == ["on", "off", "alt"]
    assert doc.metrics[0].variations[0].comparison is None
    with pytest.raises(ValueError, match="no variation"):
        document(tmp_path / "x", events, ResultsRequest(control="nope"))


@pytest.mark.parametrize(
    "fields", [{"attribution_hours": float("inf")}, {"attribution_hours": 0}, {"cuped_lookback_days": 36_526}]
)
def test_windows_must_fit_a_64_bit_time(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="100 years at most"):
        ResultsRequest(**fields)  # type: ignore[arg-type]
    assert (
        ResultsRequest(attribution_hours=36_525 * 24, cuped_lookback_days=36_525).cuped_lookback_days
        == 36_525
    )
