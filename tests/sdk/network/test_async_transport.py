"""The aiohttp transport (kameleoon._network.async_transport): answers, failures, session lifetime."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from kameleoon import KameleoonClientConfig, KameleoonClientFactory
from kameleoon._network import async_transport
from kameleoon._network.transport import Request, TransportError
from kameleoon.testing import MockTransport, Response, close_client, create_client

from .fault_server import Fault, FaultServer

pytest.importorskip("aiohttp")
MARGIN = 1.0


@pytest.fixture(autouse=True)
def no_leftover_sessions() -> Iterator[None]:
    yield
    async_transport._close_leftovers()


def run_send(request: Request) -> object:
    return asyncio.run(async_transport.send(request))


def assert_no_resource_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_send(server: FaultServer) -> None:
    response = run_send(Request("GET", f"{server.url}/s1", {"X-Test": "1"}, None, 2.0))
    assert response.status == 200  # type: ignore[attr-defined]
    assert response.json() == server.config  # type: ignore[attr-defined]
    assert server.requests[-1].headers["x-test"] == "1"


def test_session_is_closed_when_the_loop_shuts_down(server: FaultServer) -> None:
    async def twice() -> object:
        first = await async_transport.send(Request("GET", f"{server.url}/s1", {}, None, 2.0))
        session = async_transport._sessions[asyncio.get_running_loop()][0]
        await async_transport.send(Request("GET", f"{server.url}/s1", {}, None, 2.0))
        assert async_transport._sessions[asyncio.get_running_loop()][0] is session  # one per loop
        return first

    asyncio.run(twice())
    assert async_transport._sessions == {}
    assert_no_resource_warning()


def test_loop_left_open_is_cleaned_at_exit(server: FaultServer) -> None:
    loop = asyncio.new_event_loop()
    loop.run_until_complete(async_transport.send(Request("GET", f"{server.url}/s1", {}, None, 2.0)))
    assert len(async_transport._sessions) == 1  # the loop never shut down
    async_transport._close_leftovers()  # what the atexit hook does
    assert async_transport._sessions == {}
    loop.close()
    assert_no_resource_warning()


def test_loop_closed_without_shutdown_leaves_no_unclosed_session(server: FaultServer) -> None:
    loop = asyncio.new_event_loop()
    loop.run_until_complete(async_transport.send(Request("GET", f"{server.url}/s1", {}, None, 2.0)))
    loop.close()
    async_transport._close_leftovers()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if "Unclosed client session" in str(w.message)]


# A loop closed without shutting down leaves its open connections to the garbage collector,
# which closes their sockets with asyncio's "unclosed transport" warning: the user's to see.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_sessions_of_loops_closed_without_shutdown_do_not_pile_up(server: FaultServer) -> None:
    """A loop per call, closed without shutting down: each new session drops those of closed
    loops (and their connections), so the table holds one entry, not one per call."""
    for _ in range(5):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(async_transport.send(Request("GET", f"{server.url}/s1", {}, None, 2.0)))
        loop.close()
        assert len(async_transport._sessions) == 1
    async_transport._close_leftovers()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()  # here, where the marks above apply
    assert not [w for w in caught if "Unclosed client session" in str(w.message)]


@pytest.mark.parametrize("fault", [Fault.hang(), Fault.drip(0.2), Fault.drip_head(0.05)])
def test_total_timeout(server: FaultServer, fault: Fault) -> None:
    server.inject("config", fault)
    started = time.monotonic()
    with pytest.raises(TransportError):
        run_send(Request("GET", f"{server.url}/s1", {}, None, 0.4))
    assert time.monotonic() - started < 0.4 + MARGIN


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.truncate()])
def test_broken_connections_raise(server: FaultServer, fault: Fault) -> None:
    server.always("config", fault)  # (aiohttp itself may retry an idempotent request once)
    with pytest.raises(TransportError):
        run_send(Request("GET", f"{server.url}/s1", {}, None, 2.0))


def test_server_down_raises(server: FaultServer) -> None:
    server.stop()
    with pytest.raises(TransportError):
        run_send(Request("GET", f"{server.url}/s1", {}, None, 2.0))


def test_use_aiohttp_hook() -> None:
    assert async_transport.available()
    async_transport.use_aiohttp(False)
    assert not async_transport.available()
    async_transport.use_aiohttp(True)
    assert async_transport.available()


def test_fork_hook_abandons_the_parents_sessions(server: FaultServer) -> None:
    loop = asyncio.new_event_loop()
    loop.run_until_complete(async_transport.send(Request("GET", f"{server.url}/s1", {}, None, 2.0)))
    async_transport._after_fork_in_child()
    assert async_transport._sessions == {}
    assert len(async_transport._abandoned) >= 1
    # (back in the parent for the rest of the tests: close what the "child" abandoned)
    session, _ = async_transport._abandoned.pop()
    loop.run_until_complete(session.close())
    loop.close()


def test_a_timeout_over_five_seconds_is_not_rounded_up(server: FaultServer) -> None:
    """aiohttp rounds deadlines of more than 5 s up to a whole second of loop time unless told
    not to: started just after a whole second, a 5.2 s timeout would end at about 5.95 s."""
    server.inject("config", Fault.hang())

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1.02 - loop.time() % 1.0)  # just after a whole second of loop time
        started = time.monotonic()
        with pytest.raises(TransportError):
            await async_transport.send(Request("GET", f"{server.url}/s1", {}, None, 5.2))
        return time.monotonic() - started

    assert asyncio.run(timed()) < 5.2 + 0.4


def test_exit_closes_the_session_of_a_loop_running_on_another_thread(server: FaultServer) -> None:
    """A loop left running on a thread of its own (a common bridge from sync code): its session
    is closed on that loop (a debug loop refuses to be touched from another thread), and the
    other sessions are closed as well."""
    running = asyncio.new_event_loop()
    running.set_debug(True)  # raises on calls from the wrong thread
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    request = Request("GET", f"{server.url}/s1", {}, None, 2.0)
    asyncio.run_coroutine_threadsafe(async_transport.send(request), running).result(5)
    idle = asyncio.new_event_loop()
    idle.run_until_complete(async_transport.send(request))
    sessions = [entry[0] for entry in async_transport._sessions.values()]
    assert len(sessions) == 2

    async_transport._close_leftovers()

    assert [session.closed for session in sessions] == [True, True]
    running.call_soon_threadsafe(running.stop)
    thread.join(5)
    running.close()
    idle.close()


def _all_three(client: Any) -> list[Any]:
    async def run() -> list[Any]:
        return [
            await client.get_remote_data_async("k"),
            await client.get_remote_visitor_data_async("v1"),
            await client.get_visitor_warehouse_audience_async("v1", 3),
        ]

    return asyncio.run(run())


def test_a_client_with_a_test_double_keeps_it_for_the_async_methods(server: FaultServer) -> None:
    """aiohttp is only for clients that talk to the network: a MockTransport answers the async
    twins as it answers the sync methods, and the server is never asked."""

    def handler(request: Request) -> Response:
        if "/oauth/token" in request.url:
            return Response(200, {"content-type": "application/json"}, b'{"access_token": "t"}')
        return Response(200, {"content-type": "application/json"}, b'{"from": "the double"}')

    double = MockTransport(handler)
    config = KameleoonClientConfig("id", "secret", network_domain=server.url)
    client = create_client({"featureFlags": []}, config=config, transport=double)
    try:
        assert _all_three(client)[0] == {"from": "the double"}
        assert server.of("map") == [] and server.of("visitor") == []
        assert [r.url.split("?")[0].rsplit("/", 2)[-2:] for r in double.requests if "oauth" not in r.url] == [
            ["map", "map"], ["visit", "visitor"], ["map", "map"],
        ]  # fmt: skip
    finally:
        close_client(client)


def test_an_offline_client_sends_nothing_from_the_async_methods(server: FaultServer) -> None:
    config = KameleoonClientConfig("id", "secret", network_domain=server.url, offline=True)
    client = KameleoonClientFactory.create("offline-async", config)
    try:
        assert _all_three(client) == [None, [], None]
        assert server.of("map") == [] and server.of("visitor") == [] and server.of("token") == []
    finally:
        KameleoonClientFactory.forget("offline-async")
