"""Parsing of ``/visit/visitor`` responses into SDK data (evaluation spec §4.6, protocol spec §8.2-§8.3)."""

from __future__ import annotations

from typing import Any

import pytest

from kameleoon._wire.visitor_data import parse_visitor_data
from kameleoon.data import BrowserType, CustomData, DeviceType, OperatingSystemType

SAMPLE: dict[str, Any] = {
    "currentVisit": {
        "timeStarted": 1718000000000,
        "customDataEvents": [
            {"time": 1, "data": {"index": 0, "valuesCountMap": {"old": 1}}},
            {"time": 2, "data": {"index": 3, "valuesCountMap": {"vis-scope": 1}}},
            {"time": 3, "data": {"index": 0, "valuesCountMap": {"new": 1, "new2": 2}}},
        ],
        "pageEvents": [
            {"time": 10, "data": {"href": "https://ex.com/a", "title": "A1"}},
            {"time": 20, "data": {"href": "https://ex.com/b", "title": "B"}},
            {"time": 30, "data": {"href": "https://ex.com/a", "title": "A2"}},
        ],
        "experimentEvents": [
            {"time": 1000, "data": {"id": 5001, "variationId": 7000}},
            {"time": 2000, "data": {"id": 5001, "variationId": 7001}},
        ],
        "conversionEvents": [{"time": 4, "data": {"goalId": 32, "revenue": 10.0, "negative": False}}],
        "geolocationEvents": [
            {"time": 5, "data": {"country": "Spain"}},
            {"time": 6, "data": {"country": "France", "region": "IDF", "city": "Paris"}},
        ],
        "staticDataEvent": {
            "time": 7,
            "data": {"deviceType": "DESKTOP", "browser": "CHROME", "browserVersion": 120.0, "os": "LINUX"},
        },
    },
    "previousVisits": [
        {
            "timeStarted": 1717900000000,
            "customDataEvents": [
                {"time": 0, "data": {"index": 0, "valuesCountMap": {"older": 1}}},
                {"time": 0, "data": {"index": 5, "valuesCountMap": {"prev": 1}}},
            ],
            "pageEvents": [{"time": 5, "data": {"href": "https://ex.com/a", "title": "A0"}}],
            "experimentEvents": [{"time": 500, "data": {"id": 5002, "variationId": 7002}}],
            "conversionEvents": [{"time": 1, "data": {"goalId": 7}}],
            "geolocationEvents": [{"time": 1, "data": {"country": "Italy"}}],
            "staticDataEvent": {"data": {"deviceType": "PHONE", "browser": "SAFARI", "os": "IOS"}},
        },
        {"timeStarted": 1717800000000},
        {},
    ],
    "kcs": {"100": {"32": 55.5, "33": 10}, "x": {"1": 1}, "101": {"y": 2, "7": 3}},
}


def test_custom_data_newest_first_first_index_wins() -> None:
    """Custom data events are read newest first (current visit, then previous ones): first index wins."""
    parsed = parse_visitor_data(SAMPLE)
    assert [(c.id, c.values) for c in parsed.custom_data] == [
        (0, ("new", "new2")),
        (3, ("vis-scope",)),
        (5, ("prev",)),
    ]


def test_pages_grouped_by_url() -> None:
    """One page per URL: title and time of the newest event, count of every event read."""
    pages = parse_visitor_data(SAMPLE).pages
    assert [(p.page.url, p.page.title, p.count, p.last_seen_ms) for p in pages] == [
        ("https://ex.com/a", "A2", 3, 30),
        ("https://ex.com/b", "B", 1, 20),
    ]


def test_experiments_newest_first_first_wins() -> None:
    """Experiment events: newest first, the first per experiment id wins, with its time."""
    assert parse_visitor_data(SAMPLE).experiments == [(5001, 7001, 2000), (5002, 7002, 500)]


def test_conversions_all_in_order() -> None:
    """Every conversion event becomes a conversion, in order; revenue and negative are optional."""
    conversions = parse_visitor_data(SAMPLE).conversions
    assert [(c.goal_id, c.revenue, c.negative) for c in conversions] == [(32, 10.0, False), (7, 0.0, False)]


def test_geolocation_last_event_of_the_first_visit_having_any() -> None:
    """Geolocation: the last event of the first visit that has any."""
    geo = parse_visitor_data(SAMPLE).geolocation
    assert geo is not None
    assert (geo.country, geo.region, geo.city) == ("France", "IDF", "Paris")


def test_static_data_from_the_first_visit_providing_it() -> None:
    """Device, browser (with version) and OS come from the first visit providing all three."""
    parsed = parse_visitor_data(SAMPLE)
    assert parsed.device is not None and parsed.device.device_type is DeviceType.DESKTOP
    assert parsed.browser is not None
    assert (parsed.browser.browser_type, parsed.browser.version) == (BrowserType.CHROME, 120.0)
    assert (
        parsed.operating_system is not None and parsed.operating_system.os_type is OperatingSystemType.LINUX
    )


def test_visits_and_kcs() -> None:
    """Previous visits' start times (0 by default); KCS scores under numeric-string keys only."""
    parsed = parse_visitor_data(SAMPLE)
    assert parsed.visits == (1717900000000, 1717800000000, 0)
    assert parsed.kcs == {100: {32: 55.5, 33: 10}, 101: {7: 3}}


def test_returned_list_order() -> None:
    """The caller gets custom data, pages, device, browser, OS, geolocation, then conversions."""
    kinds = [type(item).__name__ for item in parse_visitor_data(SAMPLE).returned()]
    assert (
        kinds
        == ["CustomData"] * 3
        + ["PageView"] * 2
        + ["Device", "Browser", "OperatingSystem", "Geolocation"]
        + ["Conversion"] * 2
    )


@pytest.mark.parametrize(
    "document", [{}, {"currentVisit": None}, None, [], "text", 5, {"previousVisits": None}]
)
def test_empty_or_odd_documents_give_nothing(document: Any) -> None:
    """Empty or odd responses yield no data at all."""
    parsed = parse_visitor_data(document)
    assert parsed.returned() == []
    assert parsed.experiments == []
    assert parsed.kcs is None


def test_without_previous_visits_there_is_no_visit_history() -> None:
    """Without a previousVisits array the visit history is not replaced."""
    assert parse_visitor_data({"currentVisit": {}}).visits is None
    assert parse_visitor_data({"previousVisits": []}).visits == ()


@pytest.mark.parametrize(
    "data",
    [
        {"deviceType": "DESKTOP", "browser": "CHROME"},  # no os
        {"deviceType": "desktop", "browser": "CHROME", "os": "LINUX"},  # not upper case
        {"deviceType": ["DESKTOP"], "browser": "CHROME", "os": "LINUX"},  # not a string
        {"deviceType": "DESKTOP", "browser": {"b": 1}, "os": "LINUX"},
        {"deviceType": "DESKTOP", "browser": "CHROME", "os": None},
    ],
)
def test_incomplete_static_data_is_skipped(data: dict[str, Any]) -> None:
    """A static-data event without all three valid names provides nothing (and never raises)."""
    parsed = parse_visitor_data({"currentVisit": {"staticDataEvent": {"data": data}}})
    assert (parsed.device, parsed.browser, parsed.operating_system) == (None, None, None)


@pytest.mark.parametrize(
    "event",
    [
        {"data": {"index": 1}},  # no valuesCountMap
        {"data": {"index": [1], "valuesCountMap": {"a": 1}}},  # unhashable index
        {"data": None},
        "not an event",
    ],
)
def test_malformed_custom_data_events_are_skipped(event: Any) -> None:
    """Custom-data events without a valuesCountMap or with an unusable index are skipped."""
    parsed = parse_visitor_data({"currentVisit": {"customDataEvents": [event]}})
    assert parsed.custom_data == []


def test_custom_data_index_defaults_to_minus_one() -> None:
    """A custom-data event without index is read under index -1."""
    parsed = parse_visitor_data(
        {"currentVisit": {"customDataEvents": [{"data": {"valuesCountMap": {"a": 1}}}]}}
    )
    assert [(c.id, c.values) for c in parsed.custom_data] == [(-1, ("a",))]
    assert isinstance(parsed.custom_data[0], CustomData)


@pytest.mark.parametrize(
    "event",
    [
        {"data": {"id": 1}},
        {"data": {"variationId": 1}},
        {"data": {"id": [1], "variationId": 2}},
        {"data": {"id": 1, "variationId": None}},
        {"data": {"id": 1, "variationId": [2]}},  # unhashable: targeting could not look it up
        {"data": {"id": "1,2]);alert(1);//", "variationId": 7}},  # printed by the engine code
        {"data": {"id": 1, "variationId": "7"}},
        {"data": {"id": True, "variationId": 7}},
        {"data": {"id": 1.5, "variationId": 7}},
    ],
)
def test_incomplete_experiment_events_are_skipped(event: Any) -> None:
    """Experiment events need a usable id and a variationId."""
    assert parse_visitor_data({"currentVisit": {"experimentEvents": [event]}}).experiments == []


@pytest.mark.parametrize("href", ["", None, 5, ["u"]])
def test_page_events_need_a_url(href: Any) -> None:
    """Page events without a non-empty string href are skipped."""
    assert parse_visitor_data({"currentVisit": {"pageEvents": [{"data": {"href": href}}]}}).pages == []


@pytest.mark.parametrize("country", [None, 5, ["France"]])
def test_geolocation_needs_a_country(country: Any) -> None:
    """A geolocation event without a string country gives no geolocation."""
    events = [{"data": {"country": country, "city": "Paris"}}]
    assert parse_visitor_data({"currentVisit": {"geolocationEvents": events}}).geolocation is None


def test_geolocation_skips_events_without_a_country_within_a_visit() -> None:
    """The latest event of a visit that names a country wins over an older visit's."""
    document = {
        "currentVisit": {"geolocationEvents": [{"data": {"country": "France"}}, {"data": {"region": "IDF"}}]},
        "previousVisits": [{"geolocationEvents": [{"data": {"country": "Italy"}}]}],
    }
    geo = parse_visitor_data(document).geolocation
    assert geo is not None and geo.country == "France"


@pytest.mark.parametrize("data", [{"revenue": 3.0}, {"goalId": None}, {"goalId": [1]}, None])
def test_conversion_events_need_a_goal(data: Any) -> None:
    """A conversion without a usable goalId is skipped (it would match any-goal targeting)."""
    events = [{"time": 1, "data": data}, {"time": 2, "data": {"goalId": 7}}]
    conversions = parse_visitor_data({"currentVisit": {"conversionEvents": events}}).conversions
    assert [c.goal_id for c in conversions] == [7]


def test_conversions_are_read_in_their_order_within_each_visit() -> None:
    """Conversions are all read in the array's order (evaluation spec §4.6, which reads custom
    data, pages and experiments newest first); the current visit comes before the previous ones."""
    document = {
        "currentVisit": {"conversionEvents": [{"data": {"goalId": g}} for g in (32, 33, 34)]},
        "previousVisits": [{"conversionEvents": [{"data": {"goalId": g}} for g in (40, 41)]}],
    }
    assert [c.goal_id for c in parse_visitor_data(document).conversions] == [32, 33, 34, 40, 41]


@pytest.mark.parametrize("time", [10**320, -(10**320), float("inf"), float("nan"), True, "5", [1]])
def test_implausible_times_count_as_missing(time: Any) -> None:
    """Times that are not plausible epoch milliseconds are dropped, not carried into float
    arithmetic (a huge integer overflows it)."""
    visit = {
        "timeStarted": time,
        "pageEvents": [{"time": time, "data": {"href": "https://ex.com/"}}],
        "experimentEvents": [{"time": time, "data": {"id": 1, "variationId": 2}}],
    }
    parsed = parse_visitor_data({"currentVisit": visit, "previousVisits": [visit]})
    assert parsed.pages[0].last_seen_ms is None
    assert parsed.experiments == [(1, 2, None)]
    assert parsed.visits == (0,)
