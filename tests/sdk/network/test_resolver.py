"""Host-name resolution within the exchange's deadline (kameleoon._network.resolver).

The system resolver cannot be made slow from a test without touching the machine, so these
tests slow down the resolver's one seam, ``resolver._getaddrinfo``; everything else (urllib3,
sockets, the loopback server) is real."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kameleoon._network import resolver
from kameleoon._network.transport import Request, TransportError, Urllib3Transport

from .fault_server import Fault, FaultServer

MARGIN = 1.0  # seconds of slack on a loaded machine; the bounds below are upper bounds only


@pytest.fixture
def hung_resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[str]]]:
    """A system resolver that does not answer until the event is set; the names asked for."""
    release = threading.Event()
    asked: list[str] = []

    def slow(host: str, *args: Any) -> Any:
        asked.append(host)
        release.wait(30)
        return socket.getaddrinfo(host, *args)

    monkeypatch.setattr(resolver, "_getaddrinfo", slow)
    yield release, asked
    release.set()


def by_name(server: FaultServer, timeout: float) -> Request:
    url = server.url.replace("127.0.0.1", "localhost")
    return Request("GET", f"{url}/site", {}, None, timeout)


def resolver_threads() -> int:
    return sum(t.name.startswith("kameleoon-resolver-") for t in threading.enumerate())


def test_a_host_name_is_resolved_and_served(server: FaultServer, transport: Urllib3Transport) -> None:
    assert transport.send(by_name(server, 2.0)).status == 200


def test_a_resolver_that_does_not_answer_ends_within_the_timeout(
    server: FaultServer, transport: Urllib3Transport, hung_resolver: tuple[threading.Event, list[str]]
) -> None:
    release, asked = hung_resolver
    for _ in range(2 * resolver.THREADS):
        started = time.monotonic()
        with pytest.raises(TransportError, match="timed out"):
            transport.send(by_name(server, 0.3))
        assert time.monotonic() - started < 0.3 + MARGIN
    assert asked and set(asked) == {"localhost"}
    assert resolver_threads() <= resolver.THREADS  # a hung name server costs a fixed few threads
    release.set()
    # The lookups already running finish; those whose caller gave up are skipped.
    assert transport.send(by_name(server, 5.0)).status == 200
    assert len(asked) <= resolver.THREADS + 1


def test_an_address_is_not_looked_up(
    server: FaultServer, transport: Urllib3Transport, hung_resolver: tuple[threading.Event, list[str]]
) -> None:
    _, asked = hung_resolver
    assert transport.send(Request("GET", f"{server.url}/site", {}, None, 2.0)).status == 200
    assert asked == []


def test_a_name_that_does_not_resolve_fails_the_exchange(
    server: FaultServer, transport: Urllib3Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unknown(*args: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(resolver, "_getaddrinfo", unknown)
    with pytest.raises(TransportError, match="resolve"):
        transport.send(by_name(server, 2.0))


def test_the_lookup_counts_towards_the_deadline(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lookup taking most of the timeout leaves only the rest for the exchange."""

    def slowish(*args: Any) -> Any:
        time.sleep(1.5)
        return socket.getaddrinfo(*args)

    monkeypatch.setattr(resolver, "_getaddrinfo", slowish)
    server.inject("config", Fault.hang())
    fresh = Urllib3Transport()  # a new connection, so a new lookup
    try:
        started = time.monotonic()
        with pytest.raises(TransportError):
            fresh.send(by_name(server, 2.0))
        assert time.monotonic() - started < 2.0 + MARGIN  # not 1.5 + 2.0
    finally:
        fresh.close()
