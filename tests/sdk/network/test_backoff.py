"""Retry delays (kameleoon._network.backoff)."""

from __future__ import annotations

import random

import pytest

from kameleoon._network.backoff import Backoff


def test_ceilings_double_up_to_the_cap() -> None:
    policy, ceilings = Backoff(base=0.5, cap=6.0), []
    for _ in range(8):
        ceilings.append(policy.ceiling())
        policy = policy.next()
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0, 6.0, 6.0]


@pytest.mark.parametrize("attempt", [0, 1, 3, 10, 30])
def test_delay_is_between_half_the_ceiling_and_the_ceiling(attempt: int) -> None:
    policy = Backoff(base=1.0, cap=60.0, attempt=attempt)
    rng = random.Random(attempt)
    delays = [policy.delay(rng) for _ in range(200)]
    assert all(policy.ceiling() / 2 <= d <= policy.ceiling() for d in delays)
    assert len(set(delays)) > 100  # jittered, not a constant


def test_reset_returns_to_the_first_attempt() -> None:
    policy = Backoff(base=2.0, cap=10.0).next().next().next()
    assert policy.attempt == 3
    assert policy.reset() == Backoff(base=2.0, cap=10.0)


def test_attempt_counter_is_bounded() -> None:
    """The exponent stops growing: no overflow after any number of failures."""
    policy = Backoff(base=1.0, cap=60.0)
    for _ in range(10_000):
        policy = policy.next()
    assert policy.attempt == 30
    assert policy.ceiling() == 60.0


def test_same_seed_same_delays() -> None:
    policy = Backoff(base=1.0, cap=60.0, attempt=4)
    assert policy.delay(random.Random(7)) == policy.delay(random.Random(7))
