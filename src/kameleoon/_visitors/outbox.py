"""What a visitor has to send: its unsent items as tracking parameters, in protocol order.

Called by the tracker with the store's data lock held. Pure apart from the record it reads
(and the one mutation the protocol asks for: a unique identifier without a mapping gets its
own code as mapping identifier before it is tracked, spec §2.8), and the dropping, with a
warning, of data that cannot be encoded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from kameleoon._engine.model import TARGETED_DELIVERY, Configuration
from kameleoon._visitors import pending
from kameleoon._visitors.data import store_custom_data
from kameleoon._visitors.record import Visitor
from kameleoon._wire import lines

__all__ = ["Item", "consent_given", "identity_of", "unsent_items"]

# (pending bit to clear once sent -- 0 for items re-sent every time, tracking parameters,
#  sendable without consent)
Item = tuple[int, str, bool]

_log = logging.getLogger("kameleoon")


def consent_given(config: Configuration, visitor: Visitor | None) -> bool:
    return not config.consent_required or (visitor is not None and visitor.consent)


def prepare_unique_identifier(visitor: Visitor, code: str, config: Configuration) -> None:
    """A code flagged as unique identifier, not linked, becomes its own mapping identifier."""
    if visitor.mapping is None and config.mapping_index is not None:
        store_custom_data(visitor, config.mapping_index, (code,), unsent=True, mapping=True)
        visitor.extras().mapping = code


def identity_of(code: str, visitor: Visitor | None, unique: bool) -> str:
    if unique and (visitor is None or visitor.mapping != code):
        return "mappingValue"
    return "visitorCode"


def unsent_items(visitor: Visitor, config: Configuration, consent: bool) -> list[Item]:
    """The unsent items of ``visitor``; without consent only conversions and
    targeted-delivery exposures (spec §12)."""
    if consent:
        return list(_all_items(visitor, config))
    return [item for item in _all_items(visitor, config) if item[2]]


def _all_items(visitor: Visitor, config: Configuration) -> Iterator[Item]:
    mask = visitor.pending
    if not mask:
        return
    if mask & pending.DEVICE and visitor.device is not None:
        yield from _item(visitor, pending.DEVICE, False, lines.device, visitor.device)
    if mask & pending.BROWSER and visitor.browser is not None:
        yield from _item(
            visitor, pending.BROWSER, False, lines.browser, visitor.browser, visitor.browser_version
        )
    if mask & pending.GEOLOCATION and visitor.geo is not None:
        yield from _item(visitor, pending.GEOLOCATION, False, lines.geolocation, visitor.geo)
    if mask & pending.OPERATING_SYSTEM and visitor.os is not None:
        yield from _item(visitor, pending.OPERATING_SYSTEM, False, lines.operating_system, visitor.os)
    yield from _custom_items(visitor, config, mask)
    yield from _page_items(visitor, mask)
    for position, conversion in enumerate(visitor.conversions):
        flag = pending.bit(pending.CONVERSION, position)
        if mask & flag:
            args = (conversion.goal_id, conversion.revenue, conversion.negative)
            yield from _item(visitor, flag, True, lines.conversion, *args)
    if visitor.assigned:
        for experiment_id, (variation_id, rule_type, _, position) in visitor.assigned.items():
            flag = pending.bit(pending.ASSIGNMENT, position)
            if mask & flag:
                allowed = rule_type == TARGETED_DELIVERY
                yield from _item(visitor, flag, allowed, lines.experiment, experiment_id, variation_id)


def _item(
    visitor: Visitor, flag: int, allowed: bool, build: Callable[..., str | None], *args: Any
) -> Iterator[Item]:
    """The item built by ``build(*args)``. Data the protocol cannot carry (the data classes do
    not check what they are given, e.g. ``PageView(url, title, referrers=5)``) is dropped for
    good with a warning, instead of failing the whole tracking request."""
    try:
        params = build(*args)
    except Exception:
        visitor.pending &= ~flag
        _log.warning("tracking drops visitor data it cannot encode: %r", args, exc_info=True)
        return
    if params is not None:
        yield flag, params, allowed


def _custom_items(visitor: Visitor, config: Configuration, mask: int) -> Iterator[Item]:
    mapping_index = visitor.extra.mapping_index if visitor.extra is not None else None
    for position, (index, values) in enumerate(visitor.custom_items()):
        flag = pending.bit(pending.CUSTOM, position)
        if not mask & flag:
            continue
        is_mapping = mapping_index is not None and index == mapping_index
        for _, params, allowed in _item(visitor, flag, False, lines.custom_data, index, values, is_mapping):
            # the mapping identifier is re-sent with every request: its bit is never cleared
            yield (0 if is_mapping else flag), params, allowed


def _page_items(visitor: Visitor, mask: int) -> Iterator[Item]:
    pages = visitor.pages or ()
    for position in range(len(pages) // 3):
        flag = pending.bit(pending.PAGE, position)
        if mask & flag:
            page = pages[3 * position]
            yield from _item(visitor, flag, False, lines.page, page.url, page.title, page.referrers)
