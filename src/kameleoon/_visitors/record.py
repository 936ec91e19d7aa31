"""One visitor's data, laid out compactly (a few hundred bytes for a typical visitor).

Field layout (read directly by the targeting conditions of :mod:`kameleoon._engine`):

* ``custom``: flat tuple ``(index, values, index, values, ...)`` in first-insertion order of
  each index; ``values`` is the tuple given to ``CustomData``.
* ``browser``, ``device``, ``os``, ``geo``: the last object added of each kind, or ``None``.
* ``cookie``: the dict of the last ``Cookie`` added; ``ua``: the last user agent string.
* ``pages``: flat list ``[PageView, count, first_seen_ms, ...]``, one triple per URL in
  first-insertion order.
* ``conversions``: tuple of ``Conversion`` in insertion order.
* ``assigned``: experiment id -> ``(variation_id, rule_type, assigned_at_seconds, position)``,
  in first-assignment order, or ``None``.
* ``pending``: bit mask of the items not sent yet (see :mod:`kameleoon._visitors.pending`).
* ``consent``: legal consent given; ``mapping``: cross-device mapping identifier.
* ``visits``: previous visits' start times (ms, most recent first); ``kcs``: key moment ->
  goal -> score.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Assignment", "Visitor"]

# (variation id, rule type, assigned at (epoch seconds), position in first-assignment order)
Assignment = tuple[Any, str, float, int]


class Visitor:
    """Mutable data of one visitor; shared by two codes once they are linked."""

    __slots__ = (
        "assigned",
        "browser",
        "consent",
        "conversions",
        "cookie",
        "custom",
        "device",
        "geo",
        "kcs",
        "last",
        "mapping",
        "os",
        "pages",
        "pending",
        "ua",
        "visits",
    )

    def __init__(self, now: float) -> None:
        self.last = now
        self.custom: tuple[Any, ...] = ()
        self.browser: Any = None
        self.device: Any = None
        self.os: Any = None
        self.geo: Any = None
        self.cookie: dict[Any, Any] | None = None
        self.ua: str | None = None
        self.pages: list[Any] | None = None
        self.conversions: tuple[Any, ...] = ()
        self.assigned: dict[Any, Assignment] | None = None
        self.pending = 0
        self.consent = False
        self.mapping: str | None = None
        self.visits: tuple[Any, ...] | None = None
        self.kcs: dict[Any, Any] | None = None

    def custom_values(self, index: object) -> tuple[Any, ...] | None:
        """The values stored at ``index``, or ``None`` when the index has no data."""
        custom = self.custom
        if index in custom:
            position = custom.index(index)
            if not position & 1:
                return custom[position + 1]  # type: ignore[no-any-return]
            for position in range(0, len(custom), 2):  # an index equal to a values tuple
                if custom[position] == index:
                    return custom[position + 1]  # type: ignore[no-any-return]
        return None
