"""The query parameters of the results endpoint: one table (name, schema, help) used to parse
requests, to document them in OpenAPI and to build the CLI's options. Standard library only
(the CLI imports it without the server's dependencies)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kameleoon_server._integers import MAX_ID, parse_int
from kameleoon_server.results.query import Breakdown, MetricValue

__all__ = ["PARAMS", "Param", "parse_fields", "parse_time"]

_ON: Final = {"on", "true", "1", "yes"}
_MIN_MS: Final = -62135596800000  # 0001-01-01, the range of datetime
_MAX_MS: Final = 253402300799999  # 9999-12-31
_OFF: Final = {"off", "false", "0", "no"}


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    schema: dict[str, Any]
    help: str


PARAMS: Final = (
    Param(
        "goal",
        {"type": "string"},
        "Goal id(s), comma-separated or repeated; default: every goal of the site.",
    ),
    Param(
        "metrics",
        {"type": "string", "default": "conversion,revenue"},
        "Comma-separated: conversion (rate), revenue (per visitor), count (conversions per visitor).",
    ),
    Param("method", {"enum": ["frequentist", "bayesian"], "default": "frequentist"}, "Statistical method."),
    Param(
        "sequential",
        {"enum": ["on", "off"], "default": "off"},
        "Always-valid (sequential) frequentist results.",
    ),
    Param("correction", {"enum": ["none", "holm", "bh"], "default": "none"}, "Multiple-testing correction."),
    Param("alpha", {"type": "number", "default": 0.05}, "Significance level (intervals are 1 - alpha)."),
    Param("difference", {"enum": ["relative", "absolute"], "default": "relative"}, "Effect scale."),
    Param(
        "breakdown",
        {"type": "string", "default": "none"},
        "browser, device, os, or a custom-data index (e.g. 2): results per value, at most 20 slices"
        " (with more than 20 values: the 19 largest + (other)).",
    ),
    Param(
        "from",
        {"type": "string"},
        "Start of exposures: YYYY-MM-DD, ISO date-time (UTC if no zone) or epoch ms.",
    ),
    Param(
        "to", {"type": "string"}, "End (exclusive) of exposures and conversions; same formats; default: now."
    ),
    Param(
        "attribution_hours",
        {"type": "number", "default": 168, "exclusiveMinimum": 0, "maximum": 876_600},
        "Conversions count up to this many hours after the first exposure (default 7 days, 100 years max).",
    ),
    Param(
        "cuped",
        {"enum": ["on", "off"], "default": "off"},
        "CUPED variance reduction with pre-exposure values.",
    ),
    Param(
        "cuped_lookback_days",
        {"type": "number", "default": 14, "exclusiveMinimum": 0, "maximum": 36_525},
        "CUPED pre-exposure period, in days (at most 100 years).",
    ),
    Param(
        "cap_percentile",
        {"type": "number"},
        "Cap revenue/count visitor values at this quantile (0-1), e.g. 0.99.",
    ),
    Param(
        "cap_revenue",
        {"type": "number", "minimum": -1e15, "maximum": 1e15},
        "Cap each visitor's revenue at this amount (currency).",
    ),
    Param(
        "cap_count",
        {"type": "number", "minimum": -1e15, "maximum": 1e15},
        "Cap each visitor's number of conversions.",
    ),
    Param(
        "control", {"type": "string"}, "Variation key or id to compare against; default: the flag's default."
    ),
)


def _switch(text: str) -> bool:
    if text.lower() in _ON:
        return True
    if text.lower() in _OFF:
        return False
    raise ValueError(f"expected on or off, not {text!r}")


def parse_time(text: str) -> int:
    """Epoch milliseconds from epoch ms, ``YYYY-MM-DD`` or an ISO date-time (UTC by default)."""
    if parse_int(text) is not None:
        ms = parse_int(text, _MIN_MS, _MAX_MS)
        if ms is None:
            raise ValueError(f"epoch milliseconds out of range (years 1 to 9999): {text!r}")
        return ms
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date, date-time or epoch milliseconds: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return int(value.timestamp() * 1000)


def _goals(values: Sequence[str]) -> tuple[int, ...]:
    goals = tuple(parse_int(g, 1, MAX_ID) for v in values for g in v.split(",") if g.strip())
    if None in goals:
        raise ValueError(f"goal must be integer ids from 1 to {MAX_ID}")
    return tuple(g for g in goals if g is not None)


def _breakdown(text: str) -> dict[str, Any]:
    if parse_int(text) is not None:
        index = parse_int(text, 0, MAX_ID)
        if index is None:
            raise ValueError(f"a custom-data index must be an integer from 0 to {MAX_ID}")
        return {"breakdown": Breakdown.CUSTOM_DATA, "custom_data_index": index}
    if text == Breakdown.CUSTOM_DATA.value:
        raise ValueError("give the custom-data index itself, e.g. breakdown=2")
    return {"breakdown": Breakdown(text)}


_SIMPLE: Final[dict[str, tuple[str, Callable[[str], Any]]]] = {
    "metrics": ("metrics", lambda t: tuple(MetricValue(m.strip()) for m in t.split(",") if m.strip())),
    "method": ("method", str),
    "sequential": ("sequential", _switch),
    "correction": ("correction", str),
    "alpha": ("alpha", float),
    "difference": ("difference", str),
    "from": ("from_ms", parse_time),
    "to": ("to_ms", parse_time),
    "attribution_hours": ("attribution_hours", float),
    "cuped": ("cuped", _switch),
    "cuped_lookback_days": ("cuped_lookback_days", float),
    "cap_percentile": ("cap_percentile", float),
    "cap_revenue": ("cap_revenue", float),
    "cap_count": ("cap_count", float),
    "control": ("control", str),
}
_CHOICES: Final = {
    "method": ("frequentist", "bayesian"),
    "correction": ("none", "holm", "bh"),
    "difference": ("relative", "absolute"),
}


def parse_fields(params: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """``ResultsRequest`` fields from query parameters (name -> values). Raises ``ValueError``
    with a message fit for a 422 answer."""
    unknown = set(params) - {p.name for p in PARAMS}
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    fields: dict[str, Any] = {"goal_ids": _goals(params.get("goal", ()))}
    for name, values in params.items():
        if name in _CHOICES and values[-1] not in _CHOICES[name]:
            raise ValueError(f"{name} must be one of {', '.join(_CHOICES[name])}")
        if name == "breakdown":
            fields.update(_breakdown(values[-1]))
        elif name in _SIMPLE:
            field, convert = _SIMPLE[name]
            try:
                fields[field] = convert(values[-1])
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
    return fields
