"""Experiment statistics: a pure engine over per-variation sufficient statistics.

No I/O, no database, no logging: every function maps a few sums per arm (``n``, sum of
values, sum of squares, cross products) to frozen result dataclasses, and never raises on
degenerate data. Instead a result carries an ``error`` code and documented default values
(for example ``p_value=1`` and a ``(0, 0)`` interval). Settings objects raise ``ValueError``
on construction when they are invalid (e.g. ``alpha`` outside (0, 1)).

Conventions: the first argument is the control (A), the second the treatment (B); relative
effects are fractions of the control mean (0.05 = +5 %); probabilities are in [0, 1].

Start with ``welch_t_test``, ``sequential_test``, ``bayesian_test`` or
``beta_binomial_chance_to_win`` on ``ProportionSums``/``MeanSums``/``RatioSums``/
``CupedSums``/``CupedRatioSums``; or feed SQL rows to ``analyze_rows``. See docs/stats.md.
"""

from ._analysis import (
    ComparisonResult,
    MetricResult,
    TestSettings,
    VariationResult,
    analyze_rows,
    compare,
    correct_metric_results,
)
from ._bayesian import (
    DEFAULT_PRIOR_STDDEV,
    BayesianResult,
    BayesianSettings,
    GaussianPrior,
    bayesian_test,
    gaussian_risk,
)
from ._beta_binomial import (
    MIN_PRIOR_COUNT,
    UNIFORM_PRIOR,
    BetaBinomialResult,
    BetaPrior,
    beta_binomial_chance_to_win,
)
from ._corrections import (
    Correction,
    adjust_p_values,
    adjusted_ci,
    benjamini_hochberg,
    correct_results,
    holm_bonferroni,
)
from ._cuped import cuped_ratio_theta, cuped_theta
from ._effect import EffectMoments, effect_moments, summarize, welch_dof
from ._frequentist import FrequentistResult, FrequentistSettings, welch_t_test
from ._moments import ArmSummary
from ._msprt import msprt_p_value, running_p_values
from ._rows import (
    DEFAULT_MAX_DIMENSIONS,
    OTHER_DIMENSION,
    ComponentType,
    MetricShape,
    StatisticType,
    group_by_dimension,
    merge_rows,
    required_columns,
    sums_from_row,
)
from ._sequential import (
    DEFAULT_SEQUENTIAL_TUNING,
    SequentialSettings,
    sequential_halfwidth,
    sequential_p_value,
    sequential_rho,
    sequential_test,
)
from ._srm import DEFAULT_SRM_MIN_COUNT, DEFAULT_SRM_THRESHOLD, SrmResult, srm_check, srm_p_value
from ._types import (
    Alternative,
    ArmSums,
    Component,
    CupedRatioSums,
    CupedSums,
    DifferenceType,
    ErrorCode,
    MeanSums,
    ProportionSums,
    RatioSums,
)

__all__ = [
    "DEFAULT_MAX_DIMENSIONS",
    "DEFAULT_PRIOR_STDDEV",
    "DEFAULT_SEQUENTIAL_TUNING",
    "DEFAULT_SRM_MIN_COUNT",
    "DEFAULT_SRM_THRESHOLD",
    "MIN_PRIOR_COUNT",
    "OTHER_DIMENSION",
    "UNIFORM_PRIOR",
    "Alternative",
    "ArmSummary",
    "ArmSums",
    "BayesianResult",
    "BayesianSettings",
    "BetaBinomialResult",
    "BetaPrior",
    "ComparisonResult",
    "Component",
    "ComponentType",
    "Correction",
    "CupedRatioSums",
    "CupedSums",
    "DifferenceType",
    "EffectMoments",
    "ErrorCode",
    "FrequentistResult",
    "FrequentistSettings",
    "GaussianPrior",
    "MeanSums",
    "MetricResult",
    "MetricShape",
    "ProportionSums",
    "RatioSums",
    "SequentialSettings",
    "SrmResult",
    "StatisticType",
    "TestSettings",
    "VariationResult",
    "adjust_p_values",
    "adjusted_ci",
    "analyze_rows",
    "bayesian_test",
    "benjamini_hochberg",
    "beta_binomial_chance_to_win",
    "compare",
    "correct_metric_results",
    "correct_results",
    "cuped_ratio_theta",
    "cuped_theta",
    "effect_moments",
    "gaussian_risk",
    "group_by_dimension",
    "holm_bonferroni",
    "merge_rows",
    "msprt_p_value",
    "required_columns",
    "running_p_values",
    "sequential_halfwidth",
    "sequential_p_value",
    "sequential_rho",
    "sequential_test",
    "srm_check",
    "srm_p_value",
    "summarize",
    "sums_from_row",
    "welch_dof",
    "welch_t_test",
]
