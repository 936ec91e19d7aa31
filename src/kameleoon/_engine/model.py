"""The compiled configuration: immutable objects built once by :mod:`._parse`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    "VariableDef",
    "VariationDef",
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


@dataclass(frozen=True, slots=True)
class Segment:
    """A targeting segment: its id and its compiled condition tree."""

    id: Any
    check: Check = _everybody


@dataclass(frozen=True, slots=True)
class VariationEntry:
    """One entry of a rule's ``variationByExposition``, with its cumulated exposition."""

    variation_key: Any
    variation_id: Any
    exposition: Any
    cumulative: float


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


@dataclass(frozen=True, slots=True)
class VariableDef:
    """A variable as configured; ``value`` is already typed per §1.6 (``None`` if untyped)."""

    key: Any
    type: Any
    raw_value: Any


@dataclass(frozen=True, slots=True)
class VariationDef:
    key: Any
    variables: tuple[VariableDef, ...]


@dataclass(frozen=True, slots=True)
class Flag:
    id: Any
    key: Any
    default_variation_key: Any
    environment_enabled: bool
    variations: tuple[VariationDef, ...]
    rules: tuple[Rule, ...]
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
    raw: Mapping[str, Any] = field(default_factory=dict)

    def is_local_only(self, index: object) -> bool:
        definition = self.custom_data.get(index)  # type: ignore[call-overload]
        return definition is not None and definition.local_only


EMPTY_CONFIGURATION = Configuration()
