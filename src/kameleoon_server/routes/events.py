"""``POST /visit/events``: tracking ingest (protocol.md §5). Answers 204 once the events are durable.

This is the hot path, so it is a plain ASGI handler (no framework request/response objects); the
application dispatches ``POST /visit/events`` here before its router.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import unquote

import msgspec

from kameleoon_server.routes._common import check_data_api
from kameleoon_server.state import ServerState, now_ms
from kameleoon_server.storage import BodySummary, TooManyLines

log = logging.getLogger("kameleoon_server.events")
PATH = "/visit/events"
Scope = MutableMapping[str, Any]
_NO_CONTENT: dict[str, Any] = {"type": "http.response.start", "status": 204, "headers": []}
_EMPTY: dict[str, Any] = {"type": "http.response.body", "body": b""}


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


def _site_code(query: bytes) -> str | None:
    for part in query.split(b"&"):
        if part.startswith(b"siteCode="):
            return unquote(part[9:].decode("latin-1"))
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _body(scope: Scope, receive: Any, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Reject(413, f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Reject(499, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Reject(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _count(state: ServerState, code: str, parsed: BodySummary) -> None:
    counters = state.counters
    counters.add("events_requests")
    counters.add("events_received", parsed.received)
    if parsed.invalid_utf8:
        counters.add("events_invalid_utf8")
    if parsed.malformed:
        counters.add("events_malformed", parsed.malformed)
        log.warning("site %s: skipped %d malformed line(s): %s", code, parsed.malformed, parsed.errors)
    if parsed.bots:
        counters.add("events_bot", parsed.bots)
    if parsed.unknown_types:
        counters.add("events_unknown_type", parsed.unknown_types)


async def _ingest(state: ServerState, scope: Scope, receive: Any) -> int:
    """Stores the request's events; returns the number of rejected lines. Raises _Reject."""
    site = await check_data_api(state, _site_code(scope["query_string"]), _header(scope, b"authorization"))
    if isinstance(site, tuple):
        raise _Reject(*site)
    body = await _body(scope, receive, state.settings.max_body_bytes)
    try:
        parsed = await state.storage.ingest_body(site.id, body, now_ms(), state.settings.max_lines)
    except TooManyLines as exc:
        state.counters.add("events_too_many_lines")
        raise _Reject(413, f"too many lines: {exc}") from None
    except Exception:
        state.counters.add("events_store_failed_requests")
        log.exception("site %s: could not store a tracking request", site.code)
        raise _Reject(503, "events could not be stored; retry later") from None
    _count(state, site.code, parsed)
    return parsed.malformed


async def post_events(state: ServerState, scope: Scope, receive: Any, send: Any) -> None:
    try:
        rejected = await _ingest(state, scope, receive)
    except _Reject as exc:
        if exc.status == 499:
            return
        if exc.status == 413:
            state.counters.add("events_body_too_large")
        body = msgspec.json.encode({"error": exc.message})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if exc.status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="kameleoon"'))
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if rejected:
        headers = [(b"x-kameleoon-rejected-lines", str(rejected).encode())]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
    else:
        await send(_NO_CONTENT)
    await send(_EMPTY)
