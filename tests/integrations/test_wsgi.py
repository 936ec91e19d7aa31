"""KameleoonWSGIMiddleware around a plain WSGI application."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any
from wsgiref.util import setup_testing_defaults

from kameleoon import KameleoonClientConfig, KameleoonWSGIMiddleware
from kameleoon.testing import create_client
from tests.integrations.conftest import CONFIGURATION, with_consent

COOKIE = "kameleoonVisitorCode"


def _client(document: dict[str, Any] = CONFIGURATION) -> Any:
    config = KameleoonClientConfig("id", "secret", top_level_domain="example.com")
    return create_client(document, config=config)


def _call(app: Any, cookie: str | None = None) -> tuple[str, list[tuple[str, str]], dict[str, Any]]:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    seen: dict[str, Any] = {}
    captured: dict[str, Any] = {}

    def application(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(env)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"], captured["headers"] = status, headers

    body = b"".join(KameleoonWSGIMiddleware(application, app)(environ, start_response))
    assert body == b"ok"
    return captured["status"], captured["headers"], seen


def _set_cookie(headers: list[tuple[str, str]]) -> SimpleCookie:
    values = [value for name, value in headers if name == "Set-Cookie"]
    assert len(values) == 1, headers
    jar: SimpleCookie = SimpleCookie()
    jar.load(values[0])
    return jar


def test_new_visitor_gets_a_generated_code_in_environ_and_cookie() -> None:
    """Without a cookie, a 16-hex code is generated, shown to the app and written back."""
    client = _client()
    _, headers, environ = _call(client)
    jar = _set_cookie(headers)
    code = jar[COOKIE].value
    assert len(code) == 16 and all(ch in "0123456789abcdef" for ch in code)
    assert f"{COOKIE}={code}" in environ["HTTP_COOKIE"]
    assert jar[COOKIE]["domain"] == "example.com"
    assert jar[COOKIE]["path"] == "/"
    assert jar[COOKIE]["max-age"] == "32832000"
    assert jar[COOKIE]["expires"]


def test_existing_cookie_is_kept_and_other_cookies_untouched() -> None:
    """A visitor with a cookie keeps its code; the app sees its other cookies unchanged."""
    client = _client()
    _, headers, environ = _call(client, f"lang=fr; {COOKIE}=abcdef0123456789")
    assert environ["HTTP_COOKIE"] == f"lang=fr; {COOKIE}=abcdef0123456789"
    jar = _set_cookie(headers)
    assert jar[COOKIE].value == "abcdef0123456789"
    assert "lang" not in jar  # only our cookie is written (the reference echoes every cookie)


def test_js_prefix_is_stripped_from_the_code() -> None:
    """A code written by the JavaScript tag (``_js_`` prefix) is used without the prefix."""
    _, headers, _ = _call(_client(), f"{COOKIE}=_js_0123456789abcdef")
    assert _set_cookie(headers)[COOKIE].value == "0123456789abcdef"


def test_managed_code_without_consent_expires_the_cookie() -> None:
    """Consent required and no targeted delivery: no consent means the cookie is expired."""
    client = _client(with_consent(required=True, targeted_delivery=False))
    _, headers, _ = _call(client, f"{COOKIE}=abcdef0123456789")
    jar = _set_cookie(headers)
    assert jar[COOKIE]["max-age"] == "0"


def test_consent_given_keeps_the_cookie_when_managed() -> None:
    """Once the visitor consented, the managed cookie is written again."""
    client = _client(with_consent(required=True, targeted_delivery=False))
    client.set_legal_consent("abcdef0123456789", True)
    _, headers, _ = _call(client, f"{COOKIE}=abcdef0123456789")
    assert _set_cookie(headers)[COOKIE]["max-age"] == "32832000"


def test_garbage_cookie_header_does_not_break_the_request() -> None:
    """An unparsable Cookie header is treated as no cookie."""
    status, headers, _ = _call(_client(), '"=;;;\x00')
    assert status == "200 OK"
    assert len(_set_cookie(headers)[COOKIE].value) == 16
