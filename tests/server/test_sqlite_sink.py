"""The ingest process's SQLite sink: fast-path lines of a whole batch in one statement."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kameleoon_server._wire import FastBody, Row, parse_for_storage
from kameleoon_server.storage import _schema
from kameleoon_server.storage._sqlite_sink import MAX_FAST_ROWS, SQLiteSink, statement_rows
from kameleoon_server.storage._sqlite_writer import EVENT_COLUMNS, insert_rows

SELECT = f"SELECT id, {EVENT_COLUMNS} FROM events ORDER BY id"


def fresh(path: Path) -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        _schema.migrate(conn)
    finally:
        conn.close()
    return path


def stored(path: Path, sql: str = SELECT) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def fast(site_id: int, time_ms: int, lines: list[str]) -> FastBody:
    body = parse_for_storage("\n".join(lines).encode(), site_id, time_ms, 10_000)
    assert isinstance(body, FastBody)
    return body


def lines(prefix: str, count: int) -> list[str]:
    """Every fast layout: experiments, conversions (signs, decimals, negative), activity,
    mapping values and user agents, visitors interleaved."""
    out = []
    for i in range(count):
        who = f"mappingValue=u{prefix}{i % 3}" if i % 5 == 4 else f"visitorCode=v{prefix}{i % 7}"
        kind = i % 4
        if kind == 0:
            event = f"experiment&id={i}&variationId={-i}"
        elif kind == 1:
            event = f"conversion&goalId=32&revenue={i}.25&negative=true"
        elif kind == 2:
            event = f"conversion&goalId=7&revenue=-{i}&negative=false"
        else:
            event = "activity"
        agent = "&userAgent=Mozilla%2F5.0" if i % 6 == 0 else ""
        out.append(f"nonce={prefix}N{i}&eventType={event}&{who}{agent}")
    return out


def reference(path: Path, batches: list[list[FastBody]], extra: list[Row] | None = None) -> list[int]:
    """Stores the same batches row by row from Python (``FastBody.rows``)."""
    conn = sqlite3.connect(path, isolation_level=None)
    counts = []
    try:
        for batch in batches:
            rows = [row for body in batch for row in body.rows()] + (extra or [])
            counts.append(insert_rows(conn, "events", EVENT_COLUMNS, rows))
    finally:
        conn.close()
    return counts


def test_statement_sizes_are_few_and_padding_small() -> None:
    sizes = {statement_rows(n) for n in range(1, MAX_FAST_ROWS + 1)}
    assert len(sizes) <= 160
    assert max(sizes) == MAX_FAST_ROWS
    for n in range(1, MAX_FAST_ROWS + 1):
        assert n <= statement_rows(n) <= n + n // 16


@pytest.mark.parametrize("total", [1, 20, 401, MAX_FAST_ROWS, MAX_FAST_ROWS + 5, 2 * MAX_FAST_ROWS + 3])
def test_a_batch_stores_the_same_rows_in_the_same_order_as_row_by_row_inserts(
    tmp_path: Path, total: int
) -> None:
    # bodies of several sizes, sites and receive times; the second batch repeats some lines
    first, sizes, made = [], [1, 20, 7, 300, 3], 0
    while made < total:
        count = min(sizes[len(first) % len(sizes)], total - made)
        first.append(fast(1 + len(first) % 2, 1000 + len(first), lines(f"b{len(first)}x", count)))
        made += count
    second = [fast(1, 5000, lines("b0x", 2) + lines("new", 3)), first[-1]]
    batches = [first, second]

    sink = SQLiteSink(str(fresh(tmp_path / "sink.db")), "normal")
    try:
        counts = [sink.write([], [], batch) for batch in batches]
    finally:
        sink.close()
    assert counts == reference(fresh(tmp_path / "ref.db"), batches)
    assert counts[0] == total and counts[1] == 5 - min(2, len(first[0].lines))
    assert stored(tmp_path / "sink.db") == stored(tmp_path / "ref.db")


def test_duplicates_within_a_batch_keep_the_first_line(tmp_path: Path) -> None:
    one = fast(1, 10, ["nonce=A&eventType=activity&visitorCode=v"])
    again = fast(1, 20, ["nonce=A&eventType=experiment&id=1&variationId=2&visitorCode=v"])
    sink = SQLiteSink(str(fresh(tmp_path / "d.db")), "normal")
    try:
        assert sink.write([], [], [one, again]) == 1
    finally:
        sink.close()
    assert stored(tmp_path / "d.db", "SELECT nonce, etype, time_ms FROM events") == [("A", 1, 10)]


def test_fast_bodies_rows_and_links_share_one_transaction(tmp_path: Path) -> None:
    body = fast(1, 10, lines("f", 30))
    rows = fast(2, 11, lines("r", 5)).rows()
    link = (1, "user", "visitor", 12)
    sink = SQLiteSink(str(fresh(tmp_path / "t.db")), "normal")
    try:
        assert sink.write(rows, [link], [body]) == 35
        with pytest.raises(sqlite3.Error):  # a bad row fails the whole batch: nothing is kept
            sink.write([("not", "a", "row")], [], [fast(1, 13, lines("g", 4))])  # type: ignore[list-item]
    finally:
        sink.close()
    assert counts_by_site(tmp_path / "t.db") == [(1, 30), (2, 5)]
    assert stored(tmp_path / "t.db", "SELECT * FROM visitor_links") == [link]
    assert reference(fresh(tmp_path / "ref.db"), [[body]], rows) == [35]
    assert stored(tmp_path / "t.db") == stored(tmp_path / "ref.db")


def counts_by_site(path: Path) -> list[tuple[Any, ...]]:
    return stored(path, "SELECT site_id, count(*) FROM events GROUP BY site_id ORDER BY site_id")
