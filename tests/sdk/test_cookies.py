"""Visitor codes and the ``kameleoonVisitorCode`` cookie: ``get_visitor_code`` and the cookie rules of
``set_legal_consent`` (evaluation spec §5.1-§5.3, protocol spec §11.1)."""

from __future__ import annotations

import re
from http.cookies import Morsel, SimpleCookie
from types import MappingProxyType
from typing import Any

import pytest

from kameleoon import _cookies
from kameleoon.exceptions import VisitorCodeInvalid

from ._support import document, flag, rule

NAME = "kameleoonVisitorCode"
MAX_AGE = "32832000"
CONSENT_REQUIRED = {"configuration": {"consentType": "REQUIRED"}}
MANAGED = {**document(flag("f", rules=[rule(1)])), **CONSENT_REQUIRED}  # no targeted delivery
UNMANAGED = {**document(flag("f", rules=[rule(1, kind="TARGETED_DELIVERY")])), **CONSENT_REQUIRED}
DISABLED_TD = {
    **document(flag("f", enabled=False, rules=[rule(1, kind="TARGETED_DELIVERY")])),
    **CONSENT_REQUIRED,
}


@pytest.fixture
def fixed_time(monkeypatch: pytest.MonkeyPatch) -> float:
    """Cookie expiry dates computed at a fixed instant (2026-11-27 11:42:58 UTC)."""
    now = 1795779778.0
    monkeypatch.setattr(_cookies.time, "time", lambda: now)
    return now


# -- validation and generation ------------------------------------------------------------------
@pytest.mark.parametrize("code", ["a", "x" * 255, "é" * 255, "with space/and;chars", "😀"])
def test_valid_codes(code: str) -> None:
    """Any non-empty string of at most 255 code points is valid."""
    assert _cookies.validate_visitor_code(code) == code


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (None, "empty visitor code"),
        ("", "empty visitor code"),
        ("x" * 256, "is longer than 255 chars"),
        ("é" * 256, "is longer than 255 chars"),
    ],
)
def test_invalid_codes(code: Any, reason: str) -> None:
    """Empty or too long codes raise VisitorCodeInvalid with the documented reason."""
    with pytest.raises(VisitorCodeInvalid) as info:
        _cookies.validate_visitor_code(code)
    assert str(info.value) == f"Kameleoon error: Visitor code not valid: {reason}"


@pytest.mark.parametrize("code", [5, b"bytes", ["list"]])
def test_non_string_codes_are_invalid(code: Any) -> None:
    """A code that is not a string is invalid too."""
    with pytest.raises(VisitorCodeInvalid):
        _cookies.validate_visitor_code(code)


def test_generated_codes() -> None:
    """Generated codes are 16 lower-case hexadecimal characters, all different."""
    codes = {_cookies.generate_visitor_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(re.fullmatch(r"[0-9a-f]{16}", code) for code in codes)


def test_http_date_format() -> None:
    """Expiry dates are formatted ``Www, DD Mon YYYY HH:MM:SS GMT`` in English."""
    assert _cookies._http_date(1828611778.0) == "Sun, 12 Dec 2027 11:42:58 GMT"
    assert _cookies._http_date(0.0) == "Thu, 01 Jan 1970 00:00:00 GMT"


# -- get_visitor_code ---------------------------------------------------------------------------------
def test_code_from_readonly_cookies(client: Any) -> None:
    """A cookie value in ``cookies_readonly`` (a plain dict) is returned; ``cookies`` is not touched."""
    jar = SimpleCookie()
    assert client.get_visitor_code({NAME: "abc"}, jar) == "abc"
    assert NAME not in jar


def test_code_from_a_cookie_jar(client: Any) -> None:
    """A SimpleCookie (morsels) works as the source and is not rewritten."""
    jar = SimpleCookie()
    jar[NAME] = "from-jar"
    before = jar.output()
    assert client.get_visitor_code(cookies=jar) == "from-jar"
    assert jar.output() == before


def test_readonly_cookies_win_over_cookies(client: Any) -> None:
    """A non-empty ``cookies_readonly`` is the source even when ``cookies`` holds another code."""
    jar = SimpleCookie()
    jar[NAME] = "jar-code"
    assert client.get_visitor_code({NAME: "readonly-code"}, jar) == "readonly-code"


def test_empty_readonly_cookies_fall_back_to_cookies(client: Any) -> None:
    """An empty ``cookies_readonly`` mapping is ignored."""
    assert client.get_visitor_code({}, {NAME: "jar-code"}) == "jar-code"


@pytest.mark.parametrize("readonly", ["x", ["a"], 5])
def test_readonly_cookies_that_are_not_a_mapping_are_ignored(client: Any, readonly: Any) -> None:
    """Only a non-empty mapping is a source: anything else falls back to ``cookies``."""
    jar = SimpleCookie()
    jar[NAME] = "jar-code"
    assert client.get_visitor_code(readonly, jar) == "jar-code"
    assert jar[NAME].value == "jar-code"


def test_readonly_without_our_cookie_does_not_look_at_cookies(client: Any) -> None:
    """A non-empty ``cookies_readonly`` without the cookie is still the source: a code is generated."""
    code = client.get_visitor_code({"other": "1"}, {NAME: "jar-code"})
    assert code != "jar-code"
    assert re.fullmatch(r"[0-9a-f]{16}", code)


@pytest.mark.parametrize(("value", "code"), [("_js_abc", "abc"), ("_js__js_x", "_js_x"), ("x_js_", "x_js_")])
def test_js_prefix_is_stripped(client: Any, value: str, code: str) -> None:
    """One leading ``_js_`` is removed from the cookie value."""
    assert client.get_visitor_code({NAME: value}) == code


@pytest.mark.parametrize("value", ["", "_js_"])
def test_empty_cookie_counts_as_absent(client: Any, value: str) -> None:
    """An empty value (or one that is empty once ``_js_`` is removed) counts as no cookie."""
    assert client.get_visitor_code({NAME: value}, default_visitor_code="dflt") == "dflt"


def test_too_long_cookie_is_invalid(client: Any) -> None:
    """A cookie value longer than 255 characters raises VisitorCodeInvalid."""
    with pytest.raises(VisitorCodeInvalid):
        client.get_visitor_code({NAME: "x" * 256})


def test_generated_code_is_written(client: Any, fixed_time: float) -> None:
    """Without cookie or default, a new code is generated and written with every attribute."""
    jar = SimpleCookie()
    code = client.get_visitor_code(cookies=jar)
    assert re.fullmatch(r"[0-9a-f]{16}", code)
    assert jar[NAME].OutputString() == (
        f"{NAME}={code}; expires=Sun, 12 Dec 2027 11:42:58 GMT; Max-Age={MAX_AGE}; Path=/"
    )


def test_cookie_domain_is_the_top_level_domain(make_client: Any, fixed_time: float) -> None:
    """The configured top-level domain becomes the cookie's Domain (protocol capture)."""
    client = make_client(top_level_domain="https://Example.com")
    jar = SimpleCookie()
    code = client.get_visitor_code(cookies=jar, default_visitor_code="8a42d9842d900460")
    assert code == "8a42d9842d900460"
    assert jar.output() == (
        "Set-Cookie: kameleoonVisitorCode=8a42d9842d900460; Domain=example.com; "
        "expires=Sun, 12 Dec 2027 11:42:58 GMT; Max-Age=32832000; Path=/"
    )


def test_plain_dict_receives_a_morsel(client: Any) -> None:
    """A plain dict as ``cookies`` receives a Morsel for the cookie."""
    jar: dict[str, Any] = {}
    code = client.get_visitor_code(cookies=jar)
    assert isinstance(jar[NAME], Morsel)
    assert jar[NAME].value == code
    assert jar[NAME]["max-age"] == MAX_AGE
    assert jar[NAME]["path"] == "/"


def test_no_cookies_argument_writes_nothing(client: Any) -> None:
    """Without ``cookies`` a code is still returned."""
    assert re.fullmatch(r"[0-9a-f]{16}", client.get_visitor_code())
    assert client.get_visitor_code(default_visitor_code="d") == "d"


def test_default_code_is_validated_and_written(client: Any) -> None:
    """A default code is used when there is no cookie, validated and written."""
    jar = SimpleCookie()
    assert client.get_visitor_code(cookies=jar, default_visitor_code="my-default") == "my-default"
    assert jar[NAME].value == "my-default"
    with pytest.raises(VisitorCodeInvalid):
        client.get_visitor_code(default_visitor_code="")
    with pytest.raises(VisitorCodeInvalid):
        client.get_visitor_code(default_visitor_code="x" * 256)


def test_existing_cookie_wins_over_the_default(client: Any) -> None:
    """The cookie is used before ``default_visitor_code``."""
    assert client.get_visitor_code({NAME: "cookie"}, default_visitor_code="dflt") == "cookie"


def test_managed_code_is_not_written_when_generated(make_client: Any) -> None:
    """Consent required and no targeted delivery: a generated code is not written."""
    client = make_client(MANAGED)
    jar = SimpleCookie()
    client.get_visitor_code(cookies=jar)
    assert NAME not in jar


@pytest.mark.parametrize("configuration", [UNMANAGED, document(flag("f"))])
def test_unmanaged_code_is_written_when_generated(make_client: Any, configuration: dict[str, Any]) -> None:
    """A targeted delivery rule (or consent not required) means the SDK writes generated codes."""
    client = make_client(configuration)
    jar = SimpleCookie()
    client.get_visitor_code(cookies=jar)
    assert NAME in jar


def test_disabled_targeted_delivery_does_not_count(make_client: Any) -> None:
    """Only environment-enabled flags' targeted delivery rules unmanage the code."""
    client = make_client(DISABLED_TD)
    jar = SimpleCookie()
    client.get_visitor_code(cookies=jar)
    assert NAME not in jar


def test_managed_default_code_is_still_written(make_client: Any) -> None:
    """A default code is written even when the visitor code is managed."""
    client = make_client(MANAGED)
    jar = SimpleCookie()
    client.get_visitor_code(cookies=jar, default_visitor_code="dflt")
    assert jar[NAME].value == "dflt"


def test_get_visitor_code_sends_and_stores_nothing(client: Any) -> None:
    """Getting a visitor code creates no visitor record and schedules nothing."""
    client.get_visitor_code(cookies=SimpleCookie())
    assert len(client._store) == 0
    assert client._tracker.pending_codes == 0


# -- set_legal_consent ---------------------------------------------------------------------------------
def test_consent_true_writes_the_cookie(make_client: Any, fixed_time: float) -> None:
    """Consent given (re)writes the cookie with full attributes, managed or not."""
    client = make_client(MANAGED, top_level_domain="example.com")
    jar = SimpleCookie()
    jar[NAME] = "old"
    client.set_legal_consent("v-1", True, jar)
    assert jar[NAME].OutputString() == (
        f"{NAME}=v-1; Domain=example.com; expires=Sun, 12 Dec 2027 11:42:58 GMT; Max-Age={MAX_AGE}; Path=/"
    )


def test_consent_false_expires_a_managed_cookie(make_client: Any) -> None:
    """Consent refused with a managed code: the existing cookie gets Max-Age=0 (domain and path kept)."""
    client = make_client(MANAGED, top_level_domain="example.com")
    jar = SimpleCookie()
    jar[NAME] = "v-1"
    client.set_legal_consent("v-1", False, jar)
    assert jar[NAME]["max-age"] == "0"
    assert jar[NAME]["domain"] == "example.com"
    assert jar[NAME]["path"] == "/"


def test_consent_false_without_cookie_adds_nothing(make_client: Any) -> None:
    """Consent refused with no cookie present: nothing is written."""
    client = make_client(MANAGED)
    jar = SimpleCookie()
    client.set_legal_consent("v-1", False, jar)
    assert NAME not in jar
    plain: dict[str, Any] = {NAME: "just-a-string"}
    client.set_legal_consent("v-1", False, plain)
    assert plain == {NAME: "just-a-string"}  # not a morsel: nothing to expire


@pytest.mark.parametrize("configuration", [UNMANAGED, document(flag("f"))])
def test_consent_false_leaves_an_unmanaged_cookie(make_client: Any, configuration: dict[str, Any]) -> None:
    """Consent refused when the code is not managed: the cookie is left as it is."""
    client = make_client(configuration)
    jar = SimpleCookie()
    jar[NAME] = "v-1"
    before = jar.output()
    client.set_legal_consent("v-1", False, jar)
    assert jar.output() == before


def test_consent_is_stored_on_the_visitor(client: Any) -> None:
    """``set_legal_consent`` creates the record and stores the consent as a boolean."""
    client.set_legal_consent("v-1", 1)
    visitor = client._store.get("v-1")
    assert visitor is not None and visitor.consent is True
    client.set_legal_consent("v-1", False)
    assert visitor.consent is False
    assert client._tracker.pending_codes == 0


@pytest.mark.parametrize("code", ["", None, "x" * 256])
def test_consent_validates_the_code(client: Any, code: Any) -> None:
    """``set_legal_consent`` raises VisitorCodeInvalid for an invalid code."""
    with pytest.raises(VisitorCodeInvalid):
        client.set_legal_consent(code, True)


# -- reading helpers -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "code"),
    [
        (None, None),
        ({}, None),
        ({NAME: None}, None),
        ({NAME: 5}, None),
        ({"other": "x"}, None),
        ({NAME: "abc"}, "abc"),
        ("not a mapping", None),
    ],
)
def test_read_visitor_code(source: Any, code: str | None) -> None:
    """Reading tolerates absent, empty and non-string values (they count as no cookie)."""
    assert _cookies.read_visitor_code(source) == code


@pytest.mark.parametrize("jar", [False, 5, "text", ["list"], MappingProxyType({})])
def test_cookies_that_are_not_a_mutable_mapping_are_left_alone(client: Any, jar: Any) -> None:
    """A ``cookies`` argument that cannot receive a cookie is ignored instead of raising."""
    assert re.fullmatch(r"[0-9a-f]{16}", client.get_visitor_code(cookies=jar))
    assert client.get_visitor_code(cookies=jar, default_visitor_code="dflt") == "dflt"
    client.set_legal_consent("v", True, jar)
    client.set_legal_consent("v", False, jar)


def test_read_only_cookies_still_provide_the_code(client: Any) -> None:
    """A read-only mapping can be the source of the code as ``cookies``."""
    assert client.get_visitor_code(cookies=MappingProxyType({NAME: "ro"})) == "ro"
