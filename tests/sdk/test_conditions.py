"""Every targeting condition type and operator (evaluation spec §3.3-§3.5).

Outcomes here are the raw checks; ``isInclude`` is applied by the tree (see test_tree.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kameleoon._engine import conditions
from kameleoon._engine.conditions import ConfigError, Lookups, compile_condition
from kameleoon._engine.parse import parse_configuration
from kameleoon._visitors.data import add_page
from kameleoon._visitors.record import Visitor
from kameleoon.data import (
    Browser,
    BrowserType,
    Conversion,
    Cookie,
    CustomData,
    Device,
    DeviceType,
    Geolocation,
    OperatingSystem,
    OperatingSystemType,
    PageView,
)

from ._support import check, document, entry, flag, record, rule, segment

EMPTY = record()  # a visitor record that exists but holds nothing


def custom(operator: str | None, value: Any = None, index: Any = "0") -> dict[str, Any]:
    cond: dict[str, Any] = {"targetingType": "CUSTOM_DATUM", "customDataIndex": index, "value": value}
    if operator is not None:
        cond["valueMatchType"] = operator
    return cond


# -- CUSTOM_DATUM -------------------------------------------------------------------------------
ALL_OPERATORS = [
    "UNDEFINED",
    "EXACT",
    "CONTAINS",
    "REGULAR_EXPRESSION",
    "EQUAL",
    "GREATER",
    "LOWER",
    "TRUE",
    "FALSE",
    "AMONG_VALUES",
]


@pytest.mark.parametrize("operator", ALL_OPERATORS)
def test_custom_datum_without_visitor_is_false(operator: str) -> None:
    """No visitor record: every operator is false, UNDEFINED included."""
    assert check(custom(operator, "x"), None) is False


@pytest.mark.parametrize("operator", ALL_OPERATORS)
def test_custom_datum_index_absent(operator: str) -> None:
    """A visitor without that index: only UNDEFINED is true."""
    visitor = record(CustomData(1, "x"))
    assert check(custom(operator, "x"), visitor) is (operator == "UNDEFINED")
    assert check(custom(operator, "x"), EMPTY) is (operator == "UNDEFINED")


def test_custom_datum_undefined_with_data_is_false() -> None:
    """UNDEFINED is false once the index holds data (even an empty value list)."""
    assert check(custom("UNDEFINED"), record(CustomData(0, "x"))) is False
    assert check(custom("UNDEFINED"), record(CustomData(0))) is False


@pytest.mark.parametrize(
    ("values", "value", "outcome"),
    [
        (("premium",), "premium", True),
        (("a", "premium"), "premium", True),
        (("Premium",), "premium", False),
        (("premium ",), "premium", False),
        ((), "premium", False),
        ((5,), "5", False),
        (("x",), None, False),
    ],
)
def test_custom_datum_exact(values: tuple[Any, ...], value: Any, outcome: bool) -> None:
    """EXACT: some stored value equals the condition value exactly (case-sensitive)."""
    assert check(custom("EXACT", value), record(CustomData(0, *values))) is outcome


@pytest.mark.parametrize(
    ("values", "value", "outcome"),
    [
        (("premium",), "rem", True),
        (("basic", "xpremiumx"), "premium", True),
        (("Premium",), "prem", False),
        (("premium",), "", True),
        ((5,), "5", False),
        (("x",), None, False),
        (("abc", 5), "b", True),
    ],
)
def test_custom_datum_contains(values: tuple[Any, ...], value: Any, outcome: bool) -> None:
    """CONTAINS: the condition value is a substring of some stored value; errors are false."""
    assert check(custom("CONTAINS", value), record(CustomData(0, *values))) is outcome


@pytest.mark.parametrize(
    ("values", "pattern", "outcome"),
    [
        (("premium",), "prem.*", True),
        (("premium",), "rem", False),  # a full match is required
        (("premium",), "p.*m", True),
        (("line\nbreak",), "line.*", False),
        (("x", "abc"), "a.c", True),
        (("premium",), "(", False),  # invalid pattern
        (("premium",), None, False),
        ((5,), "5", False),
    ],
)
def test_custom_datum_regular_expression(values: tuple[Any, ...], pattern: Any, outcome: bool) -> None:
    """REGULAR_EXPRESSION: some stored value fully matches; an invalid pattern never matches."""
    assert check(custom("REGULAR_EXPRESSION", pattern), record(CustomData(0, *values))) is outcome


@pytest.mark.parametrize(
    ("operator", "values", "value", "outcome"),
    [
        ("EQUAL", ("5",), "5", True),
        ("EQUAL", ("5.0000000001",), "5", True),  # |difference| < 1e-9
        ("EQUAL", ("5.00001",), "5", False),
        ("EQUAL", (" 5 ",), "5.0", True),  # float() accepts surrounding whitespace
        ("EQUAL", ("1e3",), "1000", True),
        ("EQUAL", ("1_000",), "1000", True),
        ("EQUAL", ("nan",), "nan", False),
        ("GREATER", ("7",), "3", True),
        ("GREATER", ("3",), "3", False),
        ("GREATER", ("1", "9"), "3", True),
        ("GREATER", ("abc", "5"), "3", False),  # stops at the first unparsable value
        ("GREATER", ("5", "abc"), "3", True),
        ("GREATER", ("inf",), "1e308", True),
        ("GREATER", ("7",), "x", False),  # an unparsable condition value
        ("GREATER", ("7",), None, False),
        ("GREATER", (7,), "3", True),  # a number stored as such converts too
        ("LOWER", ("2",), "3", True),
        ("LOWER", ("3",), "3", False),
        ("LOWER", ("-inf",), "-1e308", True),
        ("LOWER", ("9", "x", "1"), "3", False),
        ("LOWER", ((),), "3", False),
    ],
)
def test_custom_datum_numeric(operator: str, values: tuple[Any, ...], value: Any, outcome: bool) -> None:
    """EQUAL / GREATER / LOWER convert with float(), in order, stopping at the first failure."""
    assert check(custom(operator, value), record(CustomData(0, *values))) is outcome


@pytest.mark.parametrize(
    ("operator", "values", "outcome"),
    [
        ("TRUE", ("true",), True),
        ("TRUE", ("x", "true"), True),
        ("TRUE", ("True",), False),
        ("TRUE", ("TRUE",), False),
        ("TRUE", ("false",), False),
        ("FALSE", ("false",), True),
        ("FALSE", ("False",), False),
        ("FALSE", ("true",), False),
    ],
)
def test_custom_datum_true_false(operator: str, values: tuple[Any, ...], outcome: bool) -> None:
    """TRUE / FALSE: some stored value is exactly "true" / "false" (lower case only)."""
    assert check(custom(operator, "ignored"), record(CustomData(0, *values))) is outcome


@pytest.mark.parametrize(
    ("stored", "outcome"),
    [
        ("a", True),
        ("true", True),  # from JSON 1 and true
        ("false", True),  # from JSON 0
        ("2.0", True),
        ("None", True),  # from JSON null
        ("1", False),
        ("0", False),
        ("2", False),
        ("1.0", False),
        ("b", False),
    ],
)
def test_custom_datum_among_values(stored: str, outcome: bool) -> None:
    """AMONG_VALUES: JSON array items as text; 1/0 (and 1.0) become "true"/"false"."""
    cond = custom("AMONG_VALUES", '["a", 1, 0, 2.0, null]')
    assert check(cond, record(CustomData(0, "zzz", stored))) is outcome


@pytest.mark.parametrize(
    ("value", "stored", "outcome"),
    [
        ("[1.0]", "true", True),
        ("[true]", "true", True),
        ("[false]", "false", True),
        ("[0.0]", "false", True),
        ("[3]", "3", True),
        ("[1e400]", "inf", True),
        ('["x"]', "x", True),
        ("not json", "x", False),
        (None, "None", False),
        ("[", "x", False),
        ("[[1]]", "[1]", False),  # an unhashable item: an error, hence false
        ("5", "5", False),  # not an array
    ],
)
def test_custom_datum_among_values_edges(value: Any, stored: str, outcome: bool) -> None:
    """AMONG_VALUES conversions and failures (invalid JSON and other errors are false)."""
    assert check(custom("AMONG_VALUES", value), record(CustomData(0, stored))) is outcome


def test_custom_datum_any_is_always_true() -> None:
    """ANY behaves like an unknown condition: true, even without a visitor."""
    assert check(custom("ANY", "x"), None) is True
    assert check(custom("ANY", "x"), record(CustomData(0, "y"))) is True


@pytest.mark.parametrize("index", ["abc", "", "-", "1.0", None])
def test_custom_datum_non_numeric_index_never_has_data(index: Any) -> None:
    """A non-numeric ``customDataIndex`` reads a slot that holds nothing (-1)."""
    visitor = record(CustomData(0, "x"), CustomData(1, "x"))
    assert check(custom("EXACT", "x", index=index), visitor) is False
    assert check(custom("UNDEFINED", index=index), visitor) is True


def test_custom_datum_reads_integer_indexes_only() -> None:
    """CustomData("1", ...) is stored under a string key, invisible to index "1"."""
    visitor = record(CustomData("1", "x"))
    assert check(custom("EXACT", "x", index="1"), visitor) is False
    assert check(custom("UNDEFINED", index="1"), visitor) is True


def test_custom_datum_last_add_replaces() -> None:
    """A new CustomData for an index replaces the previous values."""
    visitor = record(CustomData(0, "a"), CustomData(0, "b"))
    assert check(custom("EXACT", "a"), visitor) is False
    assert check(custom("EXACT", "b"), visitor) is True


@pytest.mark.parametrize("index", [0, 1.0, [0], {"i": 0}, True])
def test_custom_datum_non_string_index_is_a_config_error(index: Any) -> None:
    """A ``customDataIndex`` that is not a string is a configuration error."""
    with pytest.raises(ConfigError):
        compile_condition(custom("EXACT", "x", index=index), Lookups())


@pytest.mark.parametrize("operator", [None, "exact", "BETWEEN", "", 5])
def test_custom_datum_unknown_operator_is_a_config_error(operator: Any) -> None:
    """A missing or unknown ``valueMatchType`` (names are case-sensitive) is a configuration error."""
    cond = {"targetingType": "CUSTOM_DATUM", "customDataIndex": "0", "value": "x"}
    if operator is not None:
        cond["valueMatchType"] = operator
    with pytest.raises(ConfigError):
        compile_condition(cond, Lookups())


# -- conditions needing the configuration's indexes ---------------------------------------------
def assign(visitor: Visitor, experiment_id: Any, variation_id: Any) -> Visitor:
    assigned = visitor.assigned if visitor.assigned is not None else {}
    assigned[experiment_id] = (variation_id, "EXPERIMENTATION", time.time(), len(assigned), -1, None)
    visitor.assigned = assigned
    return visitor


TARGETED = document(
    flag(
        "target",
        flag_id=77,
        rules=[
            rule(10, experiment_id=100, entries=[entry("on", 1000, 0.5), entry("off", 1001, 0.5)]),
            rule(20, experiment_id=200, entries=[entry("on", 2000, 1.0)]),
        ],
    ),
    flag(
        "probe",
        flag_id=78,
        rules=[rule(30, experiment_id=300, seg=segment(9000, {"targetingType": "UNKNOWN"}))],
    ),
)


def target_check(visitor: Visitor | None, **fields: Any) -> bool:
    doc = dict(TARGETED)
    cond = {"targetingType": "TARGET_FEATURE_FLAG", "featureFlagId": 77, **fields}
    doc["featureFlags"] = [
        *TARGETED["featureFlags"],
        flag("x", flag_id=79, rules=[rule(40, seg=segment(9001, cond))]),
    ]
    config = parse_configuration(doc)
    seg = config.flags["x"].rules[0].segment
    assert seg is not None
    return bool(seg.check(visitor, "v", 0))


def test_target_feature_flag_needs_assignments() -> None:
    """No visitor, or a visitor without assignments: false."""
    assert target_check(None) is False
    assert target_check(record()) is False


def test_target_feature_flag_any_variation() -> None:
    """An assignment for any rule's experiment of the flag is enough without variationKey/ruleId."""
    assert target_check(assign(record(), 200, 2000)) is True
    assert target_check(assign(record(), 300, 1)) is False  # another flag's experiment


def test_target_feature_flag_unknown_flag() -> None:
    """An unknown ``featureFlagId`` is false."""
    assert target_check(assign(record(), 100, 1000), featureFlagId=12345) is False


def test_target_feature_flag_variation_key() -> None:
    """``variationKey`` compares the key of the assigned variation id (variation-id index)."""
    visitor = assign(record(), 100, 1001)
    assert target_check(visitor, variationKey="off") is True
    assert target_check(visitor, variationKey="on") is False
    assert target_check(assign(record(), 100, 99999), variationKey="on") is False  # unknown variation id


def test_target_feature_flag_rule_id() -> None:
    """``ruleId`` restricts the check to that rule's experiment."""
    visitor = assign(record(), 200, 2000)
    assert target_check(visitor, ruleId=20) is True
    assert target_check(visitor, ruleId=10) is False
    assert target_check(visitor, ruleId=None, variationKey="on") is True


def exclusive(visitor: Visitor | None, experiment_id: Any) -> bool:
    return check({"targetingType": "EXCLUSIVE_FEATURE_FLAG"}, visitor, experiment_id=experiment_id)


def test_exclusive_feature_flag() -> None:
    """True with no assignment at all, or exactly one for the current rule's experiment."""
    assert exclusive(None, 5) is True
    assert exclusive(record(), 5) is True
    assert exclusive(assign(record(), 5, 50), 5) is True
    assert exclusive(assign(record(), 6, 60), 5) is False
    assert exclusive(assign(assign(record(), 5, 50), 6, 60), 5) is False


def segment_config(*conds: dict[str, Any], extra_rules: list[dict[str, Any]] | None = None) -> Any:
    rules = [rule(1, seg=segment(500, *conds)), *(extra_rules or [])]
    return parse_configuration(document(flag("f", rules=rules)))


def test_segment_condition_reuses_another_rules_segment() -> None:
    """SEGMENT evaluates the segment attached to another rule, for the same visitor."""
    config = segment_config(
        {"targetingType": "SEGMENT", "segmentId": 600},
        extra_rules=[rule(2, seg=segment(600, custom("EXACT", "premium")))],
    )
    seg = config.flags["f"].rules[0].segment
    assert seg.check(record(CustomData(0, "premium")), "v", 0) is True
    assert seg.check(record(CustomData(0, "basic")), "v", 0) is False
    assert seg.check(None, "v", 0) is False


def test_segment_condition_unknown_segment() -> None:
    """An unknown segment id (or one whose rule has no segment) is false."""
    seg = segment_config({"targetingType": "SEGMENT", "segmentId": 12345}).flags["f"].rules[0].segment
    assert seg.check(record(), "v", 0) is False
    seg = segment_config({"targetingType": "SEGMENT", "segmentId": -1}, extra_rules=[rule(2)])
    assert seg.flags["f"].rules[0].segment.check(record(), "v", 0) is False


def test_segment_condition_referring_to_itself_does_not_raise() -> None:
    """A segment referring to itself is false here (the reference recursed without end)."""
    seg = segment_config({"targetingType": "SEGMENT", "segmentId": 500}).flags["f"].rules[0].segment
    assert seg.check(record(), "v", 0) is False


def _nested(depth: int, call: Any) -> Any:
    return call() if depth == 0 else _nested(depth - 1, call)


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_a_self_reference_is_false_at_the_reference_whatever_the_stack(depth: int) -> None:
    """Where a segment comes back to one being evaluated, that SEGMENT condition is false; the
    conditions around it (here an exclusion) apply as usual, and the answer does not depend on
    the caller's stack depth (catching RecursionError alone flipped it with the depth)."""
    excluded = {"targetingType": "SEGMENT", "segmentId": 500, "isInclude": False}
    seg = segment_config(excluded).flags["f"].rules[0].segment
    # 500 -> not 500 (evaluates 500 -> not 500: refers back, false -> true) -> not true: false
    assert _nested(depth, lambda: seg.check(record(), "v", 0)) is False
    cycle = segment_config(
        {"targetingType": "SEGMENT", "segmentId": 600},
        extra_rules=[
            rule(2, seg=segment(600, {"targetingType": "SEGMENT", "segmentId": 500, "isInclude": False}))
        ],
    )
    # 500 -> 600 -> not 500 (refers back: false, so "not" gives true) -> 600 true -> 500 true
    assert _nested(depth, lambda: cycle.flags["f"].rules[0].segment.check(record(), "v", 0)) is True


# -- static data ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("device", "stored", "outcome"),
    [
        ("DESKTOP", DeviceType.DESKTOP, True),
        ("desktop", DeviceType.DESKTOP, True),
        ("Phone", DeviceType.PHONE, True),
        ("PHONE", DeviceType.TABLET, False),
        ("WATCH", DeviceType.PHONE, False),
        (None, DeviceType.PHONE, False),
    ],
)
def test_device_type(device: Any, stored: DeviceType, outcome: bool) -> None:
    """DEVICE_TYPE: equality with the stored device; names are case-insensitive."""
    cond = {"targetingType": "DEVICE_TYPE", "device": device}
    assert check(cond, record(Device(stored))) is outcome
    assert check(cond, EMPTY) is False
    assert check(cond, None) is False


@pytest.mark.parametrize(
    ("name", "stored", "outcome"),
    [
        ("WINDOWS", OperatingSystemType.WINDOWS, True),
        ("WINDOWS_PHONE", OperatingSystemType.WINDOWS_PHONE, True),
        ("ANDROID", OperatingSystemType.ANDROID, True),
        ("windows", OperatingSystemType.WINDOWS, False),  # case-sensitive
        ("MAC", OperatingSystemType.IOS, False),
        ("BEOS", OperatingSystemType.LINUX, False),
    ],
)
def test_operating_system(name: str, stored: OperatingSystemType, outcome: bool) -> None:
    """OPERATING_SYSTEM: exact (case-sensitive) name equality with the stored system."""
    cond = {"targetingType": "OPERATING_SYSTEM", "os": name}
    assert check(cond, record(OperatingSystem(stored))) is outcome
    assert check(cond, EMPTY) is False


def browser(name: Any, version: Any = None, operator: Any = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"targetingType": "BROWSER", "browser": name}
    if version is not None:
        cond["version"] = version
    if operator is not None:
        cond["versionMatchType"] = operator
    return cond


@pytest.mark.parametrize(
    ("cond", "stored", "outcome"),
    [
        (browser("CHROME"), Browser(BrowserType.CHROME, 120.0), True),
        (browser("CHROME"), Browser(BrowserType.CHROME), True),
        (browser("CHROME"), Browser(BrowserType.FIREFOX, 120.0), False),
        (browser("chrome"), Browser(BrowserType.CHROME), False),  # case-sensitive names
        (browser("IE"), Browser(BrowserType.INTERNET_EXPLORER), True),  # alias
        (browser("INTERNET_EXPLORER"), Browser(BrowserType.INTERNET_EXPLORER), True),
        (browser("NETSCAPE"), Browser(BrowserType.OTHER), False),
        (browser("CHROME", "100", "GREATER"), Browser(BrowserType.CHROME, 120.0), True),
        (browser("CHROME", "120", "GREATER"), Browser(BrowserType.CHROME, 120.0), False),
        (browser("CHROME", "120", "EQUAL"), Browser(BrowserType.CHROME, 120.0), True),
        (browser("CHROME", "120.0.7", "EQUAL"), Browser(BrowserType.CHROME, 120.0), True),  # major.minor only
        (browser("SAFARI", "10.15", "EQUAL"), Browser(BrowserType.SAFARI, 10.15), True),
        (browser("SAFARI", "11.0.5", "EQUAL"), Browser(BrowserType.SAFARI, 11.0), True),
        (browser("SAFARI", "11", "LOWER"), Browser(BrowserType.SAFARI, 10.15), True),
        (browser("SAFARI", 10, "GREATER"), Browser(BrowserType.SAFARI, 10.5), True),  # a JSON number
        (browser("SAFARI", "x.1", "EQUAL"), Browser(BrowserType.SAFARI, 10.0), False),  # unparsable
        (browser("SAFARI", "", "EQUAL"), Browser(BrowserType.SAFARI, 10.0), False),
        (browser("SAFARI", "10.1.x", "EQUAL"), Browser(BrowserType.SAFARI, 10.1), False),
        (browser("SAFARI", "10.1.2.x", "EQUAL"), Browser(BrowserType.SAFARI, 10.1), True),  # 4th part ignored
        (browser("OPERA", "1", "LOWER"), Browser(BrowserType.OPERA), True),  # no version = -1
        (browser("OPERA", "1", "LOWER"), Browser(BrowserType.OPERA, 0), True),  # 0 = -1 as well
        (browser("OPERA", "0", "GREATER"), Browser(BrowserType.OPERA, 0.0), False),
        (browser("OPERA", "-1", "EQUAL"), Browser(BrowserType.OPERA), True),
        (browser("OPERA", "1", "BETWEEN"), Browser(BrowserType.OPERA, 5.0), False),
        (browser("OPERA", "1"), Browser(BrowserType.OPERA, 5.0), False),  # version without operator
    ],
)
def test_browser(cond: dict[str, Any], stored: Browser, outcome: bool) -> None:
    """BROWSER: type equality, then the version as major.minor against the stored version."""
    assert check(cond, record(stored)) is outcome
    assert check(cond, EMPTY) is False
    assert check(cond, None) is False


@pytest.mark.parametrize(
    ("cond", "outcome"),
    [
        ({"country": "France"}, True),
        ({"country": "FRANCE"}, True),
        ({"country": "france", "region": "île-de-france"}, True),
        ({"country": "France", "region": "Île-de-France", "city": "PARIS"}, True),
        ({"country": "France", "city": "Lyon"}, False),
        ({"country": "Spain"}, False),
        ({"country": None, "region": "Île-de-France"}, False),
        ({"region": "Île-de-France"}, False),
        ({"country": "France", "region": None, "city": None}, True),
    ],
)
def test_geolocation(cond: dict[str, Any], outcome: bool) -> None:
    """GEOLOCATION: case-insensitive country, then region and city when the condition has them."""
    stored = Geolocation("France", "Île-de-France", "Paris")
    full = {"targetingType": "GEOLOCATION", **cond}
    assert check(full, record(stored)) is outcome
    assert check(full, EMPTY) is False


def test_geolocation_stored_null_never_equals_a_value() -> None:
    """A stored null region does not equal a condition region."""
    cond = {"targetingType": "GEOLOCATION", "country": "France", "region": "IDF"}
    assert check(cond, record(Geolocation("France"))) is False


def cookie(name: Any, name_op: Any, value: Any, value_op: Any) -> dict[str, Any]:
    cond: dict[str, Any] = {"targetingType": "COOKIE"}
    for key, item in (
        ("name", name),
        ("nameMatchType", name_op),
        ("value", value),
        ("valueMatchType", value_op),
    ):
        if item is not None:
            cond[key] = item
    return cond


JAR = {"optout": "1", "optout_v2": "yes", "session": "abc123", "None": "literal"}


@pytest.mark.parametrize(
    ("cond", "outcome"),
    [
        (cookie("optout", "EXACT", "1", "EXACT"), True),
        (cookie("optout", "EXACT", "yes", "EXACT"), False),  # only that exact key
        (cookie("optout", "CONTAINS", "yes", "EXACT"), True),  # keys containing "optout"
        (cookie("opt.*", "REGULAR_EXPRESSION", "yes", "EXACT"), True),
        (cookie("opt", "REGULAR_EXPRESSION", "1", "EXACT"), False),  # full match of the name
        (cookie("session", "EXACT", "abc", "CONTAINS"), True),
        (cookie("session", "EXACT", "[a-c]+[0-9]+", "REGULAR_EXPRESSION"), True),
        (cookie("session", "EXACT", "abc", "REGULAR_EXPRESSION"), False),
        (cookie("session", "EXACT", "abc123", "EQUAL"), False),  # other value operators
        (cookie("session", "EQUAL", "abc123", "EXACT"), False),  # other name operators: no candidates
        (cookie("absent", "EXACT", "1", "EXACT"), False),
        (cookie(None, "EXACT", "literal", "EXACT"), True),  # an absent name is the text "None"
        (cookie("None", "EXACT", None, "EXACT"), False),
        (cookie("session", None, "abc123", "EXACT"), False),  # missing name operator
    ],
)
def test_cookie(cond: dict[str, Any], outcome: bool) -> None:
    """COOKIE: candidates selected by name operator, then matched by value operator."""
    full = {**cond}
    assert check(full, record(Cookie(JAR))) is outcome
    assert check(full, EMPTY) is False


def test_cookie_uses_the_last_cookie_data_only() -> None:
    """A later Cookie replaces the whole dict."""
    visitor = record(Cookie({"a": "1"}), Cookie({"b": "2"}))
    assert check(cookie("a", "EXACT", "1", "EXACT"), visitor) is False
    assert check(cookie("b", "EXACT", "2", "EXACT"), visitor) is True


# -- pages ----------------------------------------------------------------------------------------
def pages(*entries: tuple[str, str | None, float], repeat: dict[str, int] | None = None) -> Visitor:
    """A record with page views added at the given timestamps (ms)."""
    visitor = record()
    for url, title, seen in entries:
        add_page(visitor, PageView(url, title), 1, seen, True)
    for url, count in (repeat or {}).items():
        for _ in range(count):
            add_page(visitor, PageView(url, "again"), 1, 0.0, True)
    return visitor


SHOP = pages(("https://x.com/shop/a", "Shop A", 1.0), ("https://x.com/cart", None, 2.0))


@pytest.mark.parametrize(
    ("url", "operator", "outcome"),
    [
        ("https://x.com/shop/a", "EXACT", True),
        ("https://x.com/shop", "EXACT", False),
        ("/shop", "CONTAINS", True),
        ("/cart", "CONTAINS", True),
        ("/checkout", "CONTAINS", False),
        ("https://x\\.com/c.*", "REGULAR_EXPRESSION", True),
        ("/cart", "REGULAR_EXPRESSION", False),
        ("(", "REGULAR_EXPRESSION", False),
        ("/shop", "STARTS_WITH", False),
        (None, "CONTAINS", False),
    ],
)
def test_page_url(url: Any, operator: str, outcome: bool) -> None:
    """PAGE_URL: EXACT looks for that exact stored URL, CONTAINS/regex for any stored URL."""
    cond = {"targetingType": "PAGE_URL", "url": url, "matchType": operator}
    assert check(cond, SHOP) is outcome
    assert check(cond, EMPTY) is False
    assert check(cond, None) is False


@pytest.mark.parametrize(
    ("title", "operator", "outcome"),
    [
        ("Shop A", "EXACT", True),
        ("shop a", "EXACT", False),
        ("Shop", "CONTAINS", True),
        ("S.* A", "REGULAR_EXPRESSION", True),
        ("Shop", "REGULAR_EXPRESSION", False),
        ("None", "EXACT", False),  # a null title matches nothing
    ],
)
def test_page_title(title: str, operator: str, outcome: bool) -> None:
    """PAGE_TITLE: any stored page with a non-null title matching the condition."""
    cond = {"targetingType": "PAGE_TITLE", "title": title, "matchType": operator}
    assert check(cond, SHOP) is outcome
    assert check(cond, EMPTY) is False


def test_page_title_uses_the_latest_title_of_a_url() -> None:
    """Re-adding a URL replaces its page (and title)."""
    visitor = record(PageView("https://x", "Old"), PageView("https://x", "New"))
    assert check({"targetingType": "PAGE_TITLE", "title": "Old", "matchType": "EXACT"}, visitor) is False
    assert check({"targetingType": "PAGE_TITLE", "title": "New", "matchType": "EXACT"}, visitor) is True


def previous(url: str, visitor: Visitor | None, operator: str = "EXACT") -> bool:
    return check({"targetingType": "PREVIOUS_PAGE", "url": url, "matchType": operator}, visitor)


def test_previous_page_is_the_second_most_recent() -> None:
    """PREVIOUS_PAGE: the entry with the second-highest first-seen timestamp."""
    visitor = pages(("/a", None, 10.0), ("/b", None, 30.0), ("/c", None, 20.0))
    assert previous("/c", visitor) is True
    assert previous("/b", visitor) is False
    assert previous("/a", visitor) is False
    assert previous("/c", visitor, "CONTAINS") is True


def test_previous_page_needs_two_pages() -> None:
    """With fewer than two URLs there is no previous page."""
    assert previous("/a", pages(("/a", None, 10.0))) is False
    assert previous("/a", EMPTY) is False
    assert previous("/a", None) is False


def test_previous_page_tie_goes_to_the_later_inserted_url() -> None:
    """With equal timestamps the later-inserted URL is the previous page."""
    visitor = pages(("/a", None, 5.0), ("/b", None, 5.0))
    assert previous("/b", visitor) is True
    assert previous("/a", visitor) is False
    visitor = pages(("/a", None, 5.0), ("/b", None, 5.0), ("/c", None, 5.0))
    assert previous("/b", visitor) is True  # /c does not replace /b: it is not strictly greater
    visitor = pages(("/a", None, 9.0), ("/b", None, 5.0), ("/c", None, 5.0))
    assert previous("/b", visitor) is True  # /c is not strictly greater than /b


def test_previous_page_timestamp_is_the_first_add() -> None:
    """Re-adding a URL does not refresh its timestamp."""
    visitor = record()
    add_page(visitor, PageView("/a", None), 1, 10.0, True)
    add_page(visitor, PageView("/b", None), 1, 20.0, True)
    add_page(visitor, PageView("/a", None), 1, 30.0, True)  # same URL again, later
    assert previous("/a", visitor) is True


def views(count: Any, operator: str, visitor: Visitor | None) -> bool:
    return check({"targetingType": "PAGE_VIEWS", "pageCount": count, "matchType": operator}, visitor)


def test_page_views_counts_every_add() -> None:
    """PAGE_VIEWS sums the views of every URL (each add of a URL counts one)."""
    visitor = record(PageView("/a", None), PageView("/a", None), PageView("/b", None))
    assert views(3, "EQUAL", visitor) is True
    assert views(2, "GREATER", visitor) is True
    assert views(3, "GREATER", visitor) is False
    assert views(4, "LOWER", visitor) is True
    assert views(3, "LOWER", visitor) is False


def test_page_views_existing_visitor_without_pages_counts_zero() -> None:
    """A visitor without pages has a count of 0; no visitor at all is false."""
    assert views(0, "EQUAL", EMPTY) is True
    assert views(1, "LOWER", EMPTY) is True
    assert views(0, "EQUAL", None) is False
    assert views(1, "LOWER", None) is False


def test_page_views_null_count_and_other_operators() -> None:
    """A null ``pageCount`` or an unknown operator is false."""
    visitor = record(PageView("/a", None))
    assert views(None, "EQUAL", visitor) is False
    assert views(1, "CONTAINS", visitor) is False
    assert views("1", "GREATER", visitor) is False  # a string count is not converted


def test_page_view_with_empty_url_is_ignored() -> None:
    """An empty URL is not stored (and so not counted)."""
    assert views(0, "EQUAL", record(PageView("", "t"))) is True


# -- conversions, visitor code, SDK -----------------------------------------------------------------
def test_conversions() -> None:
    """CONVERSIONS: any conversion without goalId; otherwise one with exactly that goal id."""
    visitor = record(Conversion(5), Conversion(7, 2.0))
    assert check({"targetingType": "CONVERSIONS"}, visitor) is True
    assert check({"targetingType": "CONVERSIONS", "goalId": 7}, visitor) is True
    assert check({"targetingType": "CONVERSIONS", "goalId": 8}, visitor) is False
    assert check({"targetingType": "CONVERSIONS", "goalId": "5"}, visitor) is False  # type-sensitive
    assert check({"targetingType": "CONVERSIONS"}, EMPTY) is False
    assert check({"targetingType": "CONVERSIONS"}, None) is False
    assert check({"targetingType": "CONVERSIONS", "goalId": -1}, visitor) is True


@pytest.mark.parametrize(
    ("expected", "operator", "outcome"),
    [
        ("visitor-42", "EXACT", True),
        ("visitor", "EXACT", False),
        ("tor-4", "CONTAINS", True),
        ("tor-5", "CONTAINS", False),
        ("visitor-\\d+", "REGULAR_EXPRESSION", True),
        ("visitor", "REGULAR_EXPRESSION", False),
        (None, "EXACT", False),
        ("visitor-42", "EQUAL", False),
    ],
)
def test_visitor_code(expected: Any, operator: str, outcome: bool) -> None:
    """VISITOR_CODE tests the visitor code argument, with or without a record."""
    cond = {"targetingType": "VISITOR_CODE", "visitorCode": expected, "matchType": operator}
    assert check(cond, None, code="visitor-42") is outcome
    assert check(cond, EMPTY, code="visitor-42") is outcome


def test_visitor_code_ignores_the_mapping_identifier() -> None:
    """VISITOR_CODE looks at the code argument, not at the mapping identifier."""
    visitor = record()
    visitor.extras().mapping = "anon-1"
    cond = {"targetingType": "VISITOR_CODE", "visitorCode": "anon-1", "matchType": "EXACT"}
    assert check(cond, visitor, code="crm-1") is False


@pytest.mark.parametrize(
    ("cond", "outcome"),
    [
        ({"sdkLanguage": "PYTHON"}, True),
        ({"sdkLanguage": "python"}, False),
        ({"sdkLanguage": "JAVA"}, False),
        ({"sdkLanguage": "PYTHON", "version": "3.4.0", "versionMatchType": "EQUAL"}, True),
        ({"sdkLanguage": "PYTHON", "version": "3.4", "versionMatchType": "EQUAL"}, True),
        ({"sdkLanguage": "PYTHON", "version": "3.4.0.7", "versionMatchType": "EQUAL"}, True),
        ({"sdkLanguage": "PYTHON", "version": "3.4.1", "versionMatchType": "EQUAL"}, False),
        ({"sdkLanguage": "PYTHON", "version": "3.0.0", "versionMatchType": "GREATER"}, True),
        ({"sdkLanguage": "PYTHON", "version": "3.3.9", "versionMatchType": "GREATER"}, True),
        ({"sdkLanguage": "PYTHON", "version": "3.4.0", "versionMatchType": "GREATER"}, False),
        ({"sdkLanguage": "PYTHON", "version": "3.10", "versionMatchType": "GREATER"}, False),
        ({"sdkLanguage": "PYTHON", "version": "3.10", "versionMatchType": "LOWER"}, True),
        ({"sdkLanguage": "PYTHON", "version": "3.4.0", "versionMatchType": "LOWER"}, False),
        ({"sdkLanguage": "PYTHON", "version": "4", "versionMatchType": "LOWER"}, True),
        ({"sdkLanguage": "PYTHON", "version": "3.x", "versionMatchType": "EQUAL"}, False),
        ({"sdkLanguage": "PYTHON", "version": "3.4.0", "versionMatchType": "CONTAINS"}, False),
        ({"sdkLanguage": "PYTHON", "version": "3.4.0"}, False),
    ],
)
def test_sdk_language(cond: dict[str, Any], outcome: bool) -> None:
    """SDK_LANGUAGE: name PYTHON, version 3.4.0 compared as a (major, minor, patch) triple."""
    full = {"targetingType": "SDK_LANGUAGE", **cond}
    assert check(full, None) is outcome
    assert check(full, EMPTY) is outcome


# -- visits -----------------------------------------------------------------------------------------
def with_visits(*started_ms: float) -> Visitor:
    visitor = record()
    visitor.extras().visits = tuple(started_ms)
    return visitor


@pytest.mark.parametrize(
    ("count", "operator", "visits", "outcome"),
    [
        (1, "EQUAL", None, True),  # no visitor: the current visit only
        (1, "EQUAL", (), True),
        (3, "EQUAL", (1.0, 2.0), True),
        (2, "GREATER", (1.0, 2.0), True),
        (3, "GREATER", (1.0, 2.0), False),
        (4, "LOWER", (1.0, 2.0), True),
        (None, "EQUAL", (), False),
        (1, "CONTAINS", (), False),
    ],
)
def test_visits(count: Any, operator: str, visits: tuple[float, ...] | None, outcome: bool) -> None:
    """VISITS: previous visits + 1 compared with ``visitCount``."""
    visitor = None if visits is None else with_visits(*visits)
    assert check({"targetingType": "VISITS", "visitCount": count, "matchType": operator}, visitor) is outcome


def test_same_day_visits(monkeypatch: pytest.MonkeyPatch) -> None:
    """SAME_DAY_VISITS counts previous visits in stored order until the first one before today."""
    today = 1_000_000_000.0
    monkeypatch.setattr(conditions.activity, "_start_of_today_ms", lambda: today)
    visitor = with_visits(today + 5000, today, today - 1, today + 10)

    def same_day(count: Any, operator: str, who: Visitor | None) -> bool:
        return check({"targetingType": "SAME_DAY_VISITS", "visitCount": count, "matchType": operator}, who)

    assert same_day(3, "EQUAL", visitor) is True  # two of today, then a stop, + the current visit
    assert same_day(2, "GREATER", visitor) is True
    assert same_day(3, "LOWER", visitor) is False
    assert same_day(1, "EQUAL", None) is True
    assert same_day(1, "EQUAL", with_visits(today - 1, today + 1)) is True
    assert same_day(None, "EQUAL", visitor) is False


def test_start_of_today_is_local_midnight() -> None:
    """The day starts at local midnight of the machine running the SDK."""
    import datetime as dt

    def midnight_ms() -> float:
        return dt.datetime.combine(dt.date.today(), dt.time()).timestamp() * 1000

    before = midnight_ms()
    value = conditions.activity._start_of_today_ms()
    assert value in (before, midnight_ms())


@pytest.mark.parametrize(
    ("kind", "millis", "operator", "outcome"),
    [
        ("FIRST_VISIT", 60_000, "EQUAL", True),  # now - oldest (last in the list)
        ("FIRST_VISIT", 59_999, "GREATER", True),
        ("FIRST_VISIT", 60_000, "GREATER", False),
        ("FIRST_VISIT", 60_001, "LOWER", True),
        ("LAST_VISIT", 1_000, "EQUAL", True),  # now - newest (first in the list)
        ("LAST_VISIT", 1_000, "LOWER", False),
        ("LAST_VISIT", 500, "GREATER", True),
        ("LAST_VISIT", None, "GREATER", False),
        ("LAST_VISIT", 500, "AMONG_VALUES", False),
    ],
)
def test_first_and_last_visit(
    monkeypatch: pytest.MonkeyPatch, kind: str, millis: Any, operator: str, outcome: bool
) -> None:
    """FIRST_VISIT / LAST_VISIT: elapsed milliseconds since the oldest / newest previous visit."""
    now = 2_000_000.0
    monkeypatch.setattr(conditions.activity.time, "time", lambda: now / 1000)
    visitor = with_visits(now - 1_000, now - 30_000, now - 60_000)
    cond = {"targetingType": kind, "countInMillis": millis, "matchType": operator}
    assert check(cond, visitor) is outcome


@pytest.mark.parametrize("kind", ["FIRST_VISIT", "LAST_VISIT"])
def test_first_and_last_visit_need_previous_visits(kind: str) -> None:
    """Without previous visits (or without a visitor) both are false."""
    cond = {"targetingType": kind, "countInMillis": 0, "matchType": "GREATER"}
    assert check(cond, with_visits()) is False
    assert check(cond, EMPTY) is False
    assert check(cond, None) is False


@pytest.mark.parametrize(
    ("kind", "visits", "outcome"),
    [
        ("NEW", (), True),
        ("new", (), True),
        ("NEW", (1.0,), False),
        ("RETURNING", (1.0,), True),
        ("Returning", (1.0, 2.0), True),
        ("RETURNING", (), False),
        ("OTHER", (), False),
        (None, (1.0,), False),
    ],
)
def test_new_visitors(kind: Any, visits: tuple[float, ...], outcome: bool) -> None:
    """NEW_VISITORS: NEW without previous visits, RETURNING with at least one (case-insensitive)."""
    assert check({"targetingType": "NEW_VISITORS", "visitorType": kind}, with_visits(*visits)) is outcome


def test_new_visitors_without_a_visitor() -> None:
    """Without a visitor record the visitor is new."""
    assert check({"targetingType": "NEW_VISITORS", "visitorType": "NEW"}, None) is True
    assert check({"targetingType": "NEW_VISITORS", "visitorType": "RETURNING"}, None) is False


# -- KCS heat ---------------------------------------------------------------------------------------
def heat(**fields: Any) -> dict[str, Any]:
    return {
        "targetingType": "HEAT_SLICE",
        "goalId": 7,
        "keyMomentId": 3,
        "lowerBound": 10,
        "upperBound": 20,
        **fields,
    }


@pytest.mark.parametrize(
    ("cond", "score", "outcome"),
    [
        (heat(), 15, True),
        (heat(), 10, True),  # inclusive bounds
        (heat(), 20, True),
        (heat(), 20.5, False),
        (heat(), 9.99, False),
        (heat(goalId=8), 15, False),
        (heat(keyMomentId=4), 15, False),
        (heat(), "15", False),  # a non-numeric score
        (heat(), True, False),
        (heat(lowerBound=None), 15, False),  # missing lower bound -> 101
        (heat(upperBound="x"), 15, False),  # non-numeric upper bound -> -1
    ],
)
def test_heat_slice(cond: dict[str, Any], score: Any, outcome: bool) -> None:
    """HEAT_SLICE: the score of (key moment, goal) must lie in [lowerBound, upperBound]."""
    visitor = record()
    visitor.extras().kcs = {3: {7: score}}
    assert check(cond, visitor) is outcome


def test_heat_slice_without_data() -> None:
    """Without KCS heat data the condition is false."""
    assert check(heat(), EMPTY) is False
    assert check(heat(), None) is False


# -- unknown conditions, isInclude, interning ---------------------------------------------------
@pytest.mark.parametrize(
    "cond",
    [
        {"targetingType": "EXPLICIT_TRIGGER"},
        {"targetingType": "UNKNOWN"},
        {"targetingType": "SOMETHING_NEW", "x": 1},
        {"targetingType": "custom_datum"},  # names are case-sensitive
        {},
        {"targetingType": None},
        {"targetingType": 5},
    ],
)
def test_unknown_conditions_are_true(cond: dict[str, Any]) -> None:
    """Unknown, unsupported or missing types are always true (before isInclude)."""
    assert check(cond, None) is True
    assert check(cond, EMPTY) is True


@pytest.mark.parametrize(
    ("is_include", "include"),
    [(True, True), (False, False), (None, True), (0, True), ("false", True), ([], True)],
)
def test_is_include_only_explicit_false_excludes(is_include: Any, include: bool) -> None:
    """Only a JSON ``false`` makes a condition an exclusion."""
    leaf = compile_condition({"targetingType": "UNKNOWN", "isInclude": is_include}, Lookups())
    assert leaf.include is include


def test_is_include_defaults_to_inclusion() -> None:
    """A condition without ``isInclude`` includes."""
    assert compile_condition({"targetingType": "UNKNOWN"}, Lookups()).include is True


def test_identical_conditions_share_one_fact() -> None:
    """Identical conditions (isInclude aside) compile once and share a memo slot."""
    lookups = Lookups()
    a = compile_condition({**custom("EXACT", "x"), "isInclude": True}, lookups)
    b = compile_condition({**custom("EXACT", "x"), "isInclude": False}, lookups)
    c = compile_condition(custom("EXACT", "y"), lookups)
    assert a.fact == b.fact != c.fact
    assert a.check is b.check
    assert (a.include, b.include) == (True, False)
    assert lookups.fact_count == 2


@pytest.mark.parametrize("kind", ["SEGMENT", "EXCLUSIVE_FEATURE_FLAG"])
def test_contextual_conditions_are_not_memoized(kind: str) -> None:
    """Conditions depending on the rule being evaluated get no memo slot."""
    assert compile_condition({"targetingType": kind}, Lookups()).fact is None


@pytest.mark.parametrize("cond", [None, "CUSTOM_DATUM", 5, ["x"]])
def test_a_condition_must_be_an_object(cond: Any) -> None:
    """A condition that is not a JSON object is a configuration error."""
    with pytest.raises(ConfigError):
        compile_condition(cond, Lookups())


def test_unhashable_flag_or_segment_ids_match_nothing() -> None:
    """A list or object as featureFlagId / segmentId matches nothing (and never raises)."""
    visitor = assign(record(), 100, 1000)
    assert target_check(visitor, featureFlagId=[77]) is False
    assert target_check(visitor, featureFlagId={"id": 77}) is False
    seg = segment_config({"targetingType": "SEGMENT", "segmentId": [500]}).flags["f"].rules[0].segment
    assert seg.check(visitor, "v", 0) is False


def test_kcs_heat_does_not_hide_other_data() -> None:
    """KCS heat does not hide a visitor's other data (the reference's lookup quirk is not kept)."""
    visitor = record()
    visitor.extras().kcs = {1: {2: 50}}
    assert check({"targetingType": "VISITOR_CODE", "visitorCode": "v", "matchType": "EXACT"}, visitor) is True
    assert check({"targetingType": "SDK_LANGUAGE", "sdkLanguage": "PYTHON"}, visitor) is True
    assert exclusive(visitor, 5) is True
