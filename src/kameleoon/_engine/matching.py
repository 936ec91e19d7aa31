"""String and number operators shared by the targeting conditions (all total: no exceptions)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "OPERATORS",
    "comparator",
    "compare",
    "compile_regex",
    "parse_version",
    "string_matcher",
]

# Operator names understood by the configuration (case-sensitive).
OPERATORS = frozenset(
    {
        "UNDEFINED",
        "CONTAINS",
        "EXACT",
        "REGULAR_EXPRESSION",
        "LOWER",
        "EQUAL",
        "GREATER",
        "TRUE",
        "FALSE",
        "AMONG_VALUES",
        "ANY",
    }
)


def _never(value: Any) -> bool:
    return False


def compile_regex(pattern: Any) -> re.Pattern[str] | None:
    """The pattern compiled for full matches, or ``None`` when it is not a valid pattern."""
    if not isinstance(pattern, str):
        return None
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None


def string_matcher(operator: Any, expected: Any) -> Callable[[Any], bool]:
    """A predicate testing one text against ``expected`` with EXACT, CONTAINS or a full regex.

    Other operators, and inputs the operator cannot handle (non-strings), give ``False``.
    """
    if operator == "EXACT":
        return lambda value: bool(value == expected)
    if operator == "CONTAINS":
        if not isinstance(expected, str):
            return _never
        return lambda value: isinstance(value, str) and expected in value
    if operator == "REGULAR_EXPRESSION":
        pattern = compile_regex(expected)
        if pattern is None:
            return _never
        fullmatch = pattern.fullmatch
        return lambda value: isinstance(value, str) and fullmatch(value) is not None
    return _never


def compare(operator: Any, actual: Any, expected: Any) -> bool:
    """EQUAL / GREATER / LOWER of ``actual`` against ``expected``; anything else is ``False``."""
    try:
        if operator == "EQUAL":
            return bool(actual == expected)
        if operator == "GREATER":
            return bool(actual > expected)
        if operator == "LOWER":
            return bool(actual < expected)
    except TypeError:
        pass
    return False


def _equal(actual: Any, expected: Any) -> bool:
    return bool(actual == expected)


def _greater(actual: Any, expected: Any) -> bool:
    try:
        return bool(actual > expected)
    except TypeError:
        return False


def _lower(actual: Any, expected: Any) -> bool:
    try:
        return bool(actual < expected)
    except TypeError:
        return False


def _false(actual: Any, expected: Any) -> bool:
    return False


_COMPARATORS = {"EQUAL": _equal, "GREATER": _greater, "LOWER": _lower}


def comparator(operator: Any) -> Callable[[Any, Any], bool]:
    """The EQUAL / GREATER / LOWER test as a function (anything else: always ``False``)."""
    try:
        return _COMPARATORS.get(operator, _false)
    except TypeError:  # an unhashable operator
        return _false


def parse_version(text: Any) -> tuple[int, int, int] | None:
    """``"11.2.3"`` -> ``(11, 2, 3)``; missing parts are 0; ``None`` if a part is not an integer."""
    parts = str(text).split(".")[:3]
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        return None
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]
