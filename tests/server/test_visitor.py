"""GET /visit/visitor on a live server (protocol.md §8): data tracked earlier comes back as §8.2 says."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kameleoon_server.storage import Storage

from .conftest import LiveServer, Site, start_server, stop_server
from .test_wire import CAPTURED_BODY

FULL = (
    "maxNumberPreviousVisits=25&version=0&kcs=true&currentVisit=true&customData=true&conversion=true"
    "&geolocation=true&experiment=true&page=true&staticData=true"
)
DEFAULT = "maxNumberPreviousVisits=1&version=0&currentVisit=true&customData=true"


def visitor(live: LiveServer, site: Site, token: str, query: str) -> dict[str, Any]:
    r = live.http.get(
        f"/visit/visitor?siteCode={site.code}&{query}", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    data: dict[str, Any] = r.json()
    return data


def test_tracked_data_comes_back_with_every_filter(live: LiveServer, site: Site) -> None:
    token = live.token(site)
    live.post_events(site, CAPTURED_BODY, token)
    visit = visitor(live, site, token, f"visitorCode=visitor-1&{FULL}")["currentVisit"]
    assert visit["customDataEvents"][0]["data"] == {
        "index": 0,
        "valuesCountMap": {"val one": 1, "v&2=ü": 1},
        "overwrite": True,
    }
    assert visit["pageEvents"][0]["data"] == {
        "href": "https://ex.com/p?a=1&b=2",
        "title": "Title é",
        "referrersIndices": [1, 3],
    }
    assert visit["conversionEvents"][0]["data"] == {"goalId": 32, "revenue": 10.5, "negative": True}
    assert [e["data"] for e in visit["experimentEvents"]] == [
        {"id": 5001, "variationId": 7002},
        {"id": 5002, "variationId": 7003},
    ]
    assert visit["geolocationEvents"][0]["data"]["region"] == "Île-de-France"
    static = visit["staticDataEvent"]["data"]
    assert (static["deviceType"], static["browser"], static["browserVersion"], static["os"]) == (
        "DESKTOP",
        "CHROME",
        120.5,
        "LINUX",
    )
    assert visit["timeStarted"] > 1_600_000_000_000  # milliseconds


def test_default_filter_as_the_sdk_sends_it(live: LiveServer, site: Site) -> None:
    token = live.token(site)
    live.post_events(
        site,
        "nonce=A1&eventType=customData&index=0&valuesCountMap=%7B%22gold%22%3A1%7D"
        "&overwrite=true&visitorCode=3f9a1c2b7d8e4f60",
        token,
    )
    data = visitor(live, site, token, f"visitorCode=3f9a1c2b7d8e4f60&{DEFAULT}")
    assert set(data) == {"currentVisit", "previousVisits"}
    assert set(data["currentVisit"]) == {"visitorCode", "timeStarted", "timeLastEvent", "customDataEvents"}
    assert data["currentVisit"]["customDataEvents"][0]["data"]["valuesCountMap"] == {"gold": 1}


def test_mapping_value_reads_the_user_and_its_linked_visitors(live: LiveServer, site: Site) -> None:
    token = live.token(site)
    live.post_events(
        site,
        "\n".join(
            [
                "nonce=M1&eventType=customData&index=1&valuesCountMap=%7B%22user-99%22%3A1%7D&overwrite=true"
                "&mappingIdentifier=true&visitorCode=anon-9",
                "nonce=M2&eventType=conversion&goalId=7&revenue=0.0&negative=false&visitorCode=anon-9",
                "nonce=M3&eventType=experiment&id=5001&variationId=7002&mappingValue=user-99",
            ]
        ),
        token,
    )
    query = "maxNumberPreviousVisits=1&version=0&currentVisit=true&conversion=true&experiment=true"
    visit = visitor(live, site, token, f"mappingValue=user-99&{query}")["currentVisit"]
    assert [e["data"]["goalId"] for e in visit["conversionEvents"]] == [7]
    assert [e["data"]["id"] for e in visit["experimentEvents"]] == [5001]
    assert visit["visitorCode"] == "anon-9"
    only_anon = visitor(live, site, token, f"visitorCode=anon-9&{query}")["currentVisit"]
    assert only_anon["experimentEvents"] == []


def test_unknown_visitor_and_bad_requests(live: LiveServer, site: Site) -> None:
    token = live.token(site)
    assert visitor(live, site, token, f"visitorCode=nobody&{DEFAULT}") == {
        "currentVisit": None,
        "previousVisits": [],
    }
    base = f"/visit/visitor?siteCode={site.code}"
    auth = {"Authorization": f"Bearer {token}"}
    assert live.http.get(f"{base}&{DEFAULT}", headers=auth).status_code == 400
    assert live.http.get(f"{base}&visitorCode=v&maxNumberPreviousVisits=x", headers=auth).status_code == 400
    unauthorised = live.http.get(f"{base}&visitorCode=v&{DEFAULT}")
    assert unauthorised.status_code == 401
    assert unauthorised.headers["content-type"].startswith("text/plain")  # not JSON the SDK would read


def test_a_long_history_is_answered_in_full(live: LiveServer, site: Site) -> None:
    """More events than are rendered on the event loop (the answer is built on a thread)."""
    from kameleoon_server.routes.visitor import _INLINE_EVENTS

    token = live.token(site)
    count = _INLINE_EVENTS + 100
    lines = [
        f"nonce=L{n}&eventType=conversion&goalId={n}&revenue=1.0&negative=false&visitorCode=long-history"
        for n in range(count)
    ]
    assert live.post_events(site, "\n".join(lines), token).status_code == 204
    data = visitor(live, site, token, "visitorCode=long-history&currentVisit=true&conversion=true")
    assert sorted(e["data"]["goalId"] for e in data["currentVisit"]["conversionEvents"]) == list(range(count))


def test_a_history_over_the_byte_budget_is_answered_from_its_newest_events(
    new_storage: Callable[..., Storage],
) -> None:
    """Lines of 10 kB against a 35 kB budget: the three newest come back, the answer says nothing
    of the rest, and the cut is counted."""
    srv, server, thread = start_server(new_storage(), visitor_event_bytes=35_000)
    try:
        site = srv.create_site()
        token = srv.token(site)
        pad = "x" * 10_000
        for n in range(6):  # one request each: received in this order
            line = f"nonce=B{n}&eventType=conversion&goalId={n}&revenue=1.0&negative=false&pad={pad}"
            assert srv.post_events(site, f"{line}&visitorCode=big", token).status_code == 204
        data = visitor(srv, site, token, "visitorCode=big&currentVisit=true&conversion=true")
        assert [e["data"]["goalId"] for e in data["currentVisit"]["conversionEvents"]] == [3, 4, 5]
        assert srv.admin("GET", "/api/stats").json()["visitor_data_truncated"] == 1
        visitor(srv, site, token, "visitorCode=nobody&currentVisit=true")
        assert srv.admin("GET", "/api/stats").json()["visitor_data_truncated"] == 1
    finally:
        stop_server(srv, server, thread)


def test_a_user_linked_to_more_visitors_than_the_limit_is_answered_from_the_latest_links(
    new_storage: Callable[..., Storage],
) -> None:
    srv, server, thread = start_server(new_storage(), visitor_link_limit=2)
    try:
        site = srv.create_site()
        token = srv.token(site)
        for n in range(3):  # linked one after the other, each visitor with its own conversion
            link = "eventType=customData&index=1&valuesCountMap=%7B%22user-7%22%3A1%7D&overwrite=true"
            lines = [
                f"nonce=L{n}&{link}&mappingIdentifier=true&visitorCode=anon-{n}",
                f"nonce=C{n}&eventType=conversion&goalId={n}&revenue=0.0&negative=false&visitorCode=anon-{n}",
            ]
            assert srv.post_events(site, "\n".join(lines), token).status_code == 204
            time.sleep(0.01)  # links a few milliseconds apart
        query = "mappingValue=user-7&maxNumberPreviousVisits=25&version=0&currentVisit=true&conversion=true"
        data = visitor(srv, site, token, query)
        visits = [data["currentVisit"], *data["previousVisits"]]
        assert sorted(e["data"]["goalId"] for v in visits for e in v["conversionEvents"]) == [1, 2]
        assert srv.admin("GET", "/api/stats").json()["visitor_data_truncated"] == 1
    finally:
        stop_server(srv, server, thread)
