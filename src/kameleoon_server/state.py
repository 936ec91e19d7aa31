"""Everything a request handler needs, shared through ``app.state.server``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.requests import Request

from kameleoon_server.counters import Counters
from kameleoon_server.hub import ChangeHub
from kameleoon_server.settings import ServerSettings
from kameleoon_server.sites import SiteRegistry
from kameleoon_server.storage import Storage
from kameleoon_server.tokens import TokenIssuer


@dataclass(slots=True)
class ServerState:
    storage: Storage
    settings: ServerSettings
    sites: SiteRegistry
    tokens: TokenIssuer
    hub: ChangeHub = field(default_factory=ChangeHub)
    counters: Counters = field(default_factory=Counters)
    started: float = field(default_factory=time.time)


def server(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


def now_ms() -> int:
    return int(time.time() * 1000)
