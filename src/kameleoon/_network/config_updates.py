"""Keeps the client's configuration current: initial download, polling, real-time stream.

One daemon thread owns the job. It downloads the configuration at start (three immediate
attempts), then either polls every ``refresh_interval`` or, while the configuration asks for
real-time updates, listens to the server-sent event stream and downloads the configuration
(with ``ts``) on each ``configuration-update-event``. A lost stream is reopened with backoff
and jitter; while it is down the job keeps polling. Any failure keeps the last good
configuration. A crash of the job is logged and the job restarts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kameleoon._engine.model import Configuration
from kameleoon._engine.parse import ConfigError, parse_configuration
from kameleoon._engine.sdk import SDK_LANGUAGE, SDK_VERSION
from kameleoon._network.backoff import Backoff
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.transport import Request, Transport, TransportError
from kameleoon._wire.sse import EventStreamParser

__all__ = ["UPDATE_EVENT", "ConfigUpdater"]

UPDATE_EVENT = "configuration-update-event"
_ATTEMPTS = 3
_SDK_HEADERS = {"X-Kameleoon-SDK-Type": SDK_LANGUAGE, "X-Kameleoon-SDK-Version": SDK_VERSION}
_SSE_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}


class ConfigUpdater:
    """Runs the configuration job; ``apply(config, ts)`` installs each new configuration."""

    def __init__(
        self,
        endpoints: Endpoints,
        transport: Transport,
        timeout: float,
        refresh_interval: float,
        apply: Callable[[Configuration, int | None], None],
        current: Callable[[], Configuration],
        log: logging.Logger,
    ) -> None:
        self._endpoints = endpoints
        self._transport = transport
        self._timeout = timeout
        self._refresh_interval = refresh_interval
        self._apply = apply
        self._current = current
        self._log = log
        self._last_body: bytes | None = None
        self._stream: Any = None
        self._next_poll = 0.0
        self.failures = 0
        self.first_attempt_done = threading.Event()
        self.reset_after_fork(first_attempt_done=False)

    # -- lifecycle ------------------------------------------------------------------------
    def reset_after_fork(self, first_attempt_done: bool | None = None) -> None:
        """Fresh events and no thread (also used by ``__init__``); in a forked child the job
        restarts with an immediate download."""
        done = self.first_attempt_done.is_set() if first_attempt_done is None else first_attempt_done
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.first_attempt_done = threading.Event()
        if done:
            self.first_attempt_done.set()
            self._wake.set()
        self._thread: threading.Thread | None = None
        self._stream = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_guarded, name="kameleoon-config", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        self._close_stream()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def refresh_now(self) -> None:
        """Asks the job to download the configuration at once."""
        self._wake.set()

    # -- the job ----------------------------------------------------------------------------
    def _run_guarded(self) -> None:
        backoff = Backoff(base=1.0, cap=60.0)
        while not self._stop.is_set():
            try:
                self._run()
                return
            except Exception:  # never die silently: log, wait, start over
                self._log.exception("the configuration job failed; restarting it")
                self.first_attempt_done.set()
                self._stop.wait(backoff.delay())
                backoff = backoff.next()

    def _run(self) -> None:
        if not self.first_attempt_done.is_set():
            self.fetch()
            self.first_attempt_done.set()
        self._next_poll = time.monotonic() + self._refresh_interval
        backoff = Backoff(base=1.0, cap=60.0)
        while not self._stop.is_set():
            if not self._current().real_time_update:
                self._poll_when_due(self._next_poll - time.monotonic())
                continue
            if self._listen():
                backoff = backoff.reset()
            if self._stop.is_set() or not self._current().real_time_update:
                continue
            # the stream is down: keep polling, and reopen it after a backoff delay
            self._poll_when_due(backoff.delay())
            backoff = backoff.next()

    def _poll_when_due(self, wait: float) -> None:
        woken = self._wake.wait(max(0.0, wait))
        self._wake.clear()
        if self._stop.is_set():
            return
        if woken or time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + self._refresh_interval
            self.fetch()

    # -- download ---------------------------------------------------------------------------
    def fetch(self, ts: int | None = None) -> bool:
        """Downloads and applies the configuration; ``True`` when a configuration was applied
        or is unchanged."""
        request = Request("GET", self._endpoints.configuration(ts), _SDK_HEADERS, None, self._timeout)
        for attempt in range(1, _ATTEMPTS + 1):
            if self._stop.is_set():
                return False
            try:
                response = self._transport.send(request)
            except TransportError as e:
                self._log.warning("configuration download failed (attempt %d): %s", attempt, e)
                continue
            if 200 <= response.status < 300:
                return self._accept(response.body, response.is_json(), ts)
            self._log.warning("configuration download answered %d (attempt %d)", response.status, attempt)
            if response.status == 403:
                break
        self.failures += 1
        return False

    def _accept(self, body: bytes, is_json: bool, ts: int | None) -> bool:
        if body == self._last_body:
            return True
        try:
            document = json.loads(body) if is_json and body else None
        except (ValueError, RecursionError):
            document = None
        if not isinstance(document, dict) or not document:
            self._log.error("the configuration response is not a JSON object: the current one stays")
            self.failures += 1
            return False
        try:
            config = parse_configuration(document)
        except ConfigError as e:
            self._log.error("the configuration was rejected, the previous one stays active: %s", e)
            self.failures += 1
            return False
        self._last_body = body
        self._apply(config, ts)
        return True

    # -- real-time stream ---------------------------------------------------------------------
    def _listen(self) -> bool:
        """Reads the event stream until it ends; ``True`` if it delivered anything."""
        request = Request("GET", self._endpoints.sse(), _SSE_HEADERS, None, self._timeout)
        received = False
        try:
            with self._transport.stream(request) as (status, chunks):
                if status != 200:
                    self._log.warning("the update stream answered %d", status)
                    return False
                self._stream = chunks
                parser = EventStreamParser()
                for chunk in chunks:
                    received = True
                    for event in parser.feed(chunk):
                        self._on_event(event.event, event.data)
                    if self._stop.is_set() or not self._current().real_time_update:
                        break
        except TransportError as e:
            self._log.warning("the update stream was lost: %s", e)
        finally:
            self._stream = None
        return received

    def _on_event(self, name: str, data: str) -> None:
        if name != UPDATE_EVENT:
            return
        try:
            ts = json.loads(data)["ts"]
        except (ValueError, KeyError, TypeError):
            self._log.warning("ignored a malformed %s: %r", UPDATE_EVENT, data[:200])
            return
        self.fetch(ts if isinstance(ts, int) and not isinstance(ts, bool) else None)

    def _close_stream(self) -> None:
        stream = self._stream
        if stream is not None and hasattr(stream, "close"):
            with contextlib.suppress(Exception):  # closing a dead stream may fail: nothing to do
                stream.close()
