"""``GET /sse?siteCode=…``: real-time configuration updates (protocol.md §3).

Each ``configuration-update-event`` is followed by a comment of at least 128 bytes, because the
3.4.0 SDK reads the stream in 128-byte chunks and would otherwise see the event late (§3.4).
The stream never ends on its own; keep-alive comments are sent while nothing changes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from kameleoon_server.routes._common import error
from kameleoon_server.state import ServerState, server
from kameleoon_server.storage import ConfigChange

PADDING: Final = b": " + b"-" * 160 + b"\n\n"
HELLO: Final = b": kameleoon configuration stream\n" + PADDING
KEEPALIVE: Final = b": keep-alive\n\n"


def update_event(change: ConfigChange) -> bytes:
    data = json.dumps({"ts": change.updated_ms}, separators=(",", ":"))
    return f"event: configuration-update-event\ndata: {data}\n\n".encode() + PADDING


async def _stream(queue: asyncio.Queue[ConfigChange | None], keepalive: float) -> AsyncIterator[bytes]:
    yield HELLO
    while True:
        try:
            change = await asyncio.wait_for(queue.get(), keepalive)
        except asyncio.TimeoutError:
            yield KEEPALIVE
            continue
        if change is None or change.deleted:  # server shutdown, or the site is gone
            return
        yield update_event(change)


class _EventStream(Response):
    """The stream as a response that takes its place in the hub when it starts to be sent: the
    connection cap is checked and the place taken with no ``await`` in between, so concurrent
    requests cannot all pass the check before any of them is counted; the place is given back
    however the response ends."""

    def __init__(self, state: ServerState, code: str) -> None:
        super().__init__(status_code=200)
        self._state, self._code = state, code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state, hub = self._state, self._state.hub
        if hub.connections >= state.settings.sse_max_connections:
            state.counters.add("sse_rejected")
            await error(503, "too many real-time connections", {"Retry-After": "30"})(scope, receive, send)
            return
        state.counters.add("sse_opened")
        queue = hub.open(self._code)
        try:
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            events = _stream(queue, state.settings.sse_keepalive_seconds)
            response = StreamingResponse(events, media_type="text/event-stream", headers=headers)
            await response(scope, receive, send)
        finally:
            hub.close(self._code, queue)


async def sse(request: Request) -> Response:
    state = server(request)
    code = request.query_params.get("siteCode")
    if not code:
        return error(400, "siteCode is required")
    if await state.sites.get(code) is None:
        return error(404, f"unknown site {code!r}")
    return _EventStream(state, code)


routes = [Route("/sse", sse, methods=["GET"])]
