"""The aiohttp transport (kameleoon._network.async_transport): answers, failures, session lifetime."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import Iterator

import pytest

from kameleoon._network import async_transport
from kameleoon._network.transport import Request, TransportError

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
