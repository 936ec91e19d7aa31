"""Delivers tracking batches: posting, size cap, retry buffer and backoff (used by the tracker).

Everything here runs on the tracker's owner thread. A batch is a list of tracking lines; it
is sent in requests of at most :data:`MAX_BODY_CHARS` characters. The outcome of a request
is one of:

* **sent** (2xx, or 403 which the protocol defines as "refused, do not resend");
* **rejected** (400, 413, 422: answers about the body): the server will never take this body.
  It is split in halves (between visitors where possible, see :func:`cut`) that are sent
  again, so one bad line cannot hold back the others; a single rejected line is dropped and
  counted in ``lines_rejected``;
* **unavailable** (no answer, 5xx, any other 4xx: 401, 404, 429, ...): the collector is
  considered down, or not the right one yet (a misrouted proxy answering 404). The
  body is kept as it is (same lines, same nonces, so the server can de-duplicate) in a bounded
  retry buffer, and so is every new batch while the collector is down: one probe request is
  made after a backoff delay, and when it succeeds the buffer is sent at once.

When the buffer is over its bound the oldest lines are dropped, counted in ``lines_dropped``
and logged at most once a minute.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from kameleoon._droplog import DropLog
from kameleoon._network.backoff import Backoff
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.token import TokenSource
from kameleoon._network.transport import Request, Transport, TransportError, is_expected

__all__ = [
    "MAX_BODY_CHARS",
    "Delivery",
    "Outcome",
    "Poster",
    "TrackerStats",
    "classify",
    "cut",
    "split_by_size",
]

MAX_BODY_CHARS = 2_621_440  # 2.5 MiB, the reference's guard (spec §5.6)
_HEADERS = {"Content-Type": "text/plain; charset=utf-8"}
# 4xx answers about the body itself: it is split in halves to find the line the server refuses.
# Any other 4xx (404 from a misrouted proxy or a site not created yet, 401, 429, ...) says
# nothing against the lines, which are kept and retried.
_REJECTING_4XX = frozenset({400, 413, 422})


class Outcome(enum.Enum):
    SENT = "sent"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"


def classify(status: int) -> Outcome:
    """What a tracking response status means for the body that was sent."""
    if is_expected(status):
        return Outcome.SENT
    if status in _REJECTING_4XX:
        return Outcome.REJECTED
    return Outcome.UNAVAILABLE


def split_by_size(lines: list[str], max_chars: int = MAX_BODY_CHARS) -> Iterator[list[str]]:
    """Consecutive pieces of ``lines`` whose body (lines joined by ``\\n``) stays within
    ``max_chars``, cut between visitors where possible (:func:`cut`); a single longer line
    travels alone."""
    start, size = 0, 0
    for position in range(len(lines)):
        while position > start and size + 1 + len(lines[position]) > max_chars:
            head, lines = cut(lines, start, position)
            yield head
            start += len(head)
            size = sum(map(len, lines[start:position])) + max(0, position - start - 1)
        size += len(lines[position]) + (1 if position > start else 0)
    if start < len(lines):
        yield lines[start:]


def cut(lines: list[str], start: int, at: int) -> tuple[list[str], list[str]]:
    """``lines[start:end]`` and ``lines`` to send after it, for a cut wanted before line ``at``
    (``start < at``). The cut moves back to the first line of that line's visitor, so a
    visitor's lines stay in one request; when they make up the whole piece, it stays at ``at``
    and the visitor's user agent, which each request carries on a visitor's first line
    (protocol spec §5.2), is added to line ``at`` in the copy of ``lines`` returned."""
    identity = _identity(lines[at])
    first = at
    while first > start and _identity(lines[first - 1]) == identity:
        first -= 1
    if first > start:
        return lines[start:first], lines
    agent = _user_agent(lines[start])
    if agent and not _user_agent(lines[at]):
        lines = [*lines[:at], lines[at] + agent, *lines[at + 1 :]]
    return lines[start:at], lines


def _identity(line: str) -> str:
    """The ``visitorCode=``/``mappingValue=`` parameter of a tracking line (last but for the
    user agent; values are percent-encoded, so ``&`` only separates parameters)."""
    at = max(line.rfind("&visitorCode="), line.rfind("&mappingValue="))
    end = line.find("&", at + 1)
    return line[at:end] if end >= 0 else line[at:]


def _user_agent(line: str) -> str:
    at = line.find("&userAgent=")
    return line[at:] if at >= 0 else ""


@dataclass
class TrackerStats:
    """Counters of the tracker (read them for monitoring; not updated atomically)."""

    requests: int = 0  # tracking requests made
    lines_sent: int = 0  # lines the server accepted (2xx or 403)
    failed_requests: int = 0  # requests that got no acceptable answer
    lines_rejected: int = 0  # single lines the server refused with a 400, 413 or 422: dropped
    lines_dropped: int = 0  # lines dropped by a full buffer, or left unsent at shutdown
    codes_dropped: int = 0  # visitors not scheduled because the schedule was full
    calls_after_close: int = 0  # calls made after the client was stopped: their tracking is not sent


class Poster:
    """Sends one tracking body with the access token (and once more without it after a 401)."""

    def __init__(
        self,
        endpoints: Endpoints,
        transport: Transport,
        tokens: TokenSource | None,
        stats: TrackerStats,
        log: logging.Logger,
    ) -> None:
        self._endpoints = endpoints
        self._transport = transport
        self._tokens = tokens
        self._stats = stats
        self._log = log

    def __call__(self, lines: list[str], timeout: float) -> Outcome:
        deadline = time.monotonic() + timeout
        body = "\n".join(lines).encode("utf-8", "surrogatepass")
        request = Request("POST", self._endpoints.tracking(), _HEADERS, body, timeout)
        self._stats.requests += 1
        try:
            status = self._send(request, deadline)
        except TransportError as e:
            self._log.warning("tracking request failed: %s", e)
            status = 0
        except Exception:  # a bug here must not lose the lines: they are kept like a failure
            self._log.exception("tracking request failed unexpectedly")
            status = 0
        outcome = classify(status) if status else Outcome.UNAVAILABLE
        if outcome is Outcome.SENT:
            self._stats.lines_sent += len(lines)
        else:
            self._stats.failed_requests += 1
            if status:
                self._log.warning("tracking request answered %d (%d lines)", status, len(lines))
        return outcome

    def _send(self, request: Request, deadline: float) -> int:
        tokens = self._tokens
        token = tokens.get(_left(deadline)) if tokens is not None else None
        response = self._transport.send(request.with_token(token).with_timeout(_left(deadline)))
        if response.status == 401 and token is not None and tokens is not None:
            tokens.invalidate(token)
            response = self._transport.send(request.with_timeout(_left(deadline)))
        return response.status


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TransportError("no time left for the request")
    return left


class Delivery:
    """The retry buffer and the collector's up/down state (owner thread only)."""

    def __init__(
        self,
        post: Callable[[list[str], float], Outcome],
        stats: TrackerStats,
        timeout: float,
        backoff: Backoff,
        max_buffered_lines: int,
        log: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._post = post
        self._stats = stats
        self._timeout = timeout
        self._initial = self._backoff = backoff
        self._max_lines = max_buffered_lines
        self._log = log
        self._clock = clock
        self._drops = DropLog(log)
        self._buffer: deque[list[str]] = deque()
        self.buffered_lines = 0
        self.down_until: float | None = None  # None: the collector is considered up
        # Set (from another thread) when the tracker is told to stop: from then on no request
        # outlives it, so the final flush starts in time.
        self.stop_deadline: float | None = None

    def submit(self, lines: list[str]) -> None:
        """Sends ``lines`` now (or keeps them while the collector is down)."""
        if lines:
            self._deliver(split_by_size(lines), None)

    def retry_due(self) -> None:
        """Sends what was kept, once the collector's backoff delay is over (the first request
        is the probe: if it fails, everything stays kept)."""
        if self.down_until is not None and self._clock() < self.down_until:
            return
        self.down_until = None
        if self._buffer:
            self._deliver(self._take_buffer(), None)

    def flush(self, deadline: float) -> None:
        """Shutdown: one last attempt for everything kept, within ``deadline``."""
        self.down_until = None
        self._deliver(self._take_buffer(), deadline)
        if self._buffer:
            lost = self._take_count()
            self._stats.lines_dropped += lost
            self._log.error("%d tracking lines could not be sent before shutdown", lost)

    def clear(self) -> None:
        """Forgets everything kept (a forked child: the parent owns that data)."""
        self._buffer.clear()
        self.buffered_lines = 0
        self.down_until = None
        self._backoff = self._initial

    # -- internals ---------------------------------------------------------------------------
    def _deliver(self, chunks: Iterable[list[str]], deadline: float | None) -> None:
        work = deque(chunks)
        while work:
            chunk = work.popleft()
            limit = self.stop_deadline if deadline is None else deadline
            timeout = self._timeout if limit is None else min(self._timeout, limit - self._clock())
            if self.down_until is not None or timeout <= 0:
                self._keep(chunk)
                continue
            outcome = self._post(chunk, timeout)
            if outcome is Outcome.REJECTED:
                self._reject(chunk, work)
            elif outcome is Outcome.UNAVAILABLE:
                self._keep(chunk)
                self._went_down()
            else:
                self._backoff = self._initial

    def _reject(self, chunk: list[str], work: deque[list[str]]) -> None:
        if len(chunk) > 1:
            head, chunk = cut(chunk, 0, len(chunk) // 2)
            work.extendleft((chunk[len(head) :], head))  # first half first
            return
        self._stats.lines_rejected += 1
        self._drops.warn("the server refused a tracking line; it is dropped: %.200s", chunk[0])

    def _went_down(self) -> None:
        delay = self._backoff.delay()
        self.down_until = self._clock() + delay
        self._backoff = self._backoff.next()
        kept = self.buffered_lines
        self._log.warning("tracking unavailable: %d lines kept, next try in %.1f s", kept, delay)

    def _keep(self, chunk: list[str]) -> None:
        self._buffer.append(chunk)
        self.buffered_lines += len(chunk)
        dropped = 0
        while self.buffered_lines > self._max_lines and self._buffer:
            oldest = self._buffer.popleft()
            self.buffered_lines -= len(oldest)
            dropped += len(oldest)
        if dropped:
            self._stats.lines_dropped += dropped
            self._drops.warn(
                "the tracking retry buffer is full: %d lines dropped so far", self._stats.lines_dropped
            )

    def _take_buffer(self) -> list[list[str]]:
        chunks = list(self._buffer)
        self._buffer.clear()
        self.buffered_lines = 0
        return chunks

    def _take_count(self) -> int:
        return sum(len(chunk) for chunk in self._take_buffer())
