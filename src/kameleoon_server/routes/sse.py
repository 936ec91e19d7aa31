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

from kameleoon_server.hub import ChangeHub
from kameleoon_server.routes._common import error
from kameleoon_server.state import server
from kameleoon_server.storage import ConfigChange

PADDING: Final = b": " + b"-" * 160 + b"\n\n"
HELLO: Final = b": kameleoon configuration stream\n" + PADDING
KEEPALIVE: Final = b": keep-alive\n\n"


def update_event(change: ConfigChange) -> bytes:
    data = json.dumps({"ts": change.updated_ms}, separators=(",", ":"))
    return f"event: configuration-update-event\ndata: {data}\n\n".encode() + PADDING


async def _stream(hub: ChangeHub, code: str, keepalive: float) -> AsyncIterator[bytes]:
    queue = hub.open(code)
    try:
        yield HELLO
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), keepalive)
            except asyncio.TimeoutError:
                yield KEEPALIVE
                continue
            if change is None:  # server shutdown
                return
            if not change.deleted:
                yield update_event(change)
    finally:
        hub.close(code, queue)


async def sse(request: Request) -> Response:
    state = server(request)
    code = request.query_params.get("siteCode")
    if not code:
        return error(400, "siteCode is required")
    if await state.sites.get(code) is None:
        return error(404, f"unknown site {code!r}")
    if state.hub.connections >= state.settings.sse_max_connections:
        state.counters.add("sse_rejected")
        return error(503, "too many real-time connections", {"Retry-After": "30"})
    state.counters.add("sse_opened")
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    stream = _stream(state.hub, code, state.settings.sse_keepalive_seconds)
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


routes = [Route("/sse", sse, methods=["GET"])]
