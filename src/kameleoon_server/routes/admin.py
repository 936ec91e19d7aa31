"""Admin API (JSON under ``/api/``, admin bearer token): assembles the endpoint modules and adds
health, counters, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute

from kameleoon_server._http import timed_out
from kameleoon_server.counters import prometheus
from kameleoon_server.openapi import openapi_document
from kameleoon_server.routes import admin_flags, admin_sites, admin_targeting, results
from kameleoon_server.routes._admin_kit import ENDPOINTS, Call, build_routes, endpoint
from kameleoon_server.state import ServerState

__all__ = ["admin_flags", "admin_sites", "admin_targeting", "results", "routes"]


def counters(state: ServerState) -> dict[str, int]:
    values = state.counters.snapshot() | state.storage.counters()
    values["sse_connections"] = state.hub.connections
    values["requests_timed_out"] = timed_out()
    values["uptime_seconds"] = int(time.time() - state.started)
    return values


@endpoint("GET", "/api/health", "Liveness check (no token needed)", tag="server", public=True)
async def health(call: Call) -> Any:
    return {"status": "ok"}


@endpoint(
    "GET", "/api/stats", "Server counters (requests, events stored, malformed lines, SSE, ...)", tag="server"
)
async def stats(call: Call) -> Any:
    return counters(call.state)


@endpoint("GET", "/metrics", "The counters in Prometheus text format", tag="server")
async def metrics(call: Call) -> Any:
    return PlainTextResponse(prometheus(counters(call.state)))


@endpoint("GET", "/api/openapi.json", "This document (no token needed)", tag="server", public=True)
async def openapi(call: Call) -> Any:
    return openapi_document(ENDPOINTS)


def routes() -> list[BaseRoute]:
    built: list[BaseRoute] = list(build_routes())
    return built
