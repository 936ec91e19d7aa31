"""The transport of an offline client: no I/O at all."""

from __future__ import annotations

import logging

from kameleoon._network.transport import ClosedStream, Request, Response

__all__ = ["OfflineTransport"]

_TOKEN = b'{"access_token": "offline", "expires_in": 86400, "token_type": "Bearer"}'


class OfflineTransport:
    """Answers every request with an empty 204 and never touches the network.

    Tracking handed to it is discarded; the count of discarded requests is kept and the fact
    is logged once, so an offline deployment never loses data silently.
    """

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.discarded_requests = 0

    def send(self, request: Request) -> Response:
        if request.url.endswith("/oauth/token"):  # a token nobody checks: no error logs
            return Response(200, {"content-type": "application/json"}, _TOKEN)
        if self.discarded_requests == 0:
            self._log.warning("offline client: tracking and remote data requests are not sent")
        self.discarded_requests += 1
        return Response(204, {}, b"")

    def open_stream(self, request: Request, idle_timeout: float | None) -> ClosedStream:
        return ClosedStream(204)

    def close(self) -> None:
        pass
