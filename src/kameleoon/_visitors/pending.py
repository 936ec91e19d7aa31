"""Bit mask of a visitor's unsent items.

Bits 0-3 are the single-valued kinds; items held in sequences (custom data, page views,
conversions, assignments) get one bit per position, interleaved so each family can grow
without renumbering the others: bit ``4 + 4 * position + family``.
"""

from __future__ import annotations

__all__ = [
    "ASSIGNMENT",
    "BROWSER",
    "CONVERSION",
    "CUSTOM",
    "DEVICE",
    "GEOLOCATION",
    "OPERATING_SYSTEM",
    "PAGE",
    "bit",
]

DEVICE = 1
BROWSER = 2
GEOLOCATION = 4
OPERATING_SYSTEM = 8

CUSTOM = 0
PAGE = 1
CONVERSION = 2
ASSIGNMENT = 3


def bit(family: int, position: int) -> int:
    """The mask bit of the item at ``position`` in ``family`` (CUSTOM, PAGE, ...)."""
    return 1 << (4 + 4 * position + family)
