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
    "all_set",
    "bit",
    "family_bits",
    "is_set",
    "renumber",
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


def is_set(mask: int, family: int, position: int) -> bool:
    return bool(mask >> (4 + 4 * position + family) & 1)


def family_bits(family: int, count: int) -> int:
    """The bits of positions ``0 .. count - 1`` of ``family``."""
    return ((1 << (4 * count)) - 1) // 15 << (4 + family)


def all_set(mask: int, family: int, count: int) -> bool:
    """Whether the ``count`` items of ``family`` are all unsent."""
    every = family_bits(family, count)
    return mask & every == every


def renumber(mask: int, family: int, count: int, kept: list[int]) -> int:
    """``mask`` after the ``count`` items of ``family`` were replaced by those at positions
    ``kept`` (ascending): each kept item's bit moves to its new position, the others' go."""
    new = mask & ~family_bits(family, count)
    for position, old in enumerate(kept):
        if is_set(mask, family, old):
            new |= bit(family, position)
    return new
