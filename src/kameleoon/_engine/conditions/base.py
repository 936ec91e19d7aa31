"""What every condition module shares: errors, lookups, constant checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kameleoon._engine.model import Check, Configuration, Flag, Rule
from kameleoon._engine.tree import Inline
from kameleoon._visitors.record import Visitor

__all__ = ["Compiled", "ConfigError", "Lookups", "always", "hashable", "never"]

# What a condition factory returns: its check, possibly with the same check written inline.
Compiled = Check | tuple[Check, Inline]


class ConfigError(ValueError):
    """The configuration document is malformed; it is rejected as a whole."""


class Lookups:
    """Indexes of the configuration being compiled, filled once parsing is complete."""

    __slots__ = ("entries_by_variation_id", "fact_count", "flags_by_id", "interned", "rules_by_segment_id")

    def __init__(self) -> None:
        self.flags_by_id: Mapping[Any, Flag] = {}
        self.entries_by_variation_id: Mapping[Any, Any] = {}
        self.rules_by_segment_id: Mapping[Any, Rule] = {}
        # identical conditions compile once and share one fact number (see tree.py)
        self.interned: dict[str, tuple[Check, Inline | None, int | None]] = {}
        self.fact_count = 0

    def fill(self, config: Configuration) -> None:
        self.flags_by_id = config.flags_by_id
        self.entries_by_variation_id = config.entries_by_variation_id
        self.rules_by_segment_id = config.rules_by_segment_id


def hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def always(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
    return True


def never(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
    return False
