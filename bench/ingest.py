"""Ingest and configuration throughput of `kameleoon serve` on loopback.

Starts the server in a subprocess (fresh data directory), creates a site through the admin API,
gets an access token, then drives it with concurrent keep-alive HTTP/1.1 clients (raw asyncio
streams, so the client side costs as little CPU as possible):

* ingest: POST /visit/events with 20 unique tracking lines per request; the figure printed is
  events counted in the database afterwards divided by the time from the first request to the
  last acknowledgement (every 204 means "committed");
* configuration: GET /{siteCode} as fast as the clients can.

Prints figures and the ratio to the target; never fails on speed.
Usage: python bench/ingest.py [--seconds 10] [--connections 64] [--sync normal|full]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TARGET_EVENTS_PER_SECOND = 100_000
LINES_PER_REQUEST = 20


def start_server(data_dir: Path, sync: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable,
        "-m",
        "kameleoon_server",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--sync",
        sync,
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if match := re.search(r"kameleoon server (http://\S+)", line):
            return proc, match.group(1)
    raise RuntimeError("server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0.0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def admin(base: str, token: str, method: str, path: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def access_token(base: str, client_id: str, secret: str) -> str:
    body = f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}".encode()
    with urllib.request.urlopen(urllib.request.Request(base + "/oauth/token", data=body)) as r:
        return str(json.loads(r.read())["access_token"])


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    if match and int(match.group(1)):
        await reader.readexactly(int(match.group(1)))
    return status


def _event_template(host: str, site: str, token: str) -> tuple[bytes, bytes]:
    """(request bytes with a 12-character @ placeholder in every nonce and visitor code, placeholder)."""
    marker = "@" * 12
    lines = [
        f"nonce={marker}{i:04X}&eventType=experiment&id=5001&variationId=7002&visitorCode=v{marker}{i % 4}"
        if i % 2
        else f"nonce={marker}{i:04X}&eventType=conversion&goalId=32&revenue=10.5&negative=false"
        f"&visitorCode=v{marker}"
        for i in range(LINES_PER_REQUEST)
    ]
    body = "\n".join(lines).encode()
    head = (
        f"POST /visit/events?sdkName=PYTHON&sdkVersion=3.4.0&siteCode={site}&bodyUa=true HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body, marker.encode()


async def _client(base: str, deadline: float, make: object, conn: int, counts: list[int]) -> None:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    seq = 0
    while time.monotonic() < deadline:
        writer.write(make(conn, seq))  # type: ignore[operator]
        status = await _read_response(reader)
        counts[0 if status in (200, 204) else 1] += 1
        seq += 1
    writer.close()


async def drive(base: str, seconds: float, connections: int, make: object) -> tuple[int, int, float]:
    counts = [0, 0]
    start = time.monotonic()
    await asyncio.gather(*(_client(base, start + seconds, make, c, counts) for c in range(connections)))
    return counts[0], counts[1], time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--sync", choices=["normal", "full"], default="normal")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp), args.sync)
        try:
            token = (Path(tmp) / "admin-token").read_text().strip()
            created = admin(base, token, "POST", "/api/sites", {"code": "bench"})
            creds = created["credentials"]  # type: ignore[index]
            bearer = access_token(base, creds["client_id"], creds["client_secret"])
            host = base.removeprefix("http://")
            template, marker = _event_template(host, "bench", bearer)

            def events(conn: int, seq: int) -> bytes:
                return template.replace(marker, b"%03X%09X" % (conn, seq))

            server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
            ok, failed, elapsed = asyncio.run(drive(base, args.seconds, args.connections, events))
            server_cpu, client_cpu = cpu_seconds(proc.pid) - server_cpu, time.process_time() - client_cpu
            conn = sqlite3.connect(Path(tmp) / "kameleoon.db")
            stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            conn.close()
            rate = stored / elapsed
            print(
                f"ingest: {ok} requests acknowledged ({failed} failed), {stored} events stored in "
                f"{elapsed:.1f}s = {rate:,.0f} events/s stored ({rate / TARGET_EVENTS_PER_SECOND:.2f}x the "
                f"{TARGET_EVENTS_PER_SECOND:,} target; {LINES_PER_REQUEST} events/request, "
                f"{args.connections} connections, synchronous={args.sync})"
            )
            print(
                f"cpu during ingest: server {server_cpu / elapsed:.2f} cores, "
                f"clients {client_cpu / elapsed:.2f} cores"
            )
            stats = admin(base, token, "GET", "/api/stats")
            assert isinstance(stats, dict)
            print(
                f"server: {stats['write_batches']} commits, "
                f"{stats['events_stored'] / stats['write_batches']:.0f} "
                f"events per commit on average, largest batch {stats['write_largest_batch']} requests"
            )
            config_request = f"GET /bench HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            ok, failed, elapsed = asyncio.run(
                drive(base, args.seconds / 2, args.connections, lambda c, s: config_request)
            )
            print(
                f"configuration: {ok / elapsed:,.0f} GETs/s ({failed} failed, {args.connections} connections)"
            )
            print(f"machine: {os.cpu_count()} cores; server and clients share them")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
