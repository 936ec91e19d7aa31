"""Remote data (kameleoon._remote): ``/map/map``, warehouse audiences and ``/visit/visitor``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from kameleoon._visitors import data
from kameleoon.data import CustomData, Device, DeviceType, PageView
from kameleoon.types import RemoteVisitorDataFilter

from .conftest import eventually
from .fault_server import Fault, FaultServer
from .test_visitor_data import SAMPLE

Client = Any
MARGIN = 1.0


def test_remote_data_request_and_answer(server: FaultServer, make_client: Callable[..., Client]) -> None:
    server.remote_map["k/1 é"] = {"any": ["json", 1, True]}
    client = make_client()
    assert client.get_remote_data("k/1 é") == {"any": ["json", 1, True]}
    (request,) = server.of("map")
    assert request.query == {"siteCode": client._site_code, "key": "k/1 é"}
    assert request.headers["authorization"] == "Bearer tok-1"


@pytest.mark.parametrize(
    "fault", [Fault.status(404), Fault.status(500), Fault.garbage(), Fault.reset(), Fault.truncate()]
)
def test_remote_data_failures_give_none(
    server: FaultServer, make_client: Callable[..., Client], fault: Fault
) -> None:
    server.remote_map["k"] = {"a": 1}
    client = make_client()
    server.inject("map", fault)
    assert client.get_remote_data("k") is None


def test_remote_data_json_is_returned_whatever_the_status(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    """Spec §6: the decoded JSON is handed back regardless of the status code."""
    server.remote_map["k"] = {"a": 1}
    client = make_client()
    server.inject("map", Fault.status(500))
    assert client.get_remote_data("k") is None  # empty body
    assert client.get_remote_data("k") == {"a": 1}


@pytest.mark.parametrize("method", ["map", "visitor", "warehouse"])
@pytest.mark.parametrize("where", ["call", "default"])
def test_timeouts_are_honoured(
    server: FaultServer, make_client: Callable[..., Client], method: str, where: str
) -> None:
    """A hanging server costs at most the call's ``timeout`` (seconds) or the default timeout."""
    client = make_client(default_timeout_millisecond=300 if where == "default" else 10_000)
    kind = "visitor" if method == "visitor" else "map"
    server.always(kind, Fault.hang())
    timeout = {"timeout": 0.3} if where == "call" else {}
    call = {
        "map": lambda: client.get_remote_data("k", **timeout),
        "visitor": lambda: client.get_remote_visitor_data("v1", **timeout),
        "warehouse": lambda: client.get_visitor_warehouse_audience("v1", 3, **timeout),
    }[method]
    started = time.monotonic()
    assert call() in (None, [])
    assert time.monotonic() - started < 0.3 + MARGIN


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), 1e10, 10**400, True, "2"])
def test_a_timeout_that_is_not_a_positive_number_is_replaced(
    server: FaultServer, make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture, bad: Any
) -> None:
    """Zero, negative, NaN, infinite, huge or non-numeric timeouts never raise: the default
    applies (a huge one is a year), and the sync and async calls agree."""
    import asyncio

    server.remote_map["k"] = {"a": 1}
    server.visitor_data["v1"] = {}
    client = make_client()
    assert client.get_remote_data("k", timeout=bad) == {"a": 1}
    assert asyncio.run(client.get_remote_data_async("k", timeout=bad)) == {"a": 1}
    assert client.get_remote_visitor_data("v1", timeout=bad) == []
    assert asyncio.run(client.get_remote_visitor_data_async("v1", timeout=bad)) == []
    valid = isinstance(bad, (int, float)) and not isinstance(bad, bool) and bad > 0
    assert ("is not a positive number of seconds" in caplog.text) is not valid
    if valid:
        return
    server.always("map", Fault.hang())
    started = time.monotonic()
    assert client.get_remote_data("k", timeout=bad) is None  # within the default (1 s)
    assert asyncio.run(client.get_remote_data_async("k", timeout=bad)) is None
    assert time.monotonic() - started < 2 * (1.0 + MARGIN)


def test_token_request_counts_against_the_timeout(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    server.remote_map["k"] = {"a": 1}
    client = make_client()
    server.always("token", Fault.hang())
    server.always("map", Fault.slow(0.25))
    started = time.monotonic()
    assert client.get_remote_data("k", timeout=0.4) is None
    assert time.monotonic() - started < 0.4 + MARGIN


def test_failing_token_endpoint_sends_without_authorization(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    server.remote_map["k"] = {"a": 1}
    server.always("token", Fault.status(500))
    client = make_client()
    assert client.get_remote_data("k") == {"a": 1}
    assert "authorization" not in server.of("map")[0].headers


def test_401_retries_once_without_the_token(server: FaultServer, make_client: Callable[..., Client]) -> None:
    server.remote_map["k"] = {"a": 1}
    client = make_client()
    server.inject("map", Fault.status(401))
    assert client.get_remote_data("k") == {"a": 1}
    first, second = server.of("map")
    assert first.headers["authorization"] == "Bearer tok-1" and "authorization" not in second.headers
    assert client._tokens.cached() is None  # discarded


FULL = RemoteVisitorDataFilter(25, True, True, True, True, True, True, True, True, True, True)


@pytest.mark.parametrize(
    ("data_filter", "flags"),
    [
        (None, ["currentVisit", "customData"]),
        (
            FULL,
            [
                "kcs",
                "currentVisit",
                "customData",
                "conversion",
                "geolocation",
                "experiment",
                "page",
                "staticData",
            ],
        ),
        (RemoteVisitorDataFilter(3, False, False, browser=True), ["staticData"]),
        (RemoteVisitorDataFilter(2, False, False, device=True, operating_system=True), ["staticData"]),
        (RemoteVisitorDataFilter(1, False, False, page_views=True, kcs=True), ["kcs", "page"]),
    ],
)
def test_visitor_data_query_follows_the_filter(
    server: FaultServer, make_client: Callable[..., Client], data_filter: Any, flags: list[str]
) -> None:
    client = make_client()
    client.get_remote_visitor_data("v 1", data_filter=data_filter)
    (request,) = server.of("visitor")
    amount = str(data_filter.previous_visit_amount if data_filter else 1)
    expected = {
        "siteCode": client._site_code,
        "visitorCode": "v 1",
        "maxNumberPreviousVisits": amount,
        "version": "0",
        **dict.fromkeys(flags, "true"),
    }
    assert request.query == expected
    assert list(request.query) == list(expected)  # the spec's order


@pytest.mark.parametrize("code", [None, ""])
def test_visitor_data_without_a_code_leaves_the_parameter_out(
    server: FaultServer, make_client: Callable[..., Client], code: Any
) -> None:
    """The code is not validated here; a None or empty one is left out of the query."""
    client = make_client()
    client.get_remote_visitor_data(code)
    (request,) = server.of("visitor")
    assert "visitorCode" not in request.query and request.query["maxNumberPreviousVisits"] == "1"


def test_unique_identifier_asks_by_mapping_value(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    client.get_remote_visitor_data("user-9", is_unique_identifier=True)
    assert server.of("visitor")[0].query["mappingValue"] == "user-9"


def test_visitor_data_is_returned_and_added(server: FaultServer, make_client: Callable[..., Client]) -> None:
    server.visitor_data["v1"] = SAMPLE
    client = make_client()
    returned = client.get_remote_visitor_data("v1")
    assert [type(item).__name__ for item in returned][:5] == ["CustomData"] * 3 + ["PageView"] * 2
    visitor = client._store.get("v1")
    assert visitor.custom_values(0) == ("new", "new2")
    assert visitor.device is DeviceType.DESKTOP
    assert visitor.extra.visits == (1717900000000, 1717800000000)
    # index 0 is VISITOR-scoped in this configuration: it is sent back with the next tracking
    client.flush("v1")
    assert eventually(lambda: server.tracking_lines(), 5)
    (line,) = server.tracking_lines()
    assert (line["eventType"], line["index"]) == ("customData", "0")


def test_an_imported_experiment_without_a_time_stays_in_the_tracking_code(
    server: FaultServer, make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An experiment event with a time shows in the engine tracking code for 5 s from that
    time; one without a time, for good (protocol spec §8.3, §11.2)."""
    now_ms = int(time.time() * 1000)
    timed = {"time": now_ms, "data": {"id": 11, "variationId": 110}}
    events = [timed, {"data": {"id": 12, "variationId": 120}}]
    server.visitor_data["v1"] = {"currentVisit": {"experimentEvents": events}}
    client = make_client()
    client.get_remote_visitor_data("v1")
    shown = client.get_engine_tracking_code("v1")
    assert "'Experiments.assignVariation',11,110" in shown and "'Experiments.assignVariation',12,120" in shown
    later = time.time() + 60.0
    monkeypatch.setattr("kameleoon._client.time.time", lambda: later)
    shown = client.get_engine_tracking_code("v1")
    assert "',11," not in shown and "'Experiments.assignVariation',12,120" in shown


def test_imported_page_views_respect_the_visitors_bound(
    server: FaultServer, make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Imported history counts against a visitor's bound like local data: the oldest sent page
    entry makes room, and the drop is counted."""
    monkeypatch.setattr(data, "MAX_PAGES", 1)
    server.visitor_data["v1"] = SAMPLE
    client = make_client()
    returned = client.get_remote_visitor_data("v1")
    (last,) = [item for item in returned if isinstance(item, PageView)][-1:]
    visitor = client._store.get("v1")
    assert [page.url for page in visitor.pages[::3]] == [last.url]
    assert client._store.data_dropped == 1


def test_imported_custom_data_respects_the_visitors_bound(
    server: FaultServer, make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Imported custom data counts against a visitor's custom data bound; what it leaves out is
    counted."""
    monkeypatch.setattr(data, "MAX_CUSTOM_DATA", 1)
    server.visitor_data["v1"] = SAMPLE
    client = make_client()
    returned = client.get_remote_visitor_data("v1")
    indexes = {item.id for item in returned if isinstance(item, CustomData)}
    visitor = client._store.get("v1")
    assert len(visitor.keys) == 1 and len(indexes) > 1
    assert client._store.data_dropped == len(indexes) - 1


def test_add_data_false_stores_nothing(server: FaultServer, make_client: Callable[..., Client]) -> None:
    server.visitor_data["v1"] = SAMPLE
    client = make_client()
    assert client.get_remote_visitor_data("v1", add_data=False)
    assert client._store.get("v1") is None


def test_local_data_wins_over_remote_data(server: FaultServer, make_client: Callable[..., Client]) -> None:
    server.visitor_data["v1"] = SAMPLE
    client = make_client()
    client.add_data("v1", CustomData(0, "local"), Device(DeviceType.PHONE), PageView("https://ex.com/a", "L"))
    client.get_remote_visitor_data("v1")
    visitor = client._store.get("v1")
    assert visitor.custom_values(0) == ("local",)
    assert visitor.device is DeviceType.PHONE
    assert visitor.pages[1] == 1 + 3  # page views of the same URL are added up


def test_malformed_events_cost_only_themselves(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    server.visitor_data["v1"] = {
        "currentVisit": {
            "customDataEvents": [{"data": {"index": 1}}, {"data": {"index": 2, "valuesCountMap": {"ok": 1}}}],
            "staticDataEvent": {"data": {"deviceType": "DESKTOP", "browser": ["x"]}},
            "conversionEvents": [{"data": {"goalId": 5}}],
        }
    }
    client = make_client()
    returned = client.get_remote_visitor_data("v1")
    assert [(type(x).__name__, getattr(x, "id", None)) for x in returned] == [
        ("CustomData", 2),
        ("Conversion", None),
    ]


FIELDS = [
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
    "time",
]
EVENTS = [
    "customDataEvents",
    "pageEvents",
    "experimentEvents",
    "conversionEvents",
    "geolocationEvents",
    "staticDataEvent",
    "timeStarted",
]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 2 else 6)
    scalars = [
        None,
        True,
        rng.randint(-5, 10**6),
        rng.random() * 1e3,
        "",
        "DESKTOP",
        "CHROME",
        "LINUX",
        "a b",
    ]
    if choice < 6:
        return rng.choice(scalars)
    if choice < 7:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice([*FIELDS, "x"]): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_visit(rng: random.Random) -> dict[str, Any]:
    visit: dict[str, Any] = {}
    for key in rng.sample(EVENTS, rng.randrange(len(EVENTS))):
        event = {"time": random_json(rng, 1), "data": {f: random_json(rng, 1) for f in rng.sample(FIELDS, 4)}}
        visit[key] = event if key == "staticDataEvent" else [event, random_json(rng, 1)]
    return visit


def test_arbitrary_answers_never_raise_and_stay_trackable(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    """Random answers (fixed seed): the call, later decisions and tracking never raise."""
    client, rng = make_client(), random.Random(20240611)
    for number in range(150):
        code = f"fuzz{number}"
        server.visitor_data[code] = {
            "currentVisit": random_visit(rng),
            "previousVisits": [random_visit(rng)],
            "kcs": random_json(rng),
        }
        client.get_remote_visitor_data(code, data_filter=FULL)
        client.get_feature_variation_key(code, "flag_v1")
        client.get_engine_tracking_code(code)
        client._tracker._build([code])


def test_warehouse_audience(server: FaultServer, make_client: Callable[..., Client]) -> None:
    server.remote_map["v1"] = {"warehouseAudiences": {"aud-1": 1, "aud 2": 5}}
    server.remote_map["wk"] = {"warehouseAudiences": {"other": 1}}
    client = make_client()
    data = client.get_visitor_warehouse_audience("v1", 8)
    assert (data.id, data.values) == (8, ("aud-1", "aud 2"))
    assert client.get_visitor_warehouse_audience("v1", 9, "wk").values == ("other",)
    assert [r.query["key"] for r in server.of("map")] == ["v1", "wk"]
    client.flush("v1")
    assert eventually(lambda: server.tracking_lines(), 5)
    indexes = {line["index"] for line in server.tracking_lines() if line["eventType"] == "customData"}
    assert indexes == {"8", "9"}


@pytest.mark.parametrize(("answer", "expected"), [({"other": 1}, ()), ({"warehouseAudiences": []}, ())])
def test_warehouse_audience_without_audiences(
    server: FaultServer, make_client: Callable[..., Client], answer: Any, expected: tuple[str, ...]
) -> None:
    server.remote_map["v1"] = answer
    client = make_client()
    assert client.get_visitor_warehouse_audience("v1", 8).values == expected


@pytest.mark.parametrize("fault", [Fault.status(500), Fault.status(404), Fault.garbage(), Fault.reset()])
def test_warehouse_audience_failures_give_none_and_store_nothing(
    server: FaultServer, make_client: Callable[..., Client], fault: Fault
) -> None:
    server.remote_map["v1"] = {"warehouseAudiences": {"a": 1}}
    client = make_client()
    server.inject("map", fault)
    assert client.get_visitor_warehouse_audience("v1", 8) is None
    assert client._store.get("v1") is None
