"""The urllib3 transport (kameleoon._network.transport) against a misbehaving loopback server."""

from __future__ import annotations

import threading
import time

import pytest

from kameleoon._network.transport import Request, Response, TransportError, Urllib3Transport, is_expected

from .fault_server import Fault, FaultServer

MARGIN = 1.0  # seconds of slack on a loaded machine; the bounds below are upper bounds only


def get(server: FaultServer, path: str = "/site", timeout: float = 2.0) -> Request:
    return Request("GET", f"{server.url}{path}", {"X-Test": "1"}, None, timeout)


def test_send_returns_status_lowercase_headers_and_body(
    server: FaultServer, transport: Urllib3Transport
) -> None:
    response = transport.send(get(server))
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == server.config
    assert server.requests[-1].headers["x-test"] == "1"


def test_post_body_is_sent_byte_for_byte(server: FaultServer, transport: Urllib3Transport) -> None:
    body = "nonce=A&eventType=activity&visitorCode=v%20é".encode()
    response = transport.send(Request("POST", f"{server.url}/visit/events", {}, body, 2.0))
    assert response.status == 204 and response.body == b""
    assert server.of("tracking")[0].body == body


def test_connections_are_reused(server: FaultServer, transport: Urllib3Transport) -> None:
    for _ in range(5):
        transport.send(get(server))
    assert len(server._connections) <= 1  # one keep-alive connection served the five requests


@pytest.mark.parametrize(
    "fault", [Fault.hang(), Fault.drip(0.2), Fault.drip(0.2, close=True), Fault.drip_head(0.05)]
)
def test_total_timeout_covers_waiting_and_reading(
    server: FaultServer, transport: Urllib3Transport, fault: Fault
) -> None:
    """A silent server, and a server dripping its body (kept alive or not) or its response
    head (each byte well within the per-read timeout), all end within the total timeout."""
    server.inject("config", fault)
    started = time.monotonic()
    with pytest.raises(TransportError):
        transport.send(get(server, timeout=0.4))
    assert time.monotonic() - started < 0.4 + MARGIN


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.truncate()])
def test_broken_connections_raise(server: FaultServer, transport: Urllib3Transport, fault: Fault) -> None:
    server.inject("config", fault)
    with pytest.raises(TransportError):
        transport.send(get(server))
    assert transport.send(get(server)).status == 200  # the pool recovers


def test_garbage_json_raises_only_when_decoded(server: FaultServer, transport: Urllib3Transport) -> None:
    server.inject("config", Fault.garbage())
    response = transport.send(get(server))
    assert response.status == 200
    with pytest.raises(TransportError):
        response.json()


def test_server_down_fails_fast(server: FaultServer, transport: Urllib3Transport) -> None:
    transport.send(get(server))  # a pooled connection exists
    server.stop()
    started = time.monotonic()
    with pytest.raises(TransportError):
        transport.send(get(server, timeout=5.0))
    assert time.monotonic() - started < MARGIN
    server.start()
    assert transport.send(get(server)).status == 200


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b'{"a":1}', {"a": 1}),
        ("application/json; charset=utf-8", b"[1]", [1]),
        ("application/vnd.kameleoon+json", b"1", 1),
        ("Application/JSON", b"true", True),
        ("text/plain", b'{"a":1}', None),
        ("", b'{"a":1}', None),
        ("application/json", b"", None),
    ],
)
def test_json_needs_a_json_content_type(content_type: str, body: bytes, expected: object) -> None:
    """Spec §1.2: another content type, or an empty body, means "no content"."""
    headers = {"content-type": content_type} if content_type else {}
    assert Response(200, headers, body).json() == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, True),
        (204, True),
        (299, True),
        (403, True),
        (304, False),
        (401, False),
        (404, False),
        (500, False),
    ],
)
def test_expected_statuses(status: int, expected: bool) -> None:
    assert is_expected(status) is expected


def test_stream_delivers_chunks_as_they_come(server: FaultServer, transport: Urllib3Transport) -> None:
    stream = transport.open_stream(get(server, "/sse?siteCode=s"), None)
    try:
        assert stream.status == 200
        assert stream.read().startswith(b": hello")
        server.push_raw(b"data: x\n\n")
        assert stream.read() == b"data: x\n\n"
    finally:
        stream.close()


def test_stream_interrupt_wakes_a_blocked_reader(server: FaultServer, transport: Urllib3Transport) -> None:
    stream = transport.open_stream(get(server, "/sse?siteCode=s"), None)
    stream.read()  # the greeting; the next read blocks (no keep-alives)
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.read()))
    reader.start()
    time.sleep(0.2)
    started = time.monotonic()
    stream.interrupt()
    reader.join(5)
    assert not reader.is_alive() and result == [b""]
    assert time.monotonic() - started < MARGIN
    stream.close()


def test_stream_idle_timeout_raises(server: FaultServer, transport: Urllib3Transport) -> None:
    stream = transport.open_stream(get(server, "/sse?siteCode=s"), 0.3)
    stream.read()
    started = time.monotonic()
    with pytest.raises(TransportError):
        stream.read()
    assert time.monotonic() - started < 0.3 + MARGIN
    stream.close()


def test_stream_head_must_arrive_within_the_request_timeout(
    server: FaultServer, transport: Urllib3Transport
) -> None:
    server.inject("sse", Fault.drip_head(0.05))
    started = time.monotonic()
    with pytest.raises(TransportError, match="timed out"):
        transport.open_stream(get(server, "/sse?siteCode=s", timeout=0.4), None)
    assert time.monotonic() - started < 0.4 + MARGIN


def test_a_connection_outliving_its_first_deadline_stays_usable(
    server: FaultServer, transport: Urllib3Transport
) -> None:
    """The head deadline is lifted once the head arrives: the kept-alive connection is not
    shut down later by the deadline of the exchange it once served."""
    transport.send(get(server, timeout=0.2))
    time.sleep(0.4)
    for _ in range(3):
        assert transport.send(get(server)).status == 200
    assert len(server._connections) <= 1


@pytest.mark.parametrize(
    "fault", [Fault.hang(), Fault.drip(0.5), Fault.drip_unsized(0.5), Fault.drip_head(0.5)]
)
def test_close_ends_the_exchanges_in_flight(
    server: FaultServer, transport: Urllib3Transport, fault: Fault
) -> None:
    """Closing the transport ends a request waiting for its head or reading its body, long
    before its own 30 s timeout (a client being forgotten leaves no request behind). It fails:
    a body without a length, cut short, is not taken for a whole one."""
    server.inject("config", fault)
    failures: list[BaseException] = []

    def send() -> None:
        try:
            transport.send(get(server, timeout=30.0))
        except TransportError as e:
            failures.append(e)

    sender = threading.Thread(target=send)
    sender.start()
    while not server.requests:
        time.sleep(0.01)
    time.sleep(0.1)  # the request is in flight
    transport.close()
    sender.join(5.0)  # well before the request's own timeout
    assert not sender.is_alive() and len(failures) == 1
    assert transport.send(get(server)).status == 200  # a closed transport reconnects when used


def test_stream_open_failure_raises(server: FaultServer, transport: Urllib3Transport) -> None:
    server.stop()
    with pytest.raises(TransportError):
        transport.open_stream(get(server, "/sse?siteCode=s"), None)


def test_fork_reset_abandons_the_parents_pool(server: FaultServer, transport: Urllib3Transport) -> None:
    """In a child the pool is replaced, never closed (its sockets are the parent's)."""
    transport.send(get(server))
    parent_pool = transport._pool
    transport._reset_after_fork()
    assert transport._pool is None
    assert transport.send(get(server)).status == 200
    assert transport._pool is not parent_pool
