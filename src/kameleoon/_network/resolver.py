"""Host-name resolution that a caller can stop waiting for.

``socket.getaddrinfo`` blocks for as long as the system resolver takes (several seconds per
attempt when a name server does not answer), and nothing can interrupt it. Resolutions run
here on a few daemon threads instead (a :class:`~kameleoon._network.workers.Pool` of their
own); the caller waits only until its deadline. A resolution that outlives its caller finishes
on its thread and is dropped, so a dead name server costs a fixed number of threads, never one
per call. Resolutions queued behind them are skipped once their caller has given up.

Numeric addresses never leave the calling thread.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
import time
from typing import Any

from kameleoon._network.workers import Expired, Pool

__all__ = ["THREADS", "Unresolved", "resolve"]

THREADS = 4
AddrInfo = list[tuple[Any, ...]]
_getaddrinfo = socket.getaddrinfo  # the system resolver (tests slow it down here)
_pool = Pool(THREADS, "kameleoon-resolver")


class Unresolved(TimeoutError):
    """The name was not resolved by the deadline."""


def resolve(host: str, port: int, family: int, at: float) -> AddrInfo:
    """``getaddrinfo(host, port, family, SOCK_STREAM)``, waiting until ``at`` (a
    :func:`time.monotonic` instant) at most; raises :class:`Unresolved` then, and
    ``socket.gaierror`` when the name does not resolve."""
    try:  # an address: no lookup, no thread
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    future = _pool.submit(lambda _: _getaddrinfo(host, port, family, socket.SOCK_STREAM), at)
    try:
        return future.result(max(0.0, at - time.monotonic()))
    except (TimeoutError, concurrent.futures.TimeoutError, Expired):  # distinct before 3.11
        future.cancel()  # still queued: a worker skips it
        raise Unresolved(f"resolving {host} did not finish in time") from None


def _after_fork_in_child() -> None:
    global _pool
    _pool = Pool(THREADS, "kameleoon-resolver")  # the parent's threads do not exist here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
