"""The storages (SQLite and PostgreSQL): migrations, sites with optimistic concurrency, idempotent
durable ingest."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kameleoon_server.storage import (
    AlreadyExists,
    ConfigChange,
    Conflict,
    CredentialRecord,
    NotFound,
    SQLiteStorage,
    Storage,
    open_storage,
)
from kameleoon_server.storage._schema import MIGRATIONS
from kameleoon_server.storage.sqlite import next_config_ms

from .conftest import query
from .conftest import run_storage as run

NewStorage = Callable[..., Storage]
ANY_SIZE = 1 << 30  # a byte budget no test reaches


def row(site: int, identity: str, nonce: str, etype: int = 1, t: int = 1) -> tuple[Any, ...]:
    return (site, identity, 0, nonce, etype, t, None, None, None, None, None, None, 0, f"nonce={nonce}")


def test_schema_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    run(tmp_path / "a.db", lambda s: asyncio.sleep(0))
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    run(tmp_path / "a.db", lambda s: asyncio.sleep(0))  # reopening applies nothing twice


def test_ingest_is_idempotent_per_site_identity_and_nonce(new_storage: NewStorage) -> None:
    async def body(s: Storage) -> Any:
        await s.ingest([row(1, "v", "N1"), row(1, "v", "N2")], [])
        await s.ingest([row(1, "v", "N1"), row(1, "u", "N1"), row(2, "v", "N1")], [])
        return (await s.visitor_events(1, ["v", "u"], 10, ANY_SIZE)).events, s.counters()

    events, _ = run(new_storage(ingest_process=False), body)
    assert [(e.identity, e.nonce) for e in events] == [("v", "N1"), ("v", "N2"), ("u", "N1")]


def test_visitor_events_come_in_the_order_they_were_received(new_storage: NewStorage) -> None:
    """One write may store a later request's lines first (its ids are then lower): the events
    still come oldest first by reception time, ids ordering those received together."""

    async def body(s: Storage) -> list[str]:
        await s.ingest([row(1, "v", "LATER", t=2_000)], [])
        await s.ingest([row(1, "v", "FIRST", t=1_000), row(1, "v", "SECOND", t=1_000)], [])
        return [e.nonce for e in (await s.visitor_events(1, ["v"], 10, ANY_SIZE)).events]

    assert run(new_storage(ingest_process=False), body) == ["FIRST", "SECOND", "LATER"]


def sized(nonce: str, size: int, t: int) -> tuple[Any, ...]:
    """A stored row whose line is ``size`` bytes long in UTF-8 (``é`` is two)."""
    line = f"nonce={nonce}&x="
    return (*row(1, "v", nonce, t=t)[:-1], line + "é" * ((size - len(line)) // 2))


@pytest.mark.parametrize(
    ("limit", "max_bytes", "kept", "truncated"),
    [
        (10, 400, ["C", "D"], True),  # D (newest, 100) + C (300) = 400 fit; B would make 600
        (10, 399, ["D"], True),
        (10, 99, [], True),  # even the newest line is over the budget
        (10, 600, ["B", "C", "D"], True),
        (10, 700, ["A", "B", "C", "D"], False),
        (3, 700, ["B", "C", "D"], True),  # the event limit cuts first
        (4, 700, ["A", "B", "C", "D"], False),  # exactly the limit: nothing left out
    ],
)
def test_visitor_events_keep_the_newest_lines_within_the_limit_and_the_byte_budget(
    new_storage: NewStorage, limit: int, max_bytes: int, kept: list[str], truncated: bool
) -> None:
    """The budget counts UTF-8 bytes of the lines, newest first, and loads no line it leaves out."""
    rows = [sized("A", 100, 1), sized("B", 200, 2), sized("C", 300, 3), sized("D", 100, 4)]

    async def body(s: Storage) -> Any:
        await s.ingest(rows, [])
        return await s.visitor_events(1, ["v"], limit, max_bytes)

    found = run(new_storage(ingest_process=False), body)
    assert [e.nonce for e in found.events] == kept
    assert found.truncated is truncated
    sizes = {"A": 100, "B": 200, "C": 300, "D": 100}
    assert [len(e.line.encode()) for e in found.events] == [sizes[n] for n in kept]


def test_linked_visitors_come_latest_first_up_to_the_limit(new_storage: NewStorage) -> None:
    async def body(s: Storage) -> Any:
        links = [(1, "user", "a", 3), (1, "user", "b", 5), (1, "user", "c", 4), (1, "other", "d", 9)]
        await s.ingest([], links)
        return await s.linked_visitors(1, "user", 2), await s.linked_visitors(1, "user", 10)

    assert run(new_storage(ingest_process=False), body) == (["b", "c"], ["b", "c", "a"])


def test_many_rows_are_written_in_chunks_and_all_land(new_storage: NewStorage) -> None:
    rows = [row(1, f"v{i % 13}", f"N{i}") for i in range(700)]  # 256+256+32*5+4*7+1*0... every chunk size

    async def body(s: Storage) -> Any:
        await asyncio.gather(s.ingest(rows[:333], []), s.ingest(rows[333:], []), s.ingest(rows[:10], []))
        return len((await s.visitor_events(1, [f"v{i}" for i in range(13)], 10_000, ANY_SIZE)).events)

    assert run(new_storage(ingest_process=False), body) == 700


def test_acknowledged_rows_are_committed_and_visible_to_other_connections(new_storage: NewStorage) -> None:
    storage = new_storage(ingest_process=False)

    async def body(s: Storage) -> int:
        await asyncio.gather(*(s.ingest([row(1, f"v{i}", "N")], []) for i in range(50)))
        # an independent connection sees every acknowledged row
        return int(query(s, "SELECT count(*) FROM events")[0][0])

    assert run(storage, body) == 50


def test_sites_update_with_optimistic_concurrency_and_announce_changes(new_storage: NewStorage) -> None:
    changes: list[ConfigChange] = []

    async def body(s: Storage) -> Any:
        s.subscribe(changes.append)
        site = await s.create_site("abc", b"{}", 1_000)
        with pytest.raises(AlreadyExists):
            await s.create_site("abc", b"{}", 1_000)
        updated = await s.update_site("abc", 1, b'{"name":"x"}', 1_200)
        with pytest.raises(Conflict):
            await s.update_site("abc", 1, b"{}", 1_300)
        with pytest.raises(NotFound):
            await s.update_site("nope", 1, b"{}", 1_300)
        assert await s.delete_site("abc")
        return site, updated, await s.get_site("abc")

    _, updated, gone = run(new_storage(ingest_process=False), body)
    assert updated.version == 2 and updated.model == b'{"name":"x"}'
    assert updated.updated_ms == 2_000  # a later whole second than the previous timestamp
    assert gone is None
    assert [(c.version, c.deleted) for c in changes] == [(1, False), (2, False), (3, True)]


def test_a_deleted_sites_id_is_never_given_again(new_storage: NewStorage) -> None:
    """Access tokens and in-flight events carry a site id: a new site must not inherit one."""

    async def body(s: Storage) -> Any:
        await s.create_site("first", b"{}", 1_000)
        last = await s.create_site("last", b"{}", 1_000)
        assert await s.delete_site("last")
        return last.id, (await s.create_site("next", b"{}", 1_000)).id

    deleted, created = run(new_storage(ingest_process=False), body)
    assert created > deleted


def test_migration_4_keeps_the_sites_and_stops_reusing_ids(tmp_path: Path) -> None:
    """A database of schema 3 (ids reusable) keeps its sites, ids and data through migration 4."""
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:3], 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.execute("INSERT INTO sites VALUES (7, 'seven', 2, 1, 2, x'7b7d')")
    conn.commit()
    conn.close()

    async def body(s: Storage) -> Any:
        seven = await s.get_site("seven")
        assert await s.delete_site("seven")
        return seven, await s.create_site("eight", b"{}", 1_000)

    seven, eight = run(path, body)
    assert (seven.id, seven.version, seven.model) == (7, 2, b"{}")
    assert eight.id > 7


def test_credentials_remote_data_links_and_settings(new_storage: NewStorage) -> None:
    async def body(s: Storage) -> Any:
        await s.add_credential(CredentialRecord("cid", 1, "hash", 5))
        await s.put_remote_data(1, "k/1", b'{"a":1}', 1)
        await s.put_remote_data(1, "k/1", b'{"a":2}', 2)
        await s.ingest([], [(1, "user", "anon", 3), (1, "user", "anon", 4)])
        await s.set_setting("x", "y")
        assert await s.init_setting("x", "other") == "y"  # the first value stays
        assert await s.init_setting("fresh", "z") == "z"
        return (
            await s.get_credential("cid"),
            await s.get_remote_data(1, "k/1"),
            await s.list_remote_data(1, "k", 10),
            await s.linked_visitors(1, "user", 10),
            await s.get_setting("x"),
            await s.delete_remote_data(1, "k/1"),
        )

    credential, value, keys, links, setting, deleted = run(new_storage(ingest_process=False), body)
    assert credential == CredentialRecord("cid", 1, "hash", 5)
    assert (value, keys, links, setting, deleted) == (b'{"a":2}', ["k/1"], ["anon"], "y", True)


def test_a_failing_write_fails_only_its_own_caller(new_storage: NewStorage) -> None:
    async def body(s: Storage) -> Any:
        await s.create_site("dup", b"{}", 1)
        results = await asyncio.gather(
            s.create_site("dup", b"{}", 1), s.ingest([row(1, "v", "Z")], []), return_exceptions=True
        )
        return results

    failed, ingested = run(new_storage(ingest_process=False), body)
    assert isinstance(failed, AlreadyExists)
    assert ingested is None


def test_config_timestamps_move_to_a_later_second() -> None:
    assert next_config_ms(1_500, 1_600) == 2_000
    assert next_config_ms(1_500, 9_999) == 9_999


def test_database_urls() -> None:
    assert open_storage("sqlite:////tmp/x/a.db").path == Path("/tmp/x/a.db")  # type: ignore[attr-defined]
    assert open_storage("sqlite:///rel.db").path == Path("rel.db")  # type: ignore[attr-defined]
    assert (
        type(open_storage("postgresql://u@localhost/db")).__name__ == "PostgresStorage"
    )  # not connected yet
    with pytest.raises(ValueError):
        open_storage("mysql://x")


def test_the_writer_survives_an_unexpected_error(tmp_path: Path) -> None:
    async def body(s: SQLiteStorage) -> Any:
        def boom(conn: sqlite3.Connection) -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await s._write(boom)
        await s.ingest([row(1, "v", "after")], [])
        return (await s.visitor_events(1, ["v"], 10, ANY_SIZE)).events

    assert [e.nonce for e in run(tmp_path / "h.db", body)] == ["after"]
