"""The access token (kameleoon._network.token, spec §4) against a real loopback server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest

from kameleoon._network.backoff import Backoff
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.token import TokenSource, TokenTimes, read_token
from kameleoon._network.transport import Urllib3Transport

from .conftest import eventually
from .fault_server import Fault, FaultServer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def transport() -> Iterator[Urllib3Transport]:
    transport = Urllib3Transport()
    yield transport
    transport.close()


def source(server: FaultServer, transport: Urllib3Transport, clock: Clock, **options: object) -> TokenSource:
    return TokenSource(
        Endpoints("s1", server.url, None),
        transport,
        "my-client-id",
        "my secret/+=",
        1.0,
        logging.getLogger("kameleoon.tests"),
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("expires_in", "expires_at", "obsolete_at"),
    [(3600, 3540.0, 1800.0), (1801, 1741.0, 1.0), (1800, 1740.0, 1740.0), (61, 1.0, 1.0), (60, 0.0, 0.0)],
)
def test_token_times(expires_in: int, expires_at: float, obsolete_at: float) -> None:
    """Expiry is 60 s before ``expires_in``; obsolescence 1800 s before, for long tokens."""
    assert TokenTimes.of(0.0, expires_in) == TokenTimes(expires_at, obsolete_at)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"access_token": "t", "expires_in": 3600, "token_type": "Bearer"}, ("t", 3600)),
        ({"access_token": "t", "expires_in": 3600.0}, (None, None)),
        ({"access_token": "t", "expires_in": True}, (None, None)),
        ({"access_token": "t", "expires_in": 0}, (None, None)),
        ({"access_token": "", "expires_in": 3600}, (None, None)),
        ({"access_token": 5, "expires_in": 3600}, (None, None)),
        ({"expires_in": 3600}, (None, None)),
        (["t", 3600], (None, None)),
        (None, (None, None)),
    ],
)
def test_read_token(document: object, expected: tuple[object, object]) -> None:
    assert read_token(document) == expected


def test_request_format(server: FaultServer, transport: Urllib3Transport, clock: Clock) -> None:
    """POST, form body with the spec's encoding, no query, no Authorization (spec §4.1)."""
    assert source(server, transport, clock).get() == "tok-1"
    (request,) = server.of("token")
    assert request.method == "POST"
    assert request.path == "/oauth/token" and request.query == {}
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in request.headers
    assert (
        request.body
        == b"grant_type=client_credentials&client_id=my-client-id&client_secret=my%20secret%2F%2B%3D"
    )
    assert dict(parse_qsl(request.body.decode()))["client_secret"] == "my secret/+="


def test_cached_until_shortly_before_expiry(
    server: FaultServer, transport: Urllib3Transport, clock: Clock
) -> None:
    server.token_lifetime = 600  # short-lived: obsolete when expired
    tokens = source(server, transport, clock)
    assert tokens.get() == "tok-1"
    clock.now += 539
    assert tokens.get() == "tok-1"
    assert len(server.of("token")) == 1
    clock.now += 1  # 540 s = 600 - 60: expired
    assert tokens.get() == "tok-2"
    assert len(server.of("token")) == 2


def test_obsolete_token_is_used_while_one_background_refresh_runs(
    server: FaultServer, transport: Urllib3Transport, clock: Clock
) -> None:
    tokens = source(server, transport, clock)
    assert tokens.get() == "tok-1"
    server.inject("token", Fault.slow(0.3))
    clock.now += 1801  # 3600 - 1800 s: obsolete, not expired
    seen = {tokens.get() for _ in range(20)}
    assert seen == {"tok-1"}  # no caller waited for the refresh
    assert eventually(lambda: tokens.get() == "tok-2", 5.0)
    assert len(server.of("token")) == 2  # one refresh for twenty obsolete uses


def test_a_failed_background_refresh_backs_off_too(
    server: FaultServer, transport: Urllib3Transport, clock: Clock
) -> None:
    """While the renewal keeps failing, the still-valid token is used and no new refresh
    starts before the backoff delay ends (not one request per call)."""
    tokens = source(server, transport, clock, backoff=Backoff(base=10.0, cap=100.0))
    assert tokens.get() == "tok-1"
    server.always("token", Fault.status(500))
    clock.now += 1801  # obsolete, not expired: each use would start a refresh
    assert tokens.get() == "tok-1"
    assert eventually(lambda: tokens.failures == 1, 5.0)
    for _ in range(20):
        assert tokens.get() == "tok-1"
    clock.now += 4.9  # the first delay is between 5 and 10 s
    assert tokens.get() == "tok-1"
    time.sleep(0.2)  # a refresh started by mistake would be recorded by now
    assert len(server.of("token")) == 2
    server.always("token", None)
    clock.now += 5.2
    assert tokens.get() == "tok-1"  # starts the refresh
    assert eventually(lambda: tokens.get() not in (None, "tok-1"), 5.0)


def test_very_short_token_is_fetched_for_every_call(
    server: FaultServer, transport: Urllib3Transport, clock: Clock
) -> None:
    """``expires_in <= 60``: the token serves the call that fetched it only (spec §4.3)."""
    server.token_lifetime = 30
    tokens = source(server, transport, clock)
    assert [tokens.get(), tokens.get(), tokens.get()] == ["tok-1", "tok-2", "tok-3"]


def test_concurrent_callers_share_one_request(
    server: FaultServer, transport: Urllib3Transport, clock: Clock
) -> None:
    server.inject("token", Fault.slow(0.3))
    tokens = source(server, transport, clock)
    results: list[str | None] = []
    threads = [threading.Thread(target=lambda: results.append(tokens.get())) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == ["tok-1"] * 12
    assert len(server.of("token")) == 1


def test_waiters_give_up_at_their_own_timeout(
    server: FaultServer, transport: Urllib3Transport, clock: Clock
) -> None:
    server.inject("token", Fault.slow(1.0))
    tokens = source(server, transport, clock)
    leader = threading.Thread(target=tokens.get, kwargs={"timeout": 5.0})
    leader.start()
    assert server.wait_for(lambda: server.of("token"), 5.0)
    started = time.monotonic()
    assert tokens.get(timeout=0.1) is None
    assert time.monotonic() - started < 0.9
    leader.join(5)


@pytest.mark.parametrize(
    "fault", [Fault.status(500), Fault.status(401), Fault.garbage(), Fault.reset(), Fault.truncate()]
)
def test_failure_backs_off_then_retries(
    server: FaultServer, transport: Urllib3Transport, clock: Clock, fault: Fault
) -> None:
    """After a failed request, callers go without a token (no request) until the delay ends."""
    server.inject("token", fault)
    tokens = source(server, transport, clock, backoff=Backoff(base=10.0, cap=100.0))
    assert tokens.get() is None
    assert tokens.get() is None
    clock.now += 4.9  # the first delay is between 5 and 10 s
    assert tokens.get() is None
    assert len(server.of("token")) == 1
    clock.now += 5.2
    assert (tokens.get() or "").startswith("tok-")
    assert tokens.failures == 1


def test_consecutive_failures_lengthen_the_silence(
    server: FaultServer, transport: Urllib3Transport, clock: Clock
) -> None:
    server.always("token", Fault.status(503))
    tokens = source(server, transport, clock, backoff=Backoff(base=10.0, cap=1000.0))
    for _ in range(4):
        assert tokens.get() is None
        clock.now += 1000
    assert len(server.of("token")) == 4
    assert tokens._backoff.attempt == 4


def test_timeout_of_the_token_request_is_the_callers(
    server: FaultServer, transport: Urllib3Transport, clock: Clock
) -> None:
    server.inject("token", Fault.hang())
    tokens = source(server, transport, clock)
    started = time.monotonic()
    assert tokens.get(timeout=0.2) is None
    assert time.monotonic() - started < 1.5


def test_invalidate_discards_only_the_given_token(
    server: FaultServer, transport: Urllib3Transport, clock: Clock
) -> None:
    tokens = source(server, transport, clock)
    assert tokens.get() == "tok-1"
    tokens.invalidate("tok-other")
    assert tokens.get() == "tok-1"
    tokens.invalidate("tok-1")
    assert tokens.cached() is None
    assert tokens.get() == "tok-2"


def test_fork_reset_forgets_a_flight_in_progress(
    server: FaultServer, transport: Urllib3Transport, clock: Clock
) -> None:
    """A request flying in a parent thread at fork time must not block the child."""
    tokens = source(server, transport, clock)
    tokens._join()  # a flight that will never land (as if its thread vanished in a fork)
    tokens._reset_after_fork()
    assert tokens.get() == "tok-1"
