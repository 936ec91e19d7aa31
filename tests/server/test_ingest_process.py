"""The SQLite ingest process: same rows as in-process ingest, group commit, restarts after a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kameleoon_server.storage import SQLiteStorage, StorageError, TooManyLines

from .conftest import run_storage

BODIES = [
    # fast lines (converted in SQL)
    b"nonce=F1&eventType=experiment&id=5001&variationId=7002&visitorCode=v1\n"
    b"nonce=F2&eventType=conversion&goalId=32&revenue=-1.25&negative=true&mappingValue=u1\n"
    b"nonce=F3&eventType=activity&visitorCode=v1&userAgent=Mozilla%2F5.0",
    # a robot, other layouts, a link, a malformed line
    b"nonce=R1&eventType=activity&visitorCode=bot&userAgent=curl%2F8.0",
    b"nonce=G1&eventType=page&href=https%3A%2F%2Fx&visitorCode=v2\n"
    b"nonce=G2&eventType=customData&index=1&valuesCountMap=%7B%22user-9%22%3A1%7D&overwrite=true"
    b"&mappingIdentifier=true&visitorCode=v2\nnot a line",
]
COLUMNS = (
    "site_id, identity, is_mapping, nonce, etype, time_ms, exp_id, var_id, goal_id, revenue, negative,"
    " cd_index, bot, line"
)


def run(path: Path, process: bool, body: Callable[[SQLiteStorage], Awaitable[Any]]) -> Any:
    return run_storage(SQLiteStorage(path, ingest_process=process), body)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def ingest_all(storage: SQLiteStorage) -> Any:
    summaries = [await storage.ingest_body(3, body, 1000 + i, 100) for i, body in enumerate(BODIES)]
    return summaries, storage.counters()


def test_the_process_stores_exactly_what_in_process_ingest_stores(tmp_path: Path) -> None:
    via_process, counters = run(tmp_path / "p.db", True, ingest_all)
    in_process, _ = run(tmp_path / "i.db", False, ingest_all)
    assert via_process == in_process
    assert [s.received for s in via_process] == [3, 1, 2]
    assert via_process[1].bots == 1 and via_process[2].malformed == 1
    events = f"SELECT {COLUMNS} FROM events ORDER BY id"
    assert rows(tmp_path / "p.db", events) == rows(tmp_path / "i.db", events)
    assert len(rows(tmp_path / "p.db", events)) == 6
    assert rows(tmp_path / "p.db", "SELECT user_id, visitor_code FROM visitor_links") == [("user-9", "v2")]
    assert (counters["events_stored"], counters["ingest_process_starts"]) == (6, 1)


def test_concurrent_bodies_share_commits_and_resends_are_stored_once(tmp_path: Path) -> None:
    async def body(storage: SQLiteStorage) -> Any:
        lines = [f"nonce=N{i}&eventType=activity&visitorCode=v{i % 7}".encode() for i in range(400)]
        await asyncio.gather(*(storage.ingest_body(1, line, 5, 10) for line in lines))
        await asyncio.gather(*(storage.ingest_body(1, line, 6, 10) for line in lines[:100]))
        return storage.counters()

    counters = run(tmp_path / "c.db", True, body)
    assert (counters["events_stored"], counters["events_duplicate"]) == (400, 100)
    assert counters["ingest_batches"] < 500  # at least some requests shared a commit
    assert rows(tmp_path / "c.db", "SELECT count(*) FROM events") == [(400,)]


def test_too_many_lines_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    async def body(storage: SQLiteStorage) -> Any:
        with pytest.raises(TooManyLines):
            await storage.ingest_body(1, b"nonce=A&eventType=activity&visitorCode=v\n" * 3, 5, 2)

    run(tmp_path / "t.db", True, body)
    assert rows(tmp_path / "t.db", "SELECT count(*) FROM events") == [(0,)]


def test_a_killed_ingest_process_fails_its_requests_and_is_started_again(tmp_path: Path) -> None:
    async def body(storage: SQLiteStorage) -> Any:
        await storage.ingest_body(1, b"nonce=A&eventType=activity&visitorCode=v", 5, 10)
        ingester = storage._ingester
        assert ingester is not None and ingester._proc is not None and ingester._channel is not None
        channel = ingester._channel
        os.kill(ingester._proc.pid, signal.SIGKILL)
        for _ in range(500):
            if channel.closed:
                break
            await asyncio.sleep(0.01)
        assert channel.closed
        await storage.ingest_body(1, b"nonce=B&eventType=activity&visitorCode=v", 5, 10)
        return storage.counters()["ingest_process_starts"]

    assert run(tmp_path / "k.db", True, body) == 2
    assert rows(tmp_path / "k.db", "SELECT nonce FROM events ORDER BY id") == [("A",), ("B",)]


def test_requests_waiting_for_a_dead_process_fail(tmp_path: Path) -> None:
    async def body(storage: SQLiteStorage) -> None:
        ingester = storage._ingester
        assert ingester is not None and ingester._proc is not None
        os.kill(ingester._proc.pid, signal.SIGSTOP)  # stalled: the request waits
        pending = asyncio.ensure_future(
            storage.ingest_body(1, b"nonce=A&eventType=activity&visitorCode=v", 5, 10)
        )
        await asyncio.sleep(0.05)
        assert not pending.done()
        os.kill(ingester._proc.pid, signal.SIGKILL)
        with pytest.raises(StorageError):
            await asyncio.wait_for(pending, 10)

    run(tmp_path / "d.db", True, body)


class _RecordingSink:
    """Counts the events of each commit a writer thread makes, and the rewinds."""

    def __init__(self) -> None:
        self.commits: list[int] = []
        self.rewinds = 0

    def rewind(self) -> None:
        self.rewinds += 1

    def write(self, rows: Any, links: Any, fast: Any = ()) -> int:
        self.commits.append(len(rows) + sum(len(body.lines) for body in fast))
        return self.commits[-1]

    def close(self) -> None:
        pass


@pytest.mark.parametrize("url", ["/data/kameleoon.db", "postgresql://host/db"])
def test_a_writer_fills_each_commit_up_to_its_backends_size(url: str) -> None:
    from kameleoon_server.storage import _ingest_process as ingest
    from kameleoon_server.storage import _ingest_proto as proto

    most = ingest.commit_events(url)
    postgres = url.startswith("postgresql:")
    assert most == (ingest.POSTGRES_COMMIT_EVENTS if postgres else ingest.MAX_COMMIT_EVENTS)
    body = "\n".join(f"nonce={n:016X}&eventType=activity&visitorCode=v{n}" for n in range(20)).encode()
    work: Any = ingest.queue.SimpleQueue()
    requests = 3 * most // 20 + 1
    for n in range(requests):  # all waiting before the writer starts: it takes them in commits
        work.put(ingest.parse([proto.encode_request(n, 1, 0, 1000, body)[proto.LENGTH.size :]]))
    work.put(None)
    sink, replies = _RecordingSink(), []
    ingest._write_loop(replies.append, sink, work, most)
    assert sum(sink.commits) == 20 * requests
    assert all(count <= most for count in sink.commits)
    assert sink.commits[:3] == [most] * 3 and len(sink.commits) == 4
    assert sum(len(reply[2]) for reply in replies) == requests


def test_a_rewind_request_reaches_the_sink_between_writes_and_is_not_answered() -> None:
    from kameleoon_server.storage import _ingest_process as ingest
    from kameleoon_server.storage import _ingest_proto as proto

    body = b"nonce=0A&eventType=activity&visitorCode=v1"
    frames = [proto.encode_request(7, 1, 0, 10, body), proto.rewind_request()]
    work: Any = ingest.queue.SimpleQueue()
    for frame in frames:
        work.put(ingest.parse(proto.take_frames(bytearray(frame))))
    rewind_only = ingest.parse(proto.take_frames(bytearray(proto.rewind_request())))
    assert rewind_only.rewind and not rewind_only.parsed and not rewind_only.replies
    work.put(rewind_only)
    work.put(None)
    sink, replies = _RecordingSink(), []
    ingest._write_loop(replies.append, sink, work, 1)  # one event per commit
    assert sink.commits == [1] and sink.rewinds == 1  # the two requests waiting together: one rewind
    assert [[reply[0] for reply in message[2]] for message in replies] == [[7]]  # nothing for the rewinds


def test_the_checkpoint_thread_asks_a_running_ingest_process_to_rewind(tmp_path: Path) -> None:
    async def body(storage: SQLiteStorage) -> Any:
        loop = asyncio.get_running_loop()
        first = await storage.ingest_body(1, BODIES[0], 5, 10)
        asked = await loop.run_in_executor(None, storage._ask_rewind)  # as the checkpoint thread does
        second = await storage.ingest_body(1, BODIES[0].replace(b"=F", b"=H"), 6, 10)
        return asked, first.received, second.received, storage.counters()["events_stored"]

    assert run(tmp_path / "r.db", True, body) == (True, 3, 3, 6)

    async def without(storage: SQLiteStorage) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, storage._ask_rewind)

    assert run(tmp_path / "n.db", False, without) is False  # no ingest process: it rewinds itself
