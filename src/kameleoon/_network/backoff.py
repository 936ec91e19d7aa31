"""Retry delays: exponential backoff with full jitter, as an immutable value."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """``delay()`` of attempt ``n`` is uniform in [base/2, min(cap, base * 2**n)]."""

    base: float = 1.0
    cap: float = 60.0
    attempt: int = 0

    def delay(self) -> float:
        ceiling = min(self.cap, self.base * (2**self.attempt))
        return random.uniform(min(self.base / 2, ceiling), ceiling)

    def next(self) -> Backoff:
        return Backoff(self.base, self.cap, min(self.attempt + 1, 30))

    def reset(self) -> Backoff:
        return Backoff(self.base, self.cap, 0)
