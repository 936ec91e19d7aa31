"""The WAL checkpoint thread's rounds: copy back, rewind past the threshold, never wait long for readers."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kameleoon_server.storage._sqlite_checkpoint import Checkpointer
from kameleoon_server.storage._sqlite_conn import connect
from kameleoon_server.storage._sqlite_sink import SQLiteSink

THRESHOLD = 256 * 1024  # 64 pages of 4 KiB


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, sqlite3.Connection, Checkpointer]]:
    path = tmp_path / "wal.db"
    writer = connect(path, "normal", writer=True, read_only=False)
    writer.execute("CREATE TABLE t (x BLOB)")
    conn = connect(path, "normal", writer=False, read_only=False)
    checkpointer = Checkpointer(lambda: conn, Path(f"{path}-wal"), threshold_bytes=THRESHOLD)
    yield writer, conn, checkpointer
    writer.close()
    conn.close()


def _write(writer: sqlite3.Connection, rows: int) -> None:
    for _ in range(rows):  # one commit each: a table page per commit, at least
        writer.execute("INSERT INTO t VALUES (zeroblob(3000))")


def test_copies_back_without_rewinding_below_the_threshold(db: tuple[sqlite3.Connection, ...]) -> None:
    writer, conn, checkpointer = db  # type: ignore[misc]
    _write(writer, 10)
    state = checkpointer.round(conn)
    assert state is not None and not state.busy
    assert state.frames == state.copied > 0
    assert checkpointer.restarts == 0


def test_rewinds_the_wal_once_past_the_threshold(db: tuple[sqlite3.Connection, ...]) -> None:
    writer, conn, checkpointer = db  # type: ignore[misc]
    _write(writer, 200)
    state = checkpointer.round(conn)
    assert state is not None and not state.busy and state.frames == state.copied
    # (without a writer running beside it, the PASSIVE pass alone would let the writer rewind;
    # under steady writes only the RESTART does, which bench/ingest.py shows)
    assert state.frames * 4096 > THRESHOLD
    assert checkpointer.restarts == 1
    _write(writer, 1)  # the next transaction starts the WAL again from its first frame
    after = checkpointer.round(conn)
    assert after is not None and 0 < after.frames < 10
    assert writer.execute("SELECT count(*) FROM t").fetchone()[0] == 201


def test_a_reader_on_the_wal_postpones_the_rewind_without_holding_the_writer(
    db: tuple[sqlite3.Connection, ...], tmp_path: Path
) -> None:
    writer, conn, checkpointer = db  # type: ignore[misc]
    _write(writer, 200)
    reader = connect(tmp_path / "wal.db", "normal", writer=False)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 200  # a snapshot on the WAL
    _write(writer, 50)
    state = checkpointer.round(conn)
    assert state is not None and state.busy  # gave up waiting for the reader
    assert checkpointer.restarts == 0
    writer.execute("PRAGMA busy_timeout=0")  # the write lock is free again: no waiting at all
    _write(writer, 1)
    reader.execute("COMMIT")
    reader.close()
    state = checkpointer.round(conn)
    assert state is not None and not state.busy and checkpointer.restarts == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000  # back to the usual wait


def test_a_writer_that_never_pauses_rewinds_the_wal_when_asked(tmp_path: Path) -> None:
    """The ingest process's case: its writer commits back to back, so a RESTART from the
    checkpoint thread would rarely find the write lock free; the thread asks, the writer rewinds."""
    path = tmp_path / "busy.db"
    sink = SQLiteSink(str(path), "normal")
    sink._conn.execute("CREATE TABLE t (x BLOB)")
    asked = threading.Event()

    def ask() -> bool:
        asked.set()
        return True

    conn = connect(path, "normal", writer=False, read_only=False)
    checkpointer = Checkpointer(lambda: conn, Path(f"{path}-wal"), threshold_bytes=THRESHOLD, rewind=ask)
    stop, commits = threading.Event(), [0]

    def write() -> None:  # the ingest writer's loop: a commit, then the rewind if asked
        while not stop.is_set():
            sink._conn.execute("INSERT INTO t SELECT zeroblob(3000) FROM (SELECT 1 UNION ALL SELECT 2)")
            commits[0] += 1
            if asked.is_set():
                asked.clear()
                sink.rewind()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        rounds = 0
        while sink.rewinds < 3 and rounds < 2000:
            checkpointer.round(conn)
            rounds += 1
            stop.wait(0.005)
    finally:
        stop.set()
        thread.join()
    assert sink.rewinds >= 3 and checkpointer.restarts >= sink.rewinds
    state = checkpointer.round(conn)  # the WAL holds what came after the last rewind only
    assert state is not None and state.frames < 2 * commits[0]
    sink.close()
    conn.close()
