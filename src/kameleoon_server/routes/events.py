"""``POST /visit/events``: tracking ingest (protocol.md §5). Answers 204 once the events are durable.

This is the hot path. The HTTP protocol (``kameleoon_server._http``) hands most of these
requests to :func:`answer_soon` without an ASGI cycle; the others (a pipelined request, a body
without ``Content-Length``, a server not run by uvicorn) reach :func:`post_events`, a plain ASGI
handler that the application dispatches before its router. Both give the same answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, MutableMapping
from typing import Any, Final
from urllib.parse import unquote

import msgspec

from kameleoon_server.routes._common import check_data_api, check_data_api_now
from kameleoon_server.sites import SiteState
from kameleoon_server.state import ServerState, now_ms
from kameleoon_server.storage import BodySummary, TooManyLines

log = logging.getLogger("kameleoon_server.events")
PATH = "/visit/events"
Scope = MutableMapping[str, Any]


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


def _site_code(query: bytes) -> str | None:
    for part in query.split(b"&"):
        if part.startswith(b"siteCode="):
            return unquote(part[9:].decode("latin-1"))
    return None


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The value of header ``name`` (lower case) among ASGI-style ``headers``, else None."""
    for key, value in headers:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _body(scope: Scope, receive: Any, limit: int) -> bytes:
    declared = header(scope["headers"], b"content-length")
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


Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, Headers, bytes]
"""A response: status, headers, body."""
_STORED: Final[Answer] = (204, [], b"")


def _error(status: int, message: str) -> Answer:
    body = msgspec.json.encode({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="kameleoon"'))
    return status, headers, body


def _outcome(state: ServerState, site: SiteState, result: BodySummary | BaseException) -> Answer:
    """The answer once storage has taken the body (or failed to)."""
    if isinstance(result, TooManyLines):
        state.counters.add("events_too_many_lines")
        state.counters.add("events_body_too_large")
        return _error(413, f"too many lines: {result}")
    if isinstance(result, BaseException):
        state.counters.add("events_store_failed_requests")
        log.error("site %s: could not store a tracking request", site.code, exc_info=result)
        return _error(503, "events could not be stored; retry later")
    _count(state, site.code, result)
    if result.malformed:
        return 204, [(b"x-kameleoon-rejected-lines", str(result.malformed).encode())], b""
    return _STORED


def _settled(done: asyncio.Future[BodySummary]) -> BodySummary | BaseException:
    if done.cancelled():
        return asyncio.CancelledError("the ingest request was cancelled")
    return done.exception() or done.result()


async def _answer(state: ServerState, site: SiteState, body: bytes) -> Answer:
    """The answer to a request of an allowed site whose body has been read."""
    try:
        summary = await state.storage.ingest_body(site.id, body, now_ms(), state.settings.max_lines)
    except Exception as exc:  # _outcome answers and logs every failure
        return _outcome(state, site, exc)
    return _outcome(state, site, summary)


def answer_soon(
    state: ServerState,
    query: bytes,
    authorization: str | None,
    body: bytes,
    respond: Callable[[Answer], object],
    spawn: Callable[[Coroutine[Any, Any, None]], object],
) -> Answer | None:
    """Answers a ``POST /visit/events`` whose body has been read (at most ``max_body_bytes``).
    Returns the answer when it is known at once (a request refused from the caches: unknown
    site, bad token); otherwise calls ``respond`` once, later: from the storage's future when
    the site is cached and its ingest process runs (the usual case: no task), else from a
    coroutine handed to ``spawn``."""
    code = _site_code(query)
    checked = check_data_api_now(state, code, authorization)
    if isinstance(checked, tuple):
        return _error(*checked)
    if checked is not None:
        site = checked
        result = state.storage.ingest_body_soon(site.id, body, now_ms(), state.settings.max_lines)
        if result is not None:
            result.add_done_callback(lambda done: respond(_outcome(state, site, _settled(done))))
            return None

    async def later() -> None:
        allowed = checked or await check_data_api(state, code, authorization)
        respond(_error(*allowed) if isinstance(allowed, tuple) else await _answer(state, allowed, body))

    spawn(later())
    return None


async def post_events(state: ServerState, scope: Scope, receive: Any, send: Any) -> None:
    """The ASGI handler: requests that the HTTP protocol's fast path leaves to the application
    (see ``kameleoon_server._http``), and every request when the server is not run by uvicorn."""
    query, authorization = scope["query_string"], header(scope["headers"], b"authorization")
    checked = await check_data_api(state, _site_code(query), authorization)
    if isinstance(checked, tuple):
        answer = _error(*checked)
    else:
        try:
            body = await _body(scope, receive, state.settings.max_body_bytes)
        except _Reject as exc:
            if exc.status == 499:
                return
            state.counters.add("events_body_too_large")
            answer = _error(exc.status, exc.message)
        else:
            answer = await _answer(state, checked, body)
    status, headers, content = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
