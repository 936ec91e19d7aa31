"""Tracking lines built from visitor data (protocol spec §1.4, §5.2-§5.3)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kameleoon._wire import lines
from kameleoon._wire.encoding import encode, query
from kameleoon.data import BrowserType, DeviceType, Geolocation, OperatingSystemType


# -- encoding -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("AZaz09_.-~()*!'", "AZaz09_.-~()*!'"),
        (" ", "%20"),
        ("/:?&=+,;", "%2F%3A%3F%26%3D%2B%2C%3B"),
        ('"{}[]', "%22%7B%7D%5B%5D"),
        ("#%@$^|\\<>`", "%23%25%40%24%5E%7C%5C%3C%3E%60"),
        ("é", "%C3%A9"),
        ("Île", "%C3%8Ele"),
        ("😀", "%F0%9F%98%80"),
        ("\n\t", "%0A%09"),
        ("", ""),
    ],
)
def test_encode_like_encode_uri_component(text: str, encoded: str) -> None:
    """Percent-encoding of UTF-8 with upper-case hex; only A-Z a-z 0-9 _ . - ~ ( ) * ! ' are kept."""
    assert encode(text) == encoded


def _without_lone_surrogates(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


@given(st.text())
def test_encode_writes_what_urllib_quote_writes(text: str) -> None:
    """The translate-table encoder gives urllib's text for any string (lone surrogates, which
    have no UTF-8 form, as U+FFFD)."""
    assert encode(text) == quote(_without_lone_surrogates(text), safe="()*!'")


@given(
    st.lists(st.one_of(st.text(max_size=6), st.integers(), st.floats(), st.booleans(), st.none()), max_size=4)
)
def test_values_count_map_is_the_json_encoders_text(values: list[Any]) -> None:
    """customData's valuesCountMap: written directly for strings, by the JSON encoder
    otherwise; either way the text of ``json.dumps`` (compact, ASCII, order kept)."""
    counts = json.dumps(dict.fromkeys(values, 1), separators=(",", ":"), ensure_ascii=True)
    expected = f"eventType=customData&index=4&valuesCountMap={encode(counts)}&overwrite=true"
    assert lines.custom_data(4, tuple(values), False) == (expected if values else None)


_ARGUMENT = st.one_of(st.sampled_from([1, 1.0, True, "1", "a b", 2]), st.text(max_size=3))


@given(st.lists(st.tuples(_ARGUMENT, st.lists(_ARGUMENT, max_size=2), _ARGUMENT), max_size=6))
@example([(1, ["a"], True), (1, ["a"], False)])  # the mapping flag is part of the key
@example([("u", [1], "t"), ("u", [1.0], "t"), ("u", [True], "t")])  # referrers 1, 1.0, True
@example([(1, ["a"], "t"), (1.0, ["a"], "t"), (True, ["a"], "t")])  # indexes 1, 1.0, True
@example([(1, [], 2), (1.0, [], 2), (True, [], 2), (1, [], 2.0)])  # experiment and variation ids
def test_cached_params_are_those_of_their_own_arguments(calls: list[tuple[Any, list[Any], Any]]) -> None:
    """experiment, custom_data and page lines come from a cache for repeated arguments: each
    call gives the text it gives with an empty cache, even after equal-but-different arguments
    (1, 1.0, True)."""
    for first, items, last in calls:
        got = _cached_kinds(first, items, last)
        lines._PARAMS.clear()
        assert got == _cached_kinds(first, items, last)


def _cached_kinds(first: Any, items: list[Any], last: Any) -> tuple[str, str | None, str]:
    cached = lines.experiment(first, last), lines.custom_data(first, tuple(items), bool(last))
    return *cached, lines.page(first, last, items)


def test_the_params_cache_is_bounded() -> None:
    """The cache starts again from empty once it holds its maximum."""
    lines._PARAMS.clear()
    for n in range(lines._MAX_PARAMS + 5):
        lines.page(f"https://example.com/{n}", "t", None)
    assert len(lines._PARAMS) == 5


def test_encode_sends_lone_surrogates_as_the_replacement_character() -> None:
    """A lone surrogate is sent as U+FFFD (valid UTF-8, as the WHATWG URL standard does), not as
    its surrogate bytes, which a collector cannot decode; the text around it is kept."""
    assert encode("v\ud800") == "v%EF%BF%BD"
    assert encode("\udc00/é") == "%EF%BF%BD%2F%C3%A9"
    assert bytes.fromhex(encode("\ud83d\ude00").replace("%", "")).decode("utf-8") == "\ufffd\ufffd"


@pytest.mark.parametrize("values", [("a\ud800b",), ("a\ud800b", 3)], ids=["strings", "mixed"])
def test_custom_data_values_with_lone_surrogates_are_sent_as_valid_unicode(values: tuple[Any, ...]) -> None:
    """valuesCountMap is JSON: a lone surrogate there would be the escape \\ud800, which no
    JSON reader can turn into text (our collector drops the line); it goes as U+FFFD."""
    from urllib.parse import unquote

    params = lines.custom_data(1, values, False)
    assert params is not None
    counts = json.loads(unquote(params.split("valuesCountMap=")[1].split("&")[0]))
    assert "a\ufffdb" in counts


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (7, "index=7&"),
        ("8", "index=8&"),
        ("7&goalId=1\nx", "index=7%26goalId%3D1%0Ax&"),
        (1e16, "index=1e%2B16&"),
    ],
)
def test_a_custom_data_index_that_is_not_an_int_is_percent_encoded(index: Any, expected: str) -> None:
    """add_data keeps any index as given: one that is not an int cannot add parameters or lines."""
    params = lines.custom_data(index, ("a",), False)
    assert params is not None and expected in params and params.count("&") == 3


def test_query_omits_empty_values_and_keeps_order() -> None:
    """Parameters join with &; None and "" values are left out; values go through str()."""
    assert (
        query([("b", 1), ("a", None), ("c", ""), ("d", "x y"), ("e", 2.5), ("f", True)])
        == "b=1&d=x%20y&e=2.5&f=True"
    )
    assert query([]) == ""


# -- line assembly ---------------------------------------------------------------------------------
def test_nonce_is_16_upper_case_hex() -> None:
    """Nonces are 16 characters of 0-9A-F and change every time."""
    nonces = {lines.new_nonce() for _ in range(50)}
    assert all(re.fullmatch(r"[0-9A-F]{16}", n) for n in nonces)
    assert len(nonces) == 50


def test_line_order_and_identity() -> None:
    """nonce, then the event parameters, then the encoded visitor identity, then the user agent."""
    assert (
        lines.line("N", "eventType=activity", "visitorCode", "a b")
        == "nonce=N&eventType=activity&visitorCode=a%20b"
    )
    assert (
        lines.line("N", "eventType=activity", "mappingValue", "u/1", "Mozilla/5.0 (X11; Linux)")
        == "nonce=N&eventType=activity&mappingValue=u%2F1&userAgent=Mozilla%2F5.0%20(X11%3B%20Linux)"
    )
    assert (
        lines.line("N", "eventType=activity", "visitorCode", "v", "")
        == "nonce=N&eventType=activity&visitorCode=v"
    )


# -- event parameters --------------------------------------------------------------------------------
def test_activity_and_experiment() -> None:
    """activity has no parameters; experiment carries id and variationId."""
    assert lines.activity() == "eventType=activity"
    assert lines.experiment(5001, 7002) == "eventType=experiment&id=5001&variationId=7002"


@pytest.mark.parametrize(
    ("revenue", "negative", "expected"),
    [
        (0.0, False, "revenue=0.0&negative=false"),
        (10.5, True, "revenue=10.5&negative=true"),
        (12, False, "revenue=12&negative=false"),
        (1e20, False, "revenue=1e%2B20&negative=false"),
        (1e-7, False, "revenue=1e-07&negative=false"),
        (-3.25, False, "revenue=-3.25&negative=false"),
    ],
)
def test_conversion(revenue: float, negative: bool, expected: str) -> None:
    """conversion: goalId, revenue as Python prints it, negative true|false."""
    assert lines.conversion(32, revenue, negative) == f"eventType=conversion&goalId=32&{expected}"


@given(
    st.one_of(st.integers(), st.booleans(), st.text(max_size=5), st.none()),
    st.one_of(st.floats(), st.integers(), st.booleans(), st.text(max_size=5)),
    st.one_of(st.booleans(), st.integers(), st.none()),
)
def test_conversion_fast_path_writes_what_the_encoder_writes(
    goal_id: Any, revenue: Any, negative: Any
) -> None:
    """The shortcut for int goals and int/float revenues gives the general encoder's text."""
    general = query(
        (
            ("eventType", "conversion"),
            ("goalId", goal_id),
            ("revenue", str(revenue)),
            ("negative", "true" if negative else "false"),
        )
    )
    assert lines.conversion(goal_id, revenue, negative) == general


def test_custom_data_values_count_map() -> None:
    """customData: compact ASCII JSON of the values (duplicates collapsed, order kept), encoded."""
    assert (
        lines.custom_data(0, ("val one", "v&2=ü"), False) == "eventType=customData&index=0"
        "&valuesCountMap=%7B%22val%20one%22%3A1%2C%22v%262%3D%5Cu00fc%22%3A1%7D&overwrite=true"
    )
    assert lines.custom_data(4, ("b", "a", "b"), False) == (
        "eventType=customData&index=4&valuesCountMap=%7B%22b%22%3A1%2C%22a%22%3A1%7D&overwrite=true"
    )


def test_custom_data_mapping_identifier_and_empty() -> None:
    """The mapping index adds mappingIdentifier=true; no values means no line at all."""
    assert lines.custom_data(2, ("user-42",), True) == (
        "eventType=customData&index=2&valuesCountMap=%7B%22user-42%22%3A1%7D&overwrite=true&mappingIdentifier=true"
    )
    assert lines.custom_data(2, (), True) is None


def test_custom_data_non_string_values() -> None:
    """Numbers become JSON object keys as Python's json module writes them."""
    assert lines.custom_data(1, (5, 2.5), False) == (
        "eventType=customData&index=1&valuesCountMap=%7B%225%22%3A1%2C%222.5%22%3A1%7D&overwrite=true"
    )


@pytest.mark.parametrize(
    ("url", "title", "referrers", "expected"),
    [
        (
            "https://ex.com/p?a=1&b=2",
            "Title é",
            [1, 3],
            "href=https%3A%2F%2Fex.com%2Fp%3Fa%3D1%26b%3D2&title=Title%20%C3%A9&referrersIndices=%5B1%2C3%5D",
        ),
        ("https://ex.com/", None, None, "href=https%3A%2F%2Fex.com%2F"),
        ("https://ex.com/", "", [], "href=https%3A%2F%2Fex.com%2F"),
        ("u", "t", [0], "href=u&title=t&referrersIndices=%5B0%5D"),
    ],
)
def test_page(url: str, title: str | None, referrers: list[int] | None, expected: str) -> None:
    """page: href, title only when non-empty, referrersIndices only for a non-empty list."""
    assert lines.page(url, title, referrers) == f"eventType=page&{expected}"


@pytest.mark.parametrize("device", list(DeviceType))
def test_device(device: DeviceType) -> None:
    """Device: staticData with the device type name."""
    assert lines.device(device) == f"eventType=staticData&deviceType={device.name}"


@pytest.mark.parametrize(
    ("version", "expected"),
    [(120.5, "&browserVersion=120.5"), (10, "&browserVersion=10"), (None, ""), (0, ""), (0.0, "")],
)
def test_browser(version: Any, expected: str) -> None:
    """Browser: browserIndex, and browserVersion only for a non-zero version."""
    for browser in BrowserType:
        assert (
            lines.browser(browser, version) == f"eventType=staticData&browserIndex={browser.value}{expected}"
        )


@pytest.mark.parametrize("system", list(OperatingSystemType))
def test_operating_system(system: OperatingSystemType) -> None:
    """OperatingSystem: os name and osIndex."""
    assert lines.operating_system(system) == f"eventType=staticData&os={system.name}&osIndex={system.value}"


@pytest.mark.parametrize(
    ("geo", "expected"),
    [
        (
            Geolocation("France", "Île-de-France", "Paris", "75001", 48.85, 2.35),
            "country=France&region=%C3%8Ele-de-France&city=Paris&postalCode=75001&latitude=48.85&longitude=2.35",
        ),
        (Geolocation("France"), "country=France"),
        (Geolocation("", "", "Paris"), "city=Paris"),
        (Geolocation("X", latitude=0.0, longitude=0), "country=X&latitude=0.0&longitude=0"),
    ],
)
def test_geolocation(geo: Geolocation, expected: str) -> None:
    """Geolocation: staticData; text fields only when non-empty, coordinates whenever given."""
    assert lines.geolocation(geo) == f"eventType=staticData&{expected}"


def test_nonces_leave_the_applications_random_sequence_alone() -> None:
    """Drawing nonces does not advance the global ``random`` generator an application may seed."""
    import random

    from kameleoon._wire import lines as wire_lines

    random.seed(5)
    expected = [random.random() for _ in range(3)]
    random.seed(5)
    wire_lines.new_nonce()
    wire_lines.NoncePool()()
    assert [random.random() for _ in range(3)] == expected
