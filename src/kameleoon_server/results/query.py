"""What an experiment-results query asks of the storage, and what the storage answers.

Pure values, no I/O and no numpy: the storage interface (``Storage.experiment_sums``) takes a
:class:`SumsQuery` and returns a :class:`SumsAnswer`. Every back end runs the same SQL, built by
:mod:`kameleoon_server.results.sql` for its dialect.

Units: times are epoch milliseconds, durations milliseconds, revenue in the site's currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from kameleoon_server._wire import MAX_REVENUE

__all__ = [
    "DAY_MS",
    "Breakdown",
    "Excluded",
    "MetricSpec",
    "MetricValue",
    "SumsAnswer",
    "SumsQuery",
    "SumsRow",
]

DAY_MS: Final = 24 * 3600 * 1000
FAR_FUTURE_MS: Final = 2**62


class MetricValue(str, Enum):
    """What one visitor contributes to a goal metric (attributed conversions only)."""

    CONVERSION = "conversion"
    """1 when the visitor converted at least once, else 0 (a conversion rate)."""
    REVENUE = "revenue"
    """Sum of the revenue of the visitor's conversions (negative ones subtract)."""
    COUNT = "count"
    """Number of the visitor's (non-negative) conversions."""


class Breakdown(str, Enum):
    """Which visitor attribute splits the results; the visitor's latest known value is used."""

    NONE = "none"
    CUSTOM_DATA = "custom_data"
    """Values of one custom-data index (``valuesCountMap`` keys)."""
    BROWSER = "browser"
    DEVICE = "device"
    OS = "os"


class Excluded(str, Enum):
    """Why an exposed visitor is left out of the analysis (reported, not analysed)."""

    BOT = "bot"
    """At least one of the visitor's exposures was flagged as a bot's."""
    MULTIPLE = "multiple"
    """The visitor was exposed to more than one variation."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of a goal. Caps apply to the visitor-level value (and its covariate)."""

    goal_id: int
    value: MetricValue = MetricValue.CONVERSION
    cap: float | None = None
    """Absolute upper cap of the visitor value (revenue: currency; count: conversions); at most
    ``MAX_REVENUE`` in magnitude, so that capped values, like stored revenues, have squares and
    sums that stay finite."""
    cap_percentile: float | None = None
    """Cap at this quantile (0 < q < 1) of the positive (> 0) values of the analysed visitors
    (not bots, not several-variation visitors) of all variations."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", MetricValue(self.value))
        if self.value is MetricValue.CONVERSION and (self.cap is not None or self.cap_percentile is not None):
            raise ValueError("a conversion (0/1) metric cannot be capped")
        if self.cap is not None and self.cap_percentile is not None:
            raise ValueError("give an absolute cap or a percentile cap, not both")
        if self.cap is not None and not abs(self.cap) <= MAX_REVENUE:  # also refuses NaN
            raise ValueError(f"a cap must be a number from {-MAX_REVENUE:g} to {MAX_REVENUE:g}")
        if self.cap_percentile is not None and not 0.0 < self.cap_percentile < 1.0:
            raise ValueError("cap_percentile must be between 0 and 1 (exclusive)")

    @property
    def key(self) -> str:
        """Stable name of the metric, e.g. ``42:revenue``."""
        return f"{self.goal_id}:{self.value.value}"


@dataclass(frozen=True, slots=True)
class SumsQuery:
    """Sufficient statistics of some goal metrics of one experiment, per variation (x dimension).

    A visitor (unit) is analysed from its first exposure in ``[from_ms, to_ms)``; a conversion
    counts when it happens in ``[first exposure, first exposure + attribution_ms)`` and before
    ``to_ms``. With ``cuped_lookback_ms`` each metric also gets its pre-exposure covariate: the
    same visitor value over ``[first exposure - lookback, first exposure)``.
    """

    site_id: int
    experiment_id: int
    metrics: tuple[MetricSpec, ...]
    from_ms: int = 0
    to_ms: int = FAR_FUTURE_MS
    attribution_ms: int = 7 * DAY_MS
    cuped_lookback_ms: int | None = None
    breakdown: Breakdown = Breakdown.NONE
    custom_data_index: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "breakdown", Breakdown(self.breakdown))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        if (self.breakdown is Breakdown.CUSTOM_DATA) != (self.custom_data_index is not None):
            raise ValueError("custom_data_index is required by, and only by, the custom_data breakdown")
        if self.attribution_ms <= 0:
            raise ValueError("attribution_ms must be positive")
        if self.cuped_lookback_ms is not None and self.cuped_lookback_ms <= 0:
            raise ValueError("cuped_lookback_ms must be positive")
        if self.from_ms >= self.to_ms:
            raise ValueError("from_ms must be before to_ms")
        if len({m.key for m in self.metrics}) != len(self.metrics):
            raise ValueError("a metric is listed twice")

    @property
    def goal_ids(self) -> tuple[int, ...]:
        """The distinct goals of the metrics, in first-seen order."""
        return tuple(dict.fromkeys(m.goal_id for m in self.metrics))


@dataclass(frozen=True, slots=True)
class SumsRow:
    """Sums of one (variation, exclusion reason, dimension value) group of visitors."""

    variation: int
    """Variation id; for an excluded visitor seen in several variations, the smallest id."""
    excluded: Excluded | None
    """None for analysed visitors."""
    dimension: str | None
    """Decoded breakdown value; None without a breakdown or when the visitor has no value."""
    users: int
    """Number of visitors in the group."""
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per metric key, the engine's columns (``users``, ``main_sum``, ...; see
    ``stats.required_columns``)."""


@dataclass(frozen=True, slots=True)
class SumsAnswer:
    rows: tuple[SumsRow, ...]
    caps: dict[str, float | None]
    """Percentile caps found, per metric key (None: no positive value to take it from)."""
