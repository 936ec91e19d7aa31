"""In-process counters, served at ``/api/stats`` and ``/metrics``."""

from __future__ import annotations

from collections import Counter


class Counters:
    """Named monotonically increasing integers (plus a few gauges set directly)."""

    def __init__(self) -> None:
        self._values: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        self._values[name] += amount

    def set(self, name: str, value: int) -> None:
        self._values[name] = value

    def get(self, name: str) -> int:
        return self._values[name]

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self._values.items()))


def prometheus(values: dict[str, int]) -> str:
    """Counters in the Prometheus text exposition format."""
    lines = []
    for name, value in sorted(values.items()):
        metric = "kameleoon_" + "".join(ch if ch.isalnum() else "_" for ch in name)
        lines.append(f"{metric} {value}")
    return "\n".join(lines) + "\n"
