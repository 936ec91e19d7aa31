"""CUSTOM_DATUM conditions (evaluation spec §3.5)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kameleoon._engine.conditions.base import Compiled, ConfigError, Lookups, always
from kameleoon._engine.matching import (
    OPERATORS,
    comparator,
    string_matcher,
)
from kameleoon._engine.tree import Inline
from kameleoon._visitors.record import Visitor

__all__ = ["custom_datum"]


# -- custom data ------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _custom_values_test(operator: str, expected: Any) -> Callable[[tuple[Any, ...]], bool]:
    """A predicate over the stored values of one index (present), per operator."""
    if operator == "EXACT":
        return lambda values: expected in values
    if operator in ("CONTAINS", "REGULAR_EXPRESSION"):
        match = string_matcher(operator, expected)

        def test_strings(values: tuple[Any, ...]) -> bool:
            for value in values:
                if match(value):
                    return True
                if not isinstance(value, str):
                    return False  # the reference fails on a non-string value (CONTAINS, regex)
            return False

        return test_strings
    if operator in ("EQUAL", "GREATER", "LOWER"):
        return _numeric_test(operator, _number(expected))
    if operator in ("TRUE", "FALSE"):
        word = operator.lower()
        return lambda values: bool(word in values)
    if operator == "AMONG_VALUES":
        among = _among_values(expected)
        if among is None:
            return lambda values: False
        return lambda values: any(value in among for value in values)
    return lambda values: False  # UNDEFINED: the index has data


def _close(number: float, limit: float) -> bool:
    return abs(number - limit) < 1e-9


def _numeric_test(operator: str, threshold: float | None) -> Callable[[tuple[Any, ...]], bool]:
    satisfied = _close if operator == "EQUAL" else comparator(operator)

    def test(values: tuple[Any, ...]) -> bool:
        if threshold is None:
            return False
        for value in values:
            number = _number(value)
            if number is None:
                return False  # the reference stops at the first unparsable value
            if satisfied(number, threshold):
                return True
        return False

    return test


_BOOL_WORDS: dict[Any, str] = {True: "true", False: "false"}


def _among_values(expected: Any) -> list[str] | None:
    try:
        items = json.loads(expected)
        return [_BOOL_WORDS.get(item, str(item)) if not isinstance(item, str) else item for item in items]
    except (TypeError, ValueError, RecursionError):
        return None


def custom_datum(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    raw_index = cond.get("customDataIndex")
    if raw_index is not None and not isinstance(raw_index, str):
        raise ConfigError("CUSTOM_DATUM customDataIndex must be a string")
    operator = cond.get("valueMatchType")
    if operator not in OPERATORS:
        raise ConfigError(f"CUSTOM_DATUM has an unknown valueMatchType {operator!r}")
    if operator == "ANY":
        return always
    index = int(raw_index) if isinstance(raw_index, str) and raw_index.isdecimal() else -1
    test = _custom_values_test(operator, cond.get("value"))
    undefined: bool = operator == "UNDEFINED"

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        if visitor is None:
            return False
        keys = visitor.keys
        if index not in keys:
            return undefined
        stored = visitor.values[keys.index(index)]
        return not undefined and test(stored if stored.__class__ is tuple else (stored,))

    if undefined:
        return check, Inline("$I not in v.keys", cost=2, on_record=True, I=index)
    if operator == "EXACT":
        found = "($s := v.values[v.keys.index($I)]).__class__ is tuple"
        expression = f"$I in v.keys and ($K in $s if {found} else $s == $K)"
        return check, Inline(expression, cost=3, on_record=True, I=index, K=cond.get("value"))
    return check
