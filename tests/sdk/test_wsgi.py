"""``KameleoonWSGIMiddleware``: visitor codes for WSGI requests and the response cookie
(evaluation spec §5.4, protocol spec §11.1)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kameleoon import KameleoonClient, KameleoonWSGIMiddleware

from ._support import document, flag, rule

NAME = "kameleoonVisitorCode"
MANAGED = {**document(flag("f", rules=[rule(1)])), "configuration": {"consentType": "REQUIRED"}}


class Recorder:
    """A WSGI app remembering what it saw, and a start_response remembering what was sent."""

    def __init__(self) -> None:
        self.environ: dict[str, Any] = {}
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.environ = dict(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status, self.headers = status, headers
        return lambda data: None

    def cookies(self) -> list[str]:
        return [value for name, value in self.headers if name == "Set-Cookie"]


def serve(client: KameleoonClient, cookie: str | None = None, default: str | None = None) -> Recorder:
    recorder = Recorder()
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    body = KameleoonWSGIMiddleware(recorder.app, client, default)(environ, recorder.start_response)
    assert list(body) == [b"ok"]
    return recorder


def test_new_visitor_gets_a_code_in_the_request_and_the_response(client: KameleoonClient) -> None:
    """Without cookie: a generated code is added to HTTP_COOKIE and set in one response header."""
    seen = serve(client)
    match = re.fullmatch(rf"{NAME}=([0-9a-f]{{16}})", seen.environ["HTTP_COOKIE"])
    assert match is not None
    [header] = seen.cookies()
    assert header.startswith(f"{NAME}={match.group(1)};")
    assert "Max-Age=32832000" in header and "Path=/" in header
    assert seen.status == "200 OK"
    assert ("Content-Type", "text/plain") in seen.headers


def test_code_is_appended_to_other_request_cookies(client: KameleoonClient) -> None:
    """The new code is appended to the existing HTTP_COOKIE value."""
    seen = serve(client, "session=abc")
    assert re.fullmatch(rf"session=abc; {NAME}=[0-9a-f]{{16}}", seen.environ["HTTP_COOKIE"])


def test_existing_code_is_kept(client: KameleoonClient) -> None:
    """A request cookie's code is used: HTTP_COOKIE is untouched and the cookie is rewritten."""
    seen = serve(client, f"other=1; {NAME}=known-visitor")
    assert seen.environ["HTTP_COOKIE"] == f"other=1; {NAME}=known-visitor"
    [header] = seen.cookies()
    assert header.startswith(f"{NAME}=known-visitor;")


def test_a_prefixed_code_is_replaced_by_the_code_used(client: KameleoonClient) -> None:
    """A ``_js_`` code: the application sees the code the SDK uses, cookies kept in order."""
    seen = serve(client, f"{NAME}=_js_abc; other=1")
    assert seen.environ["HTTP_COOKIE"] == f"other=1; {NAME}=abc"


@pytest.mark.parametrize(
    "others",
    ["a b=1", "flag", "x=a b", 'json={"k": 1}', "mail@x=1"],
    ids=["space", "bare", "value", "json", "at"],
)
def test_a_code_is_kept_beside_cookies_simplecookie_refuses(client: KameleoonClient, others: str) -> None:
    """One cookie SimpleCookie cannot parse must not cost the visitor its code."""
    for header in (f"{NAME}=known-visitor; {others}", f"{others}; {NAME}=known-visitor"):
        seen = serve(client, header)
        assert seen.environ["HTTP_COOKIE"] == header
        [cookie] = seen.cookies()
        assert cookie.startswith(f"{NAME}=known-visitor;")


@pytest.mark.parametrize("code", ["a,b", "visiteur-éà", 'say "hi"; ok\\'])
def test_a_code_the_cookie_had_to_quote_comes_back_the_same(client: KameleoonClient, code: str) -> None:
    """The response cookie quotes and escapes such a code (``"a\\054b"``); sent back, it is read
    as the same code: the cookie is not rewritten with another value on every request."""
    first = serve(client, default=code).cookies()[0]
    sent_back = first.split(";", 1)[0]  # what the browser returns: name=value
    again = serve(client, sent_back)
    assert again.cookies()[0] == first
    assert again.environ["HTTP_COOKIE"] == sent_back  # the code used is the one sent


def test_default_visitor_code(client: KameleoonClient) -> None:
    """Without cookie, the middleware's default code is used."""
    seen = serve(client, default="the-default")
    assert seen.environ["HTTP_COOKIE"] == f"{NAME}=the-default"


def test_malformed_cookie_header_is_ignored(client: KameleoonClient) -> None:
    """An unparsable Cookie header does not break the request."""
    seen = serve(client, 'bad"cookie; =;;')
    assert seen.cookies()


def test_managed_code_without_consent_is_expired(make_client: Any) -> None:
    """Consent required and refused (no targeted delivery): the cookie is expired (Max-Age=0)."""
    client = make_client(MANAGED)
    client.set_legal_consent("v-1", False)
    [header] = serve(client, f"{NAME}=v-1").cookies()
    assert "Max-Age=0" in header


def test_managed_code_with_consent_is_written(make_client: Any) -> None:
    """Consent given: the cookie is (re)written for 380 days."""
    client = make_client(MANAGED)
    client.set_legal_consent("v-1", True)
    [header] = serve(client, f"{NAME}=v-1").cookies()
    assert "Max-Age=32832000" in header


def test_managed_new_visitor_gets_no_cookie(make_client: Any) -> None:
    """Managed mode, no consent, no cookie: a code is generated for the request but not set."""
    client = make_client(MANAGED)
    seen = serve(client)
    assert NAME in seen.environ["HTTP_COOKIE"]
    assert seen.cookies() == []


def test_set_cookie_holds_only_the_visitor_code_cookie(client: KameleoonClient) -> None:
    """Unlike the reference (which echoes the whole request jar, spec §5.4), only our cookie is set."""
    [header] = serve(client, f"zeta=9; {NAME}=known; alpha=1").cookies()
    assert header.startswith(f"{NAME}=known;")
    assert "alpha" not in header and "zeta" not in header


def test_an_unusable_cookie_value_is_replaced_where_the_app_reads_it(client: KameleoonClient) -> None:
    """An empty or ``_js_``-prefixed cookie value is not the code used: the application sees the
    code the middleware used (and sets), in place of the value sent."""
    empty = serve(client, f"a=1; {NAME}=; b=2")
    [header] = empty.cookies()
    code = header.split(";", 1)[0].split("=", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{16}", code)
    assert empty.environ["HTTP_COOKIE"] == f"a=1; b=2; {NAME}={code}"
    prefixed = serve(client, f"{NAME}=_js_abc")
    assert prefixed.environ["HTTP_COOKIE"] == f"{NAME}=abc"
    assert prefixed.cookies()[0].startswith(f"{NAME}=abc;")


def test_a_cookie_too_long_for_a_visitor_code_gets_a_new_code(client: KameleoonClient) -> None:
    """A cookie value over 255 characters cannot be a visitor code: rather than failing every
    request of that browser, the middleware gives it a new code and overwrites the cookie."""
    seen = serve(client, f"{NAME}={'x' * 300}")
    [header] = seen.cookies()
    code = header.split(";", 1)[0].split("=", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{16}", code)
    assert seen.environ["HTTP_COOKIE"] == f"{NAME}={code}"
