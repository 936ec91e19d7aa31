"""Builds the ``GET /visit/visitor`` answer (protocol.md §8.2) from stored events. Pure.

Constraints of the 3.4.0 parser that this module guarantees:

* times are epoch milliseconds and events of a visit are in chronological order;
* ``previousVisits`` are most recent first;
* every ``customDataEvents[].data.valuesCountMap`` is a JSON object;
* ``staticDataEvent`` appears only when device type, browser and OS are all known with valid
  names (a partial one would make the SDK discard the whole response).

Visits are split at gaps of ``gap_ms`` without events; the latest visit is the current one while
its last event is less than ``gap_ms`` old. Device, browser and OS are static: once seen, they
carry over to later visits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kameleoon_server._integers import parse_int
from kameleoon_server._wire import (
    ET_CONVERSION,
    ET_CUSTOM_DATA,
    ET_EXPERIMENT,
    ET_GEOLOCATION,
    ET_PAGE,
    ET_STATIC_DATA,
    decode_line,
    is_unicode,
    known_revenue,
)
from kameleoon_server.storage import StoredEvent

BROWSERS: Final = ("CHROME", "INTERNET_EXPLORER", "FIREFOX", "SAFARI", "OPERA", "OTHER")
SYSTEMS: Final = ("WINDOWS", "MAC", "IOS", "LINUX", "ANDROID", "WINDOWS_PHONE")
DEVICES: Final = ("PHONE", "TABLET", "DESKTOP")
MAX_PREVIOUS_VISITS: Final = 25
_GEO_TEXT: Final = ("country", "region", "city", "postalCode")


@dataclass(frozen=True, slots=True)
class VisitorQuery:
    max_previous: int = 1
    current_visit: bool = False
    custom_data: bool = False
    conversion: bool = False
    geolocation: bool = False
    experiment: bool = False
    page: bool = False
    static_data: bool = False


def parse_visitor_query(params: Mapping[str, str]) -> VisitorQuery:
    """Reads the §8.1 flags. ``maxNumberPreviousVisits``, which SDKs pass on unchecked, is
    truncated to an integer and clamped to 0..25; a value that is not a number raises
    ValueError."""
    raw = params.get("maxNumberPreviousVisits", "1")
    try:
        number = float(raw)
    except ValueError:
        raise ValueError("maxNumberPreviousVisits must be a number") from None
    if number != number:  # NaN
        raise ValueError("maxNumberPreviousVisits must be a number")
    count = int(max(0.0, min(number, float(MAX_PREVIOUS_VISITS))))

    def flag(name: str) -> bool:
        return params.get(name, "").lower() == "true"

    return VisitorQuery(
        max_previous=count,
        current_visit=flag("currentVisit"),
        custom_data=flag("customData"),
        conversion=flag("conversion"),
        geolocation=flag("geolocation"),
        experiment=flag("experiment"),
        page=flag("page"),
        static_data=flag("staticData"),
    )


def _json(raw: str | None, kind: type, default: Any) -> Any:
    try:
        value = json.loads(raw) if raw is not None else default
    except (ValueError, RecursionError):
        return default
    return value if isinstance(value, kind) and is_unicode(value) else default


def _number(raw: str | None) -> float | None:
    """The finite number ``raw`` spells, else None (JSON has no NaN or infinity)."""
    try:
        number = float(raw) if raw is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _revenue(raw: str | None) -> float:
    """The revenue of a stored conversion line; 0.0 when it was stored as unknown (NaN, infinite
    or beyond ``MAX_REVENUE``: JSON cannot carry the first ones, results leave all of them out)."""
    number = _number(raw)
    known = None if number is None else known_revenue(number)
    return 0.0 if known is None else known


@dataclass(slots=True)
class _Static:
    """Device, browser and OS as last seen (carried across visits)."""

    device: str | None = None
    browser: str | None = None
    browser_version: float | None = None
    os: str | None = None
    time: int = 0

    def update(self, p: dict[str, str], time: int) -> None:
        if p.get("deviceType") in DEVICES:
            self.device, self.time = p["deviceType"], time
        browser = parse_int(p.get("browserIndex", ""), 0, len(BROWSERS) - 1)  # ASCII digits only
        if browser is not None:
            self.browser, self.time = BROWSERS[browser], time
            self.browser_version = _number(p.get("browserVersion"))
        os_name = p.get("os")
        os_index = parse_int(p.get("osIndex", ""), 0, len(SYSTEMS) - 1)
        if os_name in SYSTEMS:
            self.os, self.time = os_name, time
        elif os_index is not None:
            self.os, self.time = SYSTEMS[os_index], time

    def event(self, visit_number: int) -> dict[str, Any] | None:
        if self.device is None or self.browser is None or self.os is None:
            return None
        data: dict[str, Any] = {"deviceType": self.device, "browser": self.browser, "os": self.os}
        if self.browser_version is not None:
            data["browserVersion"] = self.browser_version
        data["visitNumber"] = visit_number
        return {"time": self.time, "data": data}


def _geolocation(p: dict[str, str]) -> dict[str, Any] | None:
    if not p.get("country"):
        return None
    data: dict[str, Any] = {k: p[k] for k in _GEO_TEXT if p.get(k)}
    for key in ("latitude", "longitude"):
        if (value := _number(p.get(key))) is not None:
            data[key] = value
    return data


def _event_data(etype: int, p: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
    """(array name, data) of one stored line, or None when it is not reported."""
    if etype == ET_CUSTOM_DATA:
        data = {"index": int(p["index"]), "valuesCountMap": _json(p.get("valuesCountMap"), dict, {})}
        return "customDataEvents", data | {"overwrite": p.get("overwrite", "true") == "true"}
    if etype == ET_PAGE:
        page = {"href": p.get("href", ""), "referrersIndices": _json(p.get("referrersIndices"), list, [])}
        return "pageEvents", page | ({"title": p["title"]} if "title" in p else {})
    if etype == ET_EXPERIMENT:
        return "experimentEvents", {"id": int(p["id"]), "variationId": int(p["variationId"])}
    if etype == ET_CONVERSION:
        revenue = _revenue(p.get("revenue"))
        return "conversionEvents", {
            "goalId": int(p["goalId"]),
            "revenue": revenue,
            "negative": p.get("negative") == "true",
        }
    if etype in (ET_STATIC_DATA, ET_GEOLOCATION) and (geo := _geolocation(p)) is not None:
        return "geolocationEvents", geo
    return None


def split_visits(events: Sequence[StoredEvent], gap_ms: int) -> list[list[StoredEvent]]:
    """Chronological events → visits (oldest first), de-duplicated by nonce across identities."""
    visits: list[list[StoredEvent]] = []
    seen: set[str] = set()
    last_time: int | None = None
    for event in events:
        if event.nonce in seen:
            continue
        seen.add(event.nonce)
        if last_time is None or event.time_ms - last_time >= gap_ms:
            visits.append([])
        visits[-1].append(event)
        last_time = event.time_ms
    return visits


_ARRAYS: Final = (
    ("custom_data", "customDataEvents"),
    ("page", "pageEvents"),
    ("experiment", "experimentEvents"),
    ("conversion", "conversionEvents"),
    ("geolocation", "geolocationEvents"),
)
_TYPES_OF: Final = {  # the event types each array is made of
    "custom_data": (ET_CUSTOM_DATA,),
    "page": (ET_PAGE,),
    "experiment": (ET_EXPERIMENT,),
    "conversion": (ET_CONVERSION,),
    "geolocation": (ET_STATIC_DATA, ET_GEOLOCATION),
}


def _wanted_types(query: VisitorQuery) -> frozenset[int]:
    """The event types whose lines a returned visit needs decoded."""
    wanted = {etype for flag, _ in _ARRAYS if getattr(query, flag) for etype in _TYPES_OF[flag]}
    return frozenset(wanted | ({ET_STATIC_DATA} if query.static_data else set()))


def _render(
    events: list[StoredEvent], query: VisitorQuery, static: _Static, number: int, wanted: frozenset[int]
) -> dict[str, Any]:
    arrays: dict[str, list[dict[str, Any]]] = {name: [] for _, name in _ARRAYS}
    for event in events:
        if event.etype not in wanted:  # its line is not decoded at all
            continue
        params = decode_line(event.line)
        if event.etype == ET_STATIC_DATA:
            static.update(params, event.time_ms)
        try:
            item = _event_data(event.etype, params)
        except (KeyError, ValueError):  # stored by an older version that checked less: left out
            continue
        if item is not None:
            arrays[item[0]].append({"time": event.time_ms, "data": item[1]})
    anonymous = next((e.identity for e in events if not e.is_mapping), events[0].identity)
    visit: dict[str, Any] = {
        "visitorCode": anonymous,
        "timeStarted": events[0].time_ms,
        "timeLastEvent": events[-1].time_ms,
    }
    for flag, name in _ARRAYS:
        if getattr(query, flag):
            visit[name] = arrays[name]
    if query.static_data and (static_event := static.event(number)) is not None:
        visit["staticDataEvent"] = static_event
    return visit


def build_visitor_response(
    events: Sequence[StoredEvent], query: VisitorQuery, now_ms: int, gap_ms: int
) -> dict[str, Any]:
    """The §8.2 JSON object for these events (chronological, all identities of one person)."""
    visits = split_visits(events, gap_ms)
    has_current = bool(visits) and now_ms - visits[-1][-1].time_ms < gap_ms
    ended = len(visits) - has_current  # visits before the current one
    shown = range(max(0, ended - query.max_previous), len(visits))  # the others only feed static data
    wanted, static_only = _wanted_types(query), frozenset({ET_STATIC_DATA} if query.static_data else ())
    static = _Static()
    rendered = [
        _render(v, query, static, i + 1, wanted if i in shown else static_only) for i, v in enumerate(visits)
    ]
    current = rendered.pop() if has_current else None
    previous = rendered[::-1][: query.max_previous]
    return {"currentVisit": current if query.current_visit else None, "previousVisits": previous}
