"""``GET /map/map``: remote data by key, including warehouse audiences (protocol.md §6, §7)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kameleoon_server.routes._common import data_api_site, read_error
from kameleoon_server.state import server


async def remote_data(request: Request) -> Response:
    state = server(request)
    site = await data_api_site(request)
    if isinstance(site, Response):
        return site
    key = request.query_params.get("key")
    if key is None:
        return read_error(400, "key is required")
    value = await state.storage.get_remote_data(site.id, key)
    if value is None:
        state.counters.add("remote_data_missing")
        return Response(status_code=404)  # empty body: the SDK returns None
    state.counters.add("remote_data_served")
    return Response(value, 200, media_type="application/json")


routes = [Route("/map/map", remote_data, methods=["GET"])]
