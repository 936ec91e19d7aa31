"""``kameleoon serve``: opens storage, prints what a first-time user needs, runs uvicorn."""

from __future__ import annotations

import argparse
import logging
import socket
import sys

import uvicorn

from kameleoon_server._paths import admin_token, default_data_dir
from kameleoon_server.app import create_app
from kameleoon_server.demo import ensure_demo_site, snippet
from kameleoon_server.settings import ServerSettings
from kameleoon_server.state import ServerState
from kameleoon_server.storage import open_storage


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _say(text: str) -> None:
    print(text, flush=True)


def serve(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    url = args.db or f"sqlite:///{(data_dir / 'kameleoon.db').resolve()}"
    try:
        storage = open_storage(url, synchronous=args.sync)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    token, generated = admin_token(args.admin_token, data_dir)
    settings = ServerSettings(
        admin_token=token,
        token_ttl_seconds=args.token_ttl,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_lines=args.max_lines,
        sse_max_connections=args.sse_max_connections,
    )
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    base_url = f"http://{shown_host}:{port}"

    async def startup(state: ServerState) -> None:
        _say(f"kameleoon server {base_url}  (data: {url})")
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
    app = create_app(storage, settings, startup)
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=2,
        # Longer than the SDK's HTTP client keeps idle connections (aiohttp: 15 s), so the client
        # closes first and never reuses a connection the server is closing.
        timeout_keep_alive=65,
        backlog=2048,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
