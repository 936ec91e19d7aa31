"""The bucketing hash to the last bit, and the digest limits that replace the float comparison
(evaluation spec §2.1, §2.9)."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest

from kameleoon._engine.hashing import INV_2_256, bucket, container_text, limit_for

from ._support import bucket_of, exact_bucket, nearest_double_ratio

TOP = (1 << 256) - 1


# -- the worked examples of §2.9 --------------------------------------------------------------
WORKED = [
    ("visitor_42502", "b9a144da", "50b0ee05", 0.7251170190649187),
    ("visitor_429002", "ff13ac4d", "c9e6b6a8", 0.9963939370414704),
    ("visitor_8501", "16be4881", "42dd432c", 0.0888409916993196),
    ("user-100501", "81e53208", "e5ad74a9", 0.5074034948551689),
    ("user-100502", "158cf4f6", "07822074", 0.08418208145224548),
    ("user-1009002", "0f0b9ad7", "87219700", 0.058770825976188344),
    ("visitor_7502", "f847053c", "e5f020e3", 0.9698336862471478),
    ("anon-77502", "ed57e617", "f72a2ce9", 0.9271224790989328),
    ("crm-555502", None, None, 0.24294988733565803),
    ("crm-5559002", None, None, 0.802950889570727),
    ("zed6011700000000", "38d2f8ef", "6c228c28", 0.22196918336004487),
    ("zed91011700000000", "db53a64a", "2567eb66", 0.8567451411777018),
]


@pytest.mark.parametrize(("text", "head", "tail", "value"), WORKED)
def test_worked_example_hashes(text: str, head: str | None, tail: str | None, value: float) -> None:
    """Every hash of the worked examples has the documented digest and exact double value."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    if head is not None:
        assert digest.startswith(head)
        assert digest.endswith(tail)
    assert bucket(text) == value
    assert exact_bucket(text) == value


@pytest.mark.parametrize(
    ("container", "respool", "text"),
    [
        (502, None, "502"),
        (502, 0, "502"),
        (502, 0.0, "502"),
        (502, "", "502"),
        (502, False, "502"),
        (601, 1700000000, "6011700000000"),
        (601, 1700000000.0, "6011700000000.0"),
        (601, 1e16, "6011e+16"),
        (601, 1.5, "6011.5"),
        (601, True, "601True"),
        (601, "abc", "601abc"),
        (0, None, "0"),
        (-5, None, "-5"),
        (2.5, None, "2.5"),
        (None, None, "None"),
    ],
)
def test_container_text(container: Any, respool: Any, text: str) -> None:
    """Hash suffix = str(container) + str(respool) only when the respool time is truthy."""
    assert container_text(container, respool) == text


def test_bucket_hashes_utf8() -> None:
    """The text is hashed as UTF-8."""
    assert bucket("é502") == exact_bucket("é502")
    assert bucket("é502") == nearest_double_ratio(int(hashlib.sha256("é502".encode()).hexdigest(), 16))


# -- the 256-bit -> double conversion -----------------------------------------------------------
@pytest.mark.parametrize(
    "n",
    [
        0,
        1,
        2,
        (1 << 53) - 1,
        1 << 53,
        (1 << 53) + 1,
        (1 << 54) + 2,  # a tie between an even and an odd mantissa: down to the even one
        (1 << 54) + 6,  # a tie between an odd and an even mantissa: up to the even one
        1 << 200,
        (1 << 255) + (1 << 202),  # exact tie at the top binade, lower mantissa even -> stays
        (1 << 255) + (3 << 202),  # exact tie, lower mantissa odd -> rounds up
        (1 << 255) + (1 << 202) + 1,  # just above a tie -> rounds up
        TOP - (1 << 202),  # tie below 2**256 with odd lower mantissa -> 1.0
        TOP - (1 << 202) - 1,  # just below that tie -> stays below 1.0
        TOP,
    ],
)
def test_conversion_rounds_half_to_even(n: int) -> None:
    """``bucket_bytes`` converts the digest with correct rounding (ties to even), like the spec."""
    assert bucket_of(n) == nearest_double_ratio(n)


def test_one_is_reachable_only_at_the_very_top() -> None:
    """1.0 only for N within 2**202 of 2**256; just below, the value is the largest double < 1."""
    assert bucket_of(TOP) == 1.0
    assert bucket_of((1 << 256) - (1 << 202)) == 1.0
    below = bucket_of((1 << 256) - (1 << 202) - 1)
    assert below == math.nextafter(1.0, 0.0)


def test_inverse_scale_is_exact() -> None:
    """The scale factor is exactly 2**-256."""
    assert math.ldexp(1.0, -256) == INV_2_256


# -- digest limits ------------------------------------------------------------------------------
def limit_int(threshold: float | int) -> int | None:
    limit = limit_for(threshold)
    return None if limit is None else int.from_bytes(limit, "big")


THRESHOLDS = [
    0.3,
    0.8,
    0.34,
    0.67,
    0.34 + 0.33,
    0.5,
    0.1,
    1 / 3,
    0.9999999999999999,
    1e-300,
    5e-324,
    2.0**-256,
    2.0**-255,
    3 * 2.0**-256,
    math.ldexp(1.0, -200),
    0.7251170190649187,  # a hash value itself: the equality boundary is inclusive
]


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_limit_is_the_largest_qualifying_digest(threshold: float) -> None:
    """``limit_for(t)`` is the largest N whose double value is <= t (so ``N <= L`` == ``h <= t``)."""
    limit = limit_int(threshold)
    assert limit is not None
    assert nearest_double_ratio(limit) <= threshold
    assert limit == TOP or nearest_double_ratio(limit + 1) > threshold
    for n in (limit - 1, limit, limit + 1):
        if 0 <= n <= TOP:
            assert (bucket_of(n) <= threshold) == (n <= limit)


def test_limit_of_a_hash_value_includes_that_hash() -> None:
    """The inclusive boundary: a digest whose value equals the threshold qualifies."""
    digest = hashlib.sha256(b"visitor_42502").digest()
    assert digest <= limit_for(0.7251170190649187)  # type: ignore[operator]
    assert digest > limit_for(math.nextafter(0.7251170190649187, 0.0))  # type: ignore[operator]


@pytest.mark.parametrize("threshold", [1.0, 1, 1.5, 2, 10**400, math.inf, True])
def test_limit_at_or_above_one_is_everything(threshold: float | int) -> None:
    """Thresholds >= 1 let every digest in (the value 1.0 included)."""
    assert limit_int(threshold) == TOP


@pytest.mark.parametrize("threshold", [0, 0.0, False])
def test_limit_at_zero_is_only_the_zero_digest(threshold: float | int) -> None:
    """A threshold of 0 lets only the all-zero digest in."""
    assert limit_int(threshold) == 0


@pytest.mark.parametrize("threshold", [-0.1, -1, -math.inf, math.nan, -(10**400)])
def test_limit_below_zero_or_nan_is_nothing(threshold: float | int) -> None:
    """Negative and NaN thresholds admit no digest at all (``None``)."""
    assert limit_for(threshold) is None


def test_limit_is_32_big_endian_bytes() -> None:
    """Limits are 32-byte strings, comparable with SHA-256 digests."""
    for threshold in (0, 0.5, 1):
        limit = limit_for(threshold)
        assert isinstance(limit, bytes)
        assert len(limit) == 32
    # 0.5 * 2**256 has an even mantissa: the tie just above it still converts to 0.5
    assert limit_for(0.5) == ((1 << 255) + (1 << 202)).to_bytes(32, "big")
