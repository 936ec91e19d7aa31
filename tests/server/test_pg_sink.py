"""The ingest process's PostgreSQL sink: fast-path bodies go into COPY as text built from the
lines' own digits, and must store exactly the rows that ``FastBody.rows`` describes."""

from __future__ import annotations

from typing import Any

import psycopg

from kameleoon_server._wire import FastBody, parse_for_storage
from kameleoon_server.storage._pg_schema import migrate_url
from kameleoon_server.storage._pg_sink import PostgresSink, write_events
from kameleoon_server.storage._sqlite_writer import EVENT_COLUMNS

from . import pg_cluster
from .test_sqlite_sink import lines

SELECT = f"SELECT {EVENT_COLUMNS} FROM events ORDER BY site_id, identity, nonce"


def fast(site_id: int, time_ms: int, body_lines: list[str]) -> FastBody:
    body = parse_for_storage("\n".join(body_lines).encode(), site_id, time_ms, 10_000)
    assert isinstance(body, FastBody)
    return body


def database(postgres: pg_cluster.Cluster) -> str:
    url = postgres.create_database()
    migrate_url(url)
    return url


def stored(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(SELECT).fetchall()


def through_rows(url: str, bodies: list[FastBody]) -> list[tuple[Any, ...]]:
    """What the general path (``write_row`` on the tuples of ``FastBody.rows``) stores."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        write_events(conn, [row for body in bodies for row in body.rows()], [], straight=True)
    return stored(url)


def through_sink(url: str, bodies: list[FastBody], times: int = 1) -> tuple[list[int], list[tuple[Any, ...]]]:
    sink = PostgresSink(url)
    try:
        counts = [sink.write([], [], bodies) for _ in range(times)]
    finally:
        sink.close()
    return counts, stored(url)


EDGES = [
    # the widest integers and decimals of the fast-path layout, signs, leading zeros
    "nonce=e1&eventType=experiment&id=999999999999999999&variationId=-999999999999999999&visitorCode=v1",
    "nonce=e2&eventType=experiment&id=007&variationId=-0&visitorCode=v1",
    "nonce=e3&eventType=conversion&goalId=-5&revenue=999999999999999.999999999999999&negative=true&visitorCode=v2",
    "nonce=e4&eventType=conversion&goalId=0&revenue=-0&negative=false&visitorCode=v2",
    "nonce=e5&eventType=conversion&goalId=1&revenue=0.1&negative=false&visitorCode=v2",
    # characters that COPY's text format escapes, in the identity and the rest of the line
    "nonce=e6&eventType=activity&visitorCode=back\\slash\ttab&userAgent=A\\B\tC",
    "nonce=e7&eventType=experiment&id=1&variationId=2&mappingValue=\\N",
    "nonce=e8&eventType=activity&mappingValue=user é ✓",
]


def test_fast_bodies_store_the_rows_that_rows_describes(postgres: pg_cluster.Cluster) -> None:
    bodies = [fast(3, 1_700_000_000_123, EDGES), fast(4, 5, lines("a", 60)), fast(3, 6, lines("b", 7))]
    expected = through_rows(database(postgres), bodies)
    counts, rows = through_sink(database(postgres), bodies)
    assert rows == expected
    assert counts == [len(expected)] == [len(EDGES) + 67]
    escaped = next(row for row in rows if row[3] == "e6")
    assert (escaped[1], escaped[-1].rsplit("=", 1)[1]) == ("back\\slash\ttab", "A\\B\tC")


def test_a_resent_fast_batch_is_stored_once(postgres: pg_cluster.Cluster) -> None:
    url = database(postgres)
    first = fast(1, 10, lines("r", 20))
    counts, rows = through_sink(url, [first], times=2)
    assert counts == [20, 0]
    again = [fast(1, 10, lines("r", 20)), fast(1, 10, lines("s", 5))]  # partly stored already
    more, after = through_sink(url, again)
    assert more == [5]
    assert len(after) == 25 and set(rows) <= set(after)


def test_a_batch_goes_in_by_visitor_and_each_visitor_keeps_its_order(postgres: pg_cluster.Cluster) -> None:
    """Rows are inserted sorted by visitor (neighbouring index pages), and the sort is stable:
    ids, which order a visitor's events, follow each visitor's arrival order."""
    url = database(postgres)
    arrival = [
        f"nonce=n{n}&eventType=activity&visitorCode={visitor}"
        for n, visitor in enumerate(["v3", "v1", "v2", "v1", "v3", "v1", "v2", "v3"])
    ]
    through_sink(url, [fast(1, 10, arrival[:5]), fast(1, 11, arrival[5:])])
    with psycopg.connect(url) as conn:
        by_id = conn.execute("SELECT identity, nonce FROM events ORDER BY id").fetchall()
    assert [identity for identity, _ in by_id] == sorted(identity for identity, _ in by_id)
    for visitor in ("v1", "v2", "v3"):
        sent = [line.split("&")[0][6:] for line in arrival if line.endswith(visitor)]
        assert [nonce for identity, nonce in by_id if identity == visitor] == sent
