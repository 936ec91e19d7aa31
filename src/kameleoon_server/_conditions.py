"""Validation of targeting conditions (evaluation.md §1.9, §1.10, §3.4). Pure.

Two levels: *parseable* is what the SDK needs to accept a configuration at all (§1.10) and is
always enforced; *strict* adds the per-condition checks of §3.4 (required fields, operator and
enum names, valid regular expressions) and is enforced for everything edited through the admin
API, so that a typo is reported instead of silently never matching.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any, Final

from kameleoon_server._integers import is_int, is_number

OPERATORS: Final = frozenset(
    {"UNDEFINED", "CONTAINS", "EXACT", "REGULAR_EXPRESSION", "LOWER", "EQUAL", "GREATER", "TRUE", "FALSE"}
    | {"AMONG_VALUES", "ANY"}
)
STRING_MATCH: Final = frozenset(("EXACT", "CONTAINS", "REGULAR_EXPRESSION"))
NUMBER_MATCH: Final = frozenset(("EQUAL", "GREATER", "LOWER"))
DEVICES: Final = frozenset(("PHONE", "TABLET", "DESKTOP"))
BROWSERS: Final = frozenset(("CHROME", "INTERNET_EXPLORER", "IE", "FIREFOX", "SAFARI", "OPERA", "OTHER"))
SYSTEMS: Final = frozenset(("WINDOWS", "MAC", "IOS", "LINUX", "ANDROID", "WINDOWS_PHONE"))

Check = Callable[[dict[str, Any]], Iterator[str]]


def _one_of(value: Any, names: frozenset[str]) -> bool:
    return isinstance(value, str) and value in names  # (a list or an object is not hashable)


def custom_data_index(text: Any) -> int | None:
    """The index a ``customDataIndex`` names as the SDK reads it (a string of decimal digits),
    or None: the SDK reads anything else as -1, an index that never has data."""
    return int(text) if isinstance(text, str) and text.isdecimal() else None


def _regex_error(pattern: Any) -> str | None:
    try:
        re.compile(str(pattern))
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    return None


def _string(field: str, op_field: str) -> Check:
    def check(c: dict[str, Any]) -> Iterator[str]:
        if not _one_of(c.get(op_field), STRING_MATCH):
            yield f"{op_field} must be one of {sorted(STRING_MATCH)}"
        if not isinstance(c.get(field), str):
            yield f"{field} must be a string"
        elif c.get(op_field) == "REGULAR_EXPRESSION" and (error := _regex_error(c[field])):
            yield f"{field}: {error}"

    return check


def _number(field: str) -> Check:
    def check(c: dict[str, Any]) -> Iterator[str]:
        if not _one_of(c.get("matchType"), NUMBER_MATCH):
            yield f"matchType must be one of {sorted(NUMBER_MATCH)}"
        if not is_number(c.get(field)):
            yield f"{field} must be a number"

    return check


def _enum(field: str, names: frozenset[str], upper: bool = False) -> Check:
    def check(c: dict[str, Any]) -> Iterator[str]:
        value = c.get(field)
        if not isinstance(value, str) or (value.upper() if upper else value) not in names:
            yield f"{field} must be one of {sorted(names)}"

    return check


def _version(c: dict[str, Any]) -> Iterator[str]:
    version = c.get("version")
    if version is None:
        return
    parts = str(version).split(".")
    if not all(p.isascii() and p.isdigit() for p in parts[:3]):
        yield "version must look like 1, 1.2 or 1.2.3"
    if not _one_of(c.get("versionMatchType"), NUMBER_MATCH):
        yield f"versionMatchType must be one of {sorted(NUMBER_MATCH)} when a version is given"


def _custom_datum(c: dict[str, Any]) -> Iterator[str]:
    op = c.get("valueMatchType")
    if not isinstance(op, str) or op in ("UNDEFINED", "TRUE", "FALSE", "ANY"):
        return  # (an operator that is not a string is reported with the operators)
    value = c.get("value")
    if not isinstance(value, str):
        yield "value must be a string"
    elif op == "REGULAR_EXPRESSION" and (error := _regex_error(value)):
        yield f"value: {error}"
    elif op in NUMBER_MATCH:
        try:
            float(value)
        except ValueError:
            yield "value must be a number for EQUAL/GREATER/LOWER"
    elif op == "AMONG_VALUES":
        try:
            ok = isinstance(json.loads(value), list)
        except ValueError:
            ok = False
        if not ok:
            yield "value must be a JSON array for AMONG_VALUES"


def _browser(c: dict[str, Any]) -> Iterator[str]:
    yield from _enum("browser", BROWSERS)(c)
    yield from _version(c)


def _sdk_language(c: dict[str, Any]) -> Iterator[str]:
    if not isinstance(c.get("sdkLanguage"), str):
        yield "sdkLanguage must be a string"
    yield from _version(c)


def _cookie(c: dict[str, Any]) -> Iterator[str]:
    yield from _string("name", "nameMatchType")(c)
    yield from _string("value", "valueMatchType")(c)


def _geolocation(c: dict[str, Any]) -> Iterator[str]:
    if not isinstance(c.get("country"), str) or not c["country"]:
        yield "country must be a non-empty string"
    for field in ("region", "city"):
        if c.get(field) is not None and not isinstance(c[field], str):
            yield f"{field} must be a string or null"


def _ints(*fields: str, optional: bool = False) -> Check:
    def check(c: dict[str, Any]) -> Iterator[str]:
        for field in fields:
            if not (is_int(c.get(field)) or (optional and c.get(field) is None)):
                yield f"{field} must be an integer"

    return check


def _heat_slice(c: dict[str, Any]) -> Iterator[str]:
    yield from _ints("goalId", "keyMomentId")(c)
    for field in ("lowerBound", "upperBound"):
        if not is_number(c.get(field)):
            yield f"{field} must be a number"


def _nothing(c: dict[str, Any]) -> Iterator[str]:
    return iter(())


STRICT_CHECKS: Final[dict[str, Check]] = {
    "CUSTOM_DATUM": _custom_datum,
    "TARGET_FEATURE_FLAG": _ints("featureFlagId"),
    "EXCLUSIVE_FEATURE_FLAG": _nothing,
    "DEVICE_TYPE": _enum("device", DEVICES, upper=True),
    "VISITOR_CODE": _string("visitorCode", "matchType"),
    "PAGE_URL": _string("url", "matchType"),
    "PAGE_TITLE": _string("title", "matchType"),
    "PREVIOUS_PAGE": _string("url", "matchType"),
    "PAGE_VIEWS": _number("pageCount"),
    "CONVERSIONS": _ints("goalId", optional=True),
    "SDK_LANGUAGE": _sdk_language,
    "BROWSER": _browser,
    "COOKIE": _cookie,
    "GEOLOCATION": _geolocation,
    "OPERATING_SYSTEM": _enum("os", SYSTEMS),
    "SEGMENT": _ints("segmentId"),
    "VISITS": _number("visitCount"),
    "SAME_DAY_VISITS": _number("visitCount"),
    "FIRST_VISIT": _number("countInMillis"),
    "LAST_VISIT": _number("countInMillis"),
    "NEW_VISITORS": _enum("visitorType", frozenset(("NEW", "RETURNING")), upper=True),
    "HEAT_SLICE": _heat_slice,
    "EXPLICIT_TRIGGER": _nothing,
}


def _condition_errors(c: Any, strict: bool) -> Iterator[str]:
    if not isinstance(c, dict):
        yield "a condition must be an object"
        return
    kind = c.get("targetingType")
    if kind == "CUSTOM_DATUM":  # the SDK itself rejects these (§1.10)
        if not isinstance(c.get("customDataIndex"), str):
            yield 'customDataIndex must be a string holding an integer (e.g. "0")'
        elif strict and custom_data_index(c["customDataIndex"]) is None:
            yield "customDataIndex must be digits only (the SDK reads anything else as no index)"
        if not _one_of(c.get("valueMatchType"), OPERATORS):
            yield f"valueMatchType must be one of {sorted(OPERATORS)}"
    if "isInclude" in c and strict and not isinstance(c["isInclude"], bool):
        yield "isInclude must be true or false"
    if not strict:
        return
    check = STRICT_CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        yield f"unknown targetingType {kind!r} (known: {', '.join(sorted(STRICT_CHECKS))})"
    else:
        yield from check(c)


def _operators(container: dict[str, Any], key: str, count: int, strict: bool) -> Iterator[str]:
    ops = container.get(key)
    if count < 2 and ops is None:
        return
    if not isinstance(ops, list) or not all(isinstance(o, bool) for o in ops):
        yield f"{key} must be a list of booleans (true = OR, false = AND)"
    elif len(ops) < count - 1 and (strict or key == "orOperators"):
        yield f"{key} needs {count - 1} operators, has {len(ops)}"


def conditions_data_errors(data: Any, strict: bool) -> list[str]:
    """Problems of a ``conditionsData`` object (None is valid: everybody matches)."""
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("firstLevel"), list):
        return ["conditionsData must be an object with a firstLevel list"]
    groups: list[Any] = data["firstLevel"]
    errors = [
        f"firstLevelOrOperators: {e}" for e in _operators(data, "firstLevelOrOperators", len(groups), strict)
    ]
    for g, group in enumerate(groups):
        where = f"firstLevel[{g}]"
        if not isinstance(group, dict) or not isinstance(group.get("conditions"), list):
            errors.append(f"{where} must be an object with a conditions list")
            continue
        conditions: list[Any] = group["conditions"]
        errors += [f"{where}.{e}" for e in _operators(group, "orOperators", len(conditions), strict)]
        for i, condition in enumerate(conditions):
            errors += [f"{where}.conditions[{i}]: {e}" for e in _condition_errors(condition, strict)]
    return errors


def referenced(data: Any, targeting_type: str, field: str) -> list[Any]:
    """Values of ``field`` in the conditions of a type (e.g. SEGMENT → segmentId)."""
    groups = data.get("firstLevel") if isinstance(data, dict) else None
    groups = [g for g in groups if isinstance(g, dict)] if isinstance(groups, list) else []
    lists = [g.get("conditions") for g in groups]
    conditions = [c for items in lists if isinstance(items, list) for c in items if isinstance(c, dict)]
    return [c.get(field) for c in conditions if c.get("targetingType") == targeting_type]
