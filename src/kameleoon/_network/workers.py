"""Worker threads for the ``*_async`` methods without aiohttp: the deadline starts at the call.

Without the ``[async]`` extra, an ``*_async`` method runs its synchronous twin on a worker
thread. :func:`call_within` takes the call's deadline, computed when the coroutine was called:
a job that waited in the queue past its deadline does not run at all, one that starts gets
only the time that remains, and the coroutine stops waiting at the deadline (plus
:data:`GRACE`, for the twin's own bookkeeping) whatever the worker does. Time spent queued
therefore counts against the call's timeout, as it does with aiohttp.

The pool belongs to the SDK rather than to the event loop (its default executor): the loop's
executor is shared with the application, whose jobs would delay ours and ours theirs, and
``asyncio.run()`` waits for it on shutdown. The pool's threads are daemon threads started on
demand, at most :data:`MAX_WORKERS`, so interpreter exit never waits for a call in flight (its
caller is gone by then). A forked child starts a fresh pool.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from kameleoon._network.transport import TransportError

__all__ = ["GRACE", "MAX_WORKERS", "Expired", "Pool", "call_within", "join_by", "start_daemon"]

T = TypeVar("T")

# The default executor's largest size (min(32, cpu + 4)): never less parallelism than before.
MAX_WORKERS = 32
GRACE = 0.2  # seconds the coroutine waits past the deadline for a twin that is finishing

_Job = tuple["Future[Any]", Callable[[float], Any], float]


class Expired(TransportError):
    """The call's timeout expired while it waited for a worker, or before its worker finished."""


class Pool:
    """Daemon threads named ``name-<n>``, started one per submitted job until there are ``size``
    of them. A job is skipped when its deadline passed while it waited, or when its future was
    cancelled (its caller stopped waiting)."""

    def __init__(self, size: int, name: str = "kameleoon-async") -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0

    def submit(self, call: Callable[[float], T], deadline: float) -> Future[T]:
        """Queues ``call``; at interpreter exit, when no thread can start and none is there
        to take it, the queue is run on the calling thread instead."""
        future: Future[T] = Future()
        self._jobs.put((future, call, deadline))
        with self._lock:
            if self._threads >= self._size:
                return future
            self._threads += 1
            started = start_daemon(self._work, f"{self._name}-{self._threads}")
            if started is None:
                self._threads -= 1
            alone = started is None and self._threads == 0
        if alone:
            self._run_queued()
        return future

    def _run_queued(self) -> None:
        while True:
            try:
                future, call, deadline = self._jobs.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                _run(future, call, deadline)

    def _work(self) -> None:
        while True:
            future, call, deadline = self._jobs.get()
            if future.set_running_or_notify_cancel():  # False: the caller stopped waiting
                _run(future, call, deadline)
            del future, call  # no reference to the last job's result while idle


def _run(future: Future[Any], call: Callable[[float], Any], deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        future.set_exception(Expired("the call's timeout expired while it waited for a worker thread"))
        return
    try:
        future.set_result(call(left))
    except BaseException as e:  # handed to the awaiting coroutine, as the executor would
        future.set_exception(e)


_pool = Pool(MAX_WORKERS)


async def call_within(deadline: float, call: Callable[[float], T]) -> T:
    """``call(seconds_left)`` on a worker thread; raises :class:`Expired` when ``deadline`` (a
    :func:`time.monotonic` instant) passes before a worker took the job, or passes by more than
    :data:`GRACE` before the job ended (the job then runs on, its result unused)."""
    import asyncio  # deferred: the sync SDK imports this module (join_by, the resolver's pool)

    future = asyncio.wrap_future(_pool.submit(call, deadline))
    # asyncio.wait, not wait_for: before Python 3.12, wait_for returns the result when the
    # job ends just as the caller is cancelled, and the cancellation is lost.
    try:
        await asyncio.wait({future}, timeout=max(0.0, deadline - time.monotonic()) + GRACE)
    finally:
        future.cancel()  # a job not yet started is skipped; no-op when it is done
    if future.cancelled():
        raise Expired("the call's timeout expired before its worker thread finished")
    return future.result()


def start_daemon(target: Callable[[], object], name: str) -> threading.Thread | None:
    """A started daemon thread, or ``None`` when the interpreter refuses to start one (from
    Python 3.12 on, no thread starts once the interpreter is exiting: an exit flush must do
    its work on its own thread)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    try:
        thread.start()
    except RuntimeError:
        return None
    return thread


def join_by(thread: threading.Thread | None, deadline: float) -> bool:
    """Waits until ``deadline`` (a :func:`time.monotonic` instant) at most for ``thread`` to
    end; ``True`` when it has (or there is none, or it is the calling thread itself)."""
    if thread is None or thread is threading.current_thread():
        return True
    thread.join(max(0.0, deadline - time.monotonic()))
    return not thread.is_alive()


def _after_fork_in_child() -> None:
    global _pool
    _pool = Pool(MAX_WORKERS)  # the parent's threads do not exist here; its queue is theirs


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
