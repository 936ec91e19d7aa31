"""``POST /visit/events``: tracking ingest (protocol.md §5). Answers 204 once the events are durable."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kameleoon_server._wire import parse_events_body
from kameleoon_server.routes._common import BodyTooLarge, data_api_site, error, read_body, too_large
from kameleoon_server.state import now_ms, server

log = logging.getLogger("kameleoon_server.events")


async def post_events(request: Request) -> Response:
    state = server(request)
    site = await data_api_site(request)
    if isinstance(site, Response):
        return site
    limit = state.settings.max_body_bytes
    try:
        raw = await read_body(request, limit)
    except BodyTooLarge:
        state.counters.add("events_body_too_large")
        return too_large(limit)
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        body = raw.decode("utf-8", errors="replace")  # the bad lines will fail to parse below
        state.counters.add("events_invalid_utf8")
    try:
        parsed = parse_events_body(body, site.id, now_ms(), state.settings.max_lines)
    except ValueError as exc:
        state.counters.add("events_too_many_lines")
        return error(413, f"too many lines: {exc}")
    counters = state.counters
    counters.add("events_requests")
    counters.add("events_received", len(parsed.rows))
    if parsed.malformed:
        counters.add("events_malformed", parsed.malformed)
        log.warning("site %s: skipped %d malformed line(s): %s", site.code, parsed.malformed, parsed.errors)
    if parsed.bots:
        counters.add("events_bot", parsed.bots)
    if parsed.unknown_types:
        counters.add("events_unknown_type", parsed.unknown_types)
    try:
        await state.storage.ingest(parsed.rows, parsed.links)
    except Exception:
        counters.add("events_store_failed", len(parsed.rows))
        log.exception("site %s: could not store %d events", site.code, len(parsed.rows))
        return error(503, "events could not be stored; retry later")
    headers = {"X-Kameleoon-Rejected-Lines": str(parsed.malformed)} if parsed.malformed else None
    return Response(status_code=204, headers=headers)


routes = [Route("/visit/events", post_events, methods=["POST"])]
