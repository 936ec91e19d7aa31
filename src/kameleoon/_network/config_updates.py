"""Keeps the client's configuration current: initial download, polling, real-time stream.

One daemon thread owns the job. It downloads the configuration at start (three immediate
attempts), then either polls every ``refresh_interval`` or, while the configuration asks for
real-time updates, listens to the server-sent event stream and downloads the configuration
(with ``ts``) on each ``configuration-update-event``. A lost stream is reopened with backoff
and jitter, forever; while it is down the job keeps polling. Each time a stream opens, the
configuration is downloaded once: a change made since the last download (while the stream was
down, or between that download and the stream's start) was announced to nobody. A stream silent for
``stream_idle_timeout`` seconds counts as lost. Any failure keeps the last good
configuration. ``stop()`` (or ``request_stop()``, then ``join(deadline)``) interrupts a blocked
stream read at once; a download in flight is not applied (closing the transport ends it). A crash of
the job is logged and the job restarts.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from kameleoon._engine.model import Configuration
from kameleoon._engine.parse import ConfigError, parse_configuration
from kameleoon._engine.sdk import SDK_LANGUAGE, SDK_VERSION
from kameleoon._network.backoff import Backoff
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.transport import Request, Stream, Transport, TransportError
from kameleoon._network.workers import join_by
from kameleoon._wire.sse import EventStreamParser, StreamTooLong

__all__ = ["UPDATE_EVENT", "ConfigUpdater", "update_timestamp"]

UPDATE_EVENT = "configuration-update-event"
ATTEMPTS = 3
STREAM_IDLE_TIMEOUT = 300.0  # seconds without a byte (keep-alives included) before reconnecting
HEALTHY_STREAM = 30.0  # a stream that lived this long resets the reconnection backoff
_SDK_HEADERS = {"X-Kameleoon-SDK-Type": SDK_LANGUAGE, "X-Kameleoon-SDK-Version": SDK_VERSION}
_SSE_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
_STREAM_BACKOFF = Backoff(base=1.0, cap=60.0)
_UNCHANGED = object()  # the body is the one applied last: nothing to decode


def update_timestamp(data: str) -> str | None:
    """The ``ts`` of a ``configuration-update-event`` payload as the download sends it (a
    number or a string, stringified: protocol spec §2.2), or ``None`` if it has none."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    ts = document.get("ts") if isinstance(document, dict) else None
    if isinstance(ts, bool) or not isinstance(ts, (int, float, str)):
        return None
    return str(ts)


class ConfigUpdater:
    """Runs the configuration job; ``apply(config, ts)`` installs each new configuration."""

    def __init__(
        self,
        endpoints: Endpoints,
        transport: Transport,
        timeout: float,
        refresh_interval: float,
        apply: Callable[[Configuration, str | None], None],
        current: Callable[[], Configuration],
        log: logging.Logger,
        *,
        stream_idle_timeout: float | None = STREAM_IDLE_TIMEOUT,
        stream_backoff: Backoff = _STREAM_BACKOFF,
    ) -> None:
        self._endpoints = endpoints
        self._transport = transport
        self._timeout = timeout
        self._refresh_interval = refresh_interval
        self._apply = apply
        self._current = current
        self._log = log
        self._idle_timeout = stream_idle_timeout
        self._stream_backoff = stream_backoff
        self._last_body: bytes | None = None
        self._next_poll = 0.0
        self.failures = 0  # downloads that ended without a usable configuration
        self.updates = 0  # configurations applied
        self.streams_opened = 0
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
        if done:  # a forked child: download again as soon as the job runs (stream or poll)
            self.first_attempt_done.set()
            self._wake.set()
        self._thread: threading.Thread | None = None
        self._stream: Stream | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_guarded, name="kameleoon-config", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stops the job (a blocked stream read is interrupted) and waits up to ``timeout``."""
        self.request_stop()
        self.join(time.monotonic() + timeout)

    def request_stop(self) -> None:
        """Tells the job to stop and interrupts a blocked stream read; returns at once. A
        download in flight is not applied (closing the transport ends it)."""
        self._stop.set()
        self._wake.set()
        stream = self._stream
        if stream is not None:
            stream.interrupt()

    def is_own_thread(self) -> bool:
        """Whether the caller runs on this job's thread (an update handler does)."""
        return self._thread is threading.current_thread()

    def join(self, deadline: float) -> bool:
        """Waits until ``deadline`` (a :func:`time.monotonic` instant) at most for the job's
        thread to end; ``False`` if it still runs."""
        return join_by(self._thread, deadline)

    def refresh_now(self) -> None:
        """Asks the job to download the configuration at once (when it is polling)."""
        self._wake.set()

    @property
    def streaming(self) -> bool:
        """``True`` while an update stream is open."""
        return self._stream is not None

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
        backoff = self._stream_backoff
        while not self._stop.is_set():
            if not self._current().real_time_update:
                self._poll_when_due(self._next_poll - time.monotonic())
                continue
            healthy = self._listen()
            if self._stop.is_set() or not self._current().real_time_update:
                continue
            if healthy:
                backoff = backoff.reset()
            delay, backoff = backoff.delay(), backoff.next()
            # the stream is down: keep polling, and reopen it after a backoff delay
            self._poll_when_due(delay)

    def _poll_when_due(self, wait: float) -> None:
        woken = self._wake.wait(max(0.0, wait))
        self._wake.clear()
        if self._stop.is_set():
            return
        if woken or time.monotonic() >= self._next_poll:
            self.fetch()

    # -- download ---------------------------------------------------------------------------
    def fetch(self, ts: str | None = None) -> bool:
        """Downloads and applies the configuration; ``True`` when a configuration was applied
        or is unchanged. Transport errors, invalid JSON and unexpected statuses are retried
        at once (three attempts in all); a 403 or an unusable document is not."""
        self._next_poll = time.monotonic() + self._refresh_interval
        request = Request("GET", self._endpoints.configuration(ts), _SDK_HEADERS, None, self._timeout)
        for attempt in range(1, ATTEMPTS + 1):
            if self._stop.is_set():
                return False
            status, body, document = self._download(request, attempt)
            if self._stop.is_set():  # stopped during the download: nothing is applied any more
                return False
            if 200 <= status < 300:
                return self._accept(body, document, ts)
            if status == 403:
                break
        self.failures += 1
        return False

    def _download(self, request: Request, attempt: int) -> tuple[int, bytes, object]:
        """``(status, body, decoded document)`` of one attempt; status 0 when the attempt
        failed in transit or the JSON does not decode (logged)."""
        try:
            response = self._transport.send(request)
        except TransportError as e:
            self._log.warning("configuration download failed (attempt %d): %s", attempt, e)
            return 0, b"", None
        if not 200 <= response.status < 300:
            self._log.warning("configuration download answered %d (attempt %d)", response.status, attempt)
            return response.status, b"", None
        if response.body == self._last_body:
            return response.status, response.body, _UNCHANGED
        try:
            return response.status, response.body, response.json()
        except TransportError as e:
            self._log.warning("configuration download failed (attempt %d): %s", attempt, e)
            return 0, b"", None

    def _accept(self, body: bytes, document: object, ts: str | None) -> bool:
        if document is _UNCHANGED:
            return True
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
        self._apply(config, ts)  # if this raises, the same body is applied again next time
        self._last_body = body
        self.updates += 1
        return True

    # -- real-time stream ---------------------------------------------------------------------
    def _listen(self) -> bool:
        """Downloads the configuration once the event stream is open (changes made before it
        opened were not announced on it), then reads the stream until it ends; ``True`` if it
        was healthy (it delivered an event or lived long enough)."""
        request = Request("GET", self._endpoints.sse(), _SSE_HEADERS, None, self._timeout)
        opened = time.monotonic()
        try:
            stream = self._transport.open_stream(request, self._idle_timeout)
        except TransportError as e:
            self._log.warning("the update stream cannot be opened: %s", e)
            return False
        self._stream = stream
        try:
            if self._stop.is_set():  # stop() may have run before the stream was published
                return False
            if stream.status != 200:
                self._log.warning("the update stream answered %d", stream.status)
                return False
            self.streams_opened += 1
            self.fetch()
            if not self._current().real_time_update:  # that download turned streaming off
                return True
            return self._read(stream) or time.monotonic() - opened >= HEALTHY_STREAM
        finally:
            self._stream = None
            stream.close()

    def _read(self, stream: Stream) -> bool:
        """Handles the stream's events until it ends; ``True`` if one was an update."""
        parser = EventStreamParser()
        updated = False
        try:
            while not self._stop.is_set():
                chunk = stream.read()
                if not chunk:
                    self._log.warning("the update stream was closed by the server")
                    return updated
                for event in parser.feed(chunk):
                    updated = self._on_event(event.event, event.data) or updated
                if not self._current().real_time_update:
                    return updated
        except (TransportError, StreamTooLong) as e:
            self._log.warning("the update stream was lost: %s", e)
        return updated

    def _on_event(self, name: str, data: str) -> bool:
        if name != UPDATE_EVENT:
            return False
        ts = update_timestamp(data)
        if ts is None:
            self._log.warning("ignored a malformed %s: %r", UPDATE_EVENT, data[:200])
            return False
        self.fetch(ts)
        return True
