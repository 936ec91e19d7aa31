"""The ASGI application: protocol routes, admin API, and the lifespan that opens storage."""

from __future__ import annotations

import contextlib
import logging
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from kameleoon_server.routes import admin, config, data, events, oauth, sse, visitor
from kameleoon_server.routes._common import error
from kameleoon_server.settings import ServerSettings
from kameleoon_server.sites import SiteRegistry
from kameleoon_server.state import ServerState
from kameleoon_server.storage import ConfigChange, Storage
from kameleoon_server.tokens import TokenIssuer

log = logging.getLogger("kameleoon_server")
SIGNING_KEY_SETTING = "token_signing_key"


async def signing_key(storage: Storage) -> bytes:
    """The token signing key shared by every instance using this storage (created once)."""
    key = await storage.get_setting(SIGNING_KEY_SETTING)
    if key is None:
        key = await storage.init_setting(SIGNING_KEY_SETTING, secrets.token_hex(32))
    return bytes.fromhex(key)


def _storage_errors() -> tuple[type[Exception], ...]:
    """The database drivers' exceptions that mean storage cannot serve now: a read-only or
    damaged SQLite file, a PostgreSQL server down. (A constraint violation is a bug: 500.)"""
    kinds: list[type[Exception]] = [sqlite3.OperationalError, sqlite3.DatabaseError]
    with contextlib.suppress(ImportError):
        import psycopg

        kinds.append(psycopg.OperationalError)
    return tuple(kinds)


async def _storage_unavailable(request: Request, exc: Exception) -> Response:
    if isinstance(exc, sqlite3.IntegrityError):
        raise exc
    log.error("%s %s: storage cannot serve: %s", request.method, request.url.path, exc)
    return error(503, "storage unavailable; retry later (the server log says why)", {"Retry-After": "5"})


def _routes() -> list[BaseRoute]:
    # config.routes last: its "/{site}" pattern matches any one-segment path.
    return [
        *oauth.routes,
        *data.routes,
        *visitor.routes,
        *sse.routes,
        *admin.routes(),
        *config.routes,
    ]


def create_app(
    storage: Storage,
    settings: ServerSettings,
    on_startup: Callable[[ServerState], Awaitable[None]] | None = None,
) -> ServerApp:
    """The server application. Storage is opened and closed by the application's lifespan;
    ``on_startup`` runs once storage is open (the CLI uses it for ``--demo``)."""
    state = ServerState(
        storage, settings, SiteRegistry(storage), TokenIssuer(b"", settings.token_ttl_seconds)
    )

    def on_change(change: ConfigChange) -> None:
        state.sites.on_change(change)
        state.counters.add("config_changes")
        state.counters.add("sse_notified", state.hub.publish(change))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await storage.open()
        state.tokens.key = await signing_key(storage)
        unsubscribe = storage.subscribe(on_change)
        if on_startup is not None:
            await on_startup(state)
        try:
            yield
        finally:
            unsubscribe()
            state.hub.shutdown()
            await storage.close()

    handlers: dict[Any, Any] = dict.fromkeys(_storage_errors(), _storage_unavailable)
    app = Starlette(routes=_routes(), lifespan=lifespan, exception_handlers=handlers)
    app.state.server = state
    return ServerApp(app, state)


class ServerApp:
    """The ASGI entry point: ``POST /visit/events`` and configuration GETs go straight to their
    handlers (the paths SDKs call most), everything else (and the lifespan) to the Starlette
    application."""

    def __init__(self, app: Starlette, state: ServerState) -> None:
        self.app = app
        self.state = state
        # Paths without parameters and their methods: "/{site}" and "/{prefix}/{site}" would
        # otherwise answer them with another method ("GET /visit/events": "unknown site").
        self._fixed: dict[str, frozenset[str]] = {events.PATH: frozenset({"POST"})}
        for route in app.routes:
            path, methods = getattr(route, "path", ""), getattr(route, "methods", None)
            if path and "{" not in path and methods:
                self._fixed[path] = self._fixed.get(path, frozenset()) | frozenset(methods)
        # one-segment paths of other routes: "/{site}" must not answer them
        self._reserved = frozenset(path for path in self._fixed if path.count("/") == 1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = scope["method"]
            if method == "POST" and scope["path"] == events.PATH:
                await events.post_events(self.state, scope, receive, send)
                return
            direct = method == "GET" and not scope.get("root_path")
            if direct and (target := config.direct_target(scope["path"], self._reserved)):
                scope["app"] = self.app
                await config.answer_directly(scope, receive, send, *target)
                return
            allowed = self._fixed.get(scope["path"])
            if allowed is not None and method not in allowed:
                headers = {"Allow": ", ".join(sorted(allowed))}
                await error(405, f"{method} is not allowed here", headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)
