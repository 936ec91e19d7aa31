"""OAuth2 client-credentials access token (protocol spec §4), cached and refreshed.

A token is fetched when an authenticated call needs one, and concurrent callers share that
one request (single flight). It is used until ``expires_in - 60`` seconds after it arrived;
once it is "obsolete" (``expires_in - 1800`` seconds, for long-lived tokens) callers still
get it while one background refresh runs. After a failed request, callers go without a token
for a backoff delay (growing with consecutive failures) instead of hammering the endpoint.
A 401 answer to a call made with the token discards it (:meth:`TokenSource.invalidate`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from kameleoon._network.backoff import Backoff
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.transport import Request, Transport, TransportError, is_expected
from kameleoon._network.workers import start_daemon
from kameleoon._wire.encoding import query

__all__ = ["TokenSource", "TokenTimes", "read_token"]

EXPIRY_MARGIN = 60.0
OBSOLESCENCE_MARGIN = 1800.0
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_BACKOFF = Backoff(base=1.0, cap=60.0)


@dataclass(frozen=True, slots=True)
class TokenTimes:
    """When a token received at ``received`` with ``expires_in`` stops being used, and when
    it should be renewed in the background. Pure arithmetic (spec §4.3)."""

    expires_at: float
    obsolete_at: float

    @staticmethod
    def of(received: float, expires_in: int) -> TokenTimes:
        expires_at = received + expires_in - EXPIRY_MARGIN
        if expires_in > OBSOLESCENCE_MARGIN:
            return TokenTimes(expires_at, received + expires_in - OBSOLESCENCE_MARGIN)
        return TokenTimes(expires_at, expires_at)


@dataclass
class _Flight:
    """One token request shared by every caller that needs a token while it runs."""

    done: threading.Event = field(default_factory=threading.Event)
    token: str | None = None


class TokenSource:
    def __init__(
        self,
        endpoints: Endpoints,
        transport: Transport,
        client_id: str,
        client_secret: str,
        default_timeout: float,
        log: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff = _BACKOFF,
    ) -> None:
        self._endpoints = endpoints
        self._transport = transport
        self._body = query(
            (("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", client_secret))
        ).encode()
        self._timeout = default_timeout
        self._log = log
        self._clock = clock
        self._token: str | None = None
        self._times = TokenTimes(0.0, 0.0)
        self._backoff = backoff
        self._silent_until = 0.0
        self.requests = 0
        self.failures = 0
        self._reset_after_fork()
        _live.add(self)

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._flight: _Flight | None = None

    # -- called by authenticated calls ---------------------------------------------------------
    def cached(self) -> str | None:
        """The token if one can be used right now without waiting (starting a background
        refresh when it is obsolete), else ``None``."""
        token, times, now = self._token, self._times, self._clock()
        if token is None or now >= times.expires_at:
            return None
        if now >= times.obsolete_at and now >= self._silent_until:  # not while backing off
            self._refresh_in_background()
        return token

    def get(self, timeout: float | None = None) -> str | None:
        """A usable token, or ``None`` when none can be obtained within ``timeout`` seconds
        (default: the client's default timeout) or while backing off after a failure."""
        token = self.cached()
        if token is not None:
            return token
        if self._clock() < self._silent_until:
            return None
        wait = self._timeout if timeout is None else timeout
        flight, leader = self._join()
        if leader:
            self._fly(flight, wait)
        elif not flight.done.wait(max(0.0, wait)):
            return None
        return flight.token

    def invalidate(self, token: str | None) -> None:
        """Forgets ``token`` (the server answered 401 to a call made with it)."""
        with self._lock:
            if token is not None and self._token == token:
                self._token = None

    # -- fetching ------------------------------------------------------------------------------
    def _join(self) -> tuple[_Flight, bool]:
        with self._lock:
            if self._flight is not None:
                return self._flight, False
            self._flight = _Flight()
            return self._flight, True

    def _fly(self, flight: _Flight, timeout: float) -> None:
        token = None
        try:
            token = self._fetch(timeout)
        finally:
            flight.token = token
            self._release(flight)

    def _refresh_in_background(self) -> None:
        flight, leader = self._join()
        if not leader:
            return

        def refresh() -> None:
            try:
                self._fly(flight, self._timeout)
            except Exception:  # never a silent death: the next caller tries again
                self._log.exception("the background token refresh failed")

        if start_daemon(refresh, "kameleoon-token") is None:  # interpreter exit: the token is still valid
            self._release(flight)

    def _release(self, flight: _Flight) -> None:
        """Ends ``flight`` without a token."""
        with self._lock:
            if self._flight is flight:
                self._flight = None
        flight.done.set()

    def _fetch(self, timeout: float) -> str | None:
        self.requests += 1
        request = Request("POST", self._endpoints.token(), _FORM, self._body, timeout)
        try:
            response = self._transport.send(request)
            document = response.json() if is_expected(response.status) else None
            status = response.status
        except TransportError as e:
            self._log.warning("the access token request failed: %s", e)
            document, status = None, 0
        token, expires_in = read_token(document)
        if token is None or expires_in is None:
            self._failed(status)
            return None
        times = TokenTimes.of(self._clock(), expires_in)
        with self._lock:
            self._token, self._times = token, times
            self._backoff = self._backoff.reset()
        if expires_in <= EXPIRY_MARGIN:
            self._log.error("the access token expires in %ss: a new one is needed for every call", expires_in)
        return token

    def _failed(self, status: int) -> None:
        self.failures += 1
        with self._lock:
            delay = self._backoff.delay()
            self._silent_until = self._clock() + delay
            self._backoff = self._backoff.next()
        detail = f"status {status}" if status else "no answer"
        self._log.error("no access token (%s): calls go without one for %.1f s", detail, delay)


def read_token(document: object) -> tuple[str | None, int | None]:
    """``(access_token, expires_in)`` from a token response, or ``(None, None)`` if invalid."""
    if not isinstance(document, dict):
        return None, None
    token, expires_in = document.get("access_token"), document.get("expires_in")
    if not isinstance(token, str) or not token:
        return None, None
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in == 0:
        return None, None
    return token, expires_in


# -- fork safety: a lock or flight held by a parent's thread must not block the child ----------
_live: weakref.WeakSet[TokenSource] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for source in list(_live):
        source._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
