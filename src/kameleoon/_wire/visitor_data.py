"""Parses a ``/visit/visitor`` response into SDK data (protocol spec §8.2-§8.3). Pure.

Unlike the reference SDK, one malformed event (a custom-data event without
``valuesCountMap``, an incomplete static-data event, a conversion without ``goalId``, an
experiment whose ids are not integers, a geolocation without a country) is skipped on its own
instead of discarding the whole response; a ``time`` that is not a plausible epoch time in
milliseconds counts as missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kameleoon.data import (
    Browser,
    BrowserType,
    Conversion,
    CustomData,
    Device,
    DeviceType,
    Geolocation,
    OperatingSystem,
    OperatingSystemType,
    PageView,
)

__all__ = ["RemoteVisit", "parse_visitor_data"]

_MAX_TIME_MS = 10**15


@dataclass
class RemotePage:
    page: PageView
    count: int
    last_seen_ms: Any


@dataclass
class RemoteVisit:
    """Everything read from one response."""

    custom_data: list[CustomData] = field(default_factory=list)
    pages: list[RemotePage] = field(default_factory=list)
    device: Device | None = None
    browser: Browser | None = None
    operating_system: OperatingSystem | None = None
    geolocation: Geolocation | None = None
    conversions: list[Conversion] = field(default_factory=list)
    experiments: list[tuple[Any, Any, Any]] = field(default_factory=list)  # (id, variation id, time ms)
    visits: tuple[Any, ...] | None = None
    kcs: dict[int, dict[int, Any]] | None = None

    def returned(self) -> list[Any]:
        """The list handed back to the caller, in the reference's order."""
        statics = [self.device, self.browser, self.operating_system, self.geolocation]
        pages = [entry.page for entry in self.pages]
        return [*self.custom_data, *pages, *(item for item in statics if item is not None), *self.conversions]


def _events(visit: dict[str, Any], key: str) -> list[dict[str, Any]]:
    events = visit.get(key)
    if not isinstance(events, list):
        return []
    return [event for event in events if isinstance(event, dict)]


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    return data if isinstance(data, dict) else {}


def parse_visitor_data(document: Any) -> RemoteVisit:
    result = RemoteVisit()
    if not isinstance(document, dict):
        return result
    previous = document.get("previousVisits")
    previous = [v for v in previous if isinstance(v, dict)] if isinstance(previous, list) else []
    current = document.get("currentVisit")
    visits = ([current] if isinstance(current, dict) else []) + previous
    seen_indexes: set[Any] = set()
    pages: dict[Any, RemotePage] = {}
    seen_experiments: set[Any] = set()
    for visit in visits:
        _read_custom_data(visit, seen_indexes, result)
        _read_pages(visit, pages)
        _read_experiments(visit, seen_experiments, result)
        # every conversion, in the array's order (evaluation spec §4.6), where the other arrays
        # are read latest first
        for event in _events(visit, "conversionEvents"):
            _read_conversion(_data(event), result)
        if result.geolocation is None:
            result.geolocation = _geolocation(_events(visit, "geolocationEvents"))
        if result.device is None:
            _read_static_data(visit, result)
    result.pages = list(pages.values())
    if isinstance(document.get("previousVisits"), list):
        result.visits = tuple(_time_started(v) for v in previous)
    result.kcs = _kcs(document.get("kcs"))
    return result


def _read_custom_data(visit: dict[str, Any], seen: set[Any], result: RemoteVisit) -> None:
    for event in reversed(_events(visit, "customDataEvents")):
        data = _data(event)
        counts = data.get("valuesCountMap")
        index = data.get("index", -1)
        if not isinstance(counts, dict) or not _hashable(index) or index in seen:
            continue
        seen.add(index)
        result.custom_data.append(CustomData(index, *counts))


def _read_pages(visit: dict[str, Any], pages: dict[Any, RemotePage]) -> None:
    for event in reversed(_events(visit, "pageEvents")):
        data = _data(event)
        href = data.get("href")
        if not isinstance(href, str) or not href:
            continue
        entry = pages.get(href)
        if entry is None:
            pages[href] = RemotePage(PageView(href, data.get("title")), 1, _time(event.get("time")))
        else:
            entry.count += 1


def _read_experiments(visit: dict[str, Any], seen: set[Any], result: RemoteVisit) -> None:
    for event in reversed(_events(visit, "experimentEvents")):
        data = _data(event)
        experiment_id, variation_id = data.get("id"), data.get("variationId")
        # integers only: targeting looks them up, and the engine tracking code prints them
        if not (_integer(experiment_id) and _integer(variation_id)) or experiment_id in seen:
            continue
        seen.add(experiment_id)
        result.experiments.append((experiment_id, variation_id, _time(event.get("time"))))


def _read_conversion(data: dict[str, Any], result: RemoteVisit) -> None:
    goal_id = data.get("goalId")
    if goal_id is None or not _hashable(goal_id):
        return
    result.conversions.append(Conversion(goal_id, data.get("revenue", 0.0), data.get("negative", False)))


def _geolocation(events: list[dict[str, Any]]) -> Geolocation | None:
    """The latest event of the visit that names a country."""
    for event in reversed(events):
        data = _data(event)
        country = data.get("country")
        if isinstance(country, str):
            return Geolocation(country, data.get("region"), data.get("city"))
    return None


def _read_static_data(visit: dict[str, Any], result: RemoteVisit) -> None:
    event = visit.get("staticDataEvent")
    if not isinstance(event, dict):
        return
    data = _data(event)
    device = _member(DeviceType, data.get("deviceType"))
    browser = _member(BrowserType, data.get("browser"))
    system = _member(OperatingSystemType, data.get("os"))
    if device is None or browser is None or system is None:
        return  # incomplete: this visit provides nothing (the reference discards everything)
    result.device = Device(device)
    result.browser = Browser(browser, data.get("browserVersion"))
    result.operating_system = OperatingSystem(system)


def _member(enum: Any, name: Any) -> Any:
    """The member of ``enum`` called ``name``, or ``None`` (also for non-string names)."""
    return enum.__members__.get(name) if isinstance(name, str) else None


def _time_started(visit: dict[str, Any]) -> Any:
    started = _time(visit.get("timeStarted", 0))
    return 0 if started is None else started


def _time(value: Any) -> Any:
    """``value`` when it is a plausible epoch time in milliseconds (a number within about
    30 000 years of 1970), else ``None``: NaN, infinities and huge integers would overflow
    the float arithmetic of the callers."""
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and -_MAX_TIME_MS <= value <= _MAX_TIME_MS
    ):
        return value
    return None


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kcs(raw: Any) -> dict[int, dict[int, Any]] | None:
    if not isinstance(raw, dict):
        return None
    out: dict[int, dict[int, Any]] = {}
    for moment, goals in raw.items():
        key = _decimal(moment)
        if key is None or not isinstance(goals, dict):
            continue
        scores = ((_decimal(goal), score) for goal, score in goals.items())
        out[key] = {goal: score for goal, score in scores if goal is not None}
    return out


def _decimal(key: Any) -> int | None:
    """A numeric-string key as an int (``None`` if it is not one, or absurdly long)."""
    if not isinstance(key, str) or not key.isdecimal() or len(key) > 30:
        return None
    return int(key)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
