"""The connection protocol (``_http.RequestDeadlineProtocol``) fed chosen reads directly: what
arrives in which read is up to the network otherwise, and these cases need it exact."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from kameleoon_server import _http


class FakeTransport(asyncio.Transport):
    """Records what the protocol writes; ``unsent`` is what it reports as still queued."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = self.aborted = False
        self.unsent = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body, answers 200 "ok"."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def connect(request_timeout: float = 30.0) -> tuple[_http.RequestDeadlineProtocol, FakeTransport]:
    _http.configure(request_timeout)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    config.load()
    protocol = _http.RequestDeadlineProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


def statuses(transport: FakeTransport) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", transport.written)]


def test_a_pipelined_head_after_a_large_body_in_the_same_read_is_not_a_large_head() -> None:
    """The end of a body of several head limits and the start of the next request's head come
    in one read: only the latter counts as head."""
    body = b"x" * (4 * _http.MAX_HEAD_BYTES)
    post = b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    get = b"GET /g HTTP/1.1\r\nHost: t\r\n\r\n"

    async def scenario() -> list[int]:
        protocol, transport = connect()
        protocol.data_received(post[: -2 * _http.MAX_HEAD_BYTES])
        protocol.data_received(post[-2 * _http.MAX_HEAD_BYTES :] + get[:10])
        protocol.data_received(get[10:])
        for _ in range(20):
            await asyncio.sleep(0.01)
        protocol.connection_lost(None)
        return statuses(transport)

    try:
        assert asyncio.run(scenario()) == [200, 200]
    finally:
        _http.configure(_http.DEFAULT_REQUEST_TIMEOUT)


def test_a_client_that_keeps_taking_some_of_its_answer_is_not_cut_off() -> None:
    """Writing stays paused for several timeouts, but less is queued at each: slow, not stalled.
    Once nothing more is taken for a whole timeout, the connection is dropped."""

    async def scenario() -> tuple[bool, bool]:
        protocol, transport = connect(request_timeout=0.05)
        transport.unsent = 1_000_000
        protocol.pause_writing()
        for _ in range(6):
            await asyncio.sleep(0.04)
            transport.unsent -= 10_000  # the client took a little
        progressing = transport.aborted
        await asyncio.sleep(0.2)  # now it takes nothing
        return progressing, transport.aborted

    try:
        assert asyncio.run(scenario()) == (False, True)
    finally:
        _http.configure(_http.DEFAULT_REQUEST_TIMEOUT)
