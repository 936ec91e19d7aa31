"""The configuration job (kameleoon._network.config_updates): download, polling, streaming."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kameleoon._engine.model import EMPTY_CONFIGURATION, Configuration
from kameleoon._network.backoff import Backoff
from kameleoon._network.config_updates import ConfigUpdater
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.transport import Urllib3Transport

from .conftest import eventually
from .fault_server import Fault, FaultServer, datafile

MARGIN = 1.0


class Target:
    """Stands for the client: holds the active configuration and records each one applied."""

    def __init__(self) -> None:
        self.config: Configuration = EMPTY_CONFIGURATION
        self.applied: list[tuple[list[str], str | None]] = []
        self.fail_next = 0

    def apply(self, config: Configuration, ts: str | None) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("boom")
        self.config = config
        self.applied.append((list(config.flags), ts))

    def current(self) -> Configuration:
        return self.config

    @property
    def keys(self) -> list[str]:
        return list(self.config.flags)


@pytest.fixture
def target() -> Target:
    return Target()


@pytest.fixture
def updater(server: FaultServer, target: Target) -> Iterator[Callable[..., ConfigUpdater]]:
    made: list[tuple[ConfigUpdater, Urllib3Transport]] = []

    def make(
        start: bool = True, refresh: float = 3600.0, environment: str | None = None, **options: Any
    ) -> ConfigUpdater:
        transport = Urllib3Transport()
        job = ConfigUpdater(
            Endpoints("s1", server.url, environment),
            transport,
            1.0,
            refresh,
            target.apply,
            target.current,
            logging.getLogger("kameleoon.tests"),
            stream_backoff=Backoff(0.1, 0.4),
            **options,
        )
        made.append((job, transport))
        if start:
            job.start()
            assert job.first_attempt_done.wait(10)
        return job

    yield make
    for job, transport in made:
        job.stop()
        transport.close()


def test_first_download(server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target) -> None:
    """GET /{site}?environment=..., the SDK headers, applied without ``ts``."""
    updater(environment="staging")
    (request,) = server.of("config")
    assert request.path == "/s1" and request.query == {"environment": "staging"}
    assert request.headers["x-kameleoon-sdk-type"] == "PYTHON"
    assert request.headers["x-kameleoon-sdk-version"] == "3.4.0"
    assert target.applied == [(["flag_v1"], None)]


def test_a_compressed_configuration_is_asked_for_and_read(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    """The download accepts gzip and deflate, as the reference's does (protocol spec §2.2), so a
    CDN may send the configuration compressed."""
    server.inject("config", Fault.gzip())
    updater()
    (request,) = server.of("config")
    assert request.headers["accept-encoding"] == "gzip, deflate"
    assert request.headers["accept"] == "*/*"
    assert target.applied == [(["flag_v1"], None)]


@pytest.mark.parametrize(
    "fault", [Fault.status(500), Fault.reset(), Fault.truncate(), Fault.garbage(), Fault.status(404)]
)
def test_three_immediate_attempts(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target, fault: Fault
) -> None:
    server.always("config", fault)
    job = updater()
    assert len(server.of("config")) == 3
    assert target.applied == [] and job.failures == 1


def test_third_attempt_can_succeed(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    server.inject("config", Fault.garbage())
    server.inject("config", Fault.status(502))
    updater()
    assert len(server.of("config")) == 3
    assert target.keys == ["flag_v1"]


def test_403_is_not_retried(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    server.always("config", Fault.status(403))
    updater()
    assert len(server.of("config")) == 1 and target.applied == []


@pytest.mark.parametrize(
    "document", [{}, [], {"featureFlags": [{"featureKey": "f", "rules": [{"type": "X"}]}]}]
)
def test_unusable_document_keeps_the_last_good_configuration(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target, document: Any
) -> None:
    job = updater()
    server.config = document
    assert not job.fetch()
    assert target.keys == ["flag_v1"] and len(target.applied) == 1


def test_polling_applies_changes_once(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    updater(refresh=0.2)
    assert eventually(lambda: len(server.of("config")) >= 3, 5)
    assert target.applied == [(["flag_v1"], None)]  # unchanged answers are not applied again
    server.config = datafile(2)
    assert eventually(lambda: target.keys == ["flag_v2"], 5)
    assert len(target.applied) == 2


def test_failed_polls_keep_the_configuration(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    updater(refresh=0.2)
    server.always("config", Fault.status(500))
    assert eventually(lambda: len(server.of("config")) >= 7, 5)
    assert target.keys == ["flag_v1"]
    server.heal()
    server.config = datafile(2)
    assert eventually(lambda: target.keys == ["flag_v2"], 5)


def test_stream_event_downloads_with_ts(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    server.config = datafile(1, real_time=True)
    job = updater()
    assert eventually(server.stream_settled, 5)
    (request,) = server.of("sse")
    assert request.query == {"siteCode": "s1"}
    assert request.headers["accept"] == "text/event-stream"
    server.config = datafile(2, real_time=True)
    server.push_update(1700000000123)
    assert eventually(lambda: target.keys == ["flag_v2"], 5)
    assert server.of("config")[-1].query == {"ts": "1700000000123"}
    assert target.applied[-1] == (["flag_v2"], "1700000000123")
    assert job.streaming
    server.config = datafile(3, real_time=True)  # a ts given as a string or a float is sent as given
    server.push_raw(
        b'event: configuration-update-event\ndata: {"ts":"1700000000999"}\n\n' + b": " + b"p" * 200 + b"\n\n"
    )
    assert eventually(lambda: target.keys == ["flag_v3"], 5)
    assert server.of("config")[-1].query == {"ts": "1700000000999"}
    server.push_raw(
        b'event: configuration-update-event\ndata: {"ts":1700000000555.0}\n\n' + b": " + b"p" * 200 + b"\n\n"
    )
    assert eventually(lambda: server.of("config")[-1].query == {"ts": "1700000000555.0"}, 5)


def test_other_and_malformed_events_are_ignored(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    server.config = datafile(1, real_time=True)
    updater()
    assert eventually(server.stream_settled, 5)
    server.push_raw(b'event: other\ndata: {"ts":1}\n\nevent: configuration-update-event\ndata: {"x":1}\n\n')
    server.push_raw(b"event: configuration-update-event\ndata: not json\n\n")
    server.push_update(5)
    assert eventually(lambda: server.of("config")[-1].query == {"ts": "5"}, 5)
    assert len(server.of("config")) == 3  # at start, once the stream is open, and for ts=5


def test_a_change_made_before_the_stream_opened_is_not_missed(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    """A stream only announces later changes: once it is open, the configuration is downloaded
    again, so a change made between the first download and the stream's start is applied."""
    server.config = datafile(1, real_time=True)
    server.sse_delay = 0.5
    updater()
    assert target.keys == ["flag_v1"]
    assert eventually(lambda: len(server.of("sse")) == 1, 5)  # the stream is being opened
    server.config = datafile(2, real_time=True)  # announced to nobody: no stream is registered yet
    assert eventually(lambda: target.keys == ["flag_v2"], 5)
    assert len(server.of("sse")) == 1 and server.open_streams == 1  # without reconnecting


def test_stream_cut_mid_event_reconnects_and_catches_up(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    server.config = datafile(1, real_time=True)
    updater()
    assert eventually(server.stream_settled, 5)
    server.config = datafile(2, real_time=True)
    server.cut_streams(mid_event=True)
    # the partial event is never acted on (no ?ts=17...); the new stream downloads once
    assert eventually(lambda: target.keys == ["flag_v2"], 5)
    assert len(server.of("sse")) == 2
    assert all("ts" not in r.query for r in server.of("config"))


def test_stream_down_polls_and_reconnects_with_backoff(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    server.config = datafile(1, real_time=True)
    server.always("sse", Fault.status(503))
    updater(refresh=0.3)
    server.config = datafile(2, real_time=True)
    assert eventually(lambda: target.keys == ["flag_v2"], 5)  # polled while the stream is down
    attempts = len(server.of("sse"))
    assert 2 <= attempts <= 12  # retried, but spaced out
    server.always("sse", None)
    assert eventually(lambda: server.open_streams == 1, 5)


def test_server_closing_the_stream_cleanly_is_reconnected(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    """The reference stays without updates forever here (spec §3.5); we reconnect."""
    server.config = datafile(1, real_time=True)
    updater()
    for round_ in range(1, 4):
        assert eventually(lambda: server.open_streams == 1, 5)
        server.cut_streams()
        assert eventually(lambda round_=round_: len(server.of("sse")) > round_, 5)


def test_silent_stream_is_reopened_after_the_idle_timeout(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    server.config = datafile(1, real_time=True)
    updater(stream_idle_timeout=0.3)
    assert eventually(lambda: len(server.of("sse")) >= 2, 5)


def test_keepalives_prevent_the_idle_timeout(
    server: FaultServer, updater: Callable[..., ConfigUpdater]
) -> None:
    server.sse_keepalive = 0.1
    server.config = datafile(1, real_time=True)
    updater(stream_idle_timeout=0.5)
    time.sleep(1.2)
    assert len(server.of("sse")) == 1


def test_stop_interrupts_a_blocked_stream_read(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    server.config = datafile(1, real_time=True)
    job = updater(stream_idle_timeout=None)
    assert eventually(lambda: server.open_streams == 1, 5)
    time.sleep(0.1)  # the job is now blocked reading the silent stream
    started = time.monotonic()
    job.stop(timeout=5)
    assert time.monotonic() - started < MARGIN
    assert job._thread is not None and not job._thread.is_alive()


def test_leaving_real_time_mode_closes_the_stream_and_polls(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    server.config = datafile(1, real_time=True)
    updater(refresh=0.3)
    assert eventually(server.stream_settled, 5)
    server.config = datafile(2, real_time=False)
    server.push_update(9)
    assert eventually(lambda: server.open_streams == 0, 5)
    server.config = datafile(3, real_time=False)
    assert eventually(lambda: target.keys == ["flag_v3"], 5)


def test_a_crashing_job_is_logged_and_restarted(
    server: FaultServer,
    updater: Callable[..., ConfigUpdater],
    target: Target,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target.fail_next = 1
    job = updater(refresh=0.2)
    assert job.first_attempt_done.is_set() and target.applied == []
    assert eventually(lambda: target.keys == ["flag_v1"], 5)
    assert "restarting it" in caplog.text


# -- through the client --------------------------------------------------------------------------
def test_wait_init_is_truthful(server: FaultServer, make_client: Callable[..., Any]) -> None:
    """False after a failed first download (the reference says True), True once one is active."""
    server.stop()
    client = make_client(wait=False, refresh_interval_minute=0.005)
    started = time.monotonic()
    assert client.wait_init() is False
    assert time.monotonic() - started < 3 * 1.0 + MARGIN  # three attempts at most
    assert client.get_feature_list() == []
    server.start()
    assert eventually(client.wait_init, 5)
    assert client.get_feature_list() == ["flag_v1"]


def test_update_handler_runs_once_per_applied_update(
    server: FaultServer, make_client: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server.config = datafile(1, real_time=True)
    client = make_client()
    calls: list[list[str]] = []

    def handler() -> None:
        calls.append(client.get_feature_list())  # the client is usable from the handler
        if len(calls) == 1:
            raise RuntimeError("a broken handler")

    client.on_update_configuration(handler)
    assert eventually(server.stream_settled, 5)
    server.config = datafile(2, real_time=True)
    server.push_update(1)
    assert eventually(lambda: calls == [["flag_v2"]], 5)
    server.push_update(2)  # same document: nothing applied, no call
    assert eventually(lambda: len(server.of("config")) == 3, 5)
    server.config = datafile(3, real_time=True)
    server.push_update(3)
    assert eventually(lambda: calls == [["flag_v2"], ["flag_v3"]], 5)
    assert "on_update_configuration handler raised" in caplog.text


def test_a_download_at_stream_open_that_leaves_real_time_mode_polls_at_once(
    server: FaultServer, updater: Callable[..., ConfigUpdater], target: Target
) -> None:
    """The download made when the stream opens turns streaming off: the (silent) stream is
    closed and polling goes on, without waiting for an event or the idle timeout."""
    server.config = datafile(1, real_time=True)
    server.sse_delay = 0.3  # the stream opens after the switch below
    updater(refresh=0.3)
    server.config = datafile(2, real_time=False)
    assert eventually(lambda: target.keys == ["flag_v2"], 5)
    polls = len(server.of("config"))
    assert eventually(lambda: len(server.of("config")) >= polls + 2, 5)
    assert server.open_streams == 0


def test_an_update_handler_may_call_wait_init(
    server: FaultServer, make_client: Callable[..., Any], tmp_path: Any
) -> None:
    """With a startup document, the first download is an update: its handler runs on the
    configuration thread before the first download is over, and wait_init() there must not
    wait for itself."""
    import json

    startup = tmp_path / "startup.json"
    startup.write_text(json.dumps(datafile(0)), encoding="utf-8")
    server.inject("config", Fault.slow(0.3))  # the handler is registered before the answer
    client = make_client(wait=False, configuration_path=str(startup))
    seen: list[bool] = []
    client.on_update_configuration(lambda: seen.append(client.wait_init()))
    assert eventually(lambda: seen == [True], 5)
    assert client.wait_init() is True
    assert client.get_feature_list() == ["flag_v1"]
