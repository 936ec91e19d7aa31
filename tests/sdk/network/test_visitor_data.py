"""Parsing of ``/visit/visitor`` answers (kameleoon._wire.visitor_data, spec §8.2-§8.3).

Unlike the reference, one malformed event costs that event only, never the whole answer.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kameleoon._wire.visitor_data import parse_visitor_data
from kameleoon.data import BrowserType, DeviceType, OperatingSystemType


def ev(time: int, **data: Any) -> dict[str, Any]:
    return {"time": time, "data": data}


SAMPLE: dict[str, Any] = {
    "currentVisit": {
        "timeStarted": 1718000000000,
        "customDataEvents": [
            ev(1, index=0, valuesCountMap={"old": 1}),
            ev(2, index=0, valuesCountMap={"new": 1, "new2": 2}),
            ev(3, index=3, valuesCountMap={"vis-scope": 1}),
        ],
        "pageEvents": [
            ev(4, href="https://ex.com/a", title="A"),
            ev(5, href="https://ex.com/b", title="B"),
            ev(6, href="https://ex.com/a", title="A2"),
        ],
        "experimentEvents": [ev(7, id=5001, variationId=7001), ev(8, id=5001, variationId=7002)],
        "conversionEvents": [ev(9, goalId=32, revenue=10.0, negative=False)],
        "geolocationEvents": [ev(10, country="France", region="IDF", city="Paris")],
        "staticDataEvent": ev(11, deviceType="DESKTOP", browser="CHROME", browserVersion=120.0, os="LINUX"),
    },
    "previousVisits": [
        {
            "timeStarted": 1717900000000,
            "customDataEvents": [
                ev(12, index=5, valuesCountMap={"prev": 1}),
                ev(13, index=0, valuesCountMap={"x": 1}),
            ],
            "pageEvents": [ev(14, href="https://ex.com/a", title="A-old")],
            "conversionEvents": [ev(15, goalId=33)],
        },
        {"timeStarted": 1717800000000},
    ],
    "kcs": {"100": {"32": 55.5, "33": 10}},
}


def summary(document: Any) -> dict[str, Any]:
    remote = parse_visitor_data(document)
    return {
        "custom": [(c.id, c.values) for c in remote.custom_data],
        "pages": [(p.page.url, p.page.title, p.count) for p in remote.pages],
        "device": remote.device and remote.device.device_type,
        "browser": remote.browser and (remote.browser.browser_type, remote.browser.version),
        "os": remote.operating_system and remote.operating_system.os_type,
        "geo": remote.geolocation and (remote.geolocation.country, remote.geolocation.region),
        "conversions": [(c.goal_id, c.revenue, c.negative) for c in remote.conversions],
        "experiments": remote.experiments,
        "visits": remote.visits,
        "kcs": remote.kcs,
    }


def test_sample_answer() -> None:
    """Latest event first within a visit, current visit before previous ones; first seen wins."""
    assert summary(SAMPLE) == {
        "custom": [(3, ("vis-scope",)), (0, ("new", "new2")), (5, ("prev",))],
        "pages": [("https://ex.com/a", "A2", 3), ("https://ex.com/b", "B", 1)],
        "device": DeviceType.DESKTOP,
        "browser": (BrowserType.CHROME, 120.0),
        "os": OperatingSystemType.LINUX,
        "geo": ("France", "IDF"),
        "conversions": [(32, 10.0, False), (33, 0.0, False)],
        "experiments": [(5001, 7002, 8)],
        "visits": (1717900000000, 1717800000000),
        "kcs": {100: {32: 55.5, 33: 10}},
    }


def test_returned_order() -> None:
    returned = parse_visitor_data(SAMPLE).returned()
    kinds = [type(item).__name__ for item in returned]
    assert kinds == ["CustomData"] * 3 + ["PageView"] * 2 + [
        "Device",
        "Browser",
        "OperatingSystem",
        "Geolocation",
        "Conversion",
        "Conversion",
    ]


@pytest.mark.parametrize("document", [{}, {"currentVisit": None}, {"previousVisits": []}, [], None, "x", 5])
def test_empty_answers_yield_nothing(document: Any) -> None:
    assert parse_visitor_data(document).returned() == []


def test_custom_data_without_values_map_is_skipped_alone() -> None:
    """The reference discards the whole answer here; we drop this event only."""
    document = {
        "currentVisit": {
            "customDataEvents": [ev(1, index=1), ev(2, index=2, valuesCountMap={"v": 1})],
            "conversionEvents": [ev(3, goalId=1)],
        }
    }
    assert summary(document)["custom"] == [(2, ("v",))]
    assert summary(document)["conversions"] == [(1, 0.0, False)]


def test_incomplete_static_data_is_skipped_alone() -> None:
    document = {
        "currentVisit": {
            "staticDataEvent": ev(1, deviceType="DESKTOP", browser="CHROME"),  # no os
            "customDataEvents": [ev(2, index=0, valuesCountMap={"v": 1})],
        },
        "previousVisits": [{"staticDataEvent": ev(3, deviceType="PHONE", browser="SAFARI", os="IOS")}],
    }
    result = summary(document)
    assert result["custom"] == [(0, ("v",))]
    assert result["device"] == DeviceType.PHONE  # taken from the next visit that has a valid one


@pytest.mark.parametrize(
    "static",
    [
        {"deviceType": "WATCH", "browser": "CHROME", "os": "LINUX"},
        {"deviceType": 1, "browser": [], "os": {}},
        "not an object",
    ],
)
def test_unknown_static_values_are_ignored(static: Any) -> None:
    assert summary({"currentVisit": {"staticDataEvent": {"data": static}}})["device"] is None


def test_malformed_events_of_every_kind_are_skipped() -> None:
    document = {
        "currentVisit": {
            "customDataEvents": [
                None,
                5,
                "x",
                {"data": None},
                ev(1, index=[1], valuesCountMap={"a": 1}),
                ev(2, index=4, valuesCountMap=[1]),
            ],
            "pageEvents": [{"data": {"href": 5}}, {"data": {"href": ""}}, {"nodata": 1}, ev(3, href="u")],
            "experimentEvents": [ev(4, id=1), ev(5, variationId=2), ev(6, id=[1], variationId=2)],
            "geolocationEvents": [ev(7, region="no country")],
            "staticDataEvent": None,
        },
        "previousVisits": [None, 3, {"timeStarted": "yesterday"}],
        "kcs": {"x": {"1": 2}, "2": "bad", "3": {"y": 1, "4": 5}},
    }
    result = summary(document)
    assert result["custom"] == []
    assert result["pages"] == [("u", None, 1)]
    assert result["experiments"] == []
    assert result["geo"] is None
    assert result["visits"] == (0,)
    assert result["kcs"] == {3: {4: 5}}


def test_event_arrays_of_the_wrong_type_are_ignored() -> None:
    document = {"currentVisit": {"customDataEvents": {"0": 1}, "pageEvents": "x", "conversionEvents": 5}}
    assert parse_visitor_data(document).returned() == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = st.sampled_from(
    [
        "index",
        "valuesCountMap",
        "href",
        "title",
        "id",
        "variationId",
        "goalId",
        "revenue",
        "negative",
        "country",
        "region",
        "city",
        "deviceType",
        "browser",
        "os",
        "browserVersion",
    ]
)
NAMES = st.sampled_from(["DESKTOP", "CHROME", "LINUX", "PHONE", "x"])
EVENT = st.fixed_dictionaries(
    {"time": JSON, "data": st.dictionaries(FIELDS, JSON | NAMES, max_size=6) | JSON}
)
KEYS = st.sampled_from(
    [
        "customDataEvents",
        "pageEvents",
        "experimentEvents",
        "conversionEvents",
        "geolocationEvents",
        "staticDataEvent",
        "timeStarted",
    ]
)
VISIT = st.dictionaries(KEYS, st.lists(EVENT, max_size=3) | EVENT | JSON, max_size=7)


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "currentVisit": VISIT | JSON,
            "previousVisits": st.lists(VISIT, max_size=3) | JSON,
            "kcs": st.dictionaries(st.text("0123456789x", max_size=3), JSON, max_size=3),
        }
    )
)
def test_never_raises_on_arbitrary_answers(document: dict[str, Any]) -> None:
    parse_visitor_data(document).returned()
