"""The one interface every network call goes through, and its urllib3 implementation.

``Transport.send`` performs one request with a total timeout and returns the whole response,
or raises :class:`TransportError`; it never retries by itself. ``Transport.stream`` opens a
streaming GET (server-sent events) and yields body chunks as they arrive. Tests and users can
pass any object with these methods (see :mod:`kameleoon.testing`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import urllib3

__all__ = ["Request", "Response", "Transport", "TransportError", "Urllib3Transport", "is_expected"]


class TransportError(Exception):
    """The request could not be completed (connection, timeout, malformed response)."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def is_json(self) -> bool:
        kind = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))

    def json(self) -> Any:
        """The decoded body when the content type is JSON and the body is not empty, else
        ``None``; raises :class:`TransportError` for a JSON body that does not decode."""
        if not self.body or not self.is_json():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as e:
            raise TransportError(f"invalid JSON body: {e}") from e


def is_expected(status: int) -> bool:
    """The protocol's success statuses: any 2xx, and 403 (refused for good, do not resend)."""
    return 200 <= status < 300 or status == 403


class Transport(Protocol):
    def send(self, request: Request) -> Response: ...

    def stream(self, request: Request) -> Any:
        """A context manager yielding ``(status, iterator of body chunks)``."""
        ...

    def close(self) -> None: ...


class Urllib3Transport:
    """Thread-safe pooled HTTP(S) client; a forked child process gets fresh connections."""

    def __init__(self, max_connections: int = 10) -> None:
        self._max_connections = max_connections
        self._lock = threading.Lock()
        self._pid = -1
        self._pool: urllib3.PoolManager | None = None

    def _manager(self) -> urllib3.PoolManager:
        pool = self._pool
        if pool is not None and self._pid == os.getpid():
            return pool
        import urllib3  # deferred: importing urllib3 costs more than the rest of the SDK

        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = urllib3.PoolManager(num_pools=8, maxsize=self._max_connections, retries=False)
                self._pid = os.getpid()
            return self._pool

    def send(self, request: Request) -> Response:
        import urllib3

        try:
            raw = self._manager().request(
                request.method,
                request.url,
                body=request.body,
                headers=dict(request.headers),
                timeout=urllib3.Timeout(total=request.timeout),
                redirect=False,
                retries=False,
            )
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            raise TransportError(f"{request.method} {request.url}: {e}") from e
        return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw.data or b"")

    @contextmanager
    def stream(self, request: Request) -> Iterator[tuple[int, Iterator[bytes]]]:
        import urllib3

        try:
            raw = self._manager().request(
                request.method,
                request.url,
                headers=dict(request.headers),
                timeout=urllib3.Timeout(connect=request.timeout, read=None),
                preload_content=False,
                redirect=False,
                retries=False,
            )
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            raise TransportError(f"{request.method} {request.url}: {e}") from e
        try:
            yield raw.status, self._chunks(raw)
        finally:
            raw.release_conn()
            raw.close()

    @staticmethod
    def _chunks(raw: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        import urllib3

        try:
            while True:
                chunk = raw.read1(65536)
                if not chunk:
                    return
                yield chunk
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            raise TransportError(f"stream interrupted: {e}") from e

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.clear()
            self._pool = None
