"""A small threaded HTTP server on 127.0.0.1 that speaks the SDK protocol and misbehaves on demand.

It serves one site's configuration, tokens, tracking, remote data and visitor data, and an SSE
stream, and records every request. Faults are queued per route kind ("config", "sse",
"token", "tracking", "map", "visitor"): each request takes the next queued fault, or the
route's standing fault (``always``), else is answered normally. A fault is one of:

* ``Fault.status(code)`` - that status with an empty body;
* ``Fault.slow(seconds)`` - the normal answer, late;
* ``Fault.hang()`` - no answer until the server stops;
* ``Fault.drip(seconds, close)`` - the normal answer, one byte of body every ``seconds``
  (``close``: announced with ``Connection: close``);
* ``Fault.drip_unsized(seconds)`` - like ``drip`` with ``Connection: close`` and no
  ``Content-Length`` (the end of the body is the end of the connection);
* ``Fault.drip_head(seconds)`` - the status line and headers one byte every ``seconds``;
* ``Fault.reset()`` - the connection is reset (RST) without an answer;
* ``Fault.truncate()`` - half of the body, then the connection closes;
* ``Fault.garbage()`` - ``200 application/json`` with a body that is not JSON.

``stop()`` closes the port and every open connection (the server is down); ``start()`` opens
the same port again. SSE streams get events with ``push_update(ts)`` and can be cut, cleanly
or in the middle of an event, with ``cut_streams(mid_event=...)``.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PADDING = b": " + b"-" * 160 + b"\n\n"


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float = 0.0
    code: int = 0

    @staticmethod
    def status(code: int) -> Fault:
        return Fault("status", code=code)

    @staticmethod
    def slow(seconds: float) -> Fault:
        return Fault("slow", seconds=seconds)

    @staticmethod
    def hang() -> Fault:
        return Fault("slow", seconds=3600.0)

    @staticmethod
    def drip(seconds: float, close: bool = False) -> Fault:
        return Fault("drip", seconds=seconds, code=int(close))

    @staticmethod
    def drip_unsized(seconds: float) -> Fault:
        return Fault("drip", seconds=seconds, code=2)

    @staticmethod
    def drip_head(seconds: float) -> Fault:
        return Fault("drip_head", seconds=seconds)

    @staticmethod
    def reset() -> Fault:
        return Fault("reset")

    @staticmethod
    def truncate() -> Fault:
        return Fault("truncate")

    @staticmethod
    def garbage() -> Fault:
        return Fault("garbage")

    @staticmethod
    def gzip() -> Fault:
        """The normal answer, gzip-compressed when the request accepts gzip (as a CDN does)."""
        return Fault("gzip")


@dataclass
class Recorded:
    """One request as the server received it."""

    kind: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def lines(self) -> list[dict[str, str]]:
        """The tracking lines of the body, each decoded into its parameters."""
        text = self.body.decode("utf-8")
        return [dict(parse_qsl(line, keep_blank_values=True)) for line in text.split("\n") if line]


def datafile(version: int = 1, real_time: bool = False, **configuration: Any) -> dict[str, Any]:
    """A configuration with one experiment flag whose feature keys carry ``version``."""
    return {
        "configuration": {"realTimeUpdate": real_time, "consentType": "NOT_REQUIRED", **configuration},
        "customData": [{"index": 0, "localOnly": False, "scope": "VISITOR", "isMappingIdentifier": False}],
        "featureFlags": [
            {
                "id": 1,
                "featureKey": f"flag_v{version}",
                "defaultVariationKey": "off",
                "environmentEnabled": True,
                "variations": [{"key": "off"}, {"key": "on"}],
                "rules": [
                    {
                        "id": 101,
                        "order": 1,
                        "type": "EXPERIMENTATION",
                        "exposition": 1.0,
                        "experimentId": 5001,
                        "respoolTime": None,
                        "segment": None,
                        "variationByExposition": [
                            {"variationKey": "off", "variationId": 7001, "exposition": 0.5},
                            {"variationKey": "on", "variationId": 7002, "exposition": 0.5},
                        ],
                    }
                ],
            }
        ],
    }


def kind_of(method: str, path: str) -> str:
    if path.endswith("/sse"):
        return "sse"
    if path.endswith("/oauth/token"):
        return "token"
    if path.endswith("/visit/events"):
        return "tracking"
    if path.endswith("/map/map"):
        return "map"
    if path.endswith("/visit/visitor"):
        return "visitor"
    return "config" if method == "GET" else "other"


class FaultServer:
    def __init__(self, config: dict[str, Any] | None = None, sse_keepalive: float | None = None) -> None:
        self.config: dict[str, Any] = config if config is not None else datafile()
        self.remote_map: dict[str, Any] = {}
        self.visitor_data: dict[str, Any] = {}
        self.token_lifetime = 3600
        self.require_token = False  # tracking and data calls without a valid token get 401
        self.sse_keepalive = sse_keepalive
        self.sse_delay = 0.0  # seconds a stream waits before it is registered and answered
        self.requests: list[Recorded] = []
        self.configs_answered = 0  # configuration downloads whose answer was computed
        self._cond = threading.Condition()
        self._faults: dict[str, list[Fault]] = {}
        self._standing: dict[str, Fault] = {}
        self._tokens = itertools.count(1)
        self._issued: set[str] = set()
        self._streams: list[queue.Queue[bytes | None]] = []
        self._connections: set[socket.socket] = set()
        self._down = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        server_class = type("Server", (_Server,), {"fake": self})
        self._down = threading.Event()
        self._httpd = server_class(("127.0.0.1", self.port), handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """The port closes and every connection is cut: the server is down."""
        httpd, self._httpd = self._httpd, None
        self._down.set()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        self.cut_streams()
        with self._cond:
            connections, self._connections = list(self._connections), set()
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- faults -----------------------------------------------------------------------------
    def inject(self, kind: str, fault: Fault, count: int = 1) -> None:
        with self._cond:
            self._faults.setdefault(kind, []).extend([fault] * count)

    def always(self, kind: str, fault: Fault | None) -> None:
        with self._cond:
            if fault is None:
                self._standing.pop(kind, None)
            else:
                self._standing[kind] = fault

    def heal(self) -> None:
        """No more faults of any kind."""
        with self._cond:
            self._faults.clear()
            self._standing.clear()

    def _next_fault(self, kind: str) -> Fault | None:
        with self._cond:
            queued = self._faults.get(kind)
            if queued:
                return queued.pop(0)
            return self._standing.get(kind)

    # -- SSE --------------------------------------------------------------------------------
    def push_update(self, ts: int, padding: bool = True) -> None:
        event = f'event: configuration-update-event\ndata: {{"ts":{ts}}}\n\n'.encode()
        self._broadcast(event + (PADDING if padding else b""))

    def push_raw(self, data: bytes) -> None:
        self._broadcast(data)

    def cut_streams(self, mid_event: bool = False) -> None:
        if mid_event:
            self._broadcast(b'event: configuration-update-event\ndata: {"ts":17')
        self._broadcast(None)

    def _broadcast(self, item: bytes | None) -> None:
        with self._cond:
            streams = list(self._streams)
            if item is None:
                self._streams.clear()
        for stream in streams:
            stream.put(item)

    @property
    def open_streams(self) -> int:
        with self._cond:
            return len(self._streams)

    # -- observing --------------------------------------------------------------------------
    def record(self, entry: Recorded) -> None:
        with self._cond:
            self.requests.append(entry)
            self._cond.notify_all()

    def stream_settled(self, downloads: int = 2) -> bool:
        """One stream is open and ``downloads`` configuration downloads (the first, and the one
        that follows the stream's opening) were asked for and answered: from now on, a change
        of ``config`` reaches the client only through the stream."""
        with self._cond:
            asked = sum(1 for r in self.requests if r.kind == "config")
            return len(self._streams) == 1 and asked >= downloads and self.configs_answered == asked

    def of(self, kind: str) -> list[Recorded]:
        with self._cond:
            return [r for r in self.requests if r.kind == kind]

    def tracking_lines(self) -> list[dict[str, str]]:
        return [line for r in self.of("tracking") for line in r.lines()]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Waits until ``predicate()`` is truthy (re-checked at each request and every 50 ms)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value or time.monotonic() >= deadline:
                    return value
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))

    # -- answers ----------------------------------------------------------------------------
    def answer(self, entry: Recorded) -> tuple[int, bytes, str | None]:
        """The normal answer: (status, body, content type)."""
        if entry.kind == "token":
            token = f"tok-{next(self._tokens)}"
            self._issued.add(token)
            body = {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
            return 200, json.dumps(body).encode(), "application/json"
        bearer = entry.headers.get("authorization", "")[len("Bearer ") :]
        if entry.kind in ("tracking", "map", "visitor") and self.require_token and bearer not in self._issued:
            return 401, b"", None
        if entry.kind == "tracking":
            return 204, b"", None
        if entry.kind == "map":
            key = entry.query.get("key", "")
            if key not in self.remote_map:
                return 404, b"", None
            return 200, json.dumps(self.remote_map[key]).encode(), "application/json"
        if entry.kind == "visitor":
            code = entry.query.get("visitorCode", entry.query.get("mappingValue", ""))
            return 200, json.dumps(self.visitor_data.get(code, {})).encode(), "application/json"
        if entry.kind == "config":
            body = json.dumps(self.config).encode()
            with self._cond:
                self.configs_answered += 1
            return 200, body, "application/json"
        return 404, b"", None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FaultServer

    def process_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay on answers
        with self.fake._cond:
            self.fake._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.fake._cond:
            self.fake._connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FaultServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        entry = Recorded(
            kind_of(method, parts.path),
            method,
            parts.path,
            dict(parse_qsl(parts.query, keep_blank_values=True)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        self.fake.record(entry)
        fault = self.fake._next_fault(entry.kind)
        if entry.kind == "sse" and fault is None:
            self._stream()
            return
        self._respond(entry, fault)

    def _respond(self, entry: Recorded, fault: Fault | None) -> None:
        kind = fault.kind if fault is not None else ""
        if kind == "slow" and self.fake._down.wait(fault.seconds if fault else 0):
            self.close_connection = True
            return
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        status, payload, content_type = self.fake.answer(entry)
        if kind == "status" and fault is not None:
            status, payload, content_type = fault.code, b"", None
        if kind == "garbage":
            status, payload, content_type = 200, b'{"featureFlags": [{"id": 1,', "application/json"
        if kind == "drip_head" and fault is not None:
            self._drip_head(status, payload, content_type, fault.seconds)
            return
        compress = kind == "gzip" and "gzip" in entry.headers.get("accept-encoding", "")
        payload = gzip.compress(payload) if compress else payload
        self.send_response(status)
        if compress:
            self.send_header("Content-Encoding", "gzip")
        if kind == "drip" and fault is not None and fault.code:
            self.send_header("Connection", "close")
        if content_type:
            self.send_header("Content-Type", content_type)
        if not (kind == "drip" and fault is not None and fault.code == 2):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if kind == "truncate":
            self.wfile.write(payload[: len(payload) // 2])
            self.close_connection = True
        elif kind == "drip" and fault is not None:
            self._drip(payload, fault.seconds)
        else:
            self.wfile.write(payload)

    def _drip(self, payload: bytes, seconds: float) -> None:
        for position in range(len(payload)):
            if self.fake._down.wait(seconds):
                break
            self.wfile.write(payload[position : position + 1])
            self.wfile.flush()
        self.close_connection = True

    def _drip_head(self, status: int, payload: bytes, content_type: str | None, seconds: float) -> None:
        kind = f"Content-Type: {content_type}\r\n" if content_type else ""
        head = f"HTTP/1.1 {status} OK\r\n{kind}Content-Length: {len(payload)}\r\n\r\n".encode()
        self._drip(head, seconds)
        if not self.fake._down.is_set():
            with contextlib.suppress(OSError):
                self.wfile.write(payload)

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""

    def _stream(self) -> None:
        events: queue.Queue[bytes | None] = queue.Queue()
        if self.fake.sse_delay and self.fake._down.wait(self.fake.sse_delay):
            self.close_connection = True
            return
        with self.fake._cond:
            self.fake._streams.append(events)
            self.fake._cond.notify_all()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(b": hello\n" + PADDING)
            self.wfile.flush()
            while not self.fake._down.is_set():
                try:
                    item = events.get(timeout=self.fake.sse_keepalive or 0.1)
                except queue.Empty:
                    if self.fake.sse_keepalive:
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                    elif self._client_gone():
                        return
                    continue
                if item is None:
                    return
                self.wfile.write(item)
                self.wfile.flush()
        except OSError:
            return
        finally:
            with self.fake._cond:
                if events in self.fake._streams:
                    self.fake._streams.remove(events)
