"""A real server on a loopback port (uvicorn in a thread) and helpers to talk to it.

Every test that uses ``live``, ``backend`` or ``new_storage`` runs once per storage back end:
SQLite (a file in a temporary folder) and PostgreSQL (a throwaway cluster started once per test
session, see ``pg_cluster``; skipped with a reason when PostgreSQL is not installed, a failure
instead when ``CI=true``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from kameleoon_server._http import RequestDeadlineProtocol
from kameleoon_server.app import create_app
from kameleoon_server.settings import ServerSettings
from kameleoon_server.storage import SQLiteStorage, Storage

from . import pg_cluster

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


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg_cluster.Cluster]:
    """A PostgreSQL cluster for the whole session."""
    if pg_cluster.binaries() is None:
        reason = "PostgreSQL binaries not found (Debian: apt-get install postgresql; .ci/system-deps does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = pg_cluster.Cluster()
    # A terminated test run (a CI time limit, a kill) still stops the cluster: SIGTERM becomes a
    # KeyboardInterrupt, after which pytest tears session fixtures down. (pg_ctl detaches the
    # server: nothing else would stop it.)
    previous = signal.signal(signal.SIGTERM, pg_cluster._interrupt)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.getfixturevalue("postgres")
    return str(request.param)


def storage_for(backend: str, request: pytest.FixtureRequest, **options: Any) -> Storage:
    """A new storage on a new, empty database of the back end."""
    if backend == "postgresql":
        from kameleoon_server.storage.postgres import PostgresStorage

        cluster: pg_cluster.Cluster = request.getfixturevalue("postgres")
        return PostgresStorage(cluster.create_database(), **options)
    folder = request.getfixturevalue("tmp_path_factory").mktemp("db")
    return SQLiteStorage(folder / "k.db", **options)


def same_database(storage: Storage, **options: Any) -> Storage:
    """Another storage object on the database of ``storage`` (another instance's view)."""
    if isinstance(storage, SQLiteStorage):
        return SQLiteStorage(storage.path, **options)
    from kameleoon_server.storage.postgres import PostgresStorage

    assert isinstance(storage, PostgresStorage)
    return PostgresStorage(storage.url, **options)


def database_url(storage: Storage) -> str:
    """The ``--db`` argument of ``kameleoon serve`` for the database of ``storage``."""
    return f"sqlite:///{storage.path}" if isinstance(storage, SQLiteStorage) else storage.url  # type: ignore[attr-defined]


@pytest.fixture
def new_storage(backend: str, request: pytest.FixtureRequest) -> Callable[..., Storage]:
    return lambda **options: storage_for(backend, request, **options)


def query(storage: Storage, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query (``?`` placeholders) straight from the database of ``storage``."""
    if isinstance(storage, SQLiteStorage):
        conn = sqlite3.connect(storage.path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(storage.url) as pg:  # type: ignore[attr-defined]
        return pg.execute(sql.replace("?", "%s"), params).fetchall()


def write(storage: Storage, sql: str, *params: Any) -> None:
    """Runs one writing statement (``?`` placeholders) straight on the database of ``storage``."""
    if isinstance(storage, SQLiteStorage):
        conn = sqlite3.connect(storage.path)
        try:
            with conn:
                conn.execute(sql, params)
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(storage.url) as pg:  # type: ignore[attr-defined]
        pg.execute(sql.replace("?", "%s"), params)


class LiveServer:
    def __init__(self, base_url: str, storage: Storage, settings: ServerSettings) -> None:
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
        return query(self.storage, sql, *params)


def start_server(
    storage: Storage | Path, **overrides: Any
) -> tuple[LiveServer, uvicorn.Server, threading.Thread]:
    settings = ServerSettings(admin_token=ADMIN_TOKEN, **overrides)
    if isinstance(storage, Path):
        storage = SQLiteStorage(storage)
    app = create_app(storage, settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # the HTTP options of `kameleoon serve`: its protocol, whose fast path answers most
    # POST /visit/events, no access log, no proxy headers
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        lifespan="on",
        http=RequestDeadlineProtocol,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    return LiveServer(f"http://127.0.0.1:{port}", storage, settings), server, thread


def stop_server(srv: LiveServer, server: uvicorn.Server, thread: threading.Thread) -> None:
    srv.http.close()
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="session")
def live(backend: str, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    srv, server, thread = start_server(storage_for(backend, request), sse_keepalive_seconds=0.3)
    yield srv
    stop_server(srv, server, thread)


@pytest.fixture
def site(live: LiveServer) -> Site:
    return live.create_site(MINIMAL_DATAFILE)


def run_storage(where: Path | Storage, body: Callable[[Any], Awaitable[Any]]) -> Any:
    """Opens the storage (or a SQLite one at ``where``), runs ``body`` on it, closes it."""

    async def main() -> Any:
        storage = SQLiteStorage(where) if isinstance(where, Path) else where
        await storage.open()
        try:
            return await body(storage)
        finally:
            await storage.close()

    return asyncio.run(main())
