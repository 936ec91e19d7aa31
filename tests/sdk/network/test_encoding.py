"""Query-string encoding of the protocol (kameleoon._wire.encoding, spec §1.4)."""

from __future__ import annotations

import pytest

from kameleoon._wire.encoding import encode, query


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("AZaz09_.-~()*!'", "AZaz09_.-~()*!'"),
        ("a b", "a%20b"),
        ('/:?&=+,;"{}[]', "%2F%3A%3F%26%3D%2B%2C%3B%22%7B%7D%5B%5D"),
        ("é", "%C3%A9"),
        ("日本", "%E6%97%A5%E6%9C%AC"),
        ("my secret/+=", "my%20secret%2F%2B%3D"),
        ("%", "%25"),
    ],
)
def test_encode(value: str, expected: str) -> None:
    assert encode(value) == expected


def test_query_omits_empty_and_none_values_and_keeps_order() -> None:
    assert query([("b", "1"), ("a", None), ("c", ""), ("d", 0), ("e", "x y")]) == "b=1&d=0&e=x%20y"


def test_query_of_nothing_is_empty() -> None:
    assert query([]) == ""
    assert query([("a", None)]) == ""


@pytest.mark.parametrize(
    "value", ["", "abc", "A-Z_0.9~", "(x)*!'", "12", "1.5", "é", "a b", "\ud800", "x\ny"]
)
def test_fast_path_agrees_with_quote(value: str) -> None:
    """Values with nothing to escape are returned as they are; the result never differs."""
    from urllib.parse import quote

    assert encode(value) == quote(value.replace("\ud800", "\ufffd"), safe="()*!'")
