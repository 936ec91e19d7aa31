"""Visitor codes and the ``kameleoonVisitorCode`` cookie (evaluation spec §5)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, MutableMapping
from http.cookies import BaseCookie, Morsel
from typing import Any

from kameleoon.exceptions import VisitorCodeInvalid

__all__ = [
    "COOKIE_NAME",
    "expire_cookie",
    "generate_visitor_code",
    "read_visitor_code",
    "validate_visitor_code",
    "write_cookie",
]

COOKIE_NAME = "kameleoonVisitorCode"
MAX_VISITOR_CODE_LENGTH = 255
_COOKIE_MAX_AGE = 380 * 24 * 3600
_JS_PREFIX = "_js_"


def validate_visitor_code(code: Any) -> str:
    """Returns ``code`` if it is a usable visitor code; raises :class:`VisitorCodeInvalid`."""
    if code is None or code == "":
        raise VisitorCodeInvalid("empty visitor code")
    if not isinstance(code, str):
        raise VisitorCodeInvalid(f"must be a string, not {type(code).__name__}")
    if len(code) > MAX_VISITOR_CODE_LENGTH:
        raise VisitorCodeInvalid(f"is longer than {MAX_VISITOR_CODE_LENGTH} chars")
    return code


def generate_visitor_code() -> str:
    """16 lower-case hexadecimal characters from a cryptographically secure source."""
    return os.urandom(8).hex()


def read_visitor_code(source: Mapping[str, Any] | None) -> str | None:
    """The visitor code held by a cookie mapping (plain values or morsels), ``_js_`` stripped."""
    if not source:
        return None
    try:
        entry = source.get(COOKIE_NAME)
    except (AttributeError, TypeError):
        return None
    value = entry.value if isinstance(entry, Morsel) else entry
    if not value or not isinstance(value, str):
        return None
    if value.startswith(_JS_PREFIX):
        value = value[len(_JS_PREFIX) :]
    return value or None


def _morsel(jar: MutableMapping[str, Any]) -> Morsel[str] | None:
    if isinstance(jar, BaseCookie):
        return jar.get(COOKIE_NAME)
    entry = jar.get(COOKIE_NAME)
    return entry if isinstance(entry, Morsel) else None


def write_cookie(jar: Any, code: str, domain: str) -> None:
    """Writes the visitor-code cookie with its domain, path, max-age and expiry date."""
    if not isinstance(jar, MutableMapping):
        return  # not a cookie jar (a read-only mapping, or no mapping at all): nothing to write into
    if isinstance(jar, BaseCookie):
        jar[COOKIE_NAME] = code
        morsel = jar[COOKIE_NAME]
    else:
        morsel = Morsel()
        morsel.set(COOKIE_NAME, code, code)
        jar[COOKIE_NAME] = morsel
    if domain:
        morsel["domain"] = domain
    morsel["path"] = "/"
    morsel["max-age"] = str(_COOKIE_MAX_AGE)
    morsel["expires"] = _http_date(time.time() + _COOKIE_MAX_AGE)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _http_date(epoch: float) -> str:
    """``Sun, 12 Dec 2027 11:42:58 GMT`` (locale-independent)."""
    t = time.gmtime(epoch)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def expire_cookie(jar: Any, domain: str) -> None:
    """Sets ``Max-Age=0`` on the visitor-code cookie present in ``jar`` (if any)."""
    if not isinstance(jar, MutableMapping):
        return
    morsel = _morsel(jar)
    if morsel is None:
        return
    if domain:
        morsel["domain"] = domain
    morsel["path"] = "/"
    morsel["max-age"] = "0"
