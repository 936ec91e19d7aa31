"""Variable typing (evaluation spec §1.6) and the variation/variable lookups built on it."""

from __future__ import annotations

from typing import Any

import pytest

from kameleoon._engine.variables import InvalidJsonVariable, make_variable, make_variation
from kameleoon.types import Variable

from ._support import document, entry, flag, rule, variation


@pytest.mark.parametrize(
    ("kind", "raw", "typed"),
    [
        ("BOOLEAN", True, True),
        ("BOOLEAN", "yes", "yes"),  # raw value, unchanged
        ("NUMBER", 3, 3),
        ("NUMBER", 2.5, 2.5),
        ("NUMBER", "7", "7"),
        ("STRING", "grey", "grey"),
        ("STRING", 42, 42),  # a STRING that is a number stays a number
        ("STRING", None, None),
        ("JSON", '{"slots": 4}', {"slots": 4}),
        ("JSON", "[1, 2]", [1, 2]),
        ("JSON", "5", 5),
        ("JSON", '"text"', "text"),
        ("JSON", "null", None),
        ("JSON", {"already": "object"}, None),  # not a string -> None
        ("JSON", 5, None),
        ("", "x", None),
        ("TEXT", "x", None),
        ("boolean", True, None),  # type names are case-sensitive
        (None, "x", None),
    ],
)
def test_typed_values(kind: Any, raw: Any, typed: Any) -> None:
    """The value returned depends on the configured type."""
    variable = make_variable("k", kind, raw)
    assert variable.value() == typed
    assert type(variable.value()) is type(typed)
    public = variable.public()
    assert (public.key, public.type, public.value) == ("k", kind, typed)


def test_number_keeps_int_and_float() -> None:
    """A NUMBER written 3 is an int and 2.5 a float."""
    assert isinstance(make_variable("k", "NUMBER", 3).value(), int)
    assert isinstance(make_variable("k", "NUMBER", 2.5).value(), float)


def test_invalid_json_raises_invalid_json_variable() -> None:
    """Unparsable JSON text is detected; asking for its value raises InvalidJsonVariable."""
    variable = make_variable("k", "JSON", "{not json")
    assert variable.invalid_json is True
    with pytest.raises(InvalidJsonVariable):
        variable.value()


def test_mutable_values_are_fresh_copies() -> None:
    """Lists and objects are decoded anew on every call: callers never share them."""
    for variable in (make_variable("k", "JSON", '{"a": [1]}'), make_variable("k", "STRING", ["x"])):
        first = variable.value()
        first.clear() if isinstance(first, dict) else first.append("mutated")
        assert variable.value() != first
        assert variable.shared is None


def test_scalar_values_are_shared() -> None:
    """Immutable values get one shared public Variable, built at parse time."""
    variable = make_variable("k", "NUMBER", 3)
    assert variable.shared == Variable("k", "NUMBER", 3)
    assert variable.public() is variable.shared


def test_variation_lookup_first_variable_wins() -> None:
    """``by_key`` keeps the first variable of a duplicated key."""
    first, second = make_variable("k", "NUMBER", 1), make_variable("k", "NUMBER", 2)
    made = make_variation("v", (first, second))
    assert made.by_key["k"] is first
    assert made.shared_public == {"k": Variable("k", "NUMBER", 2)}  # a dict: the last duplicate wins


def test_shared_public_only_when_every_variable_is_shared() -> None:
    """A variation with a mutable variable has no shared public dict."""
    made = make_variation("v", (make_variable("a", "NUMBER", 1), make_variable("b", "JSON", "[]")))
    assert made.shared_public is None


def test_variable_defaults_through_the_parser(make_client: Any) -> None:
    """A variable without fields has key "", type "" and value False (typed: None)."""
    client = make_client(document(flag("f", variations=[{"key": "off", "variables": [{}]}])))
    assert client.get_feature_variation_variables("f", "off") == {"": None}


# -- through the client ------------------------------------------------------------------------------
TYPED = document(
    flag(
        "f",
        default="v",
        variations=[
            variation(
                "v",
                ("b", "BOOLEAN", False),
                ("n", "NUMBER", 3),
                ("f", "NUMBER", 2.5),
                ("s", "STRING", "grey"),
                ("j", "JSON", '{"slots": 4}'),
                ("bad", "JSON", "{oops"),
                ("dup", "STRING", "first"),
                ("dup", "STRING", "second"),
                ("odd", "OTHER", "x"),
            )
        ],
        rules=[rule(1, entries=[entry("v", 1, 1.0)])],
    )
)


def test_get_feature_variable_types(make_client: Any) -> None:
    """``get_feature_variable`` returns typed values; duplicates resolve to the first variable."""
    client = make_client(TYPED)
    get = client.get_feature_variable
    assert get("vis", "f", "b") is False
    assert get("vis", "f", "n") == 3
    assert get("vis", "f", "f") == 2.5
    assert get("vis", "f", "s") == "grey"
    assert get("vis", "f", "j") == {"slots": 4}
    assert get("vis", "f", "dup") == "first"
    assert get("vis", "f", "odd") is None


def test_invalid_json_variable_returns_none(make_client: Any) -> None:
    """Unparsable JSON text gives None (the reference raised a JSON decode error)."""
    assert make_client(TYPED).get_feature_variable("vis", "f", "bad") is None


def test_get_feature_variation_variables_last_duplicate_wins(make_client: Any) -> None:
    """``get_feature_variation_variables`` is a dict of every variable: the last duplicate wins."""
    assert make_client(TYPED).get_feature_variation_variables("f", "v") == {
        "b": False,
        "n": 3,
        "f": 2.5,
        "s": "grey",
        "j": {"slots": 4},
        "bad": None,
        "dup": "second",
        "odd": None,
    }


def test_json_values_are_not_shared_between_calls(make_client: Any) -> None:
    """Mutating a returned JSON object does not change later answers."""
    client = make_client(TYPED)
    client.get_feature_variable("vis", "f", "j")["slots"] = 99
    assert client.get_feature_variable("vis", "f", "j") == {"slots": 4}
    client.get_feature_variation_variables("f", "v")["j"]["slots"] = 99
    assert client.get_feature_variation_variables("f", "v")["j"] == {"slots": 4}
