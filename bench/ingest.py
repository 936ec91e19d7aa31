"""Ingest and configuration throughput of `kameleoon serve` on loopback.

Starts the server (one or more instances, each a `kameleoon serve` process, on a fresh SQLite
data directory or on the PostgreSQL database given with --db), creates a site through the admin
API, gets an access token, then drives the instances with concurrent keep-alive HTTP/1.1
connections spread over them. The load generator is kept cheap (pre-built requests written by
asyncio protocols, no HTTP library) because it shares the machine's cores with the server:

* ingest: POST /visit/events with 20 unique tracking lines per request, from 3 visitors whose
  codes are scattered like real visitors' random ones (the sequential codes this benchmark
  used before cost PostgreSQL at most a tenth less CPU per event, within the noise of
  ``bench/pg_copy.py``; an SDK's flush from a busy application, with a line or two per
  visitor, costs it about a quarter more than these requests); the figure printed is events
  counted in the database afterwards divided by the time from the first request to the last
  acknowledgement (every 204 means "committed");
* configuration: GET /{siteCode} as fast as the connections can.

Prints figures, CPU time per event and the ratio to the target; never fails on speed.
For a throwaway PostgreSQL: `python tests/server/pg_cluster.py --durable` prints a URL to pass as --db.
Connections: 64 by default on SQLite, 512 on PostgreSQL. SQLite's one writer is busy with 64
requests in flight, and more connections only cost the HTTP process more; PostgreSQL's three
writers per instance need more requests in flight to fill their commits (each commit's fixed
costs are what larger commits save): with 128 connections it stores about a quarter less.
Usage: python bench/ingest.py [--seconds 10] [--connections 64|512] [--sync normal|full]
                              [--db postgresql://user@host:port/db] [--instances 1,2]
                              [--storage-only]   (the ingest process alone, without HTTP)
                              [--visitors-per-request 1..20]   (default: 3 visitors, the usual
                                                 layout; an SDK's flush holds a line or two per visitor)
                              [--results]        (then the results query time for 1 M exposures)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

TARGET_EVENTS_PER_SECOND = 100_000
LINES_PER_REQUEST = 20
ADMIN_TOKEN = "bench-admin-token"
Make = Callable[[int, int], bytes]


def start_server(data_dir: Path, sync: str, db: str | None) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "kameleoon_server", "serve", "--port", "0"]
    cmd += ["--db", db] if db else ["--data-dir", str(data_dir)]
    cmd += ["--sync", sync, "--log-level", "warning", "--admin-token", ADMIN_TOKEN]
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


def machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (Linux /proc/stat): what
    no per-process figure sees, such as processes started and ended during the run (autovacuum
    workers) and the kernel's work for loopback traffic. (0.0, 0.0) elsewhere."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(fields)
    return (total - fields[3] - fields[4]) / tick, total / tick  # idle and iowait are not busy


def loop_milliseconds() -> float:
    """CPU milliseconds of a fixed pure-Python loop: the same work takes longer when the host's
    other jobs slow its cores down (on the shared development machine, from about 80 ms when
    quiet to more than twice that), and every figure of the run slows down with it."""
    start, total = time.process_time(), 0
    for i in range(1_000_000):
        total += i * i % 7
    return (time.process_time() - start) * 1000


def process_tree(pid: int) -> list[int]:
    """A process and its descendants (Linux /proc), [pid] elsewhere."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            for child in task.read_text().split():
                found += process_tree(int(child))
        except OSError:
            pass
    return found


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (Linux /proc): the database's CPU counts too."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                pids.append(int(comm.parent.name))
        except OSError:
            pass
    return pids


def admin(base: str, method: str, path: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def access_token(base: str, client_id: str, secret: str) -> str:
    body = f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}".encode()
    with urllib.request.urlopen(urllib.request.Request(base + "/oauth/token", data=body)) as r:
        return str(json.loads(r.read())["access_token"])


def _lines(visitors: int) -> tuple[list[str], list[str]]:
    """(the lines of a request with 12-character placeholders, the placeholders). ``visitors``
    0: the layout this benchmark has always used (3 visitors: every conversion from one, the
    experiments from two others); otherwise that many visitors, each with a block of
    consecutive lines, as an SDK writes a visitor's lines together."""
    if visitors == 0:
        marker = "@" * 12
        codes = [f"{marker}{i % 4}" if i % 2 else marker for i in range(LINES_PER_REQUEST)]
        return _layout([marker] * LINES_PER_REQUEST, codes), [marker]
    markers = [f"@@@@@@@@@@{k:02d}" for k in range(visitors)]
    owners = [markers[i * visitors // LINES_PER_REQUEST] for i in range(LINES_PER_REQUEST)]
    return _layout(owners, owners), markers


def _layout(nonces: list[str], codes: list[str]) -> list[str]:
    """Lines alternating a conversion and an experiment; line i has nonce ``nonces[i]`` + its
    number and visitor code ``v`` + ``codes[i]``."""
    return [
        f"nonce={nonce}{i:04X}&eventType=experiment&id=5001&variationId=7002&visitorCode=v{code}"
        if i % 2
        else f"nonce={nonce}{i:04X}&eventType=conversion&goalId=32&revenue=10.5&negative=false"
        f"&visitorCode=v{code}"
        for i, (nonce, code) in enumerate(zip(nonces, codes, strict=True))
    ]


@dataclass(frozen=True)
class Requests:
    """Tracking requests of one shape; :meth:`make` gives each its own codes and nonces."""

    template: bytes
    markers: tuple[bytes, ...]

    def make(self, conn: int, seq: int) -> bytes:
        if len(self.markers) == 1:
            return self.template.replace(self.markers[0], fill(conn, seq))
        parts, slots = self._pieces
        fills = [fill(conn, seq * LINES_PER_REQUEST + k) for k in range(len(self.markers))]
        out = [parts[0]]
        for slot, part in zip(slots, parts[1:], strict=True):
            out += (fills[slot], part)
        return b"".join(out)

    @cached_property
    def _pieces(self) -> tuple[list[bytes], list[int]]:
        """The template cut at its markers, and which marker each cut was: :meth:`make` puts
        every visitor's digits in one pass (a replace per visitor cost the load generator a
        tenth of the machine with 10 visitors per request)."""
        pattern = re.compile(b"|".join(re.escape(m) for m in self.markers))
        slots = [self.markers.index(m) for m in pattern.findall(self.template)]
        return pattern.split(self.template), slots

    def body(self) -> Requests:
        """The same without the HTTP head (for the ingest process alone)."""
        return Requests(self.template.split(b"\r\n\r\n", 1)[1], self.markers)


def requests(host: str, site: str, token: str, visitors: int = 0) -> Requests:
    """``POST /visit/events`` requests of 20 lines from ``visitors`` visitors (see ``_lines``)."""
    lines, markers = _lines(visitors)
    body = "\n".join(lines).encode()
    head = (
        f"POST /visit/events?sdkName=PYTHON&sdkVersion=3.4.0&siteCode={site}&bodyUa=true HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return Requests(head.encode() + body, tuple(m.encode() for m in markers))


def fill(conn: int, seq: int) -> bytes:
    """The 12 hex digits of a request's visitor codes and nonces: unique per (connection, request)
    and scattered like the random codes of real visitors (an odd multiplier and a shift-xor
    permute the 48 bits)."""
    mixed = (((conn << 36) | seq) * 0x9E3779B97F4B) & 0xFFFFFFFFFFFF
    return b"%012X" % (mixed ^ (mixed >> 24))


class _Client(asyncio.Protocol):
    """One keep-alive connection: sends a request, reads its response, sends the next."""

    def __init__(self, make: Make, conn: int, deadline: float, counts: list[int]) -> None:
        self.make, self.conn, self.deadline, self.counts = make, conn, deadline, counts
        self.seq = 0
        self.buffer = b""
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        if time.monotonic() >= self.deadline:
            self.transport.close()
            return
        self.transport.write(self.make(self.conn, self.seq))
        self.seq += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end]
            match = re.search(rb"(?i)content-length: *(\d+)", head)
            size = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buffer) < size:
                return
            self.buffer = self.buffer[size:]
            self.counts[0 if head[9:12] in (b"200", b"204") else 1] += 1
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _connect(base: str, make: Make, conn: int, deadline: float, counts: list[int]) -> None:
    host, port = base.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: _Client(make, conn, deadline, counts), host, int(port))
    await client.done


async def _drive(bases: list[str], seconds: float, connections: int, make: Make) -> tuple[int, int, float]:
    counts = [0, 0]
    start = time.monotonic()
    await asyncio.gather(
        *(_connect(bases[c % len(bases)], make, c, start + seconds, counts) for c in range(connections))
    )
    return counts[0], counts[1], time.monotonic() - start


def drive(bases: list[str], seconds: float, connections: int, make: Make) -> tuple[int, int, float]:
    try:
        import uvloop

        return uvloop.run(_drive(bases, seconds, connections, make))
    except ImportError:
        return asyncio.run(_drive(bases, seconds, connections, make))


def stored_events(base: str, site: str) -> int:
    summary = admin(base, "GET", f"/api/sites/{site}/events/summary")
    assert isinstance(summary, list)
    return sum(int(row["events"]) for row in summary)


def run(args: argparse.Namespace, instances: int, data_dir: Path) -> None:
    servers = [start_server(data_dir, args.sync, args.db) for _ in range(instances)]
    bases = [base for _, base in servers]
    try:
        site = f"bench{os.getpid()}x{instances}x{int(time.time()) % 100000}"
        created = admin(bases[0], "POST", "/api/sites", {"code": site})
        creds = created["credentials"]  # type: ignore[index]
        bearer = access_token(bases[0], creds["client_id"], creds["client_secret"])
        shapes = [requests(b.removeprefix("http://"), site, bearer, args.visitors_per_request) for b in bases]

        def events(conn: int, seq: int) -> bytes:
            return shapes[conn % len(shapes)].make(conn, seq)

        pids = [pid for proc, _ in servers for pid in process_tree(proc.pid)]
        database = postgres_pids() if args.db else []
        server_cpu, client_cpu = [cpu_seconds(p) for p in pids], time.process_time()
        database_cpu = sum(cpu_seconds(p) for p in database)
        machine = machine_seconds()
        ok, failed, elapsed = drive(bases, args.seconds, args.connections, events)
        busy_after, total_after = machine_seconds()
        machine = (busy_after - machine[0], total_after - machine[1])
        server_cpu = [cpu_seconds(p) - before for p, before in zip(pids, server_cpu, strict=True)]
        database_cpu = sum(cpu_seconds(p) for p in database) - database_cpu
        client_cpu = time.process_time() - client_cpu
        stored = stored_events(bases[0], site)
        rate = stored / elapsed
        where = "PostgreSQL" if args.db else f"SQLite, synchronous={args.sync}"
        print(
            f"ingest, {instances} instance(s), {where}: {ok} requests acknowledged ({failed} failed), "
            f"{stored} events stored in {elapsed:.1f}s = {rate:,.0f} events/s stored "
            f"({rate / TARGET_EVENTS_PER_SECOND:.2f}x the {TARGET_EVENTS_PER_SECOND:,} target; "
            f"{LINES_PER_REQUEST} events/request, {args.connections} connections)"
        )
        print(
            f"  cpu: server processes {sum(server_cpu) / elapsed:.2f} cores "
            f"({' + '.join(f'{c / elapsed:.2f}' for c in server_cpu)}), "
            f"{1e6 * sum(server_cpu) / max(stored, 1):.1f} µs per event; "
            f"load generator {client_cpu / elapsed:.2f} cores"
        )
        if args.db:
            print(
                f"  cpu: PostgreSQL processes {database_cpu / elapsed:.2f} cores, "
                f"{1e6 * database_cpu / max(stored, 1):.1f} µs per event"
            )
        if machine[1]:
            cores = os.cpu_count() or 1
            busy = cores * machine[0] / machine[1]  # cores busy on average over the run
            print(
                f"  cpu: whole machine {busy:.2f} of {cores} cores busy (every process and the kernel), "
                f"{1e6 * busy * elapsed / max(stored, 1):.1f} µs per event"
            )
        stats = admin(bases[0], "GET", "/api/stats")
        assert isinstance(stats, dict)
        if stats.get("ingest_batches"):
            print(
                f"  instance 1: {stats['ingest_batches']} commits, "
                f"{stats['ingest_requests'] / stats['ingest_batches']:.1f} requests per commit on average, "
                f"largest {stats['ingest_largest_batch']}"
                + (f"; {stats['wal_restarts']} WAL rewinds" if "wal_restarts" in stats else "")
            )
        hosts = [b.removeprefix("http://") for b in bases]
        config_requests = [f"GET /{site} HTTP/1.1\r\nHost: {h}\r\n\r\n".encode() for h in hosts]
        ok, failed, elapsed = drive(
            bases, args.seconds / 2, args.connections, lambda c, s: config_requests[c % len(hosts)]
        )
        print(f"  configuration: {ok / elapsed:,.0f} GETs/s ({failed} failed, {args.connections} conn.)")
    finally:
        for proc, _ in servers:
            proc.terminate()
        for proc, _ in servers:
            proc.wait(30)


async def _storage_only(
    target: str, seconds: float, connections: int, visitors: int
) -> tuple[int, float, float, float]:
    """Requests straight to an ingest process (no HTTP).

    Returns (acknowledged, seconds, its CPU, requests per commit)."""
    from kameleoon_server.storage._ingest_client import IngestProcess

    bodies = requests("host", "site", "token", visitors).body()
    ingester = IngestProcess(target)
    await ingester.start()
    assert ingester._proc is not None
    pid, done = ingester._proc.pid, 0
    deadline = time.monotonic() + seconds

    async def connection(conn: int) -> None:
        nonlocal done
        seq = 0
        while time.monotonic() < deadline:
            await ingester.submit(1, bodies.make(conn, seq), 1000, 1000)
            seq, done = seq + 1, done + 1

    cpu, start = cpu_seconds(pid), time.monotonic()
    await asyncio.gather(*(connection(c) for c in range(connections)))
    elapsed, cpu = time.monotonic() - start, cpu_seconds(pid) - cpu
    counters = ingester.counters
    await ingester.stop()
    return done, elapsed, cpu, counters.requests / max(counters.batches, 1)


def storage_only(args: argparse.Namespace, data_dir: Path) -> None:
    """The ingest process alone: what the storage side can take without the HTTP server."""
    from kameleoon_server.storage import open_storage

    target = args.db or str(data_dir / "storage-only.db")

    async def prepare() -> None:  # creates the schema
        storage = open_storage(target if args.db else f"sqlite:///{target}")
        await storage.open()
        await storage.close()

    asyncio.run(prepare())
    done, elapsed, cpu, per_commit = asyncio.run(
        _storage_only(target, args.seconds, args.connections, args.visitors_per_request)
    )
    events = done * LINES_PER_REQUEST
    print(
        f"ingest process alone ({'PostgreSQL' if args.db else 'SQLite'}): {events / elapsed:,.0f} events/s, "
        f"{cpu / elapsed:.2f} cores, {1e6 * cpu / max(events, 1):.1f} µs per event, "
        f"{per_commit:.1f} requests per commit ({args.connections} requests in flight)"
    )


def _results_bench() -> Any:
    """bench/results.py as a module (its data generator and timing)."""
    spec = importlib.util.spec_from_file_location("results_bench", Path(__file__).with_name("results.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scratch_database(url: str) -> tuple[str, Callable[[], None]]:
    """A new database on the server of ``url`` and a function that drops it."""
    import psycopg

    name = f"kameleoon_bench_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    return url.rsplit("/", 1)[0] + "/" + name, drop


def results_time(args: argparse.Namespace, data_dir: Path) -> None:
    """Time of the results computation for 1 M exposures (bench/results.py's data and timing)."""
    from kameleoon_server.results.assemble import ResultsRequest
    from kameleoon_server.results.query import Breakdown
    from kameleoon_server.storage import SQLiteStorage, Storage
    from kameleoon_server.storage.postgres import PostgresStorage

    bench = _results_bench()
    url, drop = scratch_database(args.db) if args.db else (str(data_dir / "results.db"), lambda: None)
    storage: Storage = PostgresStorage(url, ingest_process=False) if args.db else SQLiteStorage(url)

    async def main() -> None:
        await storage.open()
        try:
            start = time.perf_counter()
            rows = bench.generate(args.results_visitors, args.results_visitors * 3 // 10, devices=True)
            made = time.perf_counter()
            await bench.fill(storage, rows)
            print(
                f"results on {'PostgreSQL' if args.db else 'SQLite'}: {len(rows):,} events generated in "
                f"{made - start:.1f} s, stored in {time.perf_counter() - made:.1f} s"
            )
            base = ResultsRequest(goal_ids=(bench.GOAL,))
            await bench.timed(storage, "  conversion + revenue (default)", base)
            await bench.timed(storage, "  + CUPED (14-day lookback)", base.replace(cuped=True))
            await bench.timed(storage, "  + revenue capped at 99th pct", base.replace(cap_percentile=0.99))
            await bench.timed(storage, "  + breakdown by device", base.replace(breakdown=Breakdown.DEVICE))
            if args.db:  # what autovacuum does after a while: statistics and the visibility map
                import psycopg

                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE events, visitor_links")
                await bench.timed(storage, "  default, after VACUUM ANALYZE", base)
                await bench.timed(storage, "  CUPED, after VACUUM ANALYZE", base.replace(cuped=True))
        finally:
            await storage.close()

    try:
        asyncio.run(main())
    finally:
        drop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, help="default: 64 on SQLite, 512 on PostgreSQL")
    parser.add_argument("--sync", choices=["normal", "full"], default="normal")
    parser.add_argument("--db", help="postgresql://… (default: SQLite in a temporary folder)")
    parser.add_argument("--instances", default="1", help="comma-separated instance counts, e.g. 1,2")
    parser.add_argument("--storage-only", action="store_true", help="drive the ingest process alone")
    parser.add_argument(
        "--visitors-per-request",
        type=int,
        default=0,
        choices=range(21),
        metavar="1..20",
        help="visitors per request, each with a block of lines (default: the usual 3-visitor layout)",
    )
    parser.add_argument(
        "--results",
        action="store_true",
        help="then time the results query for --results-visitors exposures (PostgreSQL: a scratch database)",
    )
    parser.add_argument("--results-visitors", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.connections is None:
        args.connections = 512 if args.db else 64
    before = loop_milliseconds()
    with tempfile.TemporaryDirectory() as tmp:
        if args.storage_only:
            storage_only(args, Path(tmp))
        for count in [] if args.storage_only else [int(n) for n in args.instances.split(",")]:
            run(args, count, Path(tmp))
        if args.results:
            results_time(args, Path(tmp))
    print(f"machine: {os.cpu_count()} cores; servers, database and load generator share them")
    after = loop_milliseconds()
    print(f"host speed: a fixed Python loop took {before:.0f} ms of CPU before the runs, {after:.0f} after")


if __name__ == "__main__":
    main()
