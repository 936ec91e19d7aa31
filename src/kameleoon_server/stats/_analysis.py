"""End to end: SQL-shaped rows of one metric -> per-variation results and the SRM check.

This is the function a results endpoint calls after its ``GROUP BY`` query: rows are merged
per variation (dimension slices add up), turned into sums (``sums_from_row``), and every
treatment is compared with the control using the test that the settings' type selects:
``FrequentistSettings`` (Welch t), ``SequentialSettings`` (confidence sequence) or
``BayesianSettings`` (Gaussian posterior). Multiple-comparison corrections then run across
all goal metrics with ``correct_metric_results``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from ._bayesian import BayesianResult, BayesianSettings, bayesian_test
from ._corrections import Correction, correct_results
from ._effect import summarize
from ._frequentist import FrequentistResult, FrequentistSettings, welch_t_test
from ._moments import ArmSummary
from ._rows import MetricShape, merge_rows, required_columns, sums_from_row
from ._sequential import SequentialSettings, sequential_test
from ._srm import DEFAULT_SRM_MIN_COUNT, DEFAULT_SRM_THRESHOLD, SrmResult, srm_check
from ._types import ArmSums

__all__ = [
    "ComparisonResult",
    "MetricResult",
    "TestSettings",
    "VariationResult",
    "analyze_rows",
    "compare",
    "correct_metric_results",
]

TestSettings: TypeAlias = FrequentistSettings | SequentialSettings | BayesianSettings
"""Settings of one of the three tests; the type picks the test."""
ComparisonResult: TypeAlias = FrequentistResult | BayesianResult
"""Result of ``compare``: frequentist (fixed or sequential) or Bayesian."""

_PLAIN_MEAN = MetricShape()
_BAYESIAN = BayesianSettings()


@dataclass(frozen=True, slots=True)
class VariationResult:
    """One variation of a metric: its own moments and, for treatments, the comparison."""

    variation: str
    """Variation key as it appears in the rows' ``variation`` column. Unit: none (label)."""
    summary: ArmSummary
    """Unadjusted moments of the variation (n, mean, per-unit variance). Unit: see
    ``ArmSummary``."""
    comparison: ComparisonResult | None
    """Comparison with the control; None for the control itself. Unit: see the result
    type."""


@dataclass(frozen=True, slots=True)
class MetricResult:
    """All variations of one metric (one dimension slice), control first."""

    variations: tuple[VariationResult, ...]
    """Control first, then treatments in the order requested. Unit: see
    ``VariationResult``."""
    srm: SrmResult
    """Sample-ratio-mismatch check of units per variation. Unit: see ``SrmResult``."""


def compare(control: ArmSums, treatment: ArmSums, settings: TestSettings) -> ComparisonResult:
    """Run the test selected by the type of ``settings``; never raises."""
    if isinstance(settings, SequentialSettings):
        return sequential_test(control, treatment, settings)
    if isinstance(settings, FrequentistSettings):
        return welch_t_test(control, treatment, settings)
    return bayesian_test(control, treatment, settings)


def _arm_rows(
    rows: Sequence[Mapping[str, object]], variations: Sequence[str | int]
) -> list[dict[str, float]]:
    """Merged row per requested variation; a variation without rows gets an empty row."""
    merged = []
    for key in variations:
        group = [r for r in rows if str(r.get("variation")) == str(key)]
        merged.append(merge_rows(group) if group else {})
    return merged


def analyze_rows(
    rows: Sequence[Mapping[str, object]],
    variations: Sequence[str | int],
    shape: MetricShape = _PLAIN_MEAN,
    settings: TestSettings = _BAYESIAN,
    weights: Sequence[float] | None = None,
    srm_threshold: float = DEFAULT_SRM_THRESHOLD,
    srm_min_count: float = DEFAULT_SRM_MIN_COUNT,
) -> MetricResult:
    """Analyse one metric from its ``GROUP BY variation`` rows.

    ``variations`` lists the variation keys (compared as strings with the rows'
    ``variation`` column), control first; ``weights`` is the configured
    traffic split in the same order (equal by default). A variation without rows is an
    empty arm (its comparison carries ``EMPTY_ARM``). Rows whose ``variation`` is not listed
    are ignored. Raises ``KeyError`` only if a column required by ``shape`` is missing.
    """
    merged = _arm_rows(rows, variations)
    empty = dict.fromkeys(required_columns(shape), 0.0)
    sums = [sums_from_row(r or empty, shape) for r in merged]
    keys = [str(key) for key in variations]
    results = [VariationResult(keys[0], summarize(sums[0]), None)] if sums else []
    for key, arm in zip(keys[1:], sums[1:], strict=True):
        results.append(VariationResult(key, summarize(arm), compare(sums[0], arm, settings)))
    counts = [r.get("users", 0.0) for r in merged]
    srm = srm_check(counts, weights, srm_threshold, srm_min_count)
    return MetricResult(tuple(results), srm)


def correct_metric_results(
    metrics: Sequence[MetricResult], method: Correction, alpha: float = 0.05
) -> tuple[MetricResult, ...]:
    """Correct frequentist p-values and intervals across all metrics x variations together.

    Pass every goal metric (and every dimension slice) of the experiment at once; guardrail
    and secondary metrics should be left out. Bayesian results are not touched.
    """
    slots = [
        (i, j)
        for i, m in enumerate(metrics)
        for j, v in enumerate(m.variations)
        if isinstance(v.comparison, FrequentistResult)
    ]
    found = [metrics[i].variations[j].comparison for i, j in slots]
    corrected = correct_results([r for r in found if isinstance(r, FrequentistResult)], method, alpha)
    variations = [list(m.variations) for m in metrics]
    for (i, j), result in zip(slots, corrected, strict=True):
        variations[i][j] = dataclasses.replace(variations[i][j], comparison=result)
    return tuple(
        dataclasses.replace(m, variations=tuple(v)) for m, v in zip(metrics, variations, strict=True)
    )
