"""Targeting conditions: each JSON condition compiles to a predicate over a visitor record.

A compiled condition is called as ``check(visitor, visitor_code, experiment_id)`` where
``visitor`` is the record of ``visitor_code`` (``None`` when there is none) and
``experiment_id`` the experiment of the rule being targeted. It returns the raw outcome; the
tree applies ``isInclude``. Conditions never raise: inputs the reference SDK would crash on
evaluate to ``False`` (see docs/compatibility.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from kameleoon._engine.matching import (
    OPERATORS,
    comparator,
    compare,
    parse_version,
    string_matcher,
)
from kameleoon._engine.model import Check, Configuration, Flag, Rule
from kameleoon._engine.sdk import SDK_LANGUAGE, SDK_VERSION
from kameleoon._engine.tree import Inline, Leaf
from kameleoon._visitors.record import Visitor
from kameleoon.data import BrowserType, DeviceType, OperatingSystemType

__all__ = ["ConfigError", "Lookups", "compile_condition"]

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


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _always(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
    return True


def _never(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
    return False


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


def _custom_datum(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    raw_index = cond.get("customDataIndex")
    if raw_index is not None and not isinstance(raw_index, str):
        raise ConfigError("CUSTOM_DATUM customDataIndex must be a string")
    operator = cond.get("valueMatchType")
    if operator not in OPERATORS:
        raise ConfigError(f"CUSTOM_DATUM has an unknown valueMatchType {operator!r}")
    if operator == "ANY":
        return _always
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
        return check, Inline("v is not None and $I not in v.keys", I=index)
    if operator == "EXACT":
        found = "($s := v.values[v.keys.index($I)]).__class__ is tuple"
        expression = f"v is not None and $I in v.keys and ($K in $s if {found} else $s == $K)"
        return check, Inline(expression, I=index, K=cond.get("value"))
    return check


# -- flags and experiments --------------------------------------------------------------------
def _target_feature_flag(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    flag_id = cond.get("featureFlagId")
    variation_key = cond.get("variationKey")
    rule_id = cond.get("ruleId")
    if not _hashable(flag_id):  # no flag has such an id (and looking it up would raise)
        return _never

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        assigned = visitor.assigned if visitor is not None else None
        if not assigned:
            return False
        flag = lookups.flags_by_id.get(flag_id)
        if flag is None:
            return False
        for rule in flag.rules:
            if rule_id is not None and rule_id != rule.id:
                continue
            assignment = assigned.get(rule.experiment_id)
            if assignment is None:
                continue
            if variation_key is None:
                return True
            entry = lookups.entries_by_variation_id.get(assignment[0])
            if entry is not None and entry.variation_key == variation_key:
                return True
        return False

    return check


def _exclusive_feature_flag(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        assigned = visitor.assigned if visitor is not None else None
        if not assigned:
            return True
        return len(assigned) == 1 and experiment_id in assigned

    return check


def _segment(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    segment_id = cond.get("segmentId")
    if not _hashable(segment_id):  # no segment has such an id (and looking it up would raise)
        return _never

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        rule = lookups.rules_by_segment_id.get(segment_id)
        if rule is None or rule.segment is None:
            return False
        try:
            return rule.segment.check(visitor, code, experiment_id)
        except RecursionError:  # a segment referring to itself, directly or not
            return False

    return check


# -- static data ------------------------------------------------------------------------------
def _enum_member(enum: Any, name: Any, aliases: Mapping[str, str] | None = None) -> Any:
    if isinstance(name, str):
        name = (aliases or {}).get(name, name)
        member = enum.__members__.get(name)
        if member is not None:
            return member
    return None


def _device_type(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    name = cond.get("device")
    wanted = _enum_member(DeviceType, name.upper() if isinstance(name, str) else None)
    if wanted is None:
        return _never

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        return visitor is not None and visitor.device == wanted

    return check, Inline("v is not None and v.device == $W", W=wanted)


def _operating_system(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    wanted = _enum_member(OperatingSystemType, cond.get("os"))
    if wanted is None:
        return _never

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        return visitor is not None and visitor.os == wanted

    return check, Inline("v is not None and v.os == $W", W=wanted)


_OPERATOR_SYMBOLS = {"EQUAL": "==", "GREATER": ">", "LOWER": "<"}


def _browser(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    wanted = _enum_member(BrowserType, cond.get("browser"), {"IE": "INTERNET_EXPLORER"})
    version = cond.get("version")
    operator = cond.get("versionMatchType")
    threshold: float | None = None
    if version is not None:
        parsed = parse_version(version)
        try:
            threshold = float(f"{parsed[0]}.{parsed[1]}") if parsed is not None else None
        except ValueError:  # a negative minor part
            threshold = None

    satisfied = comparator(operator)

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        browser = visitor.browser if visitor is not None else None
        if browser is None or browser != wanted or wanted is None:
            return False
        if version is None:
            return True
        if threshold is None:
            return False
        return satisfied(visitor.browser_version or -1, threshold)  # type: ignore[union-attr]

    symbol = _OPERATOR_SYMBOLS.get(operator) if isinstance(operator, str) else None
    if wanted is None or (version is not None and (threshold is None or symbol is None)):
        return _never
    if version is None:
        return check, Inline("v is not None and v.browser == $W", W=wanted)
    numeric = "($b := (v.browser_version or -1)).__class__ is float or $b.__class__ is int"
    expression = f"v is not None and v.browser == $W and ($b {symbol} $T if {numeric} else $F($b, $T))"
    return check, Inline(expression, W=wanted, T=threshold, F=satisfied)


def _sdk_language(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    # The SDK's own name and version are constants: the outcome is known at compile time.
    if cond.get("sdkLanguage") != SDK_LANGUAGE:
        return _never
    version = cond.get("version")
    if version is None:
        return _always
    wanted = parse_version(version)
    ours = parse_version(SDK_VERSION)
    if wanted is None or ours is None:
        return _never
    return _always if compare(cond.get("versionMatchType"), ours, wanted) else _never


def _geolocation(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    country, region, city = cond.get("country"), cond.get("region"), cond.get("city")

    def same(stored: Any, wanted: Any) -> bool:
        return isinstance(stored, str) and isinstance(wanted, str) and stored.lower() == wanted.lower()

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        geo = visitor.geo if visitor is not None else None
        if geo is None or country is None or not same(geo.country, country):
            return False
        if region is not None and not same(geo.region, region):
            return False
        return city is None or same(geo.city, city)

    return check


def _cookie(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    name, value = str(cond.get("name")), str(cond.get("value"))
    name_operator = cond.get("nameMatchType")
    name_matches = string_matcher(name_operator, name)
    value_matches = string_matcher(cond.get("valueMatchType"), value)

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        cookies = visitor.cookie if visitor is not None else None
        if cookies is None:
            return False
        if name_operator == "EXACT":
            return name in cookies and value_matches(cookies[name])
        return any(name_matches(key) and value_matches(val) for key, val in cookies.items())

    return check


# -- pages, conversions, visitor code ---------------------------------------------------------
def _page_url(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    operator, expected = cond.get("matchType"), cond.get("url")
    if operator == "CONTAINS" and isinstance(expected, str):
        return _page_url_contains(expected)
    matches = string_matcher(operator, expected)

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        pages = visitor.pages if visitor is not None else None
        if pages:
            for position in range(0, len(pages), 3):
                if matches(pages[position].url):
                    return True
        return False

    return check


def _page_url_contains(expected: str) -> Check:
    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        pages = visitor.pages if visitor is not None else None
        if pages:
            for position in range(0, len(pages), 3):
                url = pages[position].url
                if url.__class__ is str and expected in url:
                    return True
        return False

    return check


def _page_title(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    matches = string_matcher(cond.get("matchType"), cond.get("title"))

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        pages = visitor.pages if visitor is not None else None
        return pages is not None and any(
            page.title is not None and matches(page.title) for page in pages[::3]
        )

    return check


def _previous_page(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    matches = string_matcher(cond.get("matchType"), cond.get("url"))

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        pages = visitor.pages if visitor is not None else None
        if not pages:
            return False
        latest = previous = None
        for position in range(0, len(pages), 3):
            if latest is None or pages[position + 2] > pages[latest + 2]:
                previous, latest = latest, position
            elif previous is None or pages[position + 2] > pages[previous + 2]:
                previous = position
        return previous is not None and matches(pages[previous].url)

    return check


def _page_views(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    operator, count = cond.get("matchType"), cond.get("pageCount")

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        if visitor is None or count is None:
            return False
        pages = visitor.pages
        total = sum(pages[1::3]) if pages else 0
        return compare(operator, total, count)

    return check


def _conversions(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    goal_id = cond.get("goalId", -1)

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        if visitor is None or not visitor.conversions:
            return False
        if goal_id == -1:
            return True
        return any(conversion.goal_id == goal_id for conversion in visitor.conversions)

    if goal_id == -1:
        return check, Inline("v is not None and v.conversions != ()")
    return check


def _visitor_code(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    expected, operator = cond.get("visitorCode"), cond.get("matchType")
    if expected is None:
        return _never
    matches = string_matcher(operator, expected)

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        return matches(code)

    if operator == "EXACT":
        return check, Inline("c == $K", K=expected)
    return check, Inline("$M(c)", M=matches)


# -- visit history ----------------------------------------------------------------------------
def _visits_of(visitor: Visitor | None) -> tuple[Any, ...]:
    visits = visitor.visits if visitor is not None else None
    return visits or ()


def _visits(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    operator, count = cond.get("matchType"), cond.get("visitCount")

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        return count is not None and compare(operator, len(_visits_of(visitor)) + 1, count)

    return check


def _start_of_today_ms() -> float:
    now = time.localtime()
    midnight = time.mktime((now.tm_year, now.tm_mon, now.tm_mday, 0, 0, 0, 0, 0, -1))
    return midnight * 1000


def _same_day_visits(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    operator, count = cond.get("matchType"), cond.get("visitCount")

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        if count is None:
            return False
        today, same_day = _start_of_today_ms(), 0
        for started in _visits_of(visitor):
            if started < today:
                break
            same_day += 1
        return compare(operator, same_day + 1, count)

    return check


def _elapsed_since_visit(cond: Mapping[str, Any], lookups: Lookups, first: bool) -> Check:
    operator, millis = cond.get("matchType"), cond.get("countInMillis")

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        visits = _visits_of(visitor)
        if not visits or millis is None:
            return False
        try:
            elapsed = time.time() * 1000 - visits[-1 if first else 0]
        except TypeError:
            return False
        return compare(operator, elapsed, millis)

    return check


def _first_visit(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    return _elapsed_since_visit(cond, lookups, first=True)


def _last_visit(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    return _elapsed_since_visit(cond, lookups, first=False)


def _new_visitors(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    kind = cond.get("visitorType")
    kind = kind.upper() if isinstance(kind, str) else None
    if kind == "NEW":
        return lambda visitor, code, experiment_id: not _visits_of(visitor)
    if kind == "RETURNING":
        return lambda visitor, code, experiment_id: bool(_visits_of(visitor))
    return _never


def _heat_slice(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    def number(key: str, default: float) -> Any:
        value = cond.get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    goal, moment = number("goalId", -1), number("keyMomentId", -1)
    lower, upper = number("lowerBound", 101), number("upperBound", -1)

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        kcs = visitor.kcs if visitor is not None else None
        scores = kcs.get(moment) if kcs else None
        score = scores.get(goal) if isinstance(scores, dict) else None
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            return False
        return bool(lower <= score <= upper)

    return check


_FACTORIES: dict[str, Callable[[Mapping[str, Any], Lookups], Compiled]] = {
    "CUSTOM_DATUM": _custom_datum,
    "TARGET_FEATURE_FLAG": _target_feature_flag,
    "EXCLUSIVE_FEATURE_FLAG": _exclusive_feature_flag,
    "DEVICE_TYPE": _device_type,
    "VISITOR_CODE": _visitor_code,
    "PAGE_URL": _page_url,
    "PAGE_TITLE": _page_title,
    "PREVIOUS_PAGE": _previous_page,
    "PAGE_VIEWS": _page_views,
    "CONVERSIONS": _conversions,
    "SDK_LANGUAGE": _sdk_language,
    "BROWSER": _browser,
    "COOKIE": _cookie,
    "GEOLOCATION": _geolocation,
    "OPERATING_SYSTEM": _operating_system,
    "SEGMENT": _segment,
    "VISITS": _visits,
    "SAME_DAY_VISITS": _same_day_visits,
    "FIRST_VISIT": _first_visit,
    "LAST_VISIT": _last_visit,
    "NEW_VISITORS": _new_visitors,
    "HEAT_SLICE": _heat_slice,
}


_INLINE_CONSTANTS: dict[Check, Inline] = {_always: Inline("True"), _never: Inline("False")}


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
        compiled = factory(cond, lookups) if factory is not None else _always
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
