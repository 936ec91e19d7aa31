"""uvicorn's HTTP protocol with a deadline for receiving each request.

uvicorn only closes connections that stay idle after a response (``timeout_keep_alive``). A
client that opens a connection and sends nothing, or sends its request head or body a few bytes
at a time, would hold the connection (and, for a body, a running request) for as long as it
likes: a handful of such clients can use up the file descriptors of a server exposed to the
internet ("slowloris"). Here every request, head and body, must arrive within ``request_timeout``
seconds, counted from its first byte (from the connection's opening for the first request):

* still receiving the head: the server answers ``408 Request Timeout`` and closes;
* receiving the body: the connection is closed, and the application sees the client disconnect;
* time spent with reading paused by the server itself (a pipelined request waiting for the one
  before it, or a body the application reads slowly) does not count.

Each expiry adds one to :func:`timed_out` (served as ``requests_timed_out`` in ``/api/stats``).
The deadline is process-wide (:func:`configure`): uvicorn creates the protocol objects itself,
and its worker processes import this module afresh, so each sets it from its settings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "RequestDeadlineProtocol", "configure", "timed_out"]

DEFAULT_REQUEST_TIMEOUT = 30.0
_settings = {"timeout": DEFAULT_REQUEST_TIMEOUT}
_counts = {"timed_out": 0}


def configure(request_timeout: float) -> None:
    """Sets the deadline of the connections opened from now on (0: none)."""
    if not request_timeout >= 0:
        raise ValueError("the request timeout must be 0 (none) or a positive number of seconds")
    _settings["timeout"] = float(request_timeout)


def timed_out() -> int:
    """How many connections this process closed because a request did not arrive in time."""
    return _counts["timed_out"]


class RequestDeadlineProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` plus the deadline described in the module's docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timeout = _settings["timeout"]
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self) -> None:
        if self._deadline is None and self._timeout > 0:
            self._deadline = self.loop.call_later(self._timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # the server holds the request back, not the client
            self._arm()
            return
        _counts["timed_out"] += 1
        answering = self.cycle is not None and not self.cycle.response_complete
        if not answering:  # idle since connecting, or in a head: nothing of a response was sent
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n"
            )
        self.transport.close()
