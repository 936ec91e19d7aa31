"""A real server on a loopback port (uvicorn in a thread) and helpers to talk to it."""

from __future__ import annotations

import dataclasses
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from kameleoon_server.app import create_app
from kameleoon_server.settings import ServerSettings
from kameleoon_server.storage import SQLiteStorage

ADMIN_TOKEN = "test-admin-token"
SDK_QUERY = "sdkName=PYTHON&sdkVersion=3.4.0&bodyUa=true"
_codes = itertools.count(1)

# The minimal datafile of protocol.md §14.3.
MINIMAL_DATAFILE: dict[str, Any] = {
    "configuration": {"realTimeUpdate": False, "consentType": "NOT_REQUIRED"},
    "customData": [
        {"index": 0, "localOnly": False, "scope": "VISIT", "isMappingIdentifier": False},
        {"index": 1, "localOnly": False, "scope": "VISITOR", "isMappingIdentifier": True},
    ],
    "featureFlags": [
        {
            "id": 1,
            "featureKey": "new_checkout",
            "defaultVariationKey": "off",
            "environmentEnabled": True,
            "variations": [
                {"key": "off", "variables": []},
                {"key": "on", "variables": [{"key": "color", "type": "STRING", "value": "red"}]},
            ],
            "rules": [
                {
                    "id": 101,
                    "order": 1,
                    "type": "EXPERIMENTATION",
                    "exposition": 1.0,
                    "experimentId": 5001,
                    "respoolTime": None,
                    "segment": None,
                    "variationByExposition": [
                        {"variationKey": "off", "variationId": 7001, "exposition": 0.5},
                        {"variationKey": "on", "variationId": 7002, "exposition": 0.5},
                    ],
                }
            ],
        },
        {
            "id": 2,
            "featureKey": "banner",
            "defaultVariationKey": "off",
            "environmentEnabled": True,
            "variations": [{"key": "off"}, {"key": "on"}],
            "rules": [
                {
                    "id": 102,
                    "order": 1,
                    "type": "TARGETED_DELIVERY",
                    "exposition": 1.0,
                    "experimentId": 5002,
                    "segment": None,
                    "variationByExposition": [{"variationKey": "on", "variationId": 7003, "exposition": 1.0}],
                }
            ],
        },
    ],
}


@dataclasses.dataclass
class Site:
    code: str
    client_id: str
    client_secret: str


class LiveServer:
    def __init__(self, base_url: str, storage: SQLiteStorage, settings: ServerSettings) -> None:
        self.base_url = base_url
        self.storage = storage
        self.settings = settings
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def admin(self, method: str, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return self.http.request(method, path, json=json, headers=headers, **kwargs)

    def create_site(self, datafile: dict[str, Any] | None = None, **settings: Any) -> Site:
        code = f"site{next(_codes)}x{int(time.time() * 1000) % 100000}"
        r = self.admin("POST", "/api/sites", {"code": code, "settings": settings})
        assert r.status_code == 201, r.text
        creds = r.json()["credentials"]
        if datafile is not None:
            r = self.admin("PUT", f"/api/sites/{code}/configuration", datafile)
            assert r.status_code == 200, r.text
        return Site(code, creds["client_id"], creds["client_secret"])

    def token(self, site: Site) -> str:
        body = f"grant_type=client_credentials&client_id={site.client_id}&client_secret={site.client_secret}"
        r = self.http.post(
            "/oauth/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def post_events(self, site: Site, body: str, token: str | None = None) -> httpx.Response:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.post(
            f"/visit/events?{SDK_QUERY}&siteCode={site.code}", content=body.encode(), headers=headers
        )

    def db_rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import sqlite3

        conn = sqlite3.connect(self.storage.path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


def start_server(path: Path, **overrides: Any) -> tuple[LiveServer, uvicorn.Server, threading.Thread]:
    settings = ServerSettings(admin_token=ADMIN_TOKEN, **overrides)
    storage = SQLiteStorage(path)
    app = create_app(storage, settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    return LiveServer(f"http://127.0.0.1:{port}", storage, settings), server, thread


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv, server, thread = start_server(tmp_path_factory.mktemp("server") / "k.db", sse_keepalive_seconds=0.3)
    yield srv
    srv.http.close()
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def site(live: LiveServer) -> Site:
    return live.create_site(MINIMAL_DATAFILE)
