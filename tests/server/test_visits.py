"""The /visit/visitor answer built from stored events (protocol.md §8.2 and its parser rules)."""

from __future__ import annotations

import math

import pytest

from kameleoon_server._visits import VisitorQuery, build_visitor_response, parse_visitor_query, split_visits
from kameleoon_server.storage import StoredEvent

GAP = 30 * 60 * 1000
NOW = 10_000_000_000
ALL = VisitorQuery(
    max_previous=25,
    current_visit=True,
    custom_data=True,
    conversion=True,
    geolocation=True,
    experiment=True,
    page=True,
    static_data=True,
)
_ids = iter(range(1, 10_000))


def ev(line: str, etype: int, t: int, identity: str = "v1", mapping: bool = False) -> StoredEvent:
    nonce = line.split("&", 1)[0].removeprefix("nonce=")
    return StoredEvent(next(_ids), identity, mapping, nonce, etype, t, False, line)


def cd(nonce: str, t: int, index: int = 0, values: str = "%7B%22gold%22%3A1%7D", **kw: object) -> StoredEvent:
    return ev(
        f"nonce={nonce}&eventType=customData&index={index}&valuesCountMap={values}&overwrite=true"
        "&visitorCode=v1",
        4,
        t,
        **kw,
    )  # type: ignore[arg-type]


def static(nonce: str, t: int, params: str) -> StoredEvent:
    return ev(f"nonce={nonce}&eventType=staticData&{params}&visitorCode=v1", 6, t)


def test_default_filter_returns_only_custom_data_of_the_current_visit() -> None:
    query = parse_visitor_query(
        {"maxNumberPreviousVisits": "1", "version": "0", "currentVisit": "true", "customData": "true"}
    )
    events = [cd("A", NOW - 5000), ev("nonce=B&eventType=conversion&goalId=3&visitorCode=v1", 3, NOW - 4000)]
    answer = build_visitor_response(events, query, NOW, GAP)
    visit = answer["currentVisit"]
    assert visit["customDataEvents"] == [
        {"time": NOW - 5000, "data": {"index": 0, "valuesCountMap": {"gold": 1}, "overwrite": True}}
    ]
    assert "conversionEvents" not in visit and "staticDataEvent" not in visit
    assert visit["timeStarted"] == NOW - 5000 and answer["previousVisits"] == []


def test_visits_split_on_gaps_current_last_previous_most_recent_first_and_limited() -> None:
    events = [cd("A", 1000), cd("B", 1000 + GAP + 1), cd("C", 1000 + 3 * GAP), cd("D", NOW - 10)]
    answer = build_visitor_response(events, ALL, NOW, GAP)
    assert answer["currentVisit"]["customDataEvents"][0]["time"] == NOW - 10
    assert [v["timeStarted"] for v in answer["previousVisits"]] == [1000 + 3 * GAP, 1000 + GAP + 1, 1000]
    limited = build_visitor_response(events, VisitorQuery(max_previous=1, current_visit=True), NOW, GAP)
    assert [v["timeStarted"] for v in limited["previousVisits"]] == [1000 + 3 * GAP]


def test_no_current_visit_when_the_last_event_is_older_than_the_gap() -> None:
    answer = build_visitor_response([cd("A", NOW - GAP - 1)], ALL, NOW, GAP)
    assert answer["currentVisit"] is None
    assert len(answer["previousVisits"]) == 1


def test_events_in_a_visit_are_chronological() -> None:
    events = [cd("A", NOW - 300, index=1), cd("B", NOW - 200, index=2), cd("C", NOW - 100, index=3)]
    visit = build_visitor_response(events, ALL, NOW, GAP)["currentVisit"]
    assert [e["data"]["index"] for e in visit["customDataEvents"]] == [1, 2, 3]


def test_static_data_event_only_when_device_browser_and_os_are_all_known() -> None:
    partial = [static("A", NOW - 30, "deviceType=DESKTOP"), static("B", NOW - 20, "browserIndex=0")]
    assert "staticDataEvent" not in build_visitor_response(partial, ALL, NOW, GAP)["currentVisit"]
    complete = [*partial, static("C", NOW - 10, "os=LINUX&osIndex=3")]
    event = build_visitor_response(complete, ALL, NOW, GAP)["currentVisit"]["staticDataEvent"]
    assert event["data"]["deviceType"] == "DESKTOP"
    assert event["data"]["browser"] == "CHROME"
    assert event["data"]["os"] == "LINUX"
    bad = [
        static("A", NOW - 30, "deviceType=WATCH"),
        static("B", NOW - 20, "browserIndex=9"),
        static("C", NOW - 10, "osIndex=3"),
    ]
    assert "staticDataEvent" not in build_visitor_response(bad, ALL, NOW, GAP)["currentVisit"]


@pytest.mark.parametrize(
    ("raw", "served"), [("nan", 0.0), ("inf", 0.0), ("-inf", 0.0), ("x", 0.0), ("-2.5", -2.5)]
)
def test_a_revenue_json_cannot_carry_is_served_as_zero(raw: str, served: float) -> None:
    """NaN and infinities (which an SDK may send) have no JSON spelling: encoded, they would be
    ``null``, which SDK parsers do not expect for a revenue."""
    line = f"nonce=C&eventType=conversion&goalId=32&revenue={raw}&negative=false&visitorCode=v1"
    visit = build_visitor_response([ev(line, 3, NOW - 30)], ALL, NOW, GAP)["currentVisit"]
    data = visit["conversionEvents"][0]["data"]
    assert data["revenue"] == served and math.isfinite(data["revenue"])


@pytest.mark.parametrize(
    ("raw", "served"), [("1e200", 0.0), ("-2e15", 0.0), ("1e15", 1e15), ("-1e15", -1e15)]
)
def test_a_revenue_beyond_the_bound_is_served_as_zero(raw: str, served: float) -> None:
    """Lines stored before the bound existed still carry such a revenue; it is unknown, as in the
    results, not a number that would swamp an SDK's sums."""
    line = f"nonce=C&eventType=conversion&goalId=32&revenue={raw}&negative=false&visitorCode=v1"
    visit = build_visitor_response([ev(line, 3, NOW - 30)], ALL, NOW, GAP)["currentVisit"]
    assert visit["conversionEvents"][0]["data"]["revenue"] == served


def test_every_event_kind_maps_to_its_array() -> None:
    events = [
        ev("nonce=P&eventType=page&href=https%3A%2F%2Fex.com%2Fa&title=A&visitorCode=v1", 5, NOW - 50),
        ev("nonce=E&eventType=experiment&id=5001&variationId=7001&visitorCode=v1", 2, NOW - 40),
        ev("nonce=C&eventType=conversion&goalId=32&revenue=10&negative=false&visitorCode=v1", 3, NOW - 30),
        ev("nonce=G&eventType=staticData&country=France&region=IDF&city=Paris&visitorCode=v1", 6, NOW - 20),
        ev("nonce=H&eventType=geolocation&city=Lyon&visitorCode=v1", 7, NOW - 10),
    ]
    visit = build_visitor_response(events, ALL, NOW, GAP)["currentVisit"]
    assert visit["pageEvents"][0]["data"] == {
        "href": "https://ex.com/a",
        "title": "A",
        "referrersIndices": [],
    }
    assert visit["experimentEvents"][0]["data"] == {"id": 5001, "variationId": 7001}
    assert visit["conversionEvents"][0]["data"] == {"goalId": 32, "revenue": 10.0, "negative": False}
    assert visit["geolocationEvents"] == [
        {"time": NOW - 20, "data": {"country": "France", "region": "IDF", "city": "Paris"}}
    ]


def test_values_count_map_is_always_an_object() -> None:
    broken = cd("A", NOW - 10, values="%5B%5D")
    data = build_visitor_response([broken], ALL, NOW, GAP)["currentVisit"]["customDataEvents"][0]["data"]
    assert data["valuesCountMap"] == {}


def test_linked_identities_sharing_a_nonce_count_once_and_visit_names_the_anonymous_code() -> None:
    events = [
        cd("A", NOW - 20, identity="user-42", mapping=True),
        cd("A", NOW - 19, identity="anon-1"),
        cd("B", NOW - 10, identity="anon-1"),
    ]
    assert [len(v) for v in split_visits(events, GAP)] == [2]
    visit = build_visitor_response(events, ALL, NOW, GAP)["currentVisit"]
    assert visit["visitorCode"] == "anon-1"


def test_previous_visit_count_is_clamped_and_non_numbers_rejected() -> None:
    """SDKs pass the filter's count on unchecked: out-of-range numbers are clamped to 0..25 and
    truncated; only a value that is not a number is an error."""
    expected = {"99": 25, "-1": 0, "1.0": 1, "2.7": 2, "1e9": 25, "-inf": 0, "0": 0}
    for raw, count in expected.items():
        assert parse_visitor_query({"maxNumberPreviousVisits": raw}).max_previous == count, raw
    for raw in ("x", "nan", ""):
        try:
            parse_visitor_query({"maxNumberPreviousVisits": raw})
        except ValueError:
            continue
        raise AssertionError(raw)


def test_no_events_gives_the_empty_answer() -> None:
    assert build_visitor_response([], ALL, NOW, GAP) == {"currentVisit": None, "previousVisits": []}


def test_only_the_lines_an_answer_needs_are_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Visits beyond maxNumberPreviousVisits, and event types whose flags are off, are not
    decoded: a long history costs its lines' reading only where the answer shows them (static
    data, which carries over from visit to visit, excepted)."""
    from kameleoon_server import _visits

    decoded: list[str] = []
    real = _visits.decode_line
    monkeypatch.setattr(_visits, "decode_line", lambda line: decoded.append(line) or real(line))
    events = []
    for visit in range(10):  # ten visits, a gap apart, each with custom data, a page and static data
        t = NOW - (10 - visit) * 2 * GAP
        events += [cd(f"C{visit}", t), static(f"S{visit}", t + 1, "deviceType=DESKTOP")]
        events.append(ev(f"nonce=P{visit}&eventType=page&href=h&visitorCode=v1", 1, t + 2))
    query = VisitorQuery(max_previous=2, current_visit=True, custom_data=True, static_data=True)
    answer = build_visitor_response(events, query, NOW, GAP)
    assert [len(v["customDataEvents"]) for v in answer["previousVisits"]] == [1, 1]
    nonces = sorted(line.split("&", 1)[0].removeprefix("nonce=") for line in decoded)
    assert nonces == sorted(["C8", "C9"] + [f"S{v}" for v in range(10)])
