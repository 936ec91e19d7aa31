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

The same number of seconds bounds a client that stops reading what the server sends: when the
answer (or an SSE stream) waits that long for the client to take any of it, with more than the
transport's buffer already queued, the connection is dropped with what was queued, so an
unread answer does not hold the server's memory.

Each expiry adds one to :func:`timed_out` (served as ``requests_timed_out`` in ``/api/stats``).
The deadline is process-wide (:func:`configure`): uvicorn creates the protocol objects itself,
and its worker processes import this module afresh, so each sets it from its settings.

A request head (request line and headers) longer than :data:`MAX_HEAD_BYTES` gets ``431
Request Header Fields Too Large`` and the connection is closed, whether it arrives in one read
or in many: uvicorn bounds neither, and the parser's work on an endless header grows with the
square of its length.

The protocol also answers most ``POST /visit/events`` requests itself (``events.answer_soon``)
instead of running uvicorn's ASGI cycle for them: the server's most frequent request costs about
a quarter less CPU time that way. :meth:`RequestDeadlineProtocol._takes_events` says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
from collections.abc import Coroutine
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from kameleoon_server.routes import events
from kameleoon_server.state import ServerState

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "MAX_HEAD_BYTES", "RequestDeadlineProtocol", "configure", "timed_out"]

log = logging.getLogger("kameleoon_server.http")
DEFAULT_REQUEST_TIMEOUT = 30.0
MAX_HEAD_BYTES = 64 * 1024
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 23\r\nconnection: close\r\n\r\nrequest head too large\n"
)
try:  # the kernel's count of bytes not yet acknowledged by the client (SIOCOUTQ, Linux)
    import fcntl
    import termios

    _OUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # elsewhere the transport's buffer alone tells progress
    _OUTQ = None
_settings = {"timeout": DEFAULT_REQUEST_TIMEOUT}
_counts = {"timed_out": 0}
_INTERNAL_ERROR: events.Answer = (
    500,
    [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")],
    b"Internal Server Error",
)


def configure(request_timeout: float) -> None:
    """Sets the deadline of the connections opened from now on (0: none)."""
    if not request_timeout >= 0:
        raise ValueError("the request timeout must be 0 (none) or a positive number of seconds")
    _settings["timeout"] = float(request_timeout)


def timed_out() -> int:
    """How many connections this process closed because a request did not arrive in time."""
    return _counts["timed_out"]


class _Unused:
    def set(self) -> None:
        pass


_NO_EVENT = _Unused()  # nothing waits for a fast request's body: uvicorn's code may still set it


class _EventsRequest:
    """A ``POST /visit/events`` that the protocol answers itself: the parts of uvicorn's
    ``RequestResponseCycle`` that uvicorn's own code reads (connection loss, shutdown,
    pipelining) and :meth:`RequestDeadlineProtocol._expired`."""

    __slots__ = (
        "body",
        "disconnected",
        "http_version",
        "keep_alive",
        "message_event",
        "query",
        "response_complete",
    )

    def __init__(self, http_version: str) -> None:
        self.body = bytearray()
        self.disconnected = False
        self.http_version = http_version
        self.keep_alive = True
        self.message_event = _NO_EVENT
        self.query = b""
        self.response_complete = False


class RequestDeadlineProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` plus the deadline described in the module's docstring, and
    the fast path of ``POST /visit/events`` (:meth:`_takes_events`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timeout = _settings["timeout"]
        self._deadline: asyncio.TimerHandle | None = None
        self._stall: asyncio.TimerHandle | None = None  # while writing is paused: the client reads nothing
        state = getattr(self.app, "state", None)  # the ServerApp's (not uvicorn middleware's)
        self._state = state if isinstance(state, ServerState) else None
        self._events: _EventsRequest | None = None  # the request being read, if a fast one
        self._in_head = True  # from the end of a request (or the connection's start) to its body
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes of the head so far: its end may straddle reads
        self._ended_in_read = False  # a request ended in the read being parsed ...
        self._began_in_read = False  # ... and the next one began after it
        self._body_in_read = 0  # body bytes of this read since its last head ended
        self._stall_left = 0  # bytes queued for the client when the stall timer was armed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._in_head and self._head_too_large(data):
            self._refuse_head()
            return
        self._ended_in_read = self._began_in_read = False
        self._body_in_read = 0
        super().data_received(data)
        if self._began_in_read and self._in_head and self._head_too_large(self._pipelined_head(data)):
            self._refuse_head()  # the head of a request pipelined behind the one that ended here

    def _pipelined_head(self, data: bytes) -> bytes:
        """The part of ``data`` that begins the head of a request pipelined behind one that ended
        in it: what follows the last blank line, less the body that came after that line (a
        body holding a blank line itself makes this an underestimate, never an overestimate)."""
        end = data.rfind(b"\r\n\r\n")
        after = data if end < 0 else data[end + 4 :]
        return after[self._body_in_read :]

    def _refuse_head(self) -> None:
        if not self.transport.is_closing():
            self._disarm()
            self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()

    def _head_too_large(self, data: bytes) -> bool:
        """Counts the bytes of ``data`` that belong to the head being received (up to its blank
        line), before the parser sees them; whether the head now exceeds the limit."""
        window = self._head_tail + data if self._head_tail else data
        end = window.find(b"\r\n\r\n")
        self._head_bytes += len(data) if end < 0 else end + 4 - len(self._head_tail)
        self._head_tail = window[-3:]
        return self._head_bytes > MAX_HEAD_BYTES

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._end_stall()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is None and self._timeout > 0:
            self._arm_stall()

    def _arm_stall(self) -> None:
        self._stall_left = self._unsent()
        self._stall = self.loop.call_later(self._timeout, self._stalled)

    def _unsent(self) -> int:
        """Bytes queued for the client: the transport's buffer, plus the kernel's send queue
        where the system tells it (the transport's buffer alone moves only in large steps)."""
        size = self.transport.get_write_buffer_size()
        sock = self.transport.get_extra_info("socket")
        if _OUTQ is not None and sock is not None:
            with contextlib.suppress(OSError, ValueError):
                size += int.from_bytes(fcntl.ioctl(sock.fileno(), _OUTQ, bytes(4)), sys.byteorder)
        return size

    def resume_writing(self) -> None:
        super().resume_writing()
        self._end_stall()

    def _end_stall(self) -> None:
        _cancel(self._stall)
        self._stall = None

    def _stalled(self) -> None:
        self._stall = None
        if self._unsent() < self._stall_left:
            self._arm_stall()  # the client took some meanwhile: slow, but reading
            return
        _counts["timed_out"] += 1
        self.transport.abort()  # close() would wait for the client to read what is queued

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._events = None
        self._began_in_read = self._ended_in_read
        self._arm()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._body_in_read = 0
        if not self._takes_events():
            super().on_headers_complete()
            return
        request = self._events = _EventsRequest(self.parser.get_http_version())
        request.keep_alive = request.http_version != "1.0" and self.parser.should_keep_alive()
        request.query = httptools.parse_url(self.url).query or b""
        self.cycle = request  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        self._body_in_read += len(body)
        if self._events is None:
            super().on_body(body)
        else:  # at most Content-Length bytes, itself at most max_body_bytes (_takes_events)
            self._events.body += body

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head, self._head_bytes, self._head_tail = True, 0, b""  # the next request's
        self._ended_in_read = True
        request, self._events = self._events, None
        if request is None:
            super().on_message_complete()
            return
        assert self._state is not None
        authorization = events.header(self.headers, b"authorization")
        respond = functools.partial(self._respond, request)
        spawn = functools.partial(self._spawn, request)
        body = bytes(request.body)
        answer = events.answer_soon(self._state, request.query, authorization, body, respond, spawn)
        if answer is not None:  # written once the parser is done with this data (as uvicorn does)
            self.loop.call_soon(respond, answer)

    def _takes_events(self) -> bool:
        """Whether this request is a ``POST /visit/events`` that the protocol answers itself
        (``events.answer_soon``), without uvicorn's ASGI cycle, task and messages: the usual
        case. Everything uvicorn does otherwise for it is kept: the answer's default headers
        (``date``), keep-alive and ``connection: close``, the access log, pipelining (a request
        that arrives while one is answered goes to the application after it), shutdown. The
        others go to the application, whose handler gives the same answers: a request while
        another is answered, one without a ``Content-Length`` (or over the body limit: the
        handler answers 413), ``Expect: 100-continue``, an upgrade, a concurrency limit, a root
        path, or a client that does not read its answers (writing paused)."""
        state = self._state
        if state is None or (self.cycle is not None and not self.cycle.response_complete):
            return False
        url = self.url
        if not url.startswith(b"/visit/events") or url[13:14] not in (b"", b"?"):
            return False
        if self.parser.get_method() != b"POST" or self.parser.should_upgrade():
            return False
        if self.expect_100_continue or self.flow.write_paused:
            return False
        if self.limit_concurrency is not None or self.root_path:
            return False
        length = None
        for name, value in self.headers:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                return False
        return length is not None and length.isdigit() and int(length) <= state.settings.max_body_bytes

    def _respond(self, request: _EventsRequest, answer: events.Answer) -> None:
        """Writes the answer as uvicorn would, then lets the next request in (pipelining,
        keep-alive timer: uvicorn's ``on_response_complete``)."""
        if request.response_complete:
            return
        request.response_complete = True
        transport = self.transport
        if not request.disconnected and not transport.is_closing():
            status, headers, body = answer
            out = [STATUS_LINE[status]]
            for name, value in (*self.server_state.default_headers, *headers):
                out += (name, b": ", value, b"\r\n")
            if not request.keep_alive:
                out.append(b"connection: close\r\n")
            out += (b"\r\n", body)
            transport.write(b"".join(out))
            if not request.keep_alive:
                transport.close()
            if self.access_log:
                self._log_access(request, status)
        self.on_response_complete()

    def _log_access(self, request: _EventsRequest, status: int) -> None:
        """uvicorn's access log line (``kameleoon serve`` turns that log off)."""
        target = events.PATH + ("?" + request.query.decode("latin-1") if request.query else "")
        client = f"{self.client[0]}:{self.client[1]}" if self.client else ""
        self.access_logger.info('%s - "POST %s HTTP/%s" %d', client, target, request.http_version, status)

    def _spawn(self, request: _EventsRequest, coroutine: Coroutine[Any, Any, None]) -> None:
        """Runs an answer that has to wait (a site not cached yet), tracked as uvicorn tracks
        its request tasks (shutdown waits for them); if it fails, answers 500 and closes, as
        uvicorn does."""

        def done(task: asyncio.Task[None]) -> None:
            self.tasks.discard(task)
            if not task.cancelled() and (error := task.exception()) is not None:
                log.error("POST /visit/events failed", exc_info=error)
                request.keep_alive = False
                self._respond(request, _INTERNAL_ERROR)

        task = self.loop.create_task(coroutine)
        task.add_done_callback(done)
        self.tasks.add(task)

    def _arm(self) -> None:
        if self._deadline is None and self._timeout > 0:
            self._deadline = self.loop.call_later(self._timeout, self._expired)

    def _disarm(self) -> None:
        _cancel(self._deadline)
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


def _cancel(timer: asyncio.TimerHandle | None) -> None:
    """Cancels ``timer`` if there is one."""
    if timer is not None:
        timer.cancel()
