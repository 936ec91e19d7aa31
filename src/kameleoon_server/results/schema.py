"""The results document (``GET .../experiments/{id}/results``): every number says its unit.

These types are encoded as the JSON answer and also generate its OpenAPI schema, so the
descriptions below are the API's documentation.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "Comparison",
    "ExperimentOut",
    "MetricOut",
    "MetricVariation",
    "Population",
    "ResultsDocument",
    "SettingsOut",
    "SrmOut",
    "VariationOut",
]

EFFECT_UNIT = (
    "Unit: with difference=relative a fraction of the control's mean (0.05 = +5 %); with "
    "difference=absolute the metric's own unit (see the metric's `unit`)."
)


def _d(text: str) -> Meta:
    return Meta(description=text)


class _Out(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class ExperimentOut(_Out):
    """The experiment, named from the site's configuration when a rule has its id."""

    id: Annotated[int, _d("Experiment id (the rule's experiment_id).")]
    name: Annotated[str, _d("Rule name, else flag name or key; empty when not configured.")]
    flag_key: Annotated[str | None, _d("Key of the flag whose rule runs the experiment.")]
    rule_id: Annotated[int | None, _d("Id of that rule.")]
    environment: Annotated[str | None, _d("Environment of that rule.")]


class SettingsOut(_Out):
    """The analysis settings actually used (defaults filled in)."""

    method: Annotated[Literal["frequentist", "bayesian"], _d("Statistical method.")]
    sequential: Annotated[bool, _d("Frequentist only: always-valid confidence sequences and p-values.")]
    correction: Annotated[
        Literal["none", "holm", "bh"],
        _d("Multiple-testing correction over all metrics x treatments x slices."),
    ]
    alpha: Annotated[float, _d("Significance level; intervals are 1 - alpha. Unit: probability.")]
    difference: Annotated[Literal["relative", "absolute"], _d("Scale of every effect.")]
    attribution_window_hours: Annotated[
        float, _d("Conversions count from the first exposure to this many hours after. Unit: hours.")
    ]
    cuped: Annotated[bool, _d("Variance reduction with each metric's pre-exposure value.")]
    cuped_lookback_days: Annotated[float, _d("Pre-exposure period used by CUPED. Unit: days.")]
    cap_percentile: Annotated[
        float | None,
        _d(
            "Revenue/count visitor values capped at this quantile of the positive (> 0) values."
            " Unit: fraction (0-1)."
        ),
    ]
    cap_revenue: Annotated[float | None, _d("Absolute cap of a visitor's revenue. Unit: currency.")]
    cap_count: Annotated[float | None, _d("Absolute cap of a visitor's conversions. Unit: conversions.")]
    breakdown: Annotated[
        Literal["none", "custom_data", "browser", "device", "os"], _d("Attribute splitting the metrics.")
    ]
    custom_data_index: Annotated[
        int | None, _d("Custom-data index of a custom_data breakdown. Unit: none (an index).")
    ]
    from_ms: Annotated[int, _d("Start of the analysed exposures (inclusive). Unit: epoch milliseconds.")]
    to_ms: Annotated[int, _d("End of exposures and conversions (exclusive). Unit: epoch milliseconds.")]


class Population(_Out):
    """Who was counted. A visitor is a person: identities linked by mapping count once."""

    exposed_visitors: Annotated[int, _d("Visitors exposed in the date range, all included. Unit: visitors.")]
    analyzed_visitors: Annotated[int, _d("Visitors analysed (not excluded below). Unit: visitors.")]
    multiple_variation_visitors: Annotated[
        int, _d("Excluded: exposed to more than one variation. Unit: visitors.")
    ]
    bot_visitors: Annotated[int, _d("Excluded: an exposure was flagged as a bot's. Unit: visitors.")]


class VariationOut(_Out):
    id: Annotated[int, _d("Variation id.")]
    key: Annotated[str | None, _d("Variation key from the configuration; null when unknown.")]
    control: Annotated[bool, _d("Whether every treatment is compared with this variation.")]
    configured_share: Annotated[
        float | None, _d("Configured share of the rule's traffic. Unit: fraction (0-1); null if unknown.")
    ]
    visitors: Annotated[int, _d("Analysed visitors first exposed to it. Unit: visitors.")]
    observed_share: Annotated[float, _d("visitors / analysed visitors. Unit: fraction (0-1).")]


class SrmOut(_Out):
    """Sample-ratio mismatch: observed visitors per variation against the configured split."""

    p_value: Annotated[float, _d("Chi-square test p-value. Unit: probability (0-1).")]
    chi_square: Annotated[float, _d("Chi-square statistic. Unit: none.")]
    mismatch: Annotated[bool, _d("True when p_value < threshold with enough visitors: distrust results.")]
    enough_data: Annotated[bool, _d("Every variation has at least 8 visitors.")]
    threshold: Annotated[float, _d("p-value below which a mismatch is raised. Unit: probability.")]


class Comparison(_Out):
    """A treatment against the control."""

    effect: Annotated[float, _d("Estimated lift (Bayesian: posterior mean). " + EFFECT_UNIT)]
    ci_lower: Annotated[
        float | None,
        _d(
            "Lower bound of the 1 - alpha confidence interval (sequential: confidence sequence; "
            "Bayesian: credible interval; corrected when a correction is on). Same unit as "
            "effect; null = unbounded."
        ),
    ]
    ci_upper: Annotated[
        float | None, _d("Upper bound of that interval. Same unit as effect; null = unbounded.")
    ]
    standard_error: Annotated[
        float,
        _d("Standard error of the effect (Bayesian: posterior standard deviation). Same unit as effect."),
    ]
    p_value: Annotated[
        float | None, _d("Frequentist: two-sided p-value (sequential: always valid). Unit: probability.")
    ]
    p_value_adjusted: Annotated[
        float | None, _d("p_value after the multiple-testing correction. Unit: probability.")
    ]
    significant: Annotated[bool | None, _d("Frequentist: (adjusted) p-value below alpha. Bayesian: null.")]
    chance_to_win: Annotated[
        float | None, _d("Bayesian: probability that the treatment beats the control. Unit: probability.")
    ]
    risk_control: Annotated[
        float | None, _d("Bayesian: expected loss of keeping the control. Same unit as effect.")
    ]
    risk_treatment: Annotated[
        float | None, _d("Bayesian: expected loss of shipping the treatment. Same unit as effect.")
    ]
    error: Annotated[
        str | None,
        _d("Why no estimate could be made (e.g. zero_variance, empty_arm); numbers are then defaults."),
    ]


class MetricVariation(_Out):
    variation_id: Annotated[int, _d("Variation id.")]
    visitors: Annotated[int, _d("Analysed visitors of this variation (in this slice). Unit: visitors.")]
    total: Annotated[
        float,
        _d("Sum of visitor values. Unit: converted visitors, currency (revenue) or conversions (count)."),
    ]
    mean: Annotated[float, _d("total / visitors, in the metric's `unit`.")]
    comparison: Annotated[Comparison | None, _d("Against the control; null for the control.")]


class MetricOut(_Out):
    goal_id: Annotated[int, _d("Goal id.")]
    goal_name: Annotated[str, _d("Goal name from the configuration (empty if unknown).")]
    metric: Annotated[
        Literal["conversion", "revenue", "count"],
        _d(
            "conversion: visitors who converted; revenue: revenue per visitor; "
            "count: conversions per visitor."
        ),
    ]
    unit: Annotated[str, _d("Unit of `mean` (and of absolute effects).")]
    dimension: Annotated[
        str | None,
        _d(
            "Breakdown value of this slice ('(none)': no value, '(other)': smaller values); "
            "null without breakdown."
        ),
    ]
    cap: Annotated[float | None, _d("Cap applied to visitor values, in the metric's unit; null: none.")]
    srm: Annotated[SrmOut, _d("Sample-ratio check within this slice.")]
    variations: Annotated[list[MetricVariation], _d("Control first.")]


class ResultsDocument(_Out):
    """Results of one experiment: who was counted, the split check and every goal metric."""

    site: Annotated[str, _d("Site code.")]
    experiment: ExperimentOut
    settings: SettingsOut
    population: Population
    variations: Annotated[list[VariationOut], _d("Control first, then the split's order.")]
    srm: Annotated[SrmOut, _d("Sample-ratio check over all analysed visitors.")]
    metrics: Annotated[list[MetricOut], _d("Per goal x metric (x breakdown value).")]
