"""Host-name resolution that a caller can stop waiting for.

``socket.getaddrinfo`` blocks for as long as the system resolver takes (several seconds per
attempt when a name server does not answer), and nothing can interrupt it. Resolutions run
here on a few daemon threads instead; the caller waits only until its deadline. A resolution
that outlives its caller finishes on its thread and is dropped, so a dead name server costs a
fixed number of threads, never one per call. Resolutions queued behind them are skipped once
their caller has given up.

Numeric addresses never leave the calling thread.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from typing import Any

__all__ = ["Unresolved", "resolve"]

THREADS = 4
AddrInfo = list[tuple[Any, ...]]
_getaddrinfo = socket.getaddrinfo  # the system resolver (tests slow it down here)


class Unresolved(TimeoutError):
    """The name was not resolved by the deadline."""


class _Job:
    __slots__ = ("args", "at", "done", "error", "result")

    def __init__(self, args: tuple[Any, ...], at: float) -> None:
        self.args, self.at = args, at
        self.done = threading.Event()
        self.result: AddrInfo | None = None
        self.error: BaseException | None = None


class _Pool:
    """Daemon threads taking resolutions from one queue, started on first use."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)
        with self._lock:
            if self._threads < THREADS:
                self._threads += 1
                threading.Thread(target=self._run, name="kameleoon-resolver", daemon=True).start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if time.monotonic() >= job.at:  # its caller has stopped waiting
                continue
            try:
                job.result = _getaddrinfo(*job.args)
            except BaseException as e:  # handed to the caller, who raises it
                job.error = e
            job.done.set()

    def reset_after_fork(self) -> None:
        self.__init__()  # type: ignore[misc]  # the parent's threads do not exist here


_pool = _Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.reset_after_fork)


def resolve(host: str, port: int, family: int, at: float) -> AddrInfo:
    """``getaddrinfo(host, port, family, SOCK_STREAM)``, waiting until ``at`` (a
    :func:`time.monotonic` instant) at most; raises :class:`Unresolved` then, and
    ``socket.gaierror`` when the name does not resolve."""
    try:  # an address: no lookup, no thread
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    job = _Job((host, port, family, socket.SOCK_STREAM), at)
    _pool.submit(job)
    if not job.done.wait(max(0.0, at - time.monotonic())):
        raise Unresolved(f"resolving {host} did not finish in time")
    if job.error is not None:
        raise job.error
    assert job.result is not None
    return job.result
