"""Query-string encoding as the protocol uses it (protocol spec §1.4)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

__all__ = ["encode", "query"]

_SAFE = "()*!'"  # on top of quote's own unreserved set: A-Z a-z 0-9 _ . - ~
_NOTHING_TO_ESCAPE = re.compile(r"[A-Za-z0-9_.\-~()*!']*").fullmatch  # most values: ids, numbers


def encode(value: str) -> str:
    """Percent-encodes like JavaScript's ``encodeURIComponent`` (UTF-8, ``%20`` for spaces)."""
    if (value.isalnum() and value.isascii()) or _NOTHING_TO_ESCAPE(value) is not None:
        return value
    return quote(value, safe=_SAFE, errors="surrogatepass")


def query(params: Iterable[tuple[str, object]]) -> str:
    """``name=value`` pairs joined by ``&``; pairs whose value is ``None`` or ``""`` are left out."""
    return "&".join(
        f"{name}={encode(str(value))}" for name, value in params if value is not None and value != ""
    )
