"""Retry delays: exponential backoff with jitter, as an immutable value.

``Backoff(base, cap)`` describes attempt 0; ``next()`` is the policy after one more failure
and ``reset()`` the policy after a success. ``delay()`` draws the wait before the next
attempt: uniform in ``[ceiling / 2, ceiling]`` where ``ceiling = min(cap, base * 2**attempt)``,
so delays grow geometrically and concurrent clients spread out, yet never wait less than half
the nominal delay.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

# The SDK's own generator (the application's ``random`` sequence stays untouched).
_random = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random.seed)

__all__ = ["Backoff"]

_MAX_ATTEMPT = 30  # 2**30 * base is far beyond any cap; stops the exponent growing forever


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 1.0
    cap: float = 60.0
    attempt: int = 0

    def ceiling(self) -> float:
        """The largest delay of this attempt."""
        return min(self.cap, self.base * 2.0**self.attempt)

    def delay(self, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling()
        return (rng or _random).uniform(ceiling / 2, ceiling)

    def next(self) -> Backoff:
        return Backoff(self.base, self.cap, min(self.attempt + 1, _MAX_ATTEMPT))

    def reset(self) -> Backoff:
        return Backoff(self.base, self.cap, 0)
