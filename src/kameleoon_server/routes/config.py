"""``GET /{siteCode}`` and ``GET /v3/{siteCode}``: the configuration of a site (protocol.md §2)."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from kameleoon_server._integers import parse_int
from kameleoon_server.routes._common import error
from kameleoon_server.state import server

DEFAULT_ENVIRONMENT = "production"


def _not_modified_since(header: str | None, updated_ms: int) -> bool:
    if not header:
        return False
    try:
        since = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return updated_ms // 1000 <= since


async def _configuration(request: Request, v3: bool) -> Response:
    state = server(request)
    code = request.path_params["site"]
    site = await state.sites.get(code)
    if site is None:
        state.counters.add("unknown_site")
        return error(404, f"unknown site {code!r}")
    ts = parse_int(request.query_params.get("ts", ""), 0)
    if ts is not None and ts > site.updated_ms:  # announced by another instance: reload
        site = await state.sites.refresh(code) or site
    environment = request.query_params.get("environment") or DEFAULT_ENVIRONMENT
    document = site.datafile(environment, v3)
    if document is None:
        return error(404, f"unknown environment {environment!r} for site {code!r}")
    headers = {"Last-Modified": site.last_modified, "Cache-Control": "no-cache"}
    if _not_modified_since(request.headers.get("if-modified-since"), site.updated_ms):
        state.counters.add("config_not_modified")
        return Response(status_code=304, headers=headers)
    state.counters.add("config_served")
    return Response(document, 200, headers, media_type="application/json")


async def configuration(request: Request) -> Response:
    return await _configuration(request, v3=False)


async def configuration_v3(request: Request) -> Response:
    return await _configuration(request, v3=True)


def direct_target(path: str, reserved: frozenset[str]) -> tuple[str, bool] | None:
    """``(site code, v3)`` of a configuration path that the application may answer without its
    router: ``/v3/{site}``, and ``/{site}`` unless another route has that one-segment path
    (``reserved``). The router would try every route first (tens of patterns per request)."""
    if path.startswith("/v3/"):
        code = path[4:]
        return (code, True) if code and "/" not in code else None
    code = path[1:]
    if code and "/" not in code and path not in reserved:
        return code, False
    return None


async def answer_directly(scope: Scope, receive: Receive, send: Send, code: str, v3: bool) -> None:
    """Serves a configuration GET as its route does, without routing."""
    scope["path_params"] = {"site": code}
    response = await _configuration(Request(scope, receive), v3)
    await response(scope, receive, send)


# Registered last by the app: "/{site}" would otherwise shadow every other one-segment path.
# "/{prefix}/{site}" serves clients whose configuration URL has a path prefix (e.g. "/cfg/").
routes = [
    Route("/v3/{site}", configuration_v3, methods=["GET"]),
    Route("/{site}", configuration, methods=["GET"]),
    Route("/{prefix}/{site}", configuration, methods=["GET"]),
]
