"""Bucketing hash: SHA-256 of the visitor code and a container id, as a double in [0, 1).

The 256-bit digest is converted to a double with correct rounding (round half to even over
all 256 bits), then scaled by 2**-256, which is exact. The fast path converts only the first
64 bits and folds the remaining 192 bits into a sticky bit; it is exact whenever the first
word has at least 55 significant bits, which is checked, and falls back to the full integer
otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

__all__ = ["bucket", "container_text"]


def _pick_sha256() -> Callable[[bytes], Any]:
    # The interpreter's own SHA-256 is faster than OpenSSL's for short inputs.
    for module_name in ("_sha2", "_sha256"):
        try:
            module = __import__(module_name)
            return module.sha256  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256


_sha256 = _pick_sha256()
_first_word = struct.Struct(">Q").unpack_from
_TWO_POW_54 = 1 << 54
_INV_2_64 = 2.0**-64
_INV_2_256 = 2.0**-256
_ZERO_TAIL = bytes(24)


def bucket(text: str) -> float:
    """Returns SHA-256(UTF-8 of ``text``) as a number in [0, 1], correctly rounded."""
    digest = _sha256(text.encode("utf-8", "surrogatepass")).digest()
    hi: int = _first_word(digest)[0]
    if hi >= _TWO_POW_54:
        rounded = float(hi | 1)  # sticky bit: the 192 low bits are (almost surely) not all zero
        if rounded == float(hi) or digest[8:] != _ZERO_TAIL:
            return rounded * _INV_2_64
    return float(int.from_bytes(digest, "big")) * _INV_2_256


def container_text(container: object, respool: object) -> str:
    """The text appended to the visitor code: ``str(container)`` then ``str(respool)`` if truthy."""
    return f"{container}{respool}" if respool else f"{container}"
