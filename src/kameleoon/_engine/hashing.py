"""Bucketing hash: SHA-256 of the visitor code and a container id, as a double in [0, 1).

``int -> float`` conversion in CPython rounds correctly (half to even over all 256 bits), and
scaling by 2**-256 is exact, so the result is the correctly rounded value of N / 2**256.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

__all__ = ["INV_2_256", "bucket", "bucket_bytes", "container_text", "limit_for", "sha256"]


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


sha256 = _pick_sha256()
INV_2_256 = 2.0**-256


def bucket_bytes(data: bytes, _sha: Any = sha256, _from: Any = int.from_bytes) -> float:
    """SHA-256 of ``data`` read as a big-endian integer N, returned as N / 2**256."""
    return float(_from(_sha(data).digest(), "big")) * INV_2_256


def bucket(text: str) -> float:
    """SHA-256 of the UTF-8 of ``text``, as a number in [0, 1] (1 only for N within 2**202 of 2**256)."""
    return bucket_bytes(text.encode("utf-8", "surrogatepass"))


def container_text(container: object, respool: object) -> str:
    """The text appended to the visitor code: ``str(container)`` then ``str(respool)`` if truthy."""
    return f"{container}{respool}" if respool else f"{container}"


_TOP = (1 << 256) - 1


def limit_for(threshold: float | int) -> bytes | None:
    """The 32-byte big-endian ``L`` such that, for every digest ``d``,
    ``d <= L`` exactly when ``bucket_bytes``'s value for ``d`` is ``<= threshold``.

    ``None`` means no digest qualifies (a negative or NaN threshold). Comparing digests with
    this limit gives the same answers as comparing the correctly rounded doubles, without
    converting 256-bit integers on the hot path.
    """
    largest = _largest_integer_at_most(threshold)
    if largest < 0:
        return None
    return min(largest, _TOP).to_bytes(32, "big")


def _largest_integer_at_most(threshold: float | int) -> int:
    """Largest N >= 0 with float(N) * 2**-256 <= threshold (-1 when there is none)."""
    if isinstance(threshold, int) and not isinstance(threshold, bool):
        return _TOP if threshold >= 1 else (0 if threshold == 0 else -1)
    value = float(threshold)
    if value != value or value < 0:  # NaN or negative: nothing is below
        return -1
    if value >= 1:
        return _TOP
    if value == 0:
        return 0  # only N = 0 converts to 0.0
    scaled = value * 2.0**256  # exact: a power-of-two scaling of a double below 1
    ulp = math.ulp(scaled)
    # Every N below scaled + ulp/2 rounds to scaled or less; at the midpoint, ties go to even.
    midpoint = Fraction(scaled) + Fraction(ulp) / 2
    if midpoint.denominator != 1:
        return math.floor(midpoint)
    even = int(Fraction(scaled) / Fraction(ulp)) % 2 == 0
    return int(midpoint) if even else int(midpoint) - 1
