"""What a visitor has to send: its unsent items as tracking parameters, in protocol order.

Called by the tracker with the store's data lock held. Pure apart from the record it reads
(and the one mutation the protocol asks for: a unique identifier without a mapping gets its
own code as mapping identifier before it is tracked, spec §2.8), and the dropping, with a
warning, of data that cannot be encoded (the data classes do not check what they are given,
e.g. ``PageView(url, title, referrers=5)``): such an item must not fail the whole request.
"""

from __future__ import annotations

import logging
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
    """The unsent items of ``visitor`` in protocol order (spec §5.4); without consent only
    conversions and targeted-delivery exposures (spec §12)."""
    mask = visitor.pending
    if not mask:
        return []
    items: list[Item] = []
    if mask & _STATICS:
        _static_items(visitor, mask, items)
    if visitor.keys:
        _custom_items(visitor, mask, items)
    if visitor.pages:
        _page_items(visitor, mask, items)
    for position, conversion in enumerate(visitor.conversions):
        flag = 1 << (_CONVERSION_BIT + 4 * position)
        if mask & flag:
            try:
                params = lines.conversion(conversion.goal_id, conversion.revenue, conversion.negative)
            except Exception:
                _drop(visitor, flag, conversion)
                continue
            items.append((flag, params, True))
    if visitor.assigned:
        for experiment_id, assignment in visitor.assigned.items():
            variation_id, rule_type = assignment[0], assignment[1]
            flag = 1 << (_ASSIGNMENT_BIT + 4 * assignment[3])
            if mask & flag:
                try:
                    params = lines.experiment(experiment_id, variation_id)
                except Exception:
                    _drop(visitor, flag, (experiment_id, variation_id))
                    continue
                items.append((flag, params, rule_type is TARGETED_DELIVERY))
    return items if consent else [item for item in items if item[2]]


_STATICS = pending.DEVICE | pending.BROWSER | pending.GEOLOCATION | pending.OPERATING_SYSTEM
_CUSTOM_BIT = pending.bit(pending.CUSTOM, 0).bit_length() - 1
_PAGE_BIT = pending.bit(pending.PAGE, 0).bit_length() - 1
_CONVERSION_BIT = pending.bit(pending.CONVERSION, 0).bit_length() - 1
_ASSIGNMENT_BIT = pending.bit(pending.ASSIGNMENT, 0).bit_length() - 1


def _drop(visitor: Visitor, flag: int, data: Any) -> None:
    """Drops an item that cannot be encoded, for good (try blocks cost nothing until they catch)."""
    visitor.pending &= ~flag
    _log.warning("tracking drops visitor data it cannot encode: %r", data, exc_info=True)


def _static_items(visitor: Visitor, mask: int, items: list[Item]) -> None:
    try:
        if mask & pending.DEVICE and visitor.device is not None:
            items.append((pending.DEVICE, lines.device(visitor.device), False))
    except Exception:
        _drop(visitor, pending.DEVICE, visitor.device)
    try:
        if mask & pending.BROWSER and visitor.browser is not None:
            items.append((pending.BROWSER, lines.browser(visitor.browser, visitor.browser_version), False))
    except Exception:
        _drop(visitor, pending.BROWSER, (visitor.browser, visitor.browser_version))
    try:
        if mask & pending.GEOLOCATION and visitor.geo is not None:
            items.append((pending.GEOLOCATION, lines.geolocation(visitor.geo), False))
    except Exception:
        _drop(visitor, pending.GEOLOCATION, visitor.geo)
    try:
        if mask & pending.OPERATING_SYSTEM and visitor.os is not None:
            items.append((pending.OPERATING_SYSTEM, lines.operating_system(visitor.os), False))
    except Exception:
        _drop(visitor, pending.OPERATING_SYSTEM, visitor.os)


def _custom_items(visitor: Visitor, mask: int, items: list[Item]) -> None:
    mapping_index = visitor.extra.mapping_index if visitor.extra is not None else None
    for position, (index, values) in enumerate(visitor.custom_items()):
        flag = 1 << (_CUSTOM_BIT + 4 * position)
        if not mask & flag:
            continue
        is_mapping = mapping_index is not None and index == mapping_index
        try:
            params = lines.custom_data(index, values, is_mapping)
        except Exception:
            _drop(visitor, flag, values)
            continue
        if params is not None:
            # the mapping identifier is re-sent with every request: its bit is never cleared
            items.append(((0 if is_mapping else flag), params, False))


def _page_items(visitor: Visitor, mask: int, items: list[Item]) -> None:
    pages = visitor.pages or ()
    for position in range(len(pages) // 3):
        flag = 1 << (_PAGE_BIT + 4 * position)
        if mask & flag:
            page = pages[3 * position]
            try:
                items.append((flag, lines.page(page.url, page.title, page.referrers), False))
            except Exception:
                _drop(visitor, flag, page)
