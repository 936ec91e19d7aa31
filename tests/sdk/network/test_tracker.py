"""Tracking (kameleoon._network.tracker) through the client, against a misbehaving loopback server."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from kameleoon._engine.model import Configuration
from kameleoon._network import tracker as tracker_module
from kameleoon._network.backoff import Backoff
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.tracker import MAX_BODY_CHARS, Tracker
from kameleoon._network.transport import Urllib3Transport
from kameleoon._visitors.data import add_conversion
from kameleoon._visitors.store import VisitorStore
from kameleoon.data import Conversion, PageView

from .conftest import eventually
from .fault_server import Fault, FaultServer, datafile

Client = Any


def goals(server: FaultServer) -> list[int]:
    return sorted(
        int(line["goalId"]) for line in server.tracking_lines() if line["eventType"] == "conversion"
    )


def test_request_format(server: FaultServer, make_client: Callable[..., Client]) -> None:
    client = make_client()
    client.track_conversion("v1", 32, 10.5)
    assert eventually(lambda: server.of("tracking"), 5)
    (request,) = server.of("tracking")
    assert request.query == {
        "sdkName": "PYTHON",
        "sdkVersion": "3.4.0",
        "siteCode": request.query["siteCode"],
        "bodyUa": "true",
    }
    assert request.headers["authorization"] == "Bearer tok-1"
    assert request.headers["content-type"] == "text/plain; charset=utf-8"
    (line,) = request.lines()
    assert len(line.pop("nonce")) == 16
    assert line == {
        "eventType": "conversion",
        "goalId": "32",
        "revenue": "10.5",
        "negative": "false",
        "visitorCode": "v1",
    }


def test_one_request_per_tick_for_many_visitors(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(tracking_interval_millisecond=1000)
    for number in range(200):
        client.track_conversion(f"v{number}", number)
    assert eventually(lambda: len(goals(server)) == 200, 5)
    assert len(server.of("tracking")) == 1


def test_size_cap_splits_a_tick_into_several_requests(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(tracking_interval_millisecond=1000)
    url = "https://ex.com/" + "p" * 100_000
    for number in range(30):
        client.add_data(f"v{number}", PageView(f"{url}{number}", "t"))
        client.flush(f"v{number}")
    assert eventually(lambda: sum(r.body.count(b"\n") + 1 for r in server.of("tracking")) == 30, 10)
    bodies = [len(r.body) for r in server.of("tracking")]
    assert len(bodies) >= 2
    assert all(size <= MAX_BODY_CHARS + 4 * len(url) for size in bodies)


def test_a_tick_takes_visitors_until_one_passes_the_size_cap(make_client: Callable[..., Client]) -> None:
    """Visitors are added while the body is within the cap: the one that passes it is the last
    (protocol spec §5.6); the others stay scheduled, in their order, for the next tick."""
    client = make_client(tracking_interval_millisecond=1000)
    codes = [f"v{number}" for number in range(30)]
    for code in codes:  # about 100 kB of lines each, not scheduled
        client.add_data(code, PageView("https://ex.com/" + "p" * 100_000 + code, "t"))
    tracker = client._tracker
    built = tracker._build(list(codes), cap=250_000)
    assert [line.rsplit("visitorCode=", 1)[1] for line in built] == ["v0", "v1", "v2"]
    assert list(tracker._scheduled) == codes[3:]


def test_failed_batch_is_resent_with_the_same_nonces(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    server.inject("tracking", Fault.status(503))
    server.inject("tracking", Fault.reset())
    client.track_conversion("v1", 1)
    client.track_conversion("v2", 2)
    assert eventually(lambda: len(server.of("tracking")) >= 3, 10)
    first, second, third = (r.body for r in server.of("tracking")[:3])
    assert first == second == third  # the identical body, nonces included
    assert goals(server).count(1) == 3
    assert client._tracker.stats.failed_requests == 2


def test_a_404_from_the_collector_keeps_the_lines_for_later(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    """A 404 (a proxy not routing to the collector yet, a site not created yet) says nothing
    against the lines: they are kept and delivered, once each, when the collector answers."""
    client = make_client()
    server.inject("tracking", Fault.status(404), count=2)
    client.track_conversion("v1", 1)
    client.track_conversion("v2", 2)
    assert eventually(lambda: sorted(goals(server)) == [1, 1, 1, 2, 2, 2], 15)
    assert client._tracker.stats.lines_rejected == 0
    delivered = server.of("tracking")[2].body
    assert delivered == server.of("tracking")[0].body  # the same body, nonces included


def test_401_discards_the_token_and_retries_without_it(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    client.track_conversion("v1", 1)
    assert eventually(lambda: goals(server) == [1], 5)
    server.require_token = True
    server._issued.clear()  # tok-1 is revoked
    client.track_conversion("v1", 2)
    assert eventually(lambda: len(server.of("tracking")) >= 3, 5)
    with_token, without = server.of("tracking")[1:3]
    assert with_token.headers["authorization"] == "Bearer tok-1"
    assert "authorization" not in without.headers and without.body == with_token.body
    assert eventually(
        lambda: any(r.headers.get("authorization") == "Bearer tok-2" for r in server.of("tracking")), 10
    )
    assert eventually(lambda: goals(server).count(2) >= 1, 5)


def test_every_event_arrives_once_the_server_is_back(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    server.stop()
    for goal in range(50):
        client.track_conversion(f"v{goal % 7}", goal)
        if goal % 10 == 0:
            time.sleep(0.1)  # several ticks, several kept batches
    assert eventually(lambda: client._tracker.retry_lines > 0, 5)  # a tick failed and kept its lines
    server.start()
    assert eventually(lambda: sorted(set(goals(server))) == list(range(50)), 15)
    nonces = [line["nonce"] for line in server.tracking_lines()]
    assert len(nonces) == len(set(nonces))  # nothing was delivered twice
    assert client._tracker.stats.lines_dropped == 0


def test_concurrent_callers_lose_nothing(server: FaultServer, make_client: Callable[..., Client]) -> None:
    """Threads tracking while ticks take the schedule: every conversion arrives, none twice."""
    client = make_client()

    def track(offset: int) -> None:
        for number in range(400):
            client.track_conversion(f"v{number % 37}", offset + number)

    threads = [threading.Thread(target=track, args=(offset,)) for offset in range(0, 4000, 1000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = sorted(offset + n for offset in range(0, 4000, 1000) for n in range(400))
    assert eventually(lambda: goals(server) == expected, 15)


def test_instant_flush_sends_now_in_a_request_of_its_own(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(tracking_interval_millisecond=1000)
    client.track_conversion("other", 9)
    client.track_conversion("v1", 1)
    started = time.monotonic()
    client.flush("v1", instant=True)
    assert eventually(lambda: server.of("tracking"), 5)
    first = server.of("tracking")[0]
    assert first.at - started < 0.5
    assert [(line["eventType"], line["visitorCode"]) for line in first.lines()] == [("conversion", "v1")]
    # v1 stays scheduled: the next tick brings an activity line for it, as the reference does
    assert eventually(lambda: len(server.of("tracking")) == 2, 5)
    second = {(line["eventType"], line["visitorCode"]) for line in server.of("tracking")[1].lines()}
    assert second == {("conversion", "other"), ("activity", "v1")}


def test_evicted_visitors_data_is_still_sent(server: FaultServer, make_client: Callable[..., Client]) -> None:
    client = make_client(tracking_interval_millisecond=1000, max_visitors=2)
    for number in range(6):
        client.track_conversion(f"v{number}", number)
    assert eventually(lambda: goals(server) == list(range(6)), 5)


def test_forget_sends_what_is_pending(server: FaultServer, make_client: Callable[..., Client]) -> None:
    import kameleoon

    client = make_client(tracking_interval_millisecond=1000)
    client.track_conversion("v1", 1)
    kameleoon.KameleoonClientFactory.forget(client._site_code)
    assert goals(server) == [1]  # delivered before forget() returned


def test_forget_is_bounded_when_the_server_hangs(
    server: FaultServer, make_client: Callable[..., Client]
) -> None:
    import kameleoon

    client = make_client(tracking_interval_millisecond=1000, default_timeout_millisecond=300)
    server.always("tracking", Fault.hang())
    client.track_conversion("v1", 1)
    started = time.monotonic()
    kameleoon.KameleoonClientFactory.forget(client._site_code)
    assert time.monotonic() - started < 5.0 + 1.0  # the close timeout, plus slack


def test_interpreter_exit_flushes(server: FaultServer) -> None:
    script = textwrap.dedent(f"""
        import kameleoon
        config = kameleoon.KameleoonClientConfig("id", "secret", network_domain="{server.url}",
                                                 tracking_interval_millisecond=1000)
        client = kameleoon.KameleoonClientFactory.create("exiting", config)
        client.wait_init()
        client.track_conversion("v1", 77)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    assert goals(server) == [77]


# -- the tracker on its own (bounds and crashes) -----------------------------------------------
def tracker(
    server: FaultServer,
    store: VisitorStore,
    config: Callable[[], Configuration],
    interval: float = 0.1,
    **options: Any,
) -> Tracker:
    return Tracker(
        store,
        config,
        Endpoints("s1", server.url, None),
        Urllib3Transport(),
        None,
        interval,
        1.0,
        logging.getLogger("kameleoon.tests"),
        retry_backoff=Backoff(0.2, 0.4),
        **options,
    )


def convert(store: VisitorStore, job: Tracker, code: str, goal: int) -> None:
    visitor = store.get_or_create(code)
    with store.data_lock:
        add_conversion(visitor, Conversion(goal), unsent=True)
    job.schedule(code)


def test_full_retry_buffer_drops_oldest_lines_counted_and_logged_once(
    server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    from kameleoon._engine.parse import parse_configuration

    config = parse_configuration(datafile())
    store = VisitorStore(3600, 1000)
    job = tracker(server, store, lambda: config, max_retry_lines=5)
    job.start()
    server.stop()
    try:
        for goal in range(12):
            convert(store, job, f"v{goal}", goal)
            assert job.wait_idle()
        assert job.stats.lines_dropped == 7 and job.retry_lines == 5
        assert caplog.text.count("retry buffer is full") == 1
        server.start()
        assert eventually(lambda: goals(server) == list(range(7, 12)), 10)
    finally:
        job.stop(2.0)


def test_a_crash_in_the_thread_is_logged_and_tracking_goes_on(
    server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    from kameleoon._engine.parse import parse_configuration

    config = parse_configuration(datafile())
    failures = [1]

    def flaky() -> Configuration:
        if failures:
            failures.pop()
            raise RuntimeError("boom")
        return config

    store = VisitorStore(3600, 1000)
    job = tracker(server, store, flaky)
    job.start()
    try:
        convert(store, job, "v1", 1)
        assert eventually(lambda: goals(server) == [1], 5)
        assert "the tracking thread failed; restarting it" in caplog.text
    finally:
        job.stop(2.0)


@pytest.mark.parametrize("bulk", [False, True])
def test_a_full_schedule_leaves_visitors_out_counted_and_logged_once(
    server: FaultServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    """schedule and schedule_all (flush() without a code) keep order, ignore codes already
    scheduled, and stop at the bound, counting the visitors left out."""
    monkeypatch.setattr(tracker_module, "MAX_SCHEDULED", 4)
    job = tracker(server, VisitorStore(3600, 1000), Configuration)  # not started: nothing is taken
    job.schedule("a")
    codes = ["b", "a", "c", "d", "e", "f"]
    if bulk:
        job.schedule_all(codes)
    else:
        for code in codes:
            job.schedule(code)
    assert list(job._scheduled) == ["a", "b", "c", "d"]
    assert job.stats.codes_dropped == 2
    assert caplog.text.count("schedule is full") == 1
    job.schedule_all(["a", "b"])  # already there: nothing left out
    assert job.stats.codes_dropped == 2
