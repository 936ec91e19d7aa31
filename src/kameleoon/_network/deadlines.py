"""A deadline on the wait for a response head, which per-read socket timeouts cannot give,
and on resolving the host name, which no socket timeout covers.

urllib3 bounds each ``recv`` by the read timeout, so a server that sends its status line and
headers one byte at a time keeps an exchange alive for as long as it likes. Here the pool's
connections know the deadline of the exchange they serve (set by the calling thread with
:func:`within`), and one watchdog thread shuts the socket down when the head has not arrived
by then, which wakes the blocked reader with an error. A transport that closes ends its
exchanges still in flight the same way (:func:`abort`).

Imported only by the urllib3 transport, once urllib3 is needed.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.response import HTTPResponse
from urllib3.util.connection import allowed_gai_family

from kameleoon._network.resolver import Unresolved, resolve
from kameleoon._network.workers import start_daemon

__all__ = ["HTTPPool", "HTTPSPool", "abort", "guard", "within"]

_log = logging.getLogger("kameleoon")
_exchange = threading.local()


@contextlib.contextmanager
def within(at: float, owner: object) -> Iterator[None]:
    """Within the block, a response head this thread waits for must arrive by ``at``
    (a :func:`time.monotonic` instant), or until ``owner`` is aborted."""
    _exchange.deadline = at
    _exchange.owner = owner
    try:
        yield
    finally:
        _exchange.deadline = _exchange.owner = None


@contextlib.contextmanager
def guard(sock: socket.socket | None, at: float, owner: object) -> Iterator[None]:
    """Within the block, ``sock`` is shut down at ``at`` or when ``owner`` is aborted; the
    block then raises :class:`TimeoutError` even if the reader took the shutdown for the end
    of a response without a length (a truncated body is never taken for a whole one)."""
    if sock is None:
        yield
        return
    entry = _watchdog.arm(sock, at, owner)
    try:
        yield
    finally:
        cut = _watchdog.disarm(entry)
    if cut:
        raise TimeoutError("the exchange was cut off (its deadline passed, or its transport closed)")


def abort(owner: object) -> None:
    """Ends now every exchange of ``owner`` still waiting for or reading its response."""
    _watchdog.abort(owner)


class _Watchdog:
    """One daemon thread, started on first use, that shuts down overdue sockets."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # [deadline, sequence, socket (None: disarmed), owner, whether the socket was shut down]
        self._heap: list[list[Any]] = []
        self._sequence = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, at: float, owner: object) -> list[Any]:
        entry = [at, next(self._sequence), sock, owner, False]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                self._cond.notify()
            if self._thread is None:  # at interpreter exit none may start: no deadline then
                self._thread = start_daemon(self._run, "kameleoon-deadlines")
        return entry

    def disarm(self, entry: list[Any]) -> bool:
        """True when the socket was shut down; once this returns, it never is."""
        with self._cond:
            entry[2] = entry[3] = None
            return bool(entry[4])

    def abort(self, owner: object) -> None:
        with self._cond:
            for entry in self._heap:
                if entry[3] is owner and entry[2] is not None:
                    _cut(entry)

    def _run(self) -> None:
        while True:
            try:
                self._expire_next()
            except Exception:  # never die silently: log and keep watching
                _log.exception("the request deadline watchdog failed; it carries on")

    def _expire_next(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _cut(heapq.heappop(self._heap))
                return

    def reset_after_fork(self) -> None:
        self.__init__()  # type: ignore[misc]  # the parent's thread and lock do not exist here


def _cut(entry: list[Any]) -> None:
    """Shuts the entry's socket down (called with the watchdog's lock held) and disarms it."""
    with contextlib.suppress(OSError):  # the plain socket's method: TLS state is left alone
        socket.socket.shutdown(entry[2], socket.SHUT_RDWR)
    entry[2] = entry[3] = None
    entry[4] = True


_watchdog = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_watchdog.reset_after_fork)


class _Bounded:
    """Mixin for a urllib3 connection: the host name is resolved (:mod:`.resolver`), and the
    response head awaited, until the exchange's deadline."""

    sock: socket.socket | None
    _dns_host: str
    port: int
    timeout: float | None

    def _new_conn(self) -> socket.socket:
        at: float | None = getattr(_exchange, "deadline", None)
        if at is None:
            return super()._new_conn()  # type: ignore[misc, no-any-return]
        host, timeout = self._dns_host, self.timeout
        failure: Exception | None = None
        for address in _addresses(self, host, at):
            left = at - time.monotonic()
            if left <= 0:
                break
            # One address at a time, as urllib3 would, each attempt within what is left.
            self._dns_host = address
            self.timeout = left if timeout is None else min(timeout, left)
            try:
                return super()._new_conn()  # type: ignore[misc, no-any-return]
            except (ConnectTimeoutError, NewConnectionError) as e:
                failure = e
            finally:
                self._dns_host, self.timeout = host, timeout
        raise failure or ConnectTimeoutError(self, f"Connection to {host} timed out")

    def getresponse(self) -> HTTPResponse:
        at: float | None = getattr(_exchange, "deadline", None)
        if at is None:
            return super().getresponse()  # type: ignore[misc, no-any-return]
        with guard(self.sock, at, _exchange.owner):
            return super().getresponse()  # type: ignore[misc, no-any-return]


def _addresses(conn: Any, host: str, at: float) -> list[str]:
    """The addresses of ``host`` (in the resolver's order), resolved by ``at``; raises what
    urllib3 raises when a name does not resolve or the connection times out."""
    try:
        found = resolve(host, conn.port, allowed_gai_family(), at)
    except Unresolved as e:
        raise ConnectTimeoutError(conn, f"Connection to {host} timed out: {e}") from e
    except socket.gaierror as e:
        raise NameResolutionError(host, conn, e) from e
    return [str(info[4][0]) for info in found]


class _BoundedHTTPConnection(_Bounded, HTTPConnection):  # type: ignore[misc]  # urllib3 narrows http.client
    pass


class _BoundedHTTPSConnection(_Bounded, HTTPSConnection):  # type: ignore[misc]
    pass


class HTTPPool(HTTPConnectionPool):
    ConnectionCls = _BoundedHTTPConnection


class HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _BoundedHTTPSConnection
