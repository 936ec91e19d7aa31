"""What a visitor has to send: its unsent items as tracking parameters, in protocol order.

Called by the tracker with the store's data lock held. Pure apart from the record it reads
(and the one mutation the protocol asks for: a unique identifier without a mapping gets its
own code as mapping identifier before it is tracked, spec §2.8).
"""

from __future__ import annotations

from collections.abc import Iterator

from kameleoon._engine.model import TARGETED_DELIVERY, Configuration
from kameleoon._visitors import pending
from kameleoon._visitors.data import store_custom_data
from kameleoon._visitors.record import Visitor
from kameleoon._wire import lines

__all__ = ["Item", "consent_given", "identity_of", "unsent_items"]

# (pending bit to clear once sent -- 0 for items re-sent every time, tracking parameters,
#  sendable without consent)
Item = tuple[int, str, bool]


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
        yield pending.DEVICE, lines.device(visitor.device), False
    if mask & pending.BROWSER and visitor.browser is not None:
        yield pending.BROWSER, lines.browser(visitor.browser, visitor.browser_version), False
    if mask & pending.GEOLOCATION and visitor.geo is not None:
        yield pending.GEOLOCATION, lines.geolocation(visitor.geo), False
    if mask & pending.OPERATING_SYSTEM and visitor.os is not None:
        yield pending.OPERATING_SYSTEM, lines.operating_system(visitor.os), False
    yield from _custom_items(visitor, config, mask)
    yield from _page_items(visitor, mask)
    for position, conversion in enumerate(visitor.conversions):
        flag = pending.bit(pending.CONVERSION, position)
        if mask & flag:
            yield flag, lines.conversion(conversion.goal_id, conversion.revenue, conversion.negative), True
    if visitor.assigned:
        for experiment_id, (variation_id, rule_type, _, position) in visitor.assigned.items():
            flag = pending.bit(pending.ASSIGNMENT, position)
            if mask & flag:
                params = lines.experiment(experiment_id, variation_id)
                yield flag, params, rule_type == TARGETED_DELIVERY


def _custom_items(visitor: Visitor, config: Configuration, mask: int) -> Iterator[Item]:
    mapping_index = visitor.extra.mapping_index if visitor.extra is not None else None
    for position, (index, values) in enumerate(visitor.custom_items()):
        flag = pending.bit(pending.CUSTOM, position)
        if not mask & flag:
            continue
        is_mapping = mapping_index is not None and index == mapping_index
        params = lines.custom_data(index, values, is_mapping)
        if params is not None:
            # the mapping identifier is re-sent with every request: its bit is never cleared
            yield (0 if is_mapping else flag), params, False


def _page_items(visitor: Visitor, mask: int) -> Iterator[Item]:
    pages = visitor.pages or ()
    for position in range(len(pages) // 3):
        flag = pending.bit(pending.PAGE, position)
        if mask & flag:
            page = pages[3 * position]
            yield flag, lines.page(page.url, page.title, page.referrers), False
