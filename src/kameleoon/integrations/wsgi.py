"""``KameleoonWSGIMiddleware``: reads and writes the visitor-code cookie around a WSGI app."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any

from kameleoon._cookies import COOKIE_NAME, expire_cookie, write_cookie
from kameleoon.exceptions import VisitorCodeInvalid

if TYPE_CHECKING:
    from kameleoon._client import KameleoonClient

__all__ = ["KameleoonWSGIMiddleware", "update_cookie", "visitor_code"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class KameleoonWSGIMiddleware:
    """Gives every request a visitor code and keeps it in the ``kameleoonVisitorCode`` cookie.

    The code comes from the request cookie, else ``default_visitor_code``, else a new random
    code; a new code is added to ``HTTP_COOKIE`` so the application sees it (Django:
    ``request.COOKIES``). The response gets one ``Set-Cookie`` header that (re)writes the cookie,
    or expires it when the visitor refused consent and the configuration manages the code.
    """

    def __init__(
        self, app: WSGIApp, client: KameleoonClient, default_visitor_code: str | None = None
    ) -> None:
        self.app = app
        self.client = client
        self.default_visitor_code = default_visitor_code

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        jar: SimpleCookie = SimpleCookie()
        raw = environ.get("HTTP_COOKIE", "")
        sent = _sent_code(raw)
        if sent is not None:  # only this cookie: other names may be ones SimpleCookie refuses
            jar[COOKIE_NAME] = sent
        code = visitor_code(self.client, jar, self.default_visitor_code)
        if sent != code:  # absent, empty, "_js_"-prefixed or replaced: the app sees the code used
            environ["HTTP_COOKIE"] = _with_visitor_code(raw, code)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            update_cookie(self.client, code, jar)
            cookie = jar.get(COOKIE_NAME)
            if cookie is not None:
                headers = [*headers, ("Set-Cookie", cookie.OutputString())]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, start)


def visitor_code(client: KameleoonClient, jar: SimpleCookie, default_visitor_code: str | None) -> str:
    """:meth:`KameleoonClient.get_visitor_code` for a request's cookies in ``jar``. A cookie that
    cannot be a visitor code (longer than 255 characters) gets a new code, rather than failing
    every request of that browser; an invalid ``default_visitor_code`` raises."""
    try:
        return client.get_visitor_code(cookies=jar, default_visitor_code=default_visitor_code)
    except VisitorCodeInvalid:
        if COOKIE_NAME not in jar:
            raise  # default_visitor_code itself is invalid: the application's error
        del jar[COOKIE_NAME]
        return client.get_visitor_code(cookies=jar, default_visitor_code=default_visitor_code)


def _sent_code(raw: str) -> str | None:
    """The visitor-code cookie's value in the ``Cookie`` header ``raw`` (the last one wins, as
    for ``SimpleCookie``), read on its own: ``SimpleCookie.load`` gives up on a whole header
    for one cookie it refuses (a space or ``@`` in a name, a bare word, a JSON value), which
    would give the visitor a new code on every request."""
    sent = None
    for name, part in _cookies_of(raw):
        _, separator, value = part.partition("=")
        if separator and name == COOKIE_NAME:
            sent = _cookie_value(value.strip())
    return sent


def _cookie_value(value: str) -> str:
    """A cookie value as a ``SimpleCookie`` reads it: a quoted one is unquoted and unescaped
    (``"a\\054b"``, as ``http.cookies`` writes ``a,b``, is ``a,b``), so a code the response
    cookie had to quote comes back as the same code."""
    if not (len(value) >= 2 and value[0] == value[-1] == '"'):
        return value
    jar: SimpleCookie = SimpleCookie()
    jar.load(f"{COOKIE_NAME}={value}")
    morsel = jar.get(COOKIE_NAME)
    return morsel.value if morsel is not None else value[1:-1]


def _with_visitor_code(raw: str, code: str) -> str:
    """The ``Cookie`` header ``raw`` with its visitor-code cookie (if any) replaced by ``code``."""
    kept = [part for name, part in _cookies_of(raw) if name != COOKIE_NAME]
    return "; ".join([*kept, f"{COOKIE_NAME}={code}"])


def _cookies_of(raw: str) -> list[tuple[str, str]]:
    """(name, whole ``name=value`` text) of each cookie of the ``Cookie`` header ``raw``, both
    stripped, in order."""
    parts = (part.strip() for part in raw.split(";"))
    return [(part.split("=", 1)[0].strip(), part) for part in parts if part]


def update_cookie(client: KameleoonClient, code: str, jar: SimpleCookie) -> None:
    """(Re)writes the visitor-code cookie in ``jar`` when consent is given (or not required);
    expires it when the configuration manages the code and the visitor did not consent."""
    domain = client._settings.top_level_domain
    if client._consent_given(code):
        write_cookie(jar, code, domain)
    elif client._visitor_code_managed():
        expire_cookie(jar, domain)
