"""Targeting conditions: each JSON condition compiles to a predicate over a visitor record.

A compiled condition is called as ``check(visitor, visitor_code, experiment_id)`` where
``visitor`` is the record of ``visitor_code`` (``None`` when there is none) and
``experiment_id`` the experiment of the rule being targeted. It returns the raw outcome; the
tree applies ``isInclude``. Conditions never raise: inputs the reference SDK would crash on
evaluate to ``False`` (see docs/compatibility.md). One module per family: ``custom`` (custom
data), ``visitor`` (flags, segments, device, browser, OS, place, cookies), ``activity`` (pages,
conversions, visits, visitor code, KCS heat).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kameleoon._engine.conditions import activity, custom, visitor
from kameleoon._engine.conditions.base import Compiled, ConfigError, Lookups, always, never
from kameleoon._engine.model import Check
from kameleoon._engine.tree import Inline, Leaf

__all__ = ["ConfigError", "Lookups", "compile_condition"]

_FACTORIES: dict[str, Callable[[Mapping[str, Any], Lookups], Compiled]] = {
    "CUSTOM_DATUM": custom.custom_datum,
    "TARGET_FEATURE_FLAG": visitor.target_feature_flag,
    "EXCLUSIVE_FEATURE_FLAG": visitor.exclusive_feature_flag,
    "DEVICE_TYPE": visitor.device_type,
    "VISITOR_CODE": activity.visitor_code,
    "PAGE_URL": activity.page_url,
    "PAGE_TITLE": activity.page_title,
    "PREVIOUS_PAGE": activity.previous_page,
    "PAGE_VIEWS": activity.page_views,
    "CONVERSIONS": activity.conversions,
    "SDK_LANGUAGE": visitor.sdk_language,
    "BROWSER": visitor.browser,
    "COOKIE": visitor.cookie,
    "GEOLOCATION": visitor.geolocation,
    "OPERATING_SYSTEM": visitor.operating_system,
    "SEGMENT": visitor.segment,
    "VISITS": activity.visits,
    "SAME_DAY_VISITS": activity.same_day_visits,
    "FIRST_VISIT": activity.first_visit,
    "LAST_VISIT": activity.last_visit,
    "NEW_VISITORS": activity.new_visitors,
    "HEAT_SLICE": activity.heat_slice,
}


_INLINE_CONSTANTS: dict[Check, Inline] = {always: Inline("True", cost=0), never: Inline("False", cost=0)}


# Conditions whose outcome depends on more than the visitor and its code: never memoized.
_CONTEXTUAL = frozenset({"SEGMENT", "EXCLUSIVE_FEATURE_FLAG"})


def compile_condition(cond: Any, lookups: Lookups) -> Leaf:
    """Compiles one condition object into its raw check, its ``isInclude`` flag, an inline
    expression of the check when it is simple, and its fact number (identical conditions of a
    configuration share one, so one evaluation pass can reuse their outcome)."""
    if not isinstance(cond, Mapping):
        raise ConfigError("a condition must be an object")
    include = cond.get("isInclude", True) is not False
    key = json.dumps({k: v for k, v in cond.items() if k != "isInclude"}, sort_keys=True, default=repr)
    known = lookups.interned.get(key)
    if known is None:
        kind = cond.get("targetingType")
        factory = _FACTORIES.get(kind) if isinstance(kind, str) else None
        compiled = factory(cond, lookups) if factory is not None else always
        inline: Inline | None
        if isinstance(compiled, tuple):
            check, inline = compiled
        else:
            check, inline = compiled, _INLINE_CONSTANTS.get(compiled)
        fact = None
        if not (isinstance(kind, str) and kind in _CONTEXTUAL):
            fact, lookups.fact_count = lookups.fact_count, lookups.fact_count + 1
        known = lookups.interned[key] = (check, inline, fact)
    return Leaf(known[0], include, known[1], known[2])
