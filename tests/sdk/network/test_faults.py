"""The fault matrix: the whole client against a server that fails in every way we know.

For each row, while the fault lasts: no public call raises, none blocks longer than its
timeout (decisions and tracking calls never wait on the network at all), and the last good
configuration stays active. Once the server is healthy again, every event tracked during the
fault is delivered and configuration updates flow again.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import eventually
from .fault_server import Fault, FaultServer, datafile

Client = Any
TIMEOUT = 0.3  # default_timeout_millisecond of these clients, in seconds
MARGIN = 1.0  # slack on a loaded machine: every bound below is an upper bound
ROUTES = ("config", "sse", "token", "tracking", "map", "visitor")
_goals = itertools.count(1)


def timed(call: Callable[[], Any], bound: float) -> Any:
    started = time.monotonic()
    result = call()
    elapsed = time.monotonic() - started
    assert elapsed < bound, f"a call took {elapsed:.2f} s (bound {bound:.2f} s)"
    return result


def exercise(client: Client, tracked: list[int], rounds: int = 3) -> None:
    """Every public call, timed, a few times over; the goals tracked are appended to ``tracked``."""
    for round_ in range(rounds):
        goal = next(_goals)
        exercise_once(client, f"v{round_ % 2}", goal, instant=round_ == 1)
        tracked.append(goal)


def exercise_once(client: Client, visitor: str, goal: int, instant: bool) -> None:
    timed(lambda: client.get_feature_variation_key(visitor, "flag_v1"), MARGIN)
    timed(lambda: client.is_feature_active(visitor, "flag_v1"), MARGIN)
    timed(lambda: client.get_active_features(visitor), MARGIN)
    timed(lambda: client.track_conversion(visitor, goal), MARGIN)
    timed(lambda: client.flush(visitor, instant=instant), MARGIN)
    timed(client.flush, MARGIN)
    timed(lambda: client.get_remote_data("k"), TIMEOUT + MARGIN)
    timed(lambda: client.get_remote_data("k", timeout=0.2), 0.2 + MARGIN)
    timed(lambda: client.get_remote_visitor_data(visitor), TIMEOUT + MARGIN)
    timed(lambda: client.get_visitor_warehouse_audience(visitor, 5), TIMEOUT + MARGIN)
    timed(lambda: asyncio.run(client.get_remote_data_async("k")), TIMEOUT + MARGIN)
    timed(lambda: asyncio.run(client.get_remote_visitor_data_async(visitor, timeout=0.2)), 0.2 + MARGIN)
    timed(lambda: asyncio.run(client.get_visitor_warehouse_audience_async(visitor, 5)), TIMEOUT + MARGIN)
    timed(client.wait_init, MARGIN)
    assert client.get_feature_list() == ["flag_v1"]  # the last good configuration stays


def delivered(server: FaultServer) -> set[int]:
    return {int(line["goalId"]) for line in server.tracking_lines() if line["eventType"] == "conversion"}


def recovers(server: FaultServer, client: Client, tracked: list[int]) -> None:
    """After the fault: every tracked event arrives, and a new configuration is picked up."""
    assert eventually(lambda: set(tracked) <= delivered(server), 15), set(tracked) - delivered(server)
    server.config = datafile(2, real_time=server.config["configuration"]["realTimeUpdate"])
    server.push_update(int(time.time() * 1000))
    assert eventually(lambda: client.get_feature_list() == ["flag_v2"], 10)


@pytest.fixture
def client(server: FaultServer, make_client: Callable[..., Client]) -> Client:
    """A streaming client that also polls fast, with a good configuration active."""
    server.config = datafile(1, real_time=True)
    server.remote_map["k"] = {"a": 1}
    made = make_client(default_timeout_millisecond=int(TIMEOUT * 1000), refresh_interval_minute=0.005)
    assert made.wait_init() and made.get_feature_list() == ["flag_v1"]
    assert eventually(server.stream_settled, 5)
    return made


@pytest.mark.parametrize(
    "fault",
    [Fault.status(503), Fault.reset(), Fault.truncate(), Fault.garbage(), Fault.hang()],
    ids=["5xx", "reset", "truncated", "garbage-json", "slow-past-timeout"],
)
def test_every_route_failing(server: FaultServer, client: Client, fault: Fault) -> None:
    for route in ROUTES:
        server.always(route, fault)
    server.cut_streams()  # the stream must reconnect, into the fault
    tracked: list[int] = []
    exercise(client, tracked, rounds=1 if fault.kind == "slow" else 3)
    server.heal()
    recovers(server, client, tracked)


def test_server_down_mid_run(server: FaultServer, client: Client) -> None:
    server.stop()
    tracked: list[int] = []
    exercise(client, tracked)
    assert client._tracker.retry_lines > 0
    server.start()
    recovers(server, client, tracked)


def test_server_down_at_start(server: FaultServer, make_client: Callable[..., Client]) -> None:
    server.config = datafile(1, real_time=True)
    server.stop()
    client = make_client(
        wait=False, default_timeout_millisecond=int(TIMEOUT * 1000), refresh_interval_minute=0.005
    )
    assert timed(client.wait_init, 3 * TIMEOUT + MARGIN) is False
    tracked = []
    for goal in (9001, 9002):
        timed(lambda goal=goal: client.track_conversion("v0", goal), MARGIN)
        tracked.append(goal)
    assert timed(lambda: client.get_remote_data("k"), TIMEOUT + MARGIN) is None
    server.start()
    assert eventually(client.wait_init, 5) and client.get_feature_list() == ["flag_v1"]
    recovers(server, client, tracked)


def test_sse_stream_cut_mid_event(server: FaultServer, client: Client) -> None:
    server.cut_streams(mid_event=True)
    tracked: list[int] = []
    exercise(client, tracked)
    assert eventually(lambda: server.open_streams == 1, 5)
    assert all("ts" not in r.query for r in server.of("config"))  # the half event was not acted on
    recovers(server, client, tracked)


def test_token_endpoint_failing(server: FaultServer, client: Client) -> None:
    server.always("token", Fault.status(500))
    client._tokens.invalidate(client._tokens.cached())
    tracked: list[int] = []
    exercise(client, tracked)
    # tracking and data calls go on without a token meanwhile
    assert eventually(lambda: set(tracked) <= delivered(server), 10)
    assert any("authorization" not in r.headers for r in server.of("tracking"))
    server.heal()
    recovers(server, client, tracked)
