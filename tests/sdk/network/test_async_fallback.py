"""``*_async`` methods without aiohttp: the sync twin on the SDK's worker threads, timed from the call.

aiohttp is made unavailable with the documented private hook ``async_transport.use_aiohttp(False)``
(the path taken when the ``[async]`` extra is missing; the conftest turns it back on).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from kameleoon._network import async_transport, workers
from kameleoon.exceptions import VisitorCodeInvalid

from .fault_server import Fault, FaultServer

Client = Any
TIMEOUT = 0.5
CALLS = 200  # several times the worker threads: most calls wait for one


@pytest.fixture(autouse=True)
def without_aiohttp() -> Iterator[None]:
    async_transport.use_aiohttp(False)
    assert not async_transport.available()
    yield
    async_transport.use_aiohttp(True)


async def timed(call: Any) -> tuple[float, Any]:
    started = time.monotonic()
    result = await call
    return time.monotonic() - started, result


def test_many_calls_against_a_hanging_server_each_end_at_their_timeout(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    """Time spent waiting for a worker counts: no call takes much longer than its timeout
    (the loop's default executor made the last ones wait for all the others), and each
    returns what its sync twin returns on a timeout."""
    assert CALLS > 3 * workers.MAX_WORKERS
    server.always("map", Fault.hang())
    server.always("visitor", Fault.hang())
    client = make_client()
    kinds = [
        (lambda: client.get_remote_data_async("k", timeout=TIMEOUT), None),
        (lambda: client.get_remote_visitor_data_async("v1", timeout=TIMEOUT), []),
        (lambda: client.get_visitor_warehouse_audience_async("v1", 3, timeout=TIMEOUT), None),
    ]

    async def run() -> list[tuple[float, Any]]:
        return await asyncio.gather(*(timed(kinds[n % 3][0]()) for n in range(CALLS)))

    outcomes = asyncio.run(run())
    assert max(took for took, _ in outcomes) < 3 * TIMEOUT
    assert [result for _, result in outcomes] == [kinds[n % 3][1] for n in range(CALLS)]


def test_default_timeout_also_counts_from_the_call(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    server.always("map", Fault.hang())
    client = make_client(default_timeout_millisecond=int(TIMEOUT * 1000))

    async def run() -> list[tuple[float, Any]]:
        return await asyncio.gather(*(timed(client.get_remote_data_async("k")) for _ in range(CALLS)))

    outcomes = asyncio.run(run())
    assert max(took for took, _ in outcomes) < 3 * TIMEOUT
    assert {result for _, result in outcomes} == {None}


def test_a_busy_default_executor_does_not_hold_the_calls(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    """The SDK's workers are its own: an application job occupying the loop's default
    executor delays no call."""
    server.remote_map["k"] = {"a": 1}
    client = make_client()
    release = threading.Event()

    async def run() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        blocker = loop.run_in_executor(None, release.wait, 30)
        try:
            return await asyncio.wait_for(client.get_remote_data_async("k", timeout=2.0), 10)
        finally:
            release.set()
            await blocker

    assert asyncio.run(run()) == {"a": 1}


def test_results_and_stored_data_are_those_of_the_sync_twin(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    server.remote_map["v1"] = {"warehouseAudiences": {"a": 1}}
    client = make_client()

    async def run() -> tuple[Any, Any]:
        audience = await client.get_visitor_warehouse_audience_async("v1", 4)
        visits = await client.get_remote_visitor_data_async("v2", is_unique_identifier=True)
        return audience, visits

    audience, visits = asyncio.run(run())
    assert audience is not None and audience.id == 4 and audience.values == ("a",)
    assert visits == []
    assert client._store.is_unique_identifier("v2")


def test_an_invalid_visitor_code_raises_at_once(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    """As the sync twin does, before any worker is involved."""
    client = make_client()
    with pytest.raises(VisitorCodeInvalid):
        asyncio.run(client.get_visitor_warehouse_audience_async("", 3))


def test_a_call_whose_deadline_passed_in_the_queue_does_not_run() -> None:
    ran: list[float] = []

    async def run() -> None:
        with pytest.raises(workers.Expired):
            await workers.call_within(time.monotonic() - 1.0, ran.append)

    asyncio.run(run())
    assert ran == []


def test_a_worker_gets_what_remains_of_the_deadline() -> None:
    async def run() -> float:
        return await workers.call_within(time.monotonic() + 5.0, lambda left: left)

    assert 0.0 < asyncio.run(run()) <= 5.0


def test_a_cancellation_arriving_as_the_job_ends_is_not_lost() -> None:
    """The job ends while the loop is busy, and the caller is cancelled in that same moment:
    the call raises ``CancelledError`` (``asyncio.wait_for`` before Python 3.12 returned the
    result instead, and ``asyncio.timeout`` or a ``TaskGroup`` around the call never ended it)."""
    release = threading.Event()

    def job(left: float) -> str:
        release.wait(5)
        return "done"

    async def run() -> None:
        task = asyncio.ensure_future(workers.call_within(time.monotonic() + 5.0, job))
        await asyncio.sleep(0.05)  # the task now waits for the job
        release.set()
        time.sleep(0.2)  # the loop is busy while the job ends ...
        task.cancel()  # ... and the cancellation comes before the loop saw the job end
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
