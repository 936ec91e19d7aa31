"""The compiled configuration: immutable objects built once by :mod:`._parse`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kameleoon._engine.variables import VariationDef

if TYPE_CHECKING:
    from kameleoon._visitors.record import Visitor

__all__ = [
    "EXPERIMENTATION",
    "TARGETED_DELIVERY",
    "UNKNOWN_RULE",
    "Check",
    "Configuration",
    "CustomDataDef",
    "Flag",
    "Rule",
    "Segment",
    "VariationEntry",
]

EXPERIMENTATION = "EXPERIMENTATION"
TARGETED_DELIVERY = "TARGETED_DELIVERY"
UNKNOWN_RULE = "UNKNOWN"

# A compiled targeting tree: (visitor record or None, visitor code, experiment id of the rule
# being evaluated) -> targeted?
Check = Callable[["Visitor | None", str, Any], bool]


def _everybody(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
    return True


def _everybody_memo(visitor: Visitor | None, code: str, experiment_id: Any, facts: list[Any]) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Segment:
    """A targeting segment: its id and its compiled condition tree (twice: plain, and reading
    and filling a list of memoized condition outcomes, for evaluating many flags at once)."""

    id: Any
    check: Check = _everybody
    memo_check: Callable[[Visitor | None, str, Any, list[Any]], bool] = _everybody_memo
    tree: Any = None  # the condition tree (kameleoon._engine.tree), compiled again into passes


@dataclass(frozen=True, slots=True)
class VariationEntry:
    """One entry of a rule's ``variationByExposition``, with its cumulated exposition."""

    variation_key: Any
    variation_id: Any
    exposition: Any
    cumulative: float
    limit: bytes | None = None  # digests <= limit have a draw <= cumulative (hashing.limit_for)


@dataclass(frozen=True, slots=True)
class Rule:
    """A flag rule, with the two hash suffixes precomputed."""

    id: Any
    type: str
    exposition: Any
    experiment_id: Any
    respool_time: Any
    entries: tuple[VariationEntry, ...]
    segment: Segment | None
    rule_suffix: bytes  # UTF-8 of str(id) + str(respool) if respool
    experiment_suffix: bytes  # UTF-8 of str(experimentId) + str(respool) if respool
    exposure_limit: bytes | None = None  # digests <= limit enter the rule (hashing.limit_for)


@dataclass(frozen=True, slots=True)
class Flag:
    id: Any
    key: Any
    default_variation_key: Any
    environment_enabled: bool
    variations: tuple[VariationDef, ...]
    rules: tuple[Rule, ...]
    # the rule loop of this flag as one generated function (kameleoon._engine.passes)
    decide: Callable[[Visitor | None, str], tuple[VariationEntry | None, Rule | None]]
    variations_by_key: Mapping[Any, VariationDef] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CustomDataDef:
    index: int
    local_only: bool
    visitor_scope: bool
    is_mapping_identifier: bool


@dataclass(frozen=True, slots=True)
class Configuration:
    """A whole configuration document, compiled."""

    real_time_update: bool = False
    consent_required: bool = False
    data_api_domain: str | None = None
    custom_data: Mapping[int, CustomDataDef] = field(default_factory=dict)
    mapping_index: int | None = None
    flags: Mapping[Any, Flag] = field(default_factory=dict)
    flags_by_id: Mapping[Any, Flag] = field(default_factory=dict)
    entries_by_variation_id: Mapping[Any, VariationEntry] = field(default_factory=dict)
    rules_by_segment_id: Mapping[Any, Rule] = field(default_factory=dict)
    has_targeted_delivery_rule: bool = False
    fact_count: int = 0  # distinct memoizable conditions (length of an evaluation pass's memo)
    enabled_flags: tuple[Flag, ...] = ()  # environment-enabled flags, in configuration order
    # the same flags by key: a decision's lookup, which needs no test of environment_enabled
    enabled_by_key: Mapping[Any, Flag] = field(default_factory=dict)
    # every enabled flag decided by one generated function (kameleoon._engine.passes), or None
    decide_all: Callable[..., Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    local_only: frozenset[int] = frozenset()  # custom data indexes never sent

    def is_local_only(self, index: object) -> bool:
        try:
            return index in self.local_only
        except TypeError:  # an unhashable index
            return False


EMPTY_CONFIGURATION = Configuration()
