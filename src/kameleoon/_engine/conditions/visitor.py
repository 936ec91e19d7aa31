"""Conditions on flags, segments and the visitor's device, browser, OS, place and cookies."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from kameleoon._engine.conditions.base import Compiled, Lookups, always, hashable, never
from kameleoon._engine.matching import (
    comparator,
    compare,
    parse_version,
    string_matcher,
)
from kameleoon._engine.model import Check
from kameleoon._engine.sdk import SDK_LANGUAGE, SDK_VERSION
from kameleoon._engine.tree import Inline
from kameleoon._visitors.record import Visitor
from kameleoon.data import BrowserType, DeviceType, OperatingSystemType

__all__ = [
    "browser",
    "cookie",
    "device_type",
    "exclusive_feature_flag",
    "geolocation",
    "operating_system",
    "sdk_language",
    "segment",
    "target_feature_flag",
]


# -- flags and experiments --------------------------------------------------------------------
def target_feature_flag(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    flag_id = cond.get("featureFlagId")
    variation_key = cond.get("variationKey")
    rule_id = cond.get("ruleId")
    if not hashable(flag_id):  # no flag has such an id (and looking it up would raise)
        return never

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


def exclusive_feature_flag(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        assigned = visitor.assigned if visitor is not None else None
        if not assigned:
            return True
        return len(assigned) == 1 and experiment_id in assigned

    return check


def segment(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    segment_id = cond.get("segmentId")
    if not hashable(segment_id):  # no segment has such an id (and looking it up would raise)
        return never

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        rule = lookups.rules_by_segment_id.get(segment_id)
        if rule is None or rule.segment is None:
            return False
        active = _segments_in_progress()
        if segment_id in active:  # a segment referring to itself, directly or not: false here
            return False
        active.add(segment_id)
        try:
            return rule.segment.check(visitor, code, experiment_id)
        except RecursionError:  # a chain of thousands of distinct segments
            return False
        finally:
            active.discard(segment_id)

    return check


_in_progress = threading.local()


def _segments_in_progress() -> set[Any]:
    """The segments being evaluated on this thread (one decision at a time per thread): the
    condition that refers back to one of them is false, whatever the depth of the caller's
    stack (catching ``RecursionError`` alone made every level's answer depend on it)."""
    active: set[Any] | None = getattr(_in_progress, "ids", None)
    if active is None:
        active = _in_progress.ids = set()
    return active


# -- static data ------------------------------------------------------------------------------
def _enum_member(enum: Any, name: Any, aliases: Mapping[str, str] | None = None) -> Any:
    if isinstance(name, str):
        name = (aliases or {}).get(name, name)
        member = enum.__members__.get(name)
        if member is not None:
            return member
    return None


def device_type(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    name = cond.get("device")
    wanted = _enum_member(DeviceType, name.upper() if isinstance(name, str) else None)
    if wanted is None:
        return never

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        return visitor is not None and visitor.device == wanted

    return check, Inline("v.device == $W", cost=1, on_record=True, W=wanted)


def operating_system(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    wanted = _enum_member(OperatingSystemType, cond.get("os"))
    if wanted is None:
        return never

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        return visitor is not None and visitor.os == wanted

    return check, Inline("v.os == $W", cost=1, on_record=True, W=wanted)


_OPERATOR_SYMBOLS = {"EQUAL": "==", "GREATER": ">", "LOWER": "<"}


def browser(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
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
        return never
    if version is None:
        return check, Inline("v.browser == $W", cost=1, on_record=True, W=wanted)
    numeric = "($b := (v.browser_version or -1)).__class__ is float or $b.__class__ is int"
    expression = f"v.browser == $W and ($b {symbol} $T if {numeric} else $F($b, $T))"
    return check, Inline(expression, cost=2, on_record=True, W=wanted, T=threshold, F=satisfied)


def sdk_language(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    # The SDK's own name and version are constants: the outcome is known at compile time.
    if cond.get("sdkLanguage") != SDK_LANGUAGE:
        return never
    version = cond.get("version")
    if version is None:
        return always
    wanted = parse_version(version)
    ours = parse_version(SDK_VERSION)
    if wanted is None or ours is None:
        return never
    return always if compare(cond.get("versionMatchType"), ours, wanted) else never


def geolocation(cond: Mapping[str, Any], lookups: Lookups) -> Check:
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


def cookie(cond: Mapping[str, Any], lookups: Lookups) -> Check:
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
