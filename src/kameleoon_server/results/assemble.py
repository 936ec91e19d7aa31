"""From a results request to the results document: storage sums -> statistics engine.

The storage answers one query (``experiment_sums``) with sums per variation (x dimension
value); everything here works on those few numbers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kameleoon_server.results.experiment import ExperimentInfo, VariationInfo
from kameleoon_server.results.query import (
    DAY_MS,
    Breakdown,
    MetricSpec,
    MetricValue,
    SumsAnswer,
    SumsQuery,
    SumsRow,
)
from kameleoon_server.results.schema import (
    Comparison,
    ExperimentOut,
    MetricOut,
    MetricVariation,
    Population,
    ResultsDocument,
    SettingsOut,
    SrmOut,
    VariationOut,
)
from kameleoon_server.stats import (
    DEFAULT_MAX_DIMENSIONS,
    DEFAULT_SRM_THRESHOLD,
    BayesianResult,
    BayesianSettings,
    ComparisonResult,
    ComponentType,
    Correction,
    DifferenceType,
    FrequentistSettings,
    MetricResult,
    MetricShape,
    SequentialSettings,
    SrmResult,
    StatisticType,
    TestSettings,
    analyze_rows,
    correct_metric_results,
    group_by_dimension,
    srm_check,
)
from kameleoon_server.storage import Storage

__all__ = ["ResultsRequest", "compute_results"]

HOUR_MS = 3600 * 1000
MAX_WINDOW_DAYS = 36_525
"""Longest attribution window or CUPED lookback (100 years): the times stay 64-bit integers."""
MAX_SLICES = DEFAULT_MAX_DIMENSIONS
"""Most slices of a breakdown, "(other)" included (stats.md: the 20th bucket becomes "(other)"):
with more than 20 values, the 19 largest and "(other)" pooling the rest; 20 or fewer: every value."""
NO_VALUE = "(none)"
CORRECTIONS = {"none": Correction.NONE, "holm": Correction.HOLM, "bh": Correction.BENJAMINI_HOCHBERG}
UNITS = {
    MetricValue.CONVERSION: "conversion rate (fraction of visitors who converted, 0-1)",
    MetricValue.REVENUE: "revenue per visitor (currency)",
    MetricValue.COUNT: "conversions per visitor",
}


@dataclass(frozen=True, slots=True)
class ResultsRequest:
    """What to analyse and how; the defaults are the API's defaults."""

    goal_ids: tuple[int, ...] = ()
    """Goals to analyse; empty: every goal of the site's configuration."""
    metrics: tuple[MetricValue, ...] = (MetricValue.CONVERSION, MetricValue.REVENUE)
    method: Literal["frequentist", "bayesian"] = "frequentist"
    sequential: bool = False
    correction: Literal["none", "holm", "bh"] = "none"
    alpha: float = 0.05
    difference: Literal["relative", "absolute"] = "relative"
    breakdown: Breakdown = Breakdown.NONE
    custom_data_index: int | None = None
    from_ms: int = 0
    to_ms: int | None = None
    """Exclusive end; None: now."""
    attribution_hours: float = 7 * 24.0
    cuped: bool = False
    cuped_lookback_days: float = 14.0
    cap_percentile: float | None = None
    cap_revenue: float | None = None
    cap_count: float | None = None
    control: str | None = None
    """Variation key or id compared against; default: the flag's default variation."""

    def __post_init__(self) -> None:
        if self.method == "bayesian" and (self.sequential or self.correction != "none"):
            raise ValueError("sequential testing and corrections apply to the frequentist method only")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError("alpha must be between 0 and 1")
        longest = MAX_WINDOW_DAYS * 24.0
        if not (0 < self.attribution_hours <= longest and 0 < self.cuped_lookback_days * 24 <= longest):
            raise ValueError(
                "the attribution window and the CUPED lookback must be positive and 100 years at most"
            )

    def replace(self, **changes: Any) -> ResultsRequest:
        return dataclasses.replace(self, **changes)

    def settings(self) -> TestSettings:
        difference = DifferenceType(self.difference)
        if self.method == "bayesian":
            return BayesianSettings(alpha=self.alpha, difference=difference)
        if self.sequential:
            return SequentialSettings(alpha=self.alpha, difference=difference)
        return FrequentistSettings(alpha=self.alpha, difference=difference)

    def metric_specs(self, goals: Sequence[int]) -> tuple[MetricSpec, ...]:
        specs = []
        for goal in goals:
            for value in self.metrics:
                cap = {MetricValue.REVENUE: self.cap_revenue, MetricValue.COUNT: self.cap_count}.get(value)
                percentile = (
                    None if value is MetricValue.CONVERSION or cap is not None else self.cap_percentile
                )
                specs.append(MetricSpec(goal, value, cap, percentile))
        return tuple(specs)

    def query(self, site_id: int, experiment: ExperimentInfo, now_ms: int) -> SumsQuery:
        goals = self.goal_ids or tuple(sorted(experiment.goals))
        if not goals:
            raise ValueError("no goal to analyse: the site has no goals; pass goal=<id>")
        return SumsQuery(
            site_id=site_id,
            experiment_id=experiment.id,
            metrics=self.metric_specs(goals),
            from_ms=self.from_ms,
            to_ms=self.to_ms if self.to_ms is not None else now_ms,
            attribution_ms=round(self.attribution_hours * HOUR_MS),
            cuped_lookback_ms=round(self.cuped_lookback_days * DAY_MS) if self.cuped else None,
            breakdown=self.breakdown,
            custom_data_index=self.custom_data_index,
        )


# -- numbers from the engine -----------------------------------------------------------------


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _comparison(raw: ComparisonResult, corrected: ComparisonResult, alpha: float) -> Comparison:
    error = raw.error.value if raw.error is not None else None
    if isinstance(raw, BayesianResult):
        return Comparison(
            effect=raw.effect,
            ci_lower=_finite(raw.ci_lower),
            ci_upper=_finite(raw.ci_upper),
            standard_error=raw.standard_deviation,
            p_value=None,
            p_value_adjusted=None,
            significant=None,
            chance_to_win=raw.chance_to_win,
            risk_control=raw.risk_control,
            risk_treatment=raw.risk_treatment,
            error=error,
        )
    assert not isinstance(corrected, BayesianResult)
    return Comparison(
        effect=raw.effect,
        ci_lower=_finite(corrected.ci_lower),
        ci_upper=_finite(corrected.ci_upper),
        standard_error=raw.standard_error,
        p_value=raw.p_value,
        p_value_adjusted=corrected.p_value,
        significant=error is None and corrected.p_value < alpha,
        chance_to_win=None,
        risk_control=None,
        risk_treatment=None,
        error=error,
    )


def _srm(result: SrmResult) -> SrmOut:
    return SrmOut(
        p_value=result.p_value,
        chi_square=result.chi_square,
        mismatch=result.mismatch,
        enough_data=result.enough_data,
        threshold=DEFAULT_SRM_THRESHOLD,
    )


def _shape(value: MetricValue, cuped: bool) -> MetricShape:
    main = ComponentType.BINOMIAL if value is MetricValue.CONVERSION else ComponentType.COUNT
    return MetricShape(StatisticType.MEAN_CUPED if cuped else StatisticType.MEAN, main)


# -- assembly ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Slice:
    spec: MetricSpec
    dimension: str | None
    raw: MetricResult


def _variations(experiment: ExperimentInfo, rows: Sequence[SumsRow]) -> tuple[VariationInfo, ...]:
    """Configured variations, then any other variation seen among analysed visitors."""
    known = {v.id for v in experiment.variations}
    seen = sorted({r.variation for r in rows if r.excluded is None} - known)
    return (*experiment.variations, *(VariationInfo(v) for v in seen))


def _engine_rows(rows: Sequence[SumsRow], spec: MetricSpec) -> list[dict[str, object]]:
    return [
        {"variation": str(r.variation), "dimension": r.dimension or NO_VALUE, **r.metrics[spec.key]}
        for r in rows
        if r.excluded is None
    ]


def _slices(
    answer: SumsAnswer, query: SumsQuery, request: ResultsRequest, variations: Sequence[VariationInfo]
) -> list[_Slice]:
    keys = [str(v.id) for v in variations]
    weights = _weights(variations)
    settings, cuped = request.settings(), query.cuped_lookback_ms is not None
    out = []
    for spec in query.metrics:
        rows = _engine_rows(answer.rows, spec)
        groups = {None: rows} if query.breakdown is Breakdown.NONE else group_by_dimension(rows, MAX_SLICES)
        for dimension, group in groups.items():
            raw = analyze_rows(group, keys, _shape(spec.value, cuped), settings, weights)
            out.append(_Slice(spec, dimension, raw))
    return out


def _weights(variations: Sequence[VariationInfo]) -> list[float] | None:
    if not any(v.share for v in variations):
        return None
    return [v.share or 0.0 for v in variations]


def _metric_out(
    item: _Slice, corrected: MetricResult, experiment: ExperimentInfo, cap: float | None, alpha: float
) -> MetricOut:
    variations = []
    for raw, fixed in zip(item.raw.variations, corrected.variations, strict=True):
        comparison = None
        if raw.comparison is not None and fixed.comparison is not None:
            comparison = _comparison(raw.comparison, fixed.comparison, alpha)
        n = raw.summary.n
        variations.append(
            MetricVariation(
                variation_id=int(raw.variation),
                visitors=round(n),
                total=raw.summary.unadjusted_mean * n,
                mean=raw.summary.unadjusted_mean,
                comparison=comparison,
            )
        )
    return MetricOut(
        goal_id=item.spec.goal_id,
        goal_name=experiment.goals.get(item.spec.goal_id, ""),
        metric=item.spec.value.value,
        unit=UNITS[item.spec.value],
        dimension=item.dimension,
        cap=cap,
        srm=_srm(item.raw.srm),
        variations=variations,
    )


def _population(rows: Sequence[SumsRow]) -> Population:
    def count(excluded: str | None) -> int:
        return sum(r.users for r in rows if (r.excluded.value if r.excluded else None) == excluded)

    return Population(
        exposed_visitors=sum(r.users for r in rows),
        analyzed_visitors=count(None),
        multiple_variation_visitors=count("multiple"),
        bot_visitors=count("bot"),
    )


def _variations_out(variations: Sequence[VariationInfo], rows: Sequence[SumsRow]) -> list[VariationOut]:
    counts = {v.id: 0 for v in variations}
    for r in rows:
        if r.excluded is None and r.variation in counts:
            counts[r.variation] += r.users
    total = sum(counts.values())
    return [
        VariationOut(
            id=v.id,
            key=v.key,
            control=i == 0,
            configured_share=v.share,
            visitors=counts[v.id],
            observed_share=counts[v.id] / total if total else 0.0,
        )
        for i, v in enumerate(variations)
    ]


def _settings_out(request: ResultsRequest, query: SumsQuery) -> SettingsOut:
    return SettingsOut(
        method=request.method,
        sequential=request.sequential,
        correction=request.correction,
        alpha=request.alpha,
        difference=request.difference,
        attribution_window_hours=request.attribution_hours,
        cuped=request.cuped,
        cuped_lookback_days=request.cuped_lookback_days,
        cap_percentile=request.cap_percentile,
        cap_revenue=request.cap_revenue,
        cap_count=request.cap_count,
        breakdown=query.breakdown.value,
        custom_data_index=query.custom_data_index,
        from_ms=query.from_ms,
        to_ms=query.to_ms,
    )


def _experiment_out(experiment: ExperimentInfo) -> ExperimentOut:
    return ExperimentOut(
        id=experiment.id,
        name=experiment.name,
        flag_key=experiment.flag_key,
        rule_id=experiment.rule_id,
        environment=experiment.environment,
    )


def build_document(
    site_code: str,
    experiment: ExperimentInfo,
    request: ResultsRequest,
    query: SumsQuery,
    answer: SumsAnswer,
) -> ResultsDocument:
    """The results document for the storage's ``answer`` to ``query``."""
    variations = _variations(experiment, answer.rows)
    slices = _slices(answer, query, request, variations)
    corrected = correct_metric_results(
        [s.raw for s in slices], CORRECTIONS[request.correction], request.alpha
    )
    variations_out = _variations_out(variations, answer.rows)
    counts = [v.visitors for v in variations_out]
    return ResultsDocument(
        site=site_code,
        experiment=_experiment_out(experiment),
        settings=_settings_out(request, query),
        population=_population(answer.rows),
        variations=variations_out,
        srm=_srm(srm_check(counts, _weights(variations))),
        metrics=[
            _metric_out(s, c, experiment, _cap(s.spec, answer), request.alpha)
            for s, c in zip(slices, corrected, strict=True)
        ],
    )


def _cap(spec: MetricSpec, answer: SumsAnswer) -> float | None:
    return spec.cap if spec.cap is not None else answer.caps.get(spec.key)


async def compute_results(
    storage: Storage,
    site_id: int,
    site_code: str,
    experiment: ExperimentInfo,
    request: ResultsRequest,
    now_ms: int | None = None,
) -> ResultsDocument:
    """Runs the results query on ``storage`` and the statistics on its answer.

    Raises ``ValueError`` for an impossible request (e.g. no goal, unknown control)."""
    if request.control is not None:
        experiment = experiment.with_control(request.control)
    query = request.query(site_id, experiment, now_ms if now_ms is not None else int(time.time() * 1000))
    answer = await storage.experiment_sums(query)
    # the statistics (per breakdown slice) take seconds on large data: off the event loop
    return await asyncio.to_thread(build_document, site_code, experiment, request, query, answer)
