"""Sends tracking: one owner thread batches visitors' unsent data every interval.

Public calls only schedule visitor codes (an ordered set, bounded) or post a message; the
thread owns everything else. Each tick takes the scheduled codes, turns their unsent items
into lines (protocol spec §5.4), and POSTs them in one request (up to ~2.5 MB; the rest waits
for the next tick). A failed request keeps its exact body (same nonces, so the server can
de-duplicate) in a bounded retry buffer, retried with backoff; lines dropped because that
buffer is full are counted and logged. Data of visitors evicted or expired from the store is
turned into lines before it is lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kameleoon._engine.model import Configuration
from kameleoon._network.backoff import Backoff
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.token import TokenSource
from kameleoon._network.transport import Request, Transport, TransportError, is_expected
from kameleoon._visitors.outbox import (
    consent_given,
    identity_of,
    prepare_unique_identifier,
    unsent_items,
)
from kameleoon._visitors.record import Visitor
from kameleoon._visitors.store import VisitorStore
from kameleoon._wire import lines

__all__ = ["Tracker", "TrackerStats"]

MAX_BODY_CHARS = 2_621_440
MAX_SCHEDULED = 1_000_000
MAX_RETRY_LINES = 200_000
_PER_TICK_WHEN_BACKLOGGED = 20_000
_BACKLOG = 40_000
_HEADERS = {"Content-Type": "text/plain; charset=utf-8"}


@dataclass
class TrackerStats:
    """Counters of the tracker; read them for monitoring (not thread-exact)."""

    requests: int = 0
    lines_sent: int = 0
    failed_requests: int = 0
    lines_dropped: int = 0
    codes_dropped: int = 0


@dataclass
class _Batch:
    lines: list[str]
    backoff: Backoff
    due: float = 0.0


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
    ) -> None:
        self._store = store
        self._config = config
        self._endpoints = endpoints
        self._transport = transport
        self._tokens = tokens
        self._interval = interval
        self._timeout = timeout
        self._log = log
        self._purge_interval = purge_interval
        self._scheduled: dict[str, None] = {}
        self._scheduled_lock = threading.Lock()
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=10_000)
        self._orphans: deque[str] = deque()
        self._retries: deque[_Batch] = deque()
        self._retry_lines = 0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._drop_logged = 0.0
        self.stats = TrackerStats()

    # -- called from any thread -----------------------------------------------------------
    def schedule(self, code: str) -> None:
        scheduled = self._scheduled
        if code in scheduled:
            return
        with self._scheduled_lock:
            if len(scheduled) >= MAX_SCHEDULED:
                self.stats.codes_dropped += 1
                self._warn_drop("the tracking schedule is full: a visitor was not scheduled")
                return
            scheduled[code] = None

    def send_now(self, code: str) -> None:
        """Sends the visitor's data at once in a request of its own, without waiting for the
        next tick; its schedule is left as it is. The lines are built here, so they hold the
        data present at the call; the owner thread sends them."""
        batch = self._build([code])
        if not batch:
            return
        try:
            self._inbox.put_nowait(("lines", batch))
        except queue.Full:
            self._orphans.extend(batch)  # sent with the next tick instead
            self._warn_drop("too many instant flushes queued: this one waits for the next tick")

    def adopt(self, code: str, visitor: Visitor) -> None:
        """Keeps the unsent data of a visitor leaving the store (called by the store)."""
        with self._store.data_lock:
            self._store.apply_exposures()
            built = self._lines_for(code, visitor, self._config(), {}, allow_activity=False)
        self._orphans.extend(built)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Blocks until everything scheduled so far has been handed to the server (tests)."""
        done = threading.Event()
        self._inbox.put(("barrier", done))
        return done.wait(timeout)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run_guarded, name="kameleoon-tracking", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Sends what can be sent within ``timeout`` seconds, then stops the thread."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._inbox.put(("stop", time.monotonic() + timeout))
        if thread is not threading.current_thread():
            thread.join(timeout + 1.0)
        self._thread = None

    def reset_after_fork(self) -> None:
        """In a forked child: fresh locks and queues (the parent's thread does not exist here)."""
        self._scheduled_lock = threading.Lock()
        self._inbox = queue.Queue(maxsize=10_000)
        self._stopping = threading.Event()
        self._thread = None

    @property
    def pending_codes(self) -> int:
        return len(self._scheduled)

    # -- the owner thread -------------------------------------------------------------------
    def _run_guarded(self) -> None:
        while True:
            try:
                self._run()
                return
            except Exception:  # a bug must not silently end tracking: log and go on
                self._log.exception("the tracking thread failed; restarting it")
                time.sleep(self._interval)

    def _run(self) -> None:
        next_tick = time.monotonic() + self._interval
        next_purge = time.monotonic() + self._purge_interval
        while True:
            try:
                kind, payload = self._inbox.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                kind, payload = "tick", None
            if kind == "stop":
                self._final_flush(payload)
                return
            if kind == "lines":
                self._send(payload)
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
        self._retry_due()
        codes = self._take()
        batch = self._build(codes)
        batch.extend(self._drain_orphans())
        self._send(batch)

    def _final_flush(self, deadline: float) -> None:
        batch = self._build(self._take_all())
        batch.extend(self._drain_orphans())
        while self._retries and time.monotonic() < deadline:
            self._post(self._retries.popleft().lines, deadline - time.monotonic())
        if batch and (time.monotonic() >= deadline or not self._post(batch, deadline - time.monotonic())):
            self.stats.lines_dropped += len(batch)
            self._log.error("%d tracking lines could not be sent before shutdown", len(batch))

    # -- building ---------------------------------------------------------------------------
    def _take(self) -> list[str]:
        with self._scheduled_lock:
            scheduled = self._scheduled
            if len(scheduled) < _BACKLOG:
                self._scheduled = {}
                return list(scheduled)
            codes = []
            for code in scheduled:
                codes.append(code)
                if len(codes) == _PER_TICK_WHEN_BACKLOGGED:
                    break
            for code in codes:
                del scheduled[code]
            return codes

    def _take_all(self) -> list[str]:
        with self._scheduled_lock:
            codes, self._scheduled = list(self._scheduled), {}
        return codes

    def _reschedule(self, codes: list[str]) -> None:
        with self._scheduled_lock:
            for code in codes:
                self._scheduled.setdefault(code, None)

    def _build(self, codes: list[str]) -> list[str]:
        """Lines of ``codes`` up to the body size cap; codes beyond it are (still) scheduled."""
        config = self._config()
        built: list[str] = []
        size = 0
        shared: dict[int, list[tuple[int, str, str]]] = {}
        for position, code in enumerate(codes):
            if size > MAX_BODY_CHARS:
                self._reschedule(codes[position:])
                break
            visitor = self._store.get(code)
            with self._store.data_lock:
                self._store.apply_exposures()
                for text in self._lines_for(code, visitor, config, shared, allow_activity=True):
                    built.append(text)
                    size += len(text) + 1
        return built

    def _lines_for(
        self,
        code: str,
        visitor: Visitor | None,
        config: Configuration,
        shared: dict[int, list[tuple[int, str, str]]],
        allow_activity: bool,
    ) -> list[str]:
        unique = self._store.is_unique_identifier(code)
        if unique and visitor is not None:
            prepare_unique_identifier(visitor, code, config)
        consent = consent_given(config, visitor)
        identity = identity_of(code, visitor, unique)
        items: list[tuple[int, str, str]] = []
        if visitor is not None:
            cached = shared.get(id(visitor))
            if cached is None:
                cached = [
                    (bit, lines.new_nonce(), params)
                    for bit, params, _ in unsent_items(visitor, config, consent)
                ]
                shared[id(visitor)] = cached
                for bit, _, _ in cached:
                    visitor.pending &= ~bit
            items = cached
        user_agent = visitor.ua if visitor is not None else None
        if not items:
            if not (consent and allow_activity):
                return []
            return [lines.line(lines.new_nonce(), lines.activity(), identity, code, user_agent)]
        out = []
        for position, (_, nonce, params) in enumerate(items):
            out.append(lines.line(nonce, params, identity, code, user_agent if position == 0 else None))
        return out

    def _drain_orphans(self) -> list[str]:
        out = []
        while self._orphans:
            out.append(self._orphans.popleft())
        return out

    # -- sending ----------------------------------------------------------------------------
    def _send(self, batch: list[str]) -> None:
        if batch and not self._post(batch, self._timeout):
            self._keep_for_retry(batch)

    def _retry_due(self) -> None:
        now = time.monotonic()
        for _ in range(len(self._retries)):
            entry = self._retries.popleft()
            if entry.due > now:
                self._retries.append(entry)
                continue
            self._retry_lines -= len(entry.lines)
            if not self._post(entry.lines, self._timeout):
                entry.backoff = entry.backoff.next()
                self._requeue(entry)
            now = time.monotonic()

    def _keep_for_retry(self, batch: list[str]) -> None:
        self._requeue(_Batch(batch, Backoff(base=5.0, cap=300.0)))

    def _requeue(self, entry: _Batch) -> None:
        while self._retries and self._retry_lines + len(entry.lines) > MAX_RETRY_LINES:
            oldest = self._retries.popleft()
            self._retry_lines -= len(oldest.lines)
            self.stats.lines_dropped += len(oldest.lines)
            self._warn_drop(f"the tracking retry buffer is full: dropped {len(oldest.lines)} old lines")
        entry.due = time.monotonic() + entry.backoff.delay()
        self._retries.append(entry)
        self._retry_lines += len(entry.lines)

    def _post(self, batch: list[str], timeout: float) -> bool:
        body = "\n".join(batch).encode("utf-8", "surrogatepass")
        token = self._tokens.get() if self._tokens is not None else None
        self.stats.requests += 1
        try:
            response = self._transport.send(self._request(body, token, timeout))
            if response.status == 401 and token is not None and self._tokens is not None:
                self._tokens.invalidate(token)
                response = self._transport.send(self._request(body, None, timeout))
        except TransportError as e:
            self._log.warning("tracking request failed: %s", e)
            self.stats.failed_requests += 1
            return False
        if not is_expected(response.status):
            self._log.warning("tracking request answered %d", response.status)
            self.stats.failed_requests += 1
            return False
        self.stats.lines_sent += len(batch)
        return True

    def _request(self, body: bytes, token: str | None, timeout: float) -> Request:
        headers = dict(_HEADERS)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return Request("POST", self._endpoints.tracking(), headers, body, timeout)

    def _warn_drop(self, message: str) -> None:
        now = time.monotonic()
        if now - self._drop_logged > 60.0:
            self._drop_logged = now
            self._log.warning(message)
