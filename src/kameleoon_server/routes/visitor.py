"""``GET /visit/visitor``: a visitor's stored data, shaped as protocol.md §8.2 describes."""

from __future__ import annotations

import asyncio
import functools

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kameleoon_server._visits import build_visitor_response, parse_visitor_query
from kameleoon_server.routes._common import data_api_site, json_response, read_error
from kameleoon_server.state import ServerState, now_ms, server

_INLINE_EVENTS = 500  # up to this many events, the answer is built on the loop (a thread costs more)


async def visitor_data(request: Request) -> Response:
    state = server(request)
    site = await data_api_site(request)
    if isinstance(site, Response):
        return site
    params = request.query_params
    try:
        query = parse_visitor_query(params)
    except ValueError as exc:
        return read_error(400, str(exc))
    if code := params.get("visitorCode"):
        identities, links_cut = [code], False
    elif user_id := params.get("mappingValue"):
        identities, links_cut = await _user_and_links(state, site.id, user_id)
    else:
        return read_error(400, "visitorCode or mappingValue is required")
    limits = state.settings.visitor_event_limit, state.settings.visitor_event_bytes
    found = await state.storage.visitor_events(site.id, identities, *limits)
    state.counters.add("visitor_data_served")
    if found.truncated or links_cut:  # the oldest events or links were left out
        state.counters.add("visitor_data_truncated")
    events = found.events
    build = functools.partial(build_visitor_response, events, query, now_ms(), state.settings.visit_gap_ms)
    # a long history is decoded off the event loop, which other requests need meanwhile
    return json_response(build() if len(events) <= _INLINE_EVENTS else await asyncio.to_thread(build))


async def _user_and_links(state: ServerState, site_id: int, user_id: str) -> tuple[list[str], bool]:
    """The user id and the visitors linked to it last (at most ``visitor_link_limit``), and
    whether older links were left out."""
    most = state.settings.visitor_link_limit
    linked = await state.storage.linked_visitors(site_id, user_id, most + 1)
    return [user_id, *linked[:most]], len(linked) > most


routes = [Route("/visit/visitor", visitor_data, methods=["GET"])]
