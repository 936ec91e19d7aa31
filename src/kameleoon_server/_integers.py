"""Integers read from text (query parameters, condition fields): ASCII digits only; and the
JSON type checks where ``bool``, a subclass of ``int``, must not pass for a number.

``int`` alone also accepts "1_0", "+1" and non-ASCII digits, and ``str.isdigit`` accepts "²",
which ``int`` then refuses: neither is a safe check for user input.
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeGuard

MAX_ID: Final = 2**63 - 1  # ids and custom data indexes are stored as signed 64-bit integers
_INTEGER: Final = re.compile(r"-?[0-9]{1,19}")


def parse_int(text: str, lowest: int = -MAX_ID - 1, highest: int = MAX_ID) -> int | None:
    """The integer ``text`` holds (ASCII digits, an optional minus sign, surrounding spaces
    ignored) when it lies within ``lowest``..``highest``, else None."""
    stripped = text.strip()
    value = int(stripped) if _INTEGER.fullmatch(stripped) else None
    return value if value is not None and lowest <= value <= highest else None


def is_int(value: Any) -> TypeGuard[int]:
    """Whether a decoded JSON value is an integer (``true`` and ``false`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[int | float]:
    """Whether a decoded JSON value is a number (``true`` and ``false`` are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
