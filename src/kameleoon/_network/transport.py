"""The one interface every network call goes through, and its urllib3 implementation.

``Transport.send`` performs one request within ``request.timeout`` seconds in total
(connecting, sending, waiting and reading the whole body) and returns the response, or raises
:class:`TransportError`; it never retries by itself. ``Transport.open_stream`` opens a
streaming GET (server-sent events) whose chunks are read one by one; ``Stream.interrupt()``
may be called from any thread to wake a reader blocked on it. Tests and users can pass any
object with these methods.

The transport is fork-safe: a forked child never reuses its parent's connections or locks.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import urllib3

__all__ = [
    "MAX_RESPONSE_BYTES",
    "ClosedStream",
    "Request",
    "Response",
    "Stream",
    "Transport",
    "TransportError",
    "Urllib3Transport",
    "is_expected",
]

# what the reference's HTTP client accepts (protocol spec §1.2): a configuration may come
# compressed; streams are read as sent
_ACCEPT = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # a larger body is refused (a configuration is a few MB)
_CHUNK = 65536


class TransportError(Exception):
    """The request could not be completed (connection, timeout, malformed response)."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout: float = 10.0  # seconds, for the whole exchange

    def with_token(self, token: str | None) -> Request:
        """This request with ``Authorization: Bearer <token>`` (unchanged for ``None``)."""
        if token is None:
            return self
        return replace(self, headers={**self.headers, "Authorization": f"Bearer {token}"})

    def with_timeout(self, timeout: float) -> Request:
        return replace(self, timeout=timeout)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def is_json(self) -> bool:
        kind = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))

    def json(self) -> Any:
        """The decoded body when the content type is JSON and the body is not empty, else
        ``None``; raises :class:`TransportError` for a JSON body that does not decode."""
        if not self.body or not self.is_json():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as e:
            raise TransportError(f"invalid JSON body: {e}") from e


def is_expected(status: int) -> bool:
    """The protocol's success statuses: any 2xx, and 403 (refused for good, do not resend)."""
    return 200 <= status < 300 or status == 403


class Stream(Protocol):
    """An open streaming response, read by one thread."""

    status: int

    def read(self) -> bytes:
        """The next chunk (``b""`` at the end or after :meth:`interrupt`); raises
        :class:`TransportError` when the connection fails or stays silent too long."""
        ...

    def interrupt(self) -> None:
        """Ends the stream from any thread; a blocked :meth:`read` returns promptly."""
        ...

    def close(self) -> None:
        """Releases the connection (called by the reading thread)."""
        ...


class ClosedStream:
    """A stream that has already ended (for transports that never stream, e.g. test doubles)."""

    def __init__(self, status: int) -> None:
        self.status = status

    def read(self) -> bytes:
        return b""

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        pass


class Transport(Protocol):
    def send(self, request: Request) -> Response: ...

    def open_stream(self, request: Request, idle_timeout: float | None) -> Stream:
        """Opens a streaming GET; ``request.timeout`` bounds the connection and the response
        head, ``idle_timeout`` the silence between two chunks (``None``: no bound)."""
        ...

    def close(self) -> None:
        """Releases the connections; exchanges still in flight may end with an error."""
        ...


class Urllib3Transport:
    """Thread-safe pooled HTTP(S) client; a forked child gets fresh connections."""

    def __init__(self, max_connections: int = 10) -> None:
        self._max_connections = max_connections
        self._lock = threading.Lock()
        self._pool: urllib3.PoolManager | None = None
        _live.add(self)

    def _manager(self) -> urllib3.PoolManager:
        pool = self._pool
        if pool is not None:
            return pool
        import urllib3  # deferred: importing urllib3 costs more than the rest of the SDK

        from kameleoon._network import deadlines

        with self._lock:
            if self._pool is None:
                pool = urllib3.PoolManager(num_pools=8, maxsize=self._max_connections, retries=False)
                pool.pool_classes_by_scheme = {"http": deadlines.HTTPPool, "https": deadlines.HTTPSPool}
                self._pool = pool
            return self._pool

    def _reset_after_fork(self) -> None:
        # The parent's sockets must not be used (nor closed) here: abandon them.
        self._lock = threading.Lock()
        if self._pool is not None:
            _abandoned.append(self._pool)
        self._pool = None

    def send(self, request: Request) -> Response:
        from kameleoon._network.deadlines import guard

        deadline = time.monotonic() + request.timeout
        raw = self._open(request, False, request.body, deadline)
        try:
            with guard(_socket_of(raw), deadline, self):
                body = _read_body(raw, deadline)
        except _errors() as e:
            raw.close()
            raise TransportError(f"{request.method} {request.url}: {e}") from e
        finally:
            raw.release_conn()
        return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, body)

    def open_stream(self, request: Request, idle_timeout: float | None) -> Stream:
        deadline = time.monotonic() + request.timeout
        raw = self._open(request, True, None, deadline)  # the response head within the timeout
        _set_read_timeout(raw, idle_timeout)  # then each chunk within the idle timeout
        return _Urllib3Stream(raw)

    def _open(self, request: Request, stream: bool, body: bytes | None, deadline: float) -> Any:
        """Sends the request and reads the response head, which must arrive by ``deadline``
        (a stream's later reads each get the request's timeout, the others' share it)."""
        import urllib3

        from kameleoon._network.deadlines import within

        manager = self._manager()
        seconds = request.timeout
        try:
            if stream:
                timeout = urllib3.Timeout(connect=seconds, read=seconds)
            else:
                timeout = urllib3.Timeout(total=seconds)
            with within(deadline, self):
                return manager.urlopen(
                    request.method,
                    request.url,
                    body=body,
                    headers=dict(request.headers) if stream else {**_ACCEPT, **request.headers},
                    timeout=timeout,
                    preload_content=False,
                    redirect=False,
                    retries=False,
                )
        except _errors() as e:
            why = "timed out waiting for the response" if time.monotonic() >= deadline else str(e)
            raise TransportError(f"{request.method} {request.url}: {why}") from e

    def close(self) -> None:
        """Releases the connections and ends the exchanges still in flight (they raise)."""
        with self._lock:
            if self._pool is None:
                return
            self._pool.clear()
            self._pool = None
        from kameleoon._network.deadlines import abort

        abort(self)


def _errors() -> tuple[type[Exception], ...]:
    """What urllib3 raises for a failed exchange."""
    import urllib3

    return (urllib3.exceptions.HTTPError, OSError, ValueError, OverflowError)


def _read_body(raw: Any, deadline: float) -> bytes:
    """The whole body, read chunk by chunk so the exchange never outlives ``deadline``."""
    parts: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the response body did not arrive in time")
        _set_read_timeout(raw, remaining)
        chunk = raw.read1(_CHUNK)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ValueError(f"the response body exceeds {MAX_RESPONSE_BYTES} bytes")
        parts.append(chunk)


def _set_read_timeout(raw: Any, seconds: float | None) -> None:
    sock = _socket_of(raw)
    if sock is not None:
        sock.settimeout(seconds)


def _socket_of(raw: Any) -> Any:
    """The socket a urllib3 response reads from. The connection holds it for a keep-alive
    response; for a ``Connection: close`` one, http.client detaches it from the connection and
    only its file object still knows it (private attributes, hence the defensive lookups)."""
    sock = getattr(raw.connection, "sock", None)
    if sock is None:
        reader = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock if hasattr(sock, "settimeout") else None


class _Urllib3Stream:
    def __init__(self, raw: Any) -> None:
        self.status: int = raw.status
        self._raw = raw
        self._interrupted = threading.Event()

    def read(self) -> bytes:
        if self._interrupted.is_set():
            return b""
        try:
            return self._raw.read1(_CHUNK)  # type: ignore[no-any-return]
        except _errors() as e:
            if self._interrupted.is_set():
                return b""
            raise TransportError(f"stream interrupted: {e}") from e

    def interrupt(self) -> None:
        self._interrupted.set()
        # wakes a thread blocked in read(); fails only when nothing can be blocked on it
        with contextlib.suppress(ValueError, RuntimeError, OSError, AttributeError):
            self._raw.shutdown()

    def close(self) -> None:
        with contextlib.suppress(*_errors()):  # a dead connection may fail to close: it is gone
            self._raw.close()
            self._raw.release_conn()


# -- fork safety ------------------------------------------------------------------------------
_live: weakref.WeakSet[Urllib3Transport] = weakref.WeakSet()
_abandoned: list[Any] = []  # the parent's pools, kept alive in a child so nothing closes them


def _after_fork_in_child() -> None:
    for transport in list(_live):
        transport._reset_after_fork()


if hasattr(os, "register_at_fork"):  # registered before the client's hook, so it runs first
    os.register_at_fork(after_in_child=_after_fork_in_child)
