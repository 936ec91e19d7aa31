"""Applies ``add_data`` items to a visitor record (evaluation spec §4.2-§4.4).

Every handler replaces or appends the item and marks it unsent in ``visitor.pending``,
except data that is never transmitted (cookies, user agents, local-only custom data).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from kameleoon._engine.model import Configuration
from kameleoon._visitors import pending
from kameleoon._visitors.record import Visitor
from kameleoon._visitors.store import VisitorStore
from kameleoon.data import (
    Browser,
    Conversion,
    Cookie,
    CustomData,
    Device,
    Geolocation,
    OperatingSystem,
    PageView,
    UniqueIdentifier,
    UserAgent,
)

__all__ = [
    "MAX_CONVERSIONS",
    "MAX_CUSTOM_DATA",
    "MAX_PAGES",
    "DataContext",
    "add_conversion",
    "add_items",
    "add_page",
    "count_drops",
    "now_ms",
    "store_custom_data",
]


def now_ms() -> float:
    """Wall-clock milliseconds, whole (kept as a float: 8 bytes less per page view)."""
    return float(int(time.time() * 1000))


class DataContext:
    """What the handlers need besides the record: the store, the code, the configuration."""

    __slots__ = ("code", "config", "log", "store", "visitor")

    def __init__(
        self, store: VisitorStore, code: str, visitor: Visitor, config: Configuration, log: logging.Logger
    ) -> None:
        self.store = store
        self.code = code
        self.visitor = visitor
        self.config = config
        self.log = log


def store_custom_data(
    visitor: Visitor, index: Any, values: tuple[Any, ...], unsent: bool, mapping: bool = False
) -> bool:
    """Stores ``values`` at ``index`` (replacing, position kept) and sets its pending bit;
    ``mapping``: stored as the cross-device mapping identifier (re-sent with every request).
    ``False`` when a new index was left out by the visitor's bound (:data:`MAX_CUSTOM_DATA`)."""
    keys = visitor.keys
    stored = values[0] if len(values) == 1 and values[0].__class__ is not tuple else values  # pack_values
    if index in keys:
        position = keys.index(index)
        current = list(visitor.values)
        current[position] = stored
        visitor.values = tuple(current)
    else:
        position = len(keys)
        if position >= MAX_CUSTOM_DATA:
            return False
        visitor.keys = (*keys, index)
        visitor.values = (*visitor.values, stored)
    flag = 1 << (_CUSTOM_BIT + 4 * position)
    visitor.pending = visitor.pending | flag if unsent else visitor.pending & ~flag
    extra = visitor.extra
    if mapping:
        visitor.extras().mapping_index = index
    elif extra is not None and extra.mapping_index is not None and extra.mapping_index == index:
        extra.mapping_index = None
    return True


MAX_PAGES = 1000  # distinct page URLs kept per visitor (the oldest sent ones make room)
MAX_CONVERSIONS = 1000  # conversions kept per visitor (see _compact_conversions)
MAX_CUSTOM_DATA = 1000  # distinct custom data indexes per visitor (a new one past it is left out)

_CUSTOM_BIT = pending.bit(pending.CUSTOM, 0).bit_length() - 1
_PAGE_BIT = pending.bit(pending.PAGE, 0).bit_length() - 1
_CONVERSION_BIT = pending.bit(pending.CONVERSION, 0).bit_length() - 1


def _custom_data(ctx: DataContext, item: CustomData) -> None:
    values: tuple[Any, ...] = item.values  # (anything, in practice: users may set it)
    visitor, config = ctx.visitor, ctx.config
    extra = visitor.extra
    if (
        values.__class__ is tuple
        and len(values) == 1
        and config.mapping_index is None
        and not config.local_only
        and (extra is None or extra.mapping_index is None)
    ):
        # The usual item (one value, no local-only index, no mapping identifier): what
        # store_custom_data does, without its general cases.
        stored, index, keys = values[0], item.id, visitor.keys
        if stored.__class__ is not tuple:
            if index in keys:
                position = keys.index(index)
                current = visitor.values
                if current[position] is not stored:
                    visitor.values = (*current[:position], stored, *current[position + 1 :])
            else:
                position = len(keys)
                if position >= MAX_CUSTOM_DATA:
                    count_drops(ctx.store, 1)
                    return
                visitor.keys = (*keys, index)
                visitor.values = (*visitor.values, stored)
            visitor.pending |= 1 << (_CUSTOM_BIT + 4 * position)
            return
    _custom_data_general(ctx, item.id, values if values.__class__ is tuple else tuple(values))


def _custom_data_general(ctx: DataContext, index: Any, values: tuple[Any, ...]) -> None:
    config = ctx.config
    mapping_index = config.mapping_index
    is_mapping = (
        mapping_index is not None
        and index == mapping_index
        and len(values) > 0
        and isinstance(values[0], str)
        and values[0] != ""
    )
    # a mapping identifier is sent even from a local-only index
    unsent = len(values) > 0 and (is_mapping or not (config.local_only and config.is_local_only(index)))
    visitor = ctx.visitor
    if not store_custom_data(visitor, index, values, unsent, is_mapping):
        count_drops(ctx.store, 1)
        return
    if is_mapping:
        visitor.extras().mapping = ctx.code
        if values[0] != ctx.code:
            # the linked code takes the anonymous code's unique-identifier flag, once (spec §4.4)
            ctx.store.link(values[0], visitor, ctx.code)
            ctx.store.set_unique_identifier(values[0], ctx.store.is_unique_identifier(ctx.code))


def _browser(ctx: DataContext, item: Browser) -> None:
    visitor = ctx.visitor
    visitor.browser = item.browser_type
    visitor.browser_version = item.version
    visitor.pending |= pending.BROWSER


def _device(ctx: DataContext, item: Device) -> None:
    visitor = ctx.visitor
    visitor.device = item.device_type
    visitor.pending |= pending.DEVICE


def _operating_system(ctx: DataContext, item: OperatingSystem) -> None:
    ctx.visitor.os = item.os_type
    ctx.visitor.pending |= pending.OPERATING_SYSTEM


def _geolocation(ctx: DataContext, item: Geolocation) -> None:
    ctx.visitor.geo = item
    ctx.visitor.pending |= pending.GEOLOCATION


def _cookie(ctx: DataContext, item: Cookie) -> None:
    cookies: Any = item.cookies
    if not isinstance(cookies, Mapping):
        ctx.log.warning("Cookie data must hold a dict of cookies, got %r: ignored", type(cookies).__name__)
        return
    ctx.visitor.cookie = dict(cookies)


def _user_agent(ctx: DataContext, item: UserAgent) -> None:
    value: Any = item.value
    if not isinstance(value, str):
        ctx.log.warning("UserAgent data must hold a string, got %r: ignored", type(value).__name__)
        return
    ctx.visitor.ua = value


def _page_view(ctx: DataContext, item: PageView) -> None:
    if not item.url:
        ctx.log.error("a PageView needs a non-empty URL: ignored")
        return
    dropped = add_page(ctx.visitor, item, 1, None, True)
    if dropped:
        count_drops(ctx.store, dropped)


def add_page(visitor: Visitor, page: PageView, count: int, seen_ms: float | None, unsent: bool) -> int:
    """Adds ``count`` views of ``page``: a new URL is appended (first seen at ``seen_ms``, or
    now when ``None``), a known one updated in place. Returns how many page entries the
    visitor's bound (:data:`MAX_PAGES`) dropped."""
    pages = visitor.pages
    if pages is None:
        pages = visitor.pages = []
    url = page.url
    dropped = 0
    for position in range(0, len(pages), 3):
        if pages[position].url == url:
            pages[position] = page
            pages[position + 1] += count
            break
    else:
        if len(pages) >= 3 * MAX_PAGES:
            dropped, pages = _make_room_for_a_page(visitor, pages)
            if dropped < 0:
                return 1  # every entry is still to be sent: the new one is left out
        position = len(pages)
        pages += (page, count, float(int(time.time() * 1000)) if seen_ms is None else seen_ms)
    if unsent:
        visitor.pending |= 1 << (_PAGE_BIT + 4 * (position // 3))
    return dropped


def _make_room_for_a_page(visitor: Visitor, pages: list[Any]) -> tuple[int, list[Any]]:
    """Drops the oldest tenth of a full visitor's page entries among those already sent, into
    a new list (targeting reads the old one without a lock). Returns how many, and the list;
    -1 when none was sent yet."""
    mask, count = visitor.pending, len(pages) // 3
    if pending.all_set(mask, pending.PAGE, count):
        return -1, pages
    sent = [p for p in range(count) if not pending.is_set(mask, pending.PAGE, p)][: max(1, MAX_PAGES // 10)]
    gone = set(sent)
    kept = [p for p in range(count) if p not in gone]
    visitor.pages = pages = [value for p in kept for value in pages[3 * p : 3 * p + 3]]
    visitor.pending = pending.renumber(mask, pending.PAGE, count, kept)
    return len(sent), pages


def _conversion(ctx: DataContext, item: Conversion) -> None:
    if not add_conversion(ctx.visitor, item, unsent=True):
        count_drops(ctx.store, 1)


def add_conversion(visitor: Visitor, item: Conversion, unsent: bool) -> bool:
    """Appends the conversion; ``False`` when the visitor's bound (:data:`MAX_CONVERSIONS`)
    left it out."""
    if len(visitor.conversions) >= MAX_CONVERSIONS and not _compact_conversions(visitor):
        return False
    position = len(visitor.conversions)
    visitor.conversions = (*visitor.conversions, item)
    if unsent:
        visitor.pending |= 1 << (_CONVERSION_BIT + 4 * position)
    return True


def _compact_conversions(visitor: Visitor) -> bool:
    """Keeps the unsent conversions and, of the sent ones, the last of each goal: a targeting
    condition only asks whether a goal was converted, so its answers do not change. ``True``
    when room was made."""
    conversions, mask = visitor.conversions, visitor.pending
    if pending.all_set(mask, pending.CONVERSION, len(conversions)):
        return False  # none was sent yet
    goals: set[Any] = set()
    kept: list[int] = []
    for position in range(len(conversions) - 1, -1, -1):
        if not pending.is_set(mask, pending.CONVERSION, position):
            goal = conversions[position].goal_id
            key = (goal.__class__, goal)
            try:
                if key in goals:
                    continue
                goals.add(key)
            except TypeError:  # an unhashable goal id: kept
                pass
        kept.append(position)
    if len(kept) >= MAX_CONVERSIONS:
        return False
    kept.reverse()
    visitor.conversions = tuple(conversions[p] for p in kept)
    visitor.pending = pending.renumber(mask, pending.CONVERSION, len(conversions), kept)
    return True


def count_drops(store: VisitorStore, dropped: int) -> None:
    """Counts (and warns, at most once a minute) data items left out by a visitor's bound."""
    if dropped:
        store.data_dropped += dropped
        message = "visitors' page views, conversions or custom data reached their bounds: %d dropped so far"
        store.drop_log.warn(message, store.data_dropped)


def _unique_identifier(ctx: DataContext, item: UniqueIdentifier) -> None:
    ctx.store.set_unique_identifier(ctx.code, bool(item.value))


_HANDLERS: dict[type, Callable[[DataContext, Any], None]] = {
    CustomData: _custom_data,
    Browser: _browser,
    Device: _device,
    OperatingSystem: _operating_system,
    Geolocation: _geolocation,
    Cookie: _cookie,
    UserAgent: _user_agent,
    PageView: _page_view,
    Conversion: _conversion,
    UniqueIdentifier: _unique_identifier,
}


def _not_data(ctx: DataContext, item: object) -> None:
    ctx.log.warning("add_data ignores %r: not a kameleoon.data type", type(item).__name__)


def add_items(ctx: DataContext, items: tuple[Any, ...]) -> None:
    """Applies each item by its exact type; other objects are ignored with a warning."""
    handlers = _HANDLERS
    for item in items:
        try:
            handlers.get(item.__class__, _not_data)(ctx, item)
        except Exception:  # a malformed item must not break the caller's request
            ctx.log.exception("add_data could not store %r", item)
