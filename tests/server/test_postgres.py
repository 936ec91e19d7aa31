"""PostgreSQL specifics: changes announced across storages on one database, the LISTEN connection
re-opened after it is lost (and changes made meanwhile announced), concurrent migrations."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from kameleoon_server.storage import ConfigChange
from kameleoon_server.storage._pg_schema import MIGRATIONS, migrate_url
from kameleoon_server.storage.postgres import LISTEN_APPLICATION, PostgresStorage

from . import pg_cluster


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    for _ in range(int(timeout / 0.01)):
        if value := predicate():
            return value
        await asyncio.sleep(0.01)
    return predicate()


def two_storages(url: str, body: Callable[[PostgresStorage, PostgresStorage], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        a, b = PostgresStorage(url, ingest_process=False), PostgresStorage(url, ingest_process=False)
        await a.open()
        await b.open()
        try:
            return await body(a, b)
        finally:
            await a.close()
            await b.close()

    return asyncio.run(main())


def test_a_change_through_one_storage_is_announced_by_the_other(postgres: pg_cluster.Cluster) -> None:
    async def body(a: PostgresStorage, b: PostgresStorage) -> Any:
        heard: list[ConfigChange] = []
        a.subscribe(heard.append)
        await b.create_site("s1", b"{}", 1_000)
        updated = await b.update_site("s1", 1, b'{"x":1}', 1_500)
        await b.delete_site("s1")
        await until(lambda: len(heard) == 3)
        return updated, heard

    updated, heard = two_storages(postgres.create_database(), body)
    assert [(c.site_code, c.version, c.updated_ms, c.deleted) for c in heard] == [
        ("s1", 1, 1_000, False),
        ("s1", 2, updated.updated_ms, False),
        ("s1", 3, updated.updated_ms, True),
    ]
    assert updated.updated_ms == 2_000  # the same later-second rule as on SQLite


def test_a_lost_listen_connection_is_reopened_and_changes_made_meanwhile_are_announced(
    postgres: pg_cluster.Cluster,
) -> None:
    url = postgres.create_database()

    async def body(a: PostgresStorage, b: PostgresStorage) -> Any:
        heard: list[ConfigChange] = []
        a.subscribe(heard.append)
        await b.create_site("s2", b"{}", 1_000)
        await until(lambda: heard)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (LISTEN_APPLICATION,),
            )
        await b.update_site("s2", 1, b'{"x":1}', 1_500)  # while a is (probably) not listening
        await until(lambda: any(c.version == 2 for c in heard))
        await until(lambda: a.listen_reconnects >= 1)
        return heard, a.listen_reconnects

    heard, reconnects = two_storages(url, body)
    assert [c.version for c in heard] == [1, 2]
    assert reconnects >= 1


def test_instances_starting_together_migrate_once(postgres: pg_cluster.Cluster) -> None:
    url = postgres.create_database()

    async def main() -> list[int]:
        return list(await asyncio.gather(*(asyncio.to_thread(migrate_url, url) for _ in range(4))))

    assert asyncio.run(main()) == [len(MIGRATIONS)] * 4
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(MIGRATIONS),)


def test_the_signing_key_is_created_once_by_instances_starting_together(postgres: pg_cluster.Cluster) -> None:
    from kameleoon_server.app import signing_key

    async def body(a: PostgresStorage, b: PostgresStorage) -> Any:
        return await asyncio.gather(signing_key(a), signing_key(b))

    key_a, key_b = two_storages(postgres.create_database(), body)
    assert key_a == key_b and len(key_a) == 32


def test_the_ingest_process_reconnects_after_losing_its_database_connections(
    postgres: pg_cluster.Cluster,
) -> None:
    from kameleoon_server.storage._pg_sink import APPLICATION_NAME

    url = postgres.create_database()

    async def main() -> Any:
        storage = PostgresStorage(url)
        await storage.open()
        try:
            await storage.ingest_body(1, b"nonce=A&eventType=activity&visitorCode=v", 5, 10)
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                    (APPLICATION_NAME,),
                )
            for nonce in "BCDEFG":  # every writer connection was lost: each batch is written again
                await storage.ingest_body(
                    1, f"nonce={nonce}&eventType=activity&visitorCode=v".encode(), 5, 10
                )
            events = (await storage.visitor_events(1, ["v"], 100, 1 << 20)).events
            return [e.nonce for e in events], storage.counters()["ingest_process_starts"]
        finally:
            await storage.close()

    nonces, starts = asyncio.run(main())
    assert nonces == list("ABCDEFG")
    assert starts == 1  # the same process, with new connections
