"""The ASGI application: protocol routes, admin API, and the lifespan that opens storage."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from kameleoon_server.routes import admin, config, data, events, oauth, sse, visitor
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

    app = Starlette(routes=_routes(), lifespan=lifespan)
    app.state.server = state
    return ServerApp(app, state)


class ServerApp:
    """The ASGI entry point: ``POST /visit/events`` goes straight to its handler (the hot path),
    everything else (and the lifespan) to the Starlette application."""

    def __init__(self, app: Starlette, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == events.PATH and scope["method"] == "POST":
            await events.post_events(self.state, scope, receive, send)
        else:
            await self.app(scope, receive, send)
