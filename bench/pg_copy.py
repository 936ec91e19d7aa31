"""PostgreSQL CPU per stored event for the ingest writer's COPY, by row order and visitor codes.

Writes tracking bodies (``bench/ingest.py``'s requests of 20 lines) into a fresh database on
one connection, a commit at a time, exactly as an ingest writer does, and reads that
connection's backend CPU time from /proc: so the database must run on this machine. Compares
the row orders of a commit:

* ``visitor``: the whole commit sorted by visitor (what the ingest writers do);
* ``request``: requests in arrival order, each one's lines sorted by visitor among themselves
  (``copy_text`` of one body); 20 lines out of a commit's 2,400 give no locality to speak of.

and the visitor codes: ``random`` (the usual 3-visitor requests, codes scattered like real
visitors' codes, as ``bench/ingest.py`` sends them), ``sequential`` (the same requests with the
codes it sent before) or ``one-per-line`` (random, and every line of a request from a different
visitor, like a flush of many visitors with one event each).
Prints µs of PostgreSQL CPU per event; never fails on speed.

For a throwaway PostgreSQL: `python tests/server/pg_cluster.py --durable` prints a URL.
Usage: python bench/pg_copy.py --db postgresql://… [--events 1000000] [--requests-per-commit 120]
                               [--order visitor,request] [--codes random,sequential,one-per-line]
                               [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from kameleoon_server._wire import FastBody, parse_for_storage
from kameleoon_server.storage._pg_schema import migrate_url
from kameleoon_server.storage._pg_sink import _COPY_STRAIGHT, copy_text

sys.path.insert(0, str(Path(__file__).parent))
from ingest import LINES_PER_REQUEST, cpu_seconds, requests, scratch_database

USUAL = requests("host", "site", "token").body()
SHAPES = {"random": USUAL, "one-per-line": requests("host", "site", "token", LINES_PER_REQUEST).body()}


def body_of(codes: str, seq: int) -> bytes:
    """Request ``seq``'s body, as ``bench/ingest.py`` makes it (``sequential``: as it made it)."""
    conn, count = seq % 512, seq // 512
    if codes == "sequential":
        return USUAL.template.replace(USUAL.markers[0], b"%03X%09X" % (conn, count))
    return SHAPES[codes].make(conn, count)


def commits(codes: str, events: int, per_commit: int) -> list[list[FastBody]]:
    out: list[list[FastBody]] = []
    seq = 0
    while seq * LINES_PER_REQUEST < events:
        batch = []
        for _ in range(per_commit):
            parsed = parse_for_storage(body_of(codes, seq), 1, 10**12, 100)
            assert isinstance(parsed, FastBody)
            batch.append(parsed)
            seq += 1
        out.append(batch)
    return out


def run(url: str, order: str, batches: list[list[FastBody]]) -> float:
    """Stores every batch, one commit each; returns µs of backend CPU per event."""
    migrate_url(url)
    stored = 0
    with psycopg.connect(url, autocommit=True) as conn:
        pid = conn.info.backend_pid
        start = cpu_seconds(pid)
        for batch in batches:
            text = copy_text(batch) if order == "visitor" else "".join(copy_text([b]) for b in batch)
            with conn.cursor() as cur, cur.copy(_COPY_STRAIGHT) as copy:
                copy.write(text)
            stored += sum(len(b.lines) for b in batch)
        return (cpu_seconds(pid) - start) * 1e6 / stored


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--db", required=True, help="postgresql://… on this machine (scratch databases beside it)"
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests-per-commit", type=int, default=120)
    parser.add_argument("--order", default="visitor,request")
    parser.add_argument("--codes", default="random,sequential,one-per-line")
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds (the host's speed drifts)")
    args = parser.parse_args()
    figures: dict[tuple[str, str], list[float]] = {}
    for codes in args.codes.split(","):
        batches = commits(codes, args.events, args.requests_per_commit)
        for _ in range(args.rounds):
            for order in args.order.split(","):
                scratch, drop = scratch_database(args.db)
                try:
                    figures.setdefault((codes, order), []).append(run(scratch, order, batches))
                finally:
                    drop()
    per_commit = args.requests_per_commit * LINES_PER_REQUEST
    for (codes, order), values in figures.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(
            f"{codes} codes, {order} order, commits of {per_commit} events: {shown} µs of database CPU/event"
        )


if __name__ == "__main__":
    main()
