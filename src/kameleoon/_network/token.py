"""OAuth2 client-credentials access token (protocol spec §4), cached and refreshed.

A token is fetched when an authenticated call needs one. It is used until ``expires_in - 60``
seconds; once it is "obsolete" (``expires_in - 1800`` seconds, for long-lived tokens) the next
caller still gets it while one background refresh runs. After a failed request, callers go
without a token for a backoff delay instead of hammering the token endpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kameleoon._network.backoff import Backoff
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.transport import Request, Transport, TransportError, is_expected
from kameleoon._wire.encoding import query

__all__ = ["TokenSource"]

_EXPIRY_MARGIN = 60.0
_OBSOLESCENCE_MARGIN = 1800.0
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


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
    ) -> None:
        self._endpoints = endpoints
        self._transport = transport
        self._body = query(
            (("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", client_secret))
        ).encode()
        self._timeout = default_timeout
        self._log = log
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._obsolete_at = 0.0
        self._refreshing = False
        self._backoff = Backoff(base=1.0, cap=60.0)
        self._silent_until = 0.0
        self.requests = 0
        self.failures = 0

    def get(self, timeout: float | None = None) -> str | None:
        """A usable token, or ``None`` when none can be obtained right now."""
        now = self._clock()
        token = self._token
        if token is not None and now < self._expires_at:
            if now >= self._obsolete_at:
                self._refresh_in_background()
            return token
        if now < self._silent_until:
            return None
        return self._fetch(timeout if timeout is not None else self._timeout)

    def invalidate(self, token: str | None) -> None:
        """Forgets ``token`` (the server answered 401 with it)."""
        with self._lock:
            if token is not None and self._token == token:
                self._token = None

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True

        def refresh() -> None:
            try:
                self._fetch(self._timeout)
            finally:
                self._refreshing = False

        threading.Thread(target=refresh, name="kameleoon-token", daemon=True).start()

    def _fetch(self, timeout: float) -> str | None:
        self.requests += 1
        request = Request("POST", self._endpoints.token(), _FORM, self._body, timeout)
        try:
            response = self._transport.send(request)
            document = response.json() if is_expected(response.status) else None
        except TransportError as e:
            self._log.warning("the access token request failed: %s", e)
            document = None
        token, expires_in = _read(document)
        if token is None or expires_in is None:
            self._failed()
            return None
        now = self._clock()
        with self._lock:
            self._token = token
            self._expires_at = now + expires_in - _EXPIRY_MARGIN
            longer = expires_in > _OBSOLESCENCE_MARGIN
            self._obsolete_at = now + expires_in - _OBSOLESCENCE_MARGIN if longer else self._expires_at
            self._backoff = self._backoff.reset()
        if expires_in <= _EXPIRY_MARGIN:
            self._log.error("the access token expires in %ss: a new one is needed for every call", expires_in)
        return token

    def _failed(self) -> None:
        self.failures += 1
        with self._lock:
            self._silent_until = self._clock() + self._backoff.delay()
            self._backoff = self._backoff.next()
        self._log.error("no access token: authenticated calls are sent without one for a while")


def _read(document: object) -> tuple[str | None, int | None]:
    if not isinstance(document, dict):
        return None, None
    token, expires_in = document.get("access_token"), document.get("expires_in")
    if not isinstance(token, str) or not token:
        return None, None
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in == 0:
        return None, None
    return token, expires_in
