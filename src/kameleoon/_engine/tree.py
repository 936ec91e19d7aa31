"""Builds a segment's condition tree exactly as the reference does (evaluation spec §3.1).

The same right-leaning procedure serves both levels (groups, and conditions inside a group):
it is *not* AND-before-OR precedence. ``true`` is OR, ``false`` is AND; an operator that is
missing (first level only) or ``null`` makes its node evaluate to its right side only.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from kameleoon._engine.model import Check

__all__ = ["MISSING", "build_tree"]

MISSING = object()  # an exhausted first-level operator list


class _ShortOperators(ValueError):
    """Too few operators between the conditions of a group."""


def _everybody(visitor: Any, code: str, experiment_id: Any) -> bool:
    return True


def _node(operator: Any, left: Check, right: Check) -> Check:
    if operator is MISSING or operator is None:
        return right  # the left side is evaluated for nothing: its outcome is ignored
    if operator:
        return lambda visitor, code, exp: left(visitor, code, exp) or right(visitor, code, exp)
    return lambda visitor, code, exp: left(visitor, code, exp) and right(visitor, code, exp)


def build_tree(items: list[Check | None], operators: list[Any], first_level: bool) -> Check | None:
    """The compiled tree of ``items`` (``None`` entries are empty groups), or ``None`` if empty.

    Raises ``ValueError`` when a second-level operator list is too short.
    """
    queue, ops = deque(items), deque(operators)

    def take_operator() -> Any:
        if ops:
            return ops.popleft()
        if first_level:
            return MISSING
        raise _ShortOperators("a group has fewer operators than its conditions need")

    def leaf() -> Check:
        check = queue.popleft()
        return _everybody if check is None else check

    def build() -> Check | None:
        if not queue:
            return None
        left = leaf()
        if not queue:
            return left
        operator = take_operator()
        if operator is not MISSING and operator is not None and operator:
            return _node(True, left, build() or _everybody)
        pair = _node(operator, left, leaf())
        if not queue:
            return pair
        return _node(take_operator(), pair, build() or _everybody)

    return build()
