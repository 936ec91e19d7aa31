"""Integers read from text (query parameters, condition fields): ASCII digits only.

``int`` alone also accepts "1_0", "+1" and non-ASCII digits, and ``str.isdigit`` accepts "²",
which ``int`` then refuses: neither is a safe check for user input.
"""

from __future__ import annotations

import re
from typing import Final

MAX_ID: Final = 2**63 - 1  # ids and custom data indexes are stored as signed 64-bit integers
_INTEGER: Final = re.compile(r"-?[0-9]{1,19}")


def parse_int(text: str, lowest: int = -MAX_ID - 1, highest: int = MAX_ID) -> int | None:
    """The integer ``text`` holds (ASCII digits, an optional minus sign, surrounding spaces
    ignored) when it lies within ``lowest``..``highest``, else None."""
    stripped = text.strip()
    value = int(stripped) if _INTEGER.fullmatch(stripped) else None
    return value if value is not None and lowest <= value <= highest else None
