"""Every ``*_async`` method matches its sync twin on the same server, with aiohttp and without.

The "thread" mode forces the documented private hook ``async_transport.use_aiohttp(False)``:
the async methods then run their sync twin in a worker thread, as when aiohttp is missing.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kameleoon import KameleoonClient
from kameleoon._network import async_transport
from kameleoon.data import Data
from kameleoon.types import RemoteVisitorDataFilter

from .fault_server import Fault, FaultServer
from .test_visitor_data import SAMPLE

pytest.importorskip("aiohttp")
Client = Any
TWINS = ["wait_init", "get_remote_data", "get_remote_visitor_data", "get_visitor_warehouse_audience"]
FULL = RemoteVisitorDataFilter(3, True, True, True, True, True, True, True, True, True, True)


@pytest.fixture(params=["aiohttp", "thread"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    async_transport.use_aiohttp(request.param == "aiohttp")
    yield request.param
    async_transport.use_aiohttp(True)


def canon(value: Any) -> Any:
    if isinstance(value, Data):
        return (type(value).__name__, {name: canon(getattr(value, name)) for name in type(value).__slots__})
    if isinstance(value, (list, tuple)):
        return [canon(item) for item in value]
    if isinstance(value, dict):
        return {key: canon(item) for key, item in value.items()}
    return value


def seen(server: FaultServer, since: int) -> list[tuple[str, str, dict[str, str], bool]]:
    """What reached the server (token requests aside), with the visitor code normalized."""
    out = []
    for r in server.requests[since:]:
        if r.kind in ("map", "visitor"):
            query = {k: ("<v>" if v.endswith("-twin") else v) for k, v in r.query.items()}
            out.append((r.method, r.path, query, "authorization" in r.headers))
    return out


def twins(
    client: Client, name: str, *args: Any, **kwargs: Any
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    sync, coroutine = getattr(client, name), getattr(client, f"{name}_async")
    return (lambda: sync(*args, **kwargs)), (lambda: asyncio.run(coroutine(*args, **kwargs)))


@pytest.mark.parametrize("name", TWINS)
def test_signatures_match(name: str) -> None:
    sync, coroutine = getattr(KameleoonClient, name), getattr(KameleoonClient, f"{name}_async")
    assert inspect.iscoroutinefunction(coroutine)
    assert inspect.signature(sync).parameters == inspect.signature(coroutine).parameters


def test_wait_init(server: FaultServer, make_client: Callable[..., Client], mode: str) -> None:
    client = make_client(wait=False)
    assert asyncio.run(client.wait_init_async()) is True
    assert client.wait_init() is True


def test_wait_init_after_a_failed_first_download(
    server: FaultServer, make_client: Callable[..., Client], mode: str
) -> None:
    server.always("config", Fault.status(500))
    client = make_client(wait=False)
    assert asyncio.run(client.wait_init_async()) is False
    assert client.wait_init() is False


CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("get_remote_data", ("key 1",), {}),
    ("get_remote_data", ("missing",), {}),
    ("get_remote_visitor_data", ("{code}",), {}),
    ("get_remote_visitor_data", ("{code}",), {"add_data": False, "data_filter": FULL}),
    ("get_remote_visitor_data", ("{code}",), {"is_unique_identifier": True}),
    ("get_visitor_warehouse_audience", ("{code}", 7), {}),
    ("get_visitor_warehouse_audience", ("{code}", 8, "key 1"), {"timeout": 2.0}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), CALLS)
def test_same_results_same_requests_same_stored_data(
    server: FaultServer,
    make_client: Callable[..., Client],
    mode: str,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    server.remote_map["key 1"] = {"warehouseAudiences": {"a": 1, "b c": 2}}
    for code in ("sync-twin", "async-twin"):
        server.visitor_data[code] = SAMPLE
        server.remote_map[code] = {"warehouseAudiences": {"x": 1}}
    client = make_client()
    results, requests, stored = [], [], []
    for position, code in enumerate(("sync-twin", "async-twin")):
        call_args = tuple(a.format(code=code) if isinstance(a, str) else a for a in args)
        since = len(server.requests)
        runner = twins(client, name, *call_args, **kwargs)[position]
        results.append(canon(runner()))
        requests.append(seen(server, since))
        visitor = client._store.get(code)
        stored.append(
            None if visitor is None else (list(visitor.custom_items()), visitor.pending, visitor.device)
        )
    assert results[0] == results[1]
    assert requests[0] == requests[1] and requests[0]
    assert stored[0] == stored[1]


@pytest.mark.parametrize(
    "name", ["get_remote_data", "get_remote_visitor_data", "get_visitor_warehouse_audience"]
)
def test_same_timeout_behaviour(
    server: FaultServer, make_client: Callable[..., Client], mode: str, name: str
) -> None:
    server.always("map", Fault.hang())
    server.always("visitor", Fault.hang())
    client = make_client()
    args = ("v1", 3) if name == "get_visitor_warehouse_audience" else ("v1",)
    outcomes = []
    for runner in twins(client, name, *args, timeout=0.3):
        started = time.monotonic()
        outcomes.append(runner())
        assert time.monotonic() - started < 0.3 + 1.0
    assert outcomes[0] == outcomes[1] and outcomes[0] in (None, [])


def test_same_401_fallback(server: FaultServer, make_client: Callable[..., Client], mode: str) -> None:
    server.remote_map["k"] = {"v": 1}
    client = make_client()
    results = []
    for runner in twins(client, "get_remote_data", "k"):
        server.inject("map", Fault.status(401))
        since = len(server.requests)
        results.append(runner())
        assert [
            r.headers.get("authorization") is not None for r in server.requests[since:] if r.kind == "map"
        ] == [
            True,
            False,
        ]
    assert results == [{"v": 1}, {"v": 1}]
