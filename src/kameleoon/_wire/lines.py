"""Tracking lines (protocol spec §5.2-§5.3): one query-string per event, pure functions.

Each builder returns the event's parameters *without* the nonce and the visitor identity;
:func:`line` assembles the final text.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from typing import Any

from kameleoon._wire.encoding import encode, query, well_formed

__all__ = [
    "NoncePool",
    "activity",
    "browser",
    "conversion",
    "custom_data",
    "device",
    "experiment",
    "geolocation",
    "line",
    "new_nonce",
    "operating_system",
    "page",
]


# The SDK's own generator: drawing from the ``random`` module would change the sequence of an
# application that seeds it. Reseeded in forked children (the parent's state must not repeat).
_random = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random.seed)


def new_nonce() -> str:
    """16 upper-case hexadecimal characters identifying one event for de-duplication."""
    return _random.getrandbits(64).to_bytes(8, "big").hex().upper()


class NoncePool:
    """Nonces drawn from a buffer of random bytes (a slice each instead of a random call).

    Not thread-safe: the tracker uses it with the store's data lock held.
    """

    __slots__ = ("_hex", "_position")

    def __init__(self) -> None:
        self._hex = ""
        self._position = 0

    def __call__(self) -> str:
        position = self._position
        if position >= len(self._hex):
            self._hex, position = _random.randbytes(8 * 256).hex().upper(), 0
        self._position = position + 16
        return self._hex[position : position + 16]


def line(nonce: str, params: str, identity: str, code: str, user_agent: str | None = None) -> str:
    """``nonce=…&<params>&<identity>=<code>[&userAgent=…]``; ``identity`` is
    ``visitorCode`` or ``mappingValue``."""
    text = f"nonce={nonce}&{params}&{identity}={encode(code)}"
    return f"{text}&userAgent={encode(user_agent)}" if user_agent else text


def _number(value: Any) -> str:
    return str(value)


def activity() -> str:
    return "eventType=activity"


def experiment(experiment_id: Any, variation_id: Any) -> str:
    cacheable = experiment_id.__class__ is int and variation_id.__class__ is int
    key = (experiment_id, variation_id) if cacheable else None
    if key is not None and (cached := _PARAMS.get(key)) is not None:
        return cached
    params = query((("eventType", "experiment"), ("id", experiment_id), ("variationId", variation_id)))
    return params if key is None else _remember(key, params)


def conversion(goal_id: Any, revenue: Any, negative: Any) -> str:
    if goal_id.__class__ is int and (revenue.__class__ is float or revenue.__class__ is int):
        text = str(revenue)  # digits, '.', '-', 'e', 'inf', 'nan': nothing to escape but '+'
        if "+" not in text:  # the usual case, without the general encoder (same text)
            flag = "true" if negative else "false"
            return f"eventType=conversion&goalId={goal_id}&revenue={text}&negative={flag}"
    return query(
        (
            ("eventType", "conversion"),
            ("goalId", goal_id),
            ("revenue", _number(revenue)),
            ("negative", "true" if negative else "false"),
        )
    )


_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
_JSON_STRING = json.encoder.encode_basestring_ascii


def _values_count_map(values: tuple[Any, ...]) -> str:
    """``{"value":1,...}``, compact ASCII JSON (duplicates collapsed, order kept): written
    directly when every value is a string (the usual case), else by the JSON encoder."""
    distinct = dict.fromkeys(values, 1)
    if _all_strings(distinct):
        return "{" + ",".join([f"{_JSON_STRING(well_formed(value))}:1" for value in distinct]) + "}"
    return _COMPACT_JSON({well_formed(v) if v.__class__ is str else v: 1 for v in distinct})


# Parameters of experiment, custom data and page lines, by their arguments: sites send the same
# exposures, values and URLs for many visitors. Only arguments whose text depends on nothing but
# their value are keys (strings, ints: never 1.0 or True, which are equal to 1 but written
# otherwise). Keys of the three kinds cannot be equal: (int, int), (int, tuple, bool) and
# (str, str, tuple).
_PARAMS: dict[tuple[Any, ...], str] = {}
_MAX_PARAMS = 10_000  # then the cache starts again from empty


def _remember(key: tuple[Any, ...], params: str) -> str:
    if len(_PARAMS) >= _MAX_PARAMS:
        _PARAMS.clear()
    _PARAMS[key] = params
    return params


def custom_data(index: Any, values: tuple[Any, ...], mapping_identifier: bool) -> str | None:
    """``None`` when there are no values (such data is never sent)."""
    if not values:
        return None
    cacheable = index.__class__ is int and _all_strings(values)
    key = (index, values, bool(mapping_identifier)) if cacheable else None
    if key is not None and (cached := _PARAMS.get(key)) is not None:
        return cached
    counts = _values_count_map(values)
    index_text = index if index.__class__ is int else encode(str(index))  # add_data keeps any index
    text = f"eventType=customData&index={index_text}&valuesCountMap={encode(counts)}&overwrite=true"
    params = f"{text}&mappingIdentifier=true" if mapping_identifier else text
    return params if key is None else _remember(key, params)


def page(url: Any, title: Any, referrers: Any) -> str:
    refs = tuple(referrers) if referrers else ()
    cacheable = url.__class__ is str and title.__class__ is str and all(r.__class__ is int for r in refs)
    key = (url, title, refs) if cacheable else None
    if key is not None and (cached := _PARAMS.get(key)) is not None:
        return cached
    text = json.dumps(list(referrers), separators=(",", ":")) if referrers else None
    params = query((("eventType", "page"), ("href", url), ("title", title), ("referrersIndices", text)))
    return params if key is None else _remember(key, params)


def _all_strings(values: Iterable[Any]) -> bool:
    return all(value.__class__ is str for value in values)


def device(device_type: Any) -> str:
    return query((("eventType", "staticData"), ("deviceType", getattr(device_type, "name", device_type))))


def browser(browser_type: Any, version: Any) -> str:
    return query(
        (
            ("eventType", "staticData"),
            ("browserIndex", int(browser_type)),
            ("browserVersion", _number(version) if version else None),
        )
    )


def operating_system(os_type: Any) -> str:
    return query(
        (("eventType", "staticData"), ("os", getattr(os_type, "name", os_type)), ("osIndex", int(os_type)))
    )


def geolocation(geo: Any) -> str:
    def coordinate(value: Any) -> str | None:
        return None if value is None else _number(value)

    return query(
        (
            ("eventType", "staticData"),
            ("country", geo.country),
            ("region", geo.region),
            ("city", geo.city),
            ("postalCode", geo.postal_code),
            ("latitude", coordinate(geo.latitude)),
            ("longitude", coordinate(geo.longitude)),
        )
    )
