"""Sends tracking: one owner thread batches visitors' unsent data every interval.

Public calls only schedule visitor codes (an ordered set, bounded) or post a message on a
bounded queue; the owner thread does everything else. Each tick takes the scheduled codes,
turns their unsent items into lines (protocol spec §5.4) and hands them to
:class:`~kameleoon._network.delivery.Delivery`, which posts them in size-capped requests,
keeps failed bodies for retry with backoff (same nonces) and counts what a bound forces it to
drop. The data of visitors evicted or expired from the store becomes lines before it is lost
(:meth:`Tracker.adopt`). ``request_stop(deadline)`` makes the thread send what it can by the
deadline (no request of the thread outlives it from then on) and ``join(deadline)`` waits for
it, so that several trackers can stop within one deadline. Once the client is closed
(``refuse_later_calls()``), calls are refused: counted in ``calls_after_close`` and logged
once. A crash of the thread is logged and the thread starts over.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import islice, repeat
from typing import Any

from kameleoon._droplog import DropLog
from kameleoon._engine.model import Configuration
from kameleoon._network.backoff import Backoff
from kameleoon._network.delivery import MAX_BODY_CHARS, Delivery, Poster, TrackerStats
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.token import TokenSource
from kameleoon._network.transport import Transport
from kameleoon._network.workers import join_by
from kameleoon._visitors.outbox import consent_given, identity_of, prepare_unique_identifier, unsent_items
from kameleoon._visitors.record import Visitor
from kameleoon._visitors.store import VisitorStore
from kameleoon._wire import lines
from kameleoon._wire.encoding import encode

__all__ = ["MAX_BODY_CHARS", "Tracker", "TrackerStats"]

MAX_SCHEDULED = 1_000_000  # visitor codes waiting for the next tick
MAX_RETRY_LINES = 100_000  # lines kept for retry while the collector is unavailable
MAX_ORPHAN_LINES = 100_000  # lines of visitors that left the store, waiting for the next tick
MAX_QUEUED = 10_000  # messages (instant flushes) waiting for the owner thread
_PER_TICK_WHEN_BACKLOGGED = 20_000
_BACKLOG = 40_000

# (pending bit, nonce, tracking parameters) of one visitor, shared by its linked codes in a batch
# (keyed by the record itself: an id() could be reused by a record created during the build)
_Encoded = list[tuple[int, str, str]]
_CHUNK = 64  # visitors built per hold of the data lock
_STOP_MARGIN = 0.1  # seconds (at most a tenth of the time left) the final flush leaves to end the thread


class Tracker:
    def __init__(
        self,
        store: VisitorStore,
        config: Callable[[], Configuration],
        endpoints: Endpoints,
        transport: Transport,
        tokens: TokenSource | None,
        interval: float,
        timeout: float,
        log: logging.Logger,
        purge_interval: float = 60.0,
        *,
        max_retry_lines: int = MAX_RETRY_LINES,
        max_orphan_lines: int = MAX_ORPHAN_LINES,
        retry_backoff: Backoff | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._interval = interval
        self._log = log
        self._purge_interval = purge_interval
        self._max_orphans = max_orphan_lines
        self.stats = TrackerStats()
        # the reference retries after 5 s at the default 1 s interval: scale with the interval
        backoff = retry_backoff or Backoff(base=5 * interval, cap=60 * interval)
        poster = Poster(endpoints, transport, tokens, self.stats, log)
        self._delivery = Delivery(poster, self.stats, timeout, backoff, max_retry_lines, log)
        self._drops = DropLog(log)
        self._scheduled: dict[str, None] = {}
        self._orphans: deque[str] = deque()
        self._nonce = lines.NoncePool()  # used with the store's data lock held
        self._thread: threading.Thread | None = None
        self._closed = False  # the client was closed: calls are refused (kept across a fork)
        self._closed_warned = False
        self._reset_threading()

    def _reset_threading(self) -> None:
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=MAX_QUEUED)
        self._stopping = threading.Event()
        self._stop_deadline = 0.0
        self._delivery.stop_deadline = None
        self._thread = None

    # -- called from any thread -----------------------------------------------------------
    def schedule(self, code: str) -> None:
        """Includes the visitor in the next tick.

        Lock-free: the schedule is one dict that is never replaced; callers add keys (atomic)
        and the owner thread takes them with atomic snapshots and pops. A code seen as
        scheduled is built by the tick that takes it, which reads data recorded before this
        call.
        """
        scheduled = self._scheduled
        if code in scheduled:
            return
        if self._closed:
            self.refuse_after_close()
            return
        if len(scheduled) >= MAX_SCHEDULED:
            stats = self.stats
            stats.codes_dropped += 1
            self._drops.warn("the tracking schedule is full: %d visitors left out", stats.codes_dropped)
            return
        scheduled[code] = None

    def schedule_all(self, codes: list[str]) -> None:
        """:meth:`schedule` of each code, in order (one dict update while the bound is far)."""
        if self._closed:
            self.refuse_after_close()
            return
        scheduled = self._scheduled
        if len(scheduled) + len(codes) <= MAX_SCHEDULED:
            scheduled.update(zip(codes, repeat(None)))  # atomic: str keys run no Python code
            return
        for code in codes:
            self.schedule(code)

    def send_now(self, code: str) -> None:
        """Sends the visitor's data at once in a request of its own, without waiting for the
        next tick; its schedule is left as it is. The lines are built here, so they hold the
        data present at the call; the owner thread sends them."""
        if self._closed:
            self.refuse_after_close()
            return
        batch = self._build([code])
        if not batch:
            return
        try:
            self._inbox.put_nowait(("lines", batch))
        except queue.Full:
            self._keep_orphans(batch)  # sent with the next tick instead
            self._drops.warn("too many instant flushes queued: some wait for the next tick")

    def refuse_later_calls(self) -> None:
        """The client is closed for good: from now on, calls that would be tracked are refused
        (:meth:`refuse_after_close`) instead of being kept for a thread that will never run."""
        self._closed = True

    def refuse_after_close(self) -> None:
        """Counts a call whose tracking cannot be sent any more (the client was closed); the
        first one is logged."""
        self.stats.calls_after_close += 1
        if not self._closed_warned:
            self._closed_warned = True
            self._log.warning(
                "this client was stopped (KameleoonClientFactory.forget() or interpreter exit): "
                "the tracking of later calls is not sent (counted in calls_after_close)"
            )

    def adopt(self, code: str, visitor: Visitor, unique: bool) -> None:
        """Keeps the unsent data of a visitor leaving the store (called by the store);
        ``unique``: the code was flagged as a unique identifier."""
        with self._store.data_lock:
            self._store.apply_exposures()
            built = self._lines_for(code, visitor, unique, self._config(), {}, allow_activity=False)
        self._keep_orphans(built)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Blocks until everything scheduled so far has been handed to the server (tests)."""
        done = threading.Event()
        try:
            self._inbox.put(("barrier", done), timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    @property
    def pending_codes(self) -> int:
        """Visitors scheduled for the next tick."""
        return len(self._scheduled)

    @property
    def retry_lines(self) -> int:
        """Lines kept for retry (the collector was unavailable)."""
        return self._delivery.buffered_lines

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run_guarded, name="kameleoon-tracking", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Sends what can be sent within ``timeout`` seconds, then stops the thread."""
        deadline = time.monotonic() + timeout
        self.request_stop(deadline)
        self.join(deadline)

    def request_stop(self, deadline: float) -> None:
        """Tells the thread to send what it can by ``deadline`` (a :func:`time.monotonic`
        instant) and stop; returns at once."""
        if self._thread is None:
            return
        margin = min(_STOP_MARGIN, max(0.0, deadline - time.monotonic()) / 10)
        self._stop_deadline = deadline - margin
        self._delivery.stop_deadline = self._stop_deadline  # bounds a tick in progress too
        self._stopping.set()
        with contextlib.suppress(queue.Full):  # when full, the thread sees the stop between two
            self._inbox.put_nowait(("wake", None))

    def join(self, deadline: float) -> bool:
        """Waits until ``deadline`` at most for the thread to end; ``False`` if it still runs
        (a request in flight keeps it until the transport is closed or the request times out)."""
        thread = self._thread
        if not join_by(thread, deadline):
            return False
        if thread is not threading.current_thread() and self._thread is thread:
            self._thread = None
        return True

    def reset_after_fork(self) -> None:
        """In a forked child: fresh locks and queue (the parent's thread does not exist here).
        Data collected before the fork is the parent's to send: the child forgets its schedule,
        its retry buffer and what its visitors had not sent yet, so nothing is sent twice. Its
        nonces come from a new buffer: the copy of the parent's would repeat the parent's next
        nonces in every child."""
        self._reset_threading()
        self._nonce = lines.NoncePool()
        self._scheduled = {}
        self._orphans.clear()
        self._delivery.clear()
        self._store.forget_unsent()

    # -- the owner thread -------------------------------------------------------------------
    def _run_guarded(self) -> None:
        while not self._stopping.is_set():
            try:
                self._run()
            except Exception:  # a bug must not silently end tracking: log and go on
                self._log.exception("the tracking thread failed; restarting it")
                self._stopping.wait(self._interval)
        try:
            self._final_flush()
        except Exception:
            self._log.exception("the final tracking flush failed")

    def _run(self) -> None:
        next_tick = time.monotonic() + self._interval
        next_purge = time.monotonic() + self._purge_interval
        while not self._stopping.is_set():
            try:
                kind, payload = self._inbox.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                kind, payload = "tick", None
            if kind == "lines":
                self._delivery.submit(payload)
            elif kind == "barrier":
                self._tick()
                payload.set()
            if time.monotonic() >= next_tick:
                self._tick()
                next_tick = max(next_tick + self._interval, time.monotonic() + self._interval / 10)
            if time.monotonic() >= next_purge:
                self._store.purge()
                next_purge = time.monotonic() + self._purge_interval

    def _tick(self) -> None:
        self._store.refresh_clock()
        self._store.reorder()
        self._delivery.retry_due()
        codes = self._take()
        try:
            batch = self._build(codes)
        except Exception:
            self._reschedule(codes)  # a bug must not unschedule visitors
            raise
        batch.extend(self._drain_orphans())
        self._delivery.submit(batch)

    def _final_flush(self) -> None:
        """Everything scheduled goes (no body cap on the build: the delivery splits it); what
        the deadline leaves unsent is counted and logged by the delivery."""
        self._drain_inbox()
        self._delivery.submit(self._build(self._take_all(), cap=math.inf) + self._drain_orphans())
        self._delivery.flush(self._stop_deadline)

    def _drain_inbox(self) -> None:
        while True:
            try:
                kind, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "lines":
                self._keep_orphans(payload)
            elif kind == "barrier":
                payload.set()

    # -- building ---------------------------------------------------------------------------
    def _take(self) -> list[str]:
        """The codes of this tick: all of them, or the oldest 20 000 when 40 000 or more wait."""
        scheduled = self._scheduled
        if len(scheduled) < _BACKLOG:
            return self._take_all()
        codes = list(islice(scheduled, _PER_TICK_WHEN_BACKLOGGED))  # one C call: atomic
        for code in codes:
            scheduled.pop(code, None)
        return codes

    def _take_all(self) -> list[str]:
        scheduled = self._scheduled
        codes = list(scheduled)  # one C call: atomic; codes added later wait for the next tick
        for code in codes:
            scheduled.pop(code, None)
        return codes

    def _reschedule(self, codes: list[str]) -> None:
        scheduled = self._scheduled
        for code in codes:
            scheduled.setdefault(code, None)

    def _build(self, codes: list[str], cap: float = MAX_BODY_CHARS) -> list[str]:
        """Lines of ``codes`` while they are within ``cap`` characters (the visitor that passes
        it is the last, protocol spec §5.6); the codes after it stay scheduled.

        The data lock is taken per chunk of visitors, not per visitor: user threads wait at
        most one chunk, and the build costs a fraction of a decision per visitor.
        """
        config = self._config()
        built: list[str] = []
        size = 0
        shared: dict[Visitor, _Encoded] = {}
        store, lock = self._store, self._store.data_lock
        unique_ids = store._unique_ids
        for start in range(0, len(codes), _CHUNK):
            # a tracking build is the visitor's activity (evaluation spec §4.1): touched
            visitors = [(code, store.get(code)) for code in codes[start : start + _CHUNK]]
            with lock:
                store.apply_exposures()
                for position, (code, visitor) in enumerate(visitors, start):
                    if size > cap:
                        self._reschedule(codes[position:])
                        return built
                    unique = code in unique_ids
                    texts = self._lines_for(code, visitor, unique, config, shared, allow_activity=True)
                    built += texts
                    size += sum(map(len, texts)) + len(texts)
        return built

    def _lines_for(
        self,
        code: str,
        visitor: Visitor | None,
        unique: bool,
        config: Configuration,
        shared: dict[Visitor, _Encoded],
        allow_activity: bool,
    ) -> list[str]:
        if unique and visitor is not None:
            prepare_unique_identifier(visitor, code, config)
        consent = not config.consent_required or consent_given(config, visitor)
        identity = identity_of(code, visitor, unique) if unique else "visitorCode"
        suffix = f"&{identity}={code if code.isalnum() and code.isascii() else encode(code)}"
        user_agent = visitor.ua if visitor is not None else None
        first = f"{suffix}&userAgent={encode(user_agent)}" if user_agent else suffix
        items = self._encoded(visitor, config, consent, shared) if visitor is not None else None
        if not items:
            if not (consent and allow_activity):
                return []
            return [f"nonce={self._nonce()}&eventType=activity{first}"]
        texts = [f"nonce={nonce}&{params}{suffix}" for _, nonce, params in items]
        if first is not suffix:
            texts[0] = f"nonce={items[0][1]}&{items[0][2]}{first}"
        return texts

    def _encoded(
        self, visitor: Visitor, config: Configuration, consent: bool, shared: dict[Visitor, _Encoded]
    ) -> _Encoded:
        """The visitor's unsent items with their nonces, encoded once per batch (linked codes
        share them) and marked as handed over."""
        cached = shared.get(visitor)
        if cached is None:
            new_nonce, cleared = self._nonce, 0
            cached = []
            for bit, params, _ in unsent_items(visitor, config, consent):
                cached.append((bit, new_nonce(), params))
                cleared |= bit
            shared[visitor] = cached
            if cleared:
                visitor.pending &= ~cleared
        return cached

    def _keep_orphans(self, built: list[str]) -> None:
        """Keeps ``built`` for the next tick; over the bound, the oldest lines go (counted)."""
        orphans, bound = self._orphans, self._max_orphans
        orphans.extend(built)
        dropped = 0
        while len(orphans) > bound:  # other threads add and drain too: each step is atomic
            with contextlib.suppress(IndexError):
                orphans.popleft()
                dropped += 1
        if dropped:
            stats = self.stats
            stats.lines_dropped += dropped
            self._drops.warn("too many lines of departed visitors: %d dropped so far", stats.lines_dropped)

    def _drain_orphans(self) -> list[str]:
        out = []
        while self._orphans:
            out.append(self._orphans.popleft())
        return out
