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

__all__ = ["DataContext", "add_items", "now_ms", "store_custom_data"]


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
) -> None:
    """Stores ``values`` at ``index`` (replacing, position kept) and sets its pending bit;
    ``mapping``: stored as the cross-device mapping identifier (re-sent with every request)."""
    keys = visitor.keys
    stored = values[0] if len(values) == 1 and values[0].__class__ is not tuple else values  # pack_values
    if index in keys:
        position = keys.index(index)
        current = list(visitor.values)
        current[position] = stored
        visitor.values = tuple(current)
    else:
        position = len(keys)
        visitor.keys = (*keys, index)
        visitor.values = (*visitor.values, stored)
    flag = 1 << (_CUSTOM_BIT + 4 * position)
    visitor.pending = visitor.pending | flag if unsent else visitor.pending & ~flag
    extra = visitor.extra
    if mapping:
        visitor.extras().mapping_index = index
    elif extra is not None and extra.mapping_index is not None and extra.mapping_index == index:
        extra.mapping_index = None


_CUSTOM_BIT = pending.bit(pending.CUSTOM, 0).bit_length() - 1
_PAGE_BIT = pending.bit(pending.PAGE, 0).bit_length() - 1
_CONVERSION_BIT = pending.bit(pending.CONVERSION, 0).bit_length() - 1


def _custom_data(ctx: DataContext, item: CustomData) -> None:
    config, values, index = ctx.config, item.values, item.id
    if values.__class__ is not tuple:
        values = tuple(values)
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
    store_custom_data(visitor, index, values, unsent, is_mapping)
    if is_mapping:
        visitor.extras().mapping = ctx.code
        if values[0] != ctx.code:
            # the linked code takes the anonymous code's unique-identifier flag, once (spec §4.4)
            ctx.store.link(values[0], visitor)
            ctx.store.set_unique_identifier(values[0], ctx.store.is_unique_identifier(ctx.code))


def _browser(ctx: DataContext, item: Browser) -> None:
    ctx.visitor.browser = item.browser_type
    ctx.visitor.browser_version = item.version
    ctx.visitor.pending |= pending.BROWSER


def _device(ctx: DataContext, item: Device) -> None:
    ctx.visitor.device = item.device_type
    ctx.visitor.pending |= pending.DEVICE


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
    add_page(ctx.visitor, item, 1, float(int(time.time() * 1000)), True)


def add_page(visitor: Visitor, page: PageView, count: int, seen_ms: float, unsent: bool) -> None:
    """Adds ``count`` views of ``page``: a new URL is appended, a known one updated in place."""
    pages = visitor.pages
    if pages is None:
        pages = visitor.pages = []
    url = page.url
    for position in range(0, len(pages), 3):
        if pages[position].url == url:
            pages[position] = page
            pages[position + 1] += count
            break
    else:
        position = len(pages)
        pages += (page, count, seen_ms)
    if unsent:
        visitor.pending |= 1 << (_PAGE_BIT + 4 * (position // 3))


def _conversion(ctx: DataContext, item: Conversion) -> None:
    add_conversion(ctx.visitor, item, unsent=True)


def add_conversion(visitor: Visitor, item: Conversion, unsent: bool) -> None:
    position = len(visitor.conversions)
    visitor.conversions = (*visitor.conversions, item)
    if unsent:
        visitor.pending |= 1 << (_CONVERSION_BIT + 4 * position)


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


def add_items(ctx: DataContext, items: tuple[Any, ...]) -> None:
    """Applies each item by its exact type; other objects are ignored with a warning."""
    for item in items:
        handler = _HANDLERS.get(item.__class__)
        if handler is None:
            ctx.log.warning("add_data ignores %r: not a kameleoon.data type", type(item).__name__)
            continue
        try:
            handler(ctx, item)
        except Exception:  # a malformed item must not break the caller's request
            ctx.log.exception("add_data could not store %r", item)
