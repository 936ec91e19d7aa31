"""Query-string encoding as the protocol uses it (protocol spec §1.4)."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["encode", "query", "well_formed"]

# Unreserved as in quote (A-Z a-z 0-9 _ . - ~) and, like encodeURIComponent, ( ) * ! '
_NOTHING_TO_ESCAPE = re.compile(r"[A-Za-z0-9_.\-~()*!']*").fullmatch  # most values: ids, numbers
# What each byte becomes (indexed by the byte, once the UTF-8 is read as Latin-1): itself when
# safe, else %XX. One str.translate call instead of urllib's Python loop over the bytes.
_BYTES = [chr(b) if _NOTHING_TO_ESCAPE(chr(b)) else f"%{b:02X}" for b in range(256)]


_SURROGATE = re.compile("[\ud800-\udfff]")


def encode(value: str) -> str:
    """Percent-encodes like JavaScript's ``encodeURIComponent`` (UTF-8, ``%20`` for spaces):
    the text of ``urllib.parse.quote(value, safe="()*!'")``. A lone surrogate, which has no
    UTF-8 form, is sent as U+FFFD, as the WHATWG URL standard does (its surrogate bytes would
    not be UTF-8, and a collector would drop the line)."""
    if (value.isalnum() and value.isascii()) or _NOTHING_TO_ESCAPE(value) is not None:
        return value
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        data = well_formed(value).encode("utf-8")
    return data.decode("latin-1").translate(_BYTES)


def well_formed(text: str) -> str:
    """``text`` with each lone surrogate (which has no UTF-8 form) replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def query(params: Iterable[tuple[str, object]]) -> str:
    """``name=value`` pairs joined by ``&``; pairs whose value is ``None`` or ``""`` are left out."""
    return "&".join(
        f"{name}={encode(str(value))}" for name, value in params if value is not None and value != ""
    )
