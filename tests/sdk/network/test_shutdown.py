"""Stopping a client (``KameleoonClientFactory.forget()``, interpreter exit) against a loopback server.

One deadline bounds the whole close: every thread of a client is told to stop at once, the
final tracking flush gets what remains, and at exit all clients share one deadline. The
documented bounds (5 s for ``forget()``, 2 s at exit) are module constants; the tests scale
them down so that the old sequential waits (2 s for the configuration thread, then the
timeout plus 1 s for the tracking thread, per client) would exceed the coarse bound.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest

import kameleoon
from kameleoon import _client as client_module
from kameleoon.data import CustomData

from .fault_server import Fault, FaultServer

Client = Any
BOUND = 0.5  # the close timeout the tests use (seconds)
COARSE = 3 * BOUND  # what a test allows: the bound with a 3x margin


def conversions(server: FaultServer) -> list[int]:
    return sorted(
        int(line["goalId"]) for line in server.tracking_lines() if line["eventType"] == "conversion"
    )


def in_flight(server: FaultServer, kind: str, count: int = 1) -> None:
    """Waits until ``count`` requests of ``kind`` reached the server (a thread now waits for them)."""
    assert server.wait_for(lambda: len(server.of(kind)) >= count, 10)


def test_forget_returns_within_its_bound_when_every_thread_waits_for_the_server(
    server: FaultServer,
    make_client: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Both threads are blocked in requests that would last 10 s: forget() still returns within
    its bound (one deadline for both threads, not one wait after the other), ends the requests
    in flight so no thread is left, and what could not be sent is counted."""
    monkeypatch.setattr(client_module, "_CLOSE_TIMEOUT", BOUND)
    client = make_client(default_timeout_millisecond=10_000, tracking_interval_millisecond=100)
    server.always("tracking", Fault.hang())
    server.always("config", Fault.hang())
    client.track_conversion("v1", 1)
    in_flight(server, "tracking")
    client._updater.refresh_now()
    in_flight(server, "config", 2)
    client.track_conversion("v2", 2)  # waits for the final flush

    threads = [client._tracker._thread, client._updater._thread]
    started = time.monotonic()
    kameleoon.KameleoonClientFactory.forget(client._site_code)
    assert time.monotonic() - started < COARSE
    assert not any(thread is not None and thread.is_alive() for thread in threads)
    assert "could not be ended at close" not in caplog.text
    assert client._tracker.stats.lines_dropped == 2  # both conversions, counted (and logged)
    assert client._tracker.stats.lines_sent == 0


def test_forget_flushes_within_its_bound_when_the_server_is_slow_but_answers(
    server: FaultServer, make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final flush gets the time that remains: a collector answering in 0.2 s receives
    everything pending before forget() returns."""
    monkeypatch.setattr(client_module, "_CLOSE_TIMEOUT", 2.0)
    client = make_client(tracking_interval_millisecond=1000)
    server.always("tracking", Fault.slow(0.2))
    for goal in range(3):
        client.track_conversion(f"v{goal}", goal)
    kameleoon.KameleoonClientFactory.forget(client._site_code)
    stats = client._tracker.stats
    assert stats.lines_sent == 3 and stats.lines_dropped == 0


def test_a_stopped_client_keeps_no_thread_when_nothing_was_in_flight(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    client.track_conversion("v1", 1)
    tracker_thread, updater_thread = client._tracker._thread, client._updater._thread
    kameleoon.KameleoonClientFactory.forget(client._site_code)
    assert not tracker_thread.is_alive() and not updater_thread.is_alive()
    assert conversions(server) == [1]


EXIT_SCRIPT = """
    import atexit, sys, time
    marks = {{}}
    # registered before kameleoon's own hook, so it runs after it (atexit is last in, first out)
    atexit.register(lambda: print(f"closing took {{time.monotonic() - marks['exit']:.3f}}"))
    import kameleoon
    from kameleoon import _client
    _client._EXIT_TIMEOUT = {bound}
    clients = []
    for number in range(4):
        config = kameleoon.KameleoonClientConfig(
            "id", "secret", network_domain="{url}", default_timeout_millisecond=10000,
            tracking_interval_millisecond=1000,
        )
        client = kameleoon.KameleoonClientFactory.create(f"exiting{{number}}", config)
        client.wait_init()
        client.track_conversion("first", 1)
        clients.append(client)
    for client in clients:  # every tracking thread has made its first request (hanging or not)
        while client._tracker.stats.requests == 0:
            time.sleep(0.01)
    for number, client in enumerate(clients):
        client.track_conversion("last", 70 + number)  # left for the final flush
    marks["exit"] = time.monotonic()
"""


@pytest.mark.parametrize("collector", ["hangs", "answers"])
def test_interpreter_exit_closes_every_client_within_one_deadline(
    server: FaultServer, collector: str
) -> None:
    """Four clients whose tracking threads are (or are not) blocked for 10 s: exit closes them
    all within one deadline; a collector that answers gets every client's last conversion."""
    if collector == "hangs":
        server.always("tracking", Fault.hang())
    script = textwrap.dedent(EXIT_SCRIPT.format(bound=BOUND, url=server.url))
    done = subprocess.run(
        [sys.executable, "-c", script], check=True, timeout=60, capture_output=True, text=True
    )
    took = float(done.stdout.split("closing took ")[1])
    assert took < COARSE
    if collector == "answers":
        assert [goal for goal in conversions(server) if goal >= 70] == [70, 71, 72, 73]


# -- calls after forget() -------------------------------------------------------------------------
def test_calls_after_forget_are_counted_and_logged_once(
    server: FaultServer, make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing is sent any more: each call that would have been tracked is counted, the first
    one is logged, and none raises (the API has no exception for it)."""
    client = make_client()
    kameleoon.KameleoonClientFactory.forget(client._site_code)
    client.add_data("v1", CustomData(0, "x"))
    client.track_conversion("v1", 1)
    client.flush("v1")
    client.flush("v1", instant=True)
    client.flush()
    assert client.get_feature_variation_key("v2", "flag_v1") in ("on", "off")
    assert client._tracker.stats.calls_after_close == 6
    assert client._tracker.pending_codes == 0
    assert caplog.text.count("this client was stopped") == 1


def test_calls_before_forget_are_not_counted(server: FaultServer, make_client: Callable[..., Client]) -> None:
    client = make_client()
    client.add_data("v1", CustomData(0, "x"))
    client.track_conversion("v1", 1)
    client.flush()
    kameleoon.KameleoonClientFactory.forget(client._site_code)
    assert client._tracker.stats.calls_after_close == 0
    assert client._tracker.stats.lines_sent >= 2
