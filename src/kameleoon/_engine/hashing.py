"""Bucketing hash: SHA-256 of the visitor code and a container id, as a double in [0, 1).

``int -> float`` conversion in CPython rounds correctly (half to even over all 256 bits), and
scaling by 2**-256 is exact, so the result is the correctly rounded value of N / 2**256.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["bucket", "bucket_bytes", "container_text"]


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
_INV_2_256 = 2.0**-256


def bucket_bytes(data: bytes, _sha: Any = _sha256, _from: Any = int.from_bytes) -> float:
    """SHA-256 of ``data`` read as a big-endian integer N, returned as N / 2**256."""
    return float(_from(_sha(data).digest(), "big")) * _INV_2_256


def bucket(text: str) -> float:
    """SHA-256 of the UTF-8 of ``text``, as a number in [0, 1] (1 only for N within 2**202 of 2**256)."""
    return bucket_bytes(text.encode("utf-8", "surrogatepass"))


def container_text(container: object, respool: object) -> str:
    """The text appended to the visitor code: ``str(container)`` then ``str(respool)`` if truthy."""
    return f"{container}{respool}" if respool else f"{container}"
