"""One visitor's data, laid out compactly (a few hundred bytes for a typical visitor).

Field layout (the targeting conditions of :mod:`kameleoon._engine` read it directly):

* ``keys``/``values``: custom data indexes in first-insertion order, and what is stored at
  each: the single value itself when a ``CustomData`` holds exactly one (non-tuple) value,
  else the tuple of values. :meth:`Visitor.custom_values` always returns a tuple.
* ``browser`` (a ``BrowserType``) and ``browser_version``; ``device`` (a ``DeviceType``);
  ``os`` (an ``OperatingSystemType``); ``geo`` (the last ``Geolocation``): the last data of
  each kind, or ``None``.
* ``cookie``: the dict of the last ``Cookie``; ``ua``: the last user agent string.
* ``pages``: flat list ``[PageView, count, first_seen_ms, ...]``, one triple per URL in
  first-insertion order.
* ``conversions``: tuple of ``Conversion`` in insertion order.
* ``assigned``: experiment id -> :data:`Assignment`, in first-assignment order, or ``None``.
* ``missed``: markers of the rules whose exposure draw misses for the visitor's own code (see
  :func:`kameleoon._engine.passes._note_miss`): deciding them again needs no hashing.
* ``pending``: bit mask of the items not sent yet (see :mod:`kameleoon._visitors.pending`).
* ``extra``: the rarely used rest (:class:`Extra`), or ``None``.
* ``last``: last activity, in the store's clock (seconds), to the store's touch granularity.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Assignment", "Extra", "Visitor", "pack_values"]

# (variation id, rule type, assigned at (epoch seconds; infinite for a remote event without a
# time), position in first-assignment order, the store's generation when it was queued for
# sending (-1: never), and the VariationEntry drawn when the visitor code itself was hashed
# (else None): deciding the rule that entry belongs to again, for the same code, gives the
# same decision without hashing)
Assignment = tuple[Any, str, float, int, int, Any]


class Extra:
    """Consent, cross-device mapping and remote visit history of a visitor."""

    __slots__ = ("consent", "kcs", "linked", "mapping", "mapping_index", "visits")

    def __init__(self) -> None:
        self.consent = False
        self.mapping: str | None = None  # the mapping identifier (the code that is hashed)
        self.mapping_index: Any = None  # the custom data index stored as mapping identifier
        self.visits: tuple[Any, ...] | None = None  # previous visits' start (ms), newest first
        self.kcs: dict[Any, Any] | None = None  # key moment -> goal -> score
        # the codes that share this record since a link, latest last (the store moves them
        # together: see VisitorStore.link)
        self.linked: tuple[str, ...] = ()


def pack_values(values: tuple[Any, ...]) -> Any:
    """What the record stores for ``values``: a lone non-tuple value is stored bare."""
    if len(values) == 1 and values[0].__class__ is not tuple:
        return values[0]
    return values


class Visitor:
    """Mutable data of one visitor; shared by two codes once they are linked."""

    __slots__ = (
        "assigned",
        "browser",
        "browser_version",
        "conversions",
        "cookie",
        "device",
        "extra",
        "geo",
        "keys",
        "last",
        "missed",
        "os",
        "pages",
        "pending",
        "ua",
        "values",
    )

    def __init__(self, now: float) -> None:
        self.last = now
        self.keys: tuple[Any, ...] = ()
        self.values: tuple[Any, ...] = ()
        self.browser: Any = None
        self.browser_version: Any = None
        self.device: Any = None
        self.os: Any = None
        self.geo: Any = None
        self.cookie: dict[Any, Any] | None = None
        self.ua: str | None = None
        self.pages: list[Any] | None = None
        self.conversions: tuple[Any, ...] = ()
        self.assigned: dict[Any, Assignment] | None = None
        self.missed: tuple[object, ...] = ()
        self.pending = 0
        self.extra: Extra | None = None

    def custom_values(self, index: object) -> tuple[Any, ...] | None:
        """The values stored at ``index`` (a tuple), or ``None`` when the index has no data."""
        keys = self.keys
        if index in keys:
            stored = self.values[keys.index(index)]
            return stored if stored.__class__ is tuple else (stored,)
        return None

    def custom_items(self) -> list[tuple[Any, tuple[Any, ...]]]:
        """``(index, values)`` of every custom data, in first-insertion order of the indexes."""
        return [(key, self.custom_values(key) or ()) for key in self.keys]

    def extras(self) -> Extra:
        """The :class:`Extra` part, created on first use."""
        extra = self.extra
        if extra is None:
            extra = self.extra = Extra()
        return extra

    @property
    def mapping(self) -> str | None:
        extra = self.extra
        return extra.mapping if extra is not None else None

    @property
    def consent(self) -> bool:
        extra = self.extra
        return extra.consent if extra is not None else False

    @property
    def visits(self) -> tuple[Any, ...] | None:
        extra = self.extra
        return extra.visits if extra is not None else None

    @property
    def kcs(self) -> dict[Any, Any] | None:
        extra = self.extra
        return extra.kcs if extra is not None else None
