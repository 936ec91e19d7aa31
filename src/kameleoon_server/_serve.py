"""``kameleoon serve``: opens storage, prints what a first-time user needs, runs uvicorn (one
process, or ``--workers N`` processes sharing the listening socket on PostgreSQL);
``kameleoon migrate``: applies the database's pending schema migrations."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from kameleoon_server._http import RequestDeadlineProtocol
from kameleoon_server._http import configure as configure_request_timeout
from kameleoon_server._paths import admin_token, default_data_dir
from kameleoon_server.app import ServerApp, create_app
from kameleoon_server.demo import ensure_demo_site, snippet
from kameleoon_server.settings import ServerSettings
from kameleoon_server.sites import SiteRegistry
from kameleoon_server.state import ServerState
from kameleoon_server.storage import Storage, open_storage
from kameleoon_server.tokens import TokenIssuer

WORKER_ENV = "KAMELEOON_SERVE_WORKER"  # how a --workers process learns its database and settings
Startup = Callable[[ServerState], Awaitable[None]]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def _say(text: str) -> None:
    print(text, flush=True)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql:", "postgres:"))


def _database_url(args: argparse.Namespace) -> str:
    if args.db:
        return str(args.db)
    data_dir = args.data_dir or default_data_dir()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot use {data_dir} as the data directory: {exc.strerror or exc}") from exc
    return f"sqlite:///{(data_dir / 'kameleoon.db').resolve()}"


def _uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    tls = {"ssl_certfile": str(args.ssl_certfile), "ssl_keyfile": str(args.ssl_keyfile)} if _tls(args) else {}
    return {
        **tls,
        "log_level": args.log_level,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "timeout_graceful_shutdown": 2,
        # Longer than the SDK's HTTP client keeps idle connections (aiohttp: 15 s), so the client
        # closes first and never reuses a connection the server is closing.
        "timeout_keep_alive": 65,
        "backlog": 2048,
        "http": RequestDeadlineProtocol,  # slow or silent clients are cut off (_http.py)
    }


def worker_app() -> ServerApp:
    """The application of one ``--workers`` process (uvicorn's factory, run in each worker)."""
    config = json.loads(os.environ[WORKER_ENV])
    storage = open_storage(config["db"], synchronous=config["sync"])
    settings = ServerSettings(**config["settings"])
    configure_request_timeout(settings.request_timeout_seconds)
    return create_app(storage, settings)


async def _run_startup(storage: Storage, settings: ServerSettings, startup: Startup) -> None:
    """``startup`` once, in the supervising process, before the workers start."""
    await storage.open()
    try:
        tokens = TokenIssuer(b"", settings.token_ttl_seconds)
        await startup(ServerState(storage, settings, SiteRegistry(storage), tokens))
    finally:
        await storage.close()


def _tls(args: argparse.Namespace) -> bool:
    return args.ssl_certfile is not None


def _tls_error(args: argparse.Namespace) -> str | None:
    """Why the TLS options cannot be used, or None."""
    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        return "--ssl-certfile and --ssl-keyfile go together"
    for path in (args.ssl_certfile, args.ssl_keyfile):
        if path is not None and not path.is_file():
            return f"{path}: no such file"
    return None


def _serve_workers(
    args: argparse.Namespace,
    sockets: list[socket.socket],
    storage: Storage,
    settings: ServerSettings,
    startup: Startup,
) -> int:
    from uvicorn.supervisors import Multiprocess

    url = _database_url(args)
    asyncio.run(_run_startup(storage, settings, startup))
    os.environ[WORKER_ENV] = json.dumps(
        {"db": url, "sync": args.sync, "settings": dataclasses.asdict(settings)}
    )
    config = uvicorn.Config(
        "kameleoon_server._serve:worker_app", factory=True, workers=args.workers, **_uvicorn_options(args)
    )
    supervisor: Any = Multiprocess
    try:  # uvicorn >= 0.50 builds the server itself; older versions take it as ``target``
        supervisor(config, sockets=sockets).run()
    except TypeError:
        supervisor(config, target=uvicorn.Server(config).run, sockets=sockets).run()
    return 0


def _sqlite_problem(url: str) -> str | None:
    """Why the SQLite database of ``url`` cannot be used (not a database, cannot be opened), or
    None. A missing file is fine: it is created."""
    path = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and os.path.exists(path):
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.OperationalError as exc:  # e.g. a read-only directory: WAL writes beside the file
            return (
                f"cannot open {path} ({exc}): the file must be readable and writable, its directory writable"
            )
        except sqlite3.Error as exc:
            return f"{path} is not a usable SQLite database ({exc})"
    return None


def serve(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or default_data_dir()
    try:
        url = _database_url(args)
        storage = open_storage(url, synchronous=args.sync)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if (problem := _sqlite_problem(url)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.workers > 1 and not is_postgres(url):
        print(
            "error: --workers needs PostgreSQL (--db postgresql://…); SQLite is served by one process",
            file=sys.stderr,
        )
        return 2
    if (problem := _tls_error(args)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    token, generated = admin_token(args.admin_token, data_dir)
    settings = ServerSettings(
        admin_token=token,
        token_ttl_seconds=args.token_ttl,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_lines=args.max_lines,
        sse_max_connections=args.sse_max_connections,
        request_timeout_seconds=args.request_timeout,
    )
    configure_request_timeout(settings.request_timeout_seconds)
    ports: list[int] = args.port or [8000]
    unique = [port for n, port in enumerate(ports) if port == 0 or port not in ports[:n]]  # 0: a free one
    sockets: list[socket.socket] = []
    try:
        for port in unique:
            sockets.append(_bind(args.host, port))  # noqa: PERF401 (the ones bound are closed on failure)
    except (OSError, OverflowError) as exc:  # in use, not allowed, an unknown host name
        for sock in sockets:
            sock.close()
        print(f"error: cannot listen on {args.host}: {exc}", file=sys.stderr)
        return 2
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    scheme = "https" if _tls(args) else "http"
    base_url, *others = [f"{scheme}://{shown_host}:{s.getsockname()[1]}" for s in sockets]
    shown_url = url.split("@")[-1] if is_postgres(url) else url  # no password in the output

    async def startup(state: ServerState) -> None:
        _say(f"kameleoon server {base_url}  (data: {shown_url})")
        if others:
            _say(f"also listening on {', '.join(others)}")
        if generated:
            _say(f"admin token (generated, saved in {data_dir / 'admin-token'}): {token}")
        if args.demo:
            demo = await ensure_demo_site(state)
            _say(f"demo site code: {demo.site_code}")
            _say(f"demo client id: {demo.client_id}")
            _say(f"demo client secret: {demo.client_secret}")
            _say("SDK snippet:\n" + snippet(demo, base_url))

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _open_files_for(settings.sse_max_connections)
    if args.workers > 1:
        return _serve_workers(args, sockets, storage, settings, startup)
    app = create_app(storage, settings, startup)
    _Server(uvicorn.Config(app, **_uvicorn_options(args)), app).run(sockets=sockets)
    return 0


_SPARE_FILES = 200  # descriptors beside the streams: other clients, the database, the ingest pipe


def _open_files_for(streams: int) -> int:
    """Raises this process's open-file limit to its hard limit (a default soft limit of 1024
    would let the allowed SSE streams lock every other client out), and warns when the limit
    still leaves too little beside ``streams``; the limit in force."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft != resource.RLIM_INFINITY and soft < streams + _SPARE_FILES:
        logging.getLogger("kameleoon_server").warning(
            "the open-file limit (%d) leaves little beside --sse-max-connections %d: other requests"
            " may be refused once the streams are open; raise the limit (LimitNOFILE=) or lower"
            " --sse-max-connections",
            soft,
            streams,
        )
    return int(soft)


class _Server(uvicorn.Server):
    """Ends the SSE streams as soon as shutdown starts. They never end by themselves, so
    uvicorn would wait its whole graceful period for them and then cut them mid-stream; ended
    at once, each closes cleanly and the SDKs can reconnect elsewhere straight away."""

    def __init__(self, config: uvicorn.Config, app: ServerApp) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._app.state.hub.shutdown()
        await super().shutdown(sockets)


def migrate(args: argparse.Namespace) -> int:
    """``kameleoon migrate --db URL``: brings the schema to this version and prints it."""
    try:
        url = _database_url(args)
        if (problem := _sqlite_problem(url)) is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        if is_postgres(url):
            from kameleoon_server.storage._pg_schema import migrate_url

            version = migrate_url(url)
        else:
            version = _migrate_sqlite(url)
    except (ValueError, RuntimeError, OSError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _say(f"schema version {version}")
    return 0


def _migrate_sqlite(url: str) -> int:
    from kameleoon_server.storage import SQLiteStorage, _schema
    from kameleoon_server.storage._sqlite_conn import connect

    storage = open_storage(url)
    assert isinstance(storage, SQLiteStorage)
    conn = connect(storage.path, "normal", writer=True)
    try:
        return _schema.migrate(conn)
    finally:
        conn.close()
