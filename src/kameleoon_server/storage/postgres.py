"""PostgreSQL implementation of :class:`~kameleoon_server.storage.base.Storage` (extra ``[postgres]``).

Several server instances (``--workers N`` or separate processes) share one database:

* configuration changes are announced to every instance with ``NOTIFY`` in the transaction that
  makes them (delivered on commit); each instance ``LISTEN``s on one dedicated connection and
  re-reads the sites it knows after that connection had to be re-opened;
* site updates lock the site row, so versions and configuration timestamps are the same
  everywhere; the token signing key is a row of ``settings``;
* tracking rows go in with COPY + ``INSERT … ON CONFLICT DO NOTHING`` (see ``_pg_sink``), from the
  ingest process, so a batch resent to another instance is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from kameleoon_server.results import sql as results_sql
from kameleoon_server.results.dialect import POSTGRESQL
from kameleoon_server.results.query import SumsAnswer, SumsQuery
from kameleoon_server.storage._ingest import ingest_in_process
from kameleoon_server.storage._ingest_client import INGEST_PROCESS_AVAILABLE, IngestCounters, IngestProcess
from kameleoon_server.storage._pg_schema import migrate_url
from kameleoon_server.storage._pg_sink import PostgresSink
from kameleoon_server.storage.base import (
    EVENT_COLUMNS,
    SITE_COLUMNS,
    AlreadyExists,
    BodySummary,
    ConfigChange,
    Conflict,
    CredentialRecord,
    EventRow,
    EventTypeCount,
    LinkRow,
    Listener,
    NotFound,
    SiteRecord,
    StoredEvent,
    VisitorEvents,
    newest_within,
)
from kameleoon_server.storage.sqlite import next_config_ms

log = logging.getLogger("kameleoon_server.storage")
CHANNEL: Final = "kameleoon_config"
LISTEN_APPLICATION: Final = "kameleoon-listen"  # application_name of the LISTEN connections
RESULTS_WORK_MEM: Final = "64MB"  # per sort or hash of a results query
_CREDENTIAL_COLUMNS: Final = "client_id, site_id, secret_hash, created_ms"


def _payload(origin: str, change: ConfigChange) -> str:
    return json.dumps(
        {"o": origin, "id": change.site_id, "code": change.site_code, "v": change.version}
        | {"t": change.updated_ms, "d": change.deleted}
    )


class PostgresStorage:
    """Storage in a PostgreSQL database, shareable by several server instances."""

    def __init__(self, url: str, pool_size: int = 8, ingest_process: bool = INGEST_PROCESS_AVAILABLE) -> None:
        self.url = url
        self._pool_size = pool_size
        self._ingest_process = ingest_process
        self._pool: AsyncConnectionPool | None = None
        self._ingester: IngestProcess | None = None
        self._sink_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kameleoon-pg-ingest")
        self._sink: PostgresSink | None = None
        self._listeners: list[Listener] = []
        self._listener_task: asyncio.Task[None] | None = None
        self._origin = uuid.uuid4().hex  # tells this instance's notifications from the others'
        self._versions: dict[str, int] = {}  # latest version seen per site code
        self.listen_reconnects = 0

    # -- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        await asyncio.to_thread(migrate_url, self.url)
        pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self._pool_size,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,  # survives a database restart
            open=False,
        )
        await pool.open(wait=True, timeout=30)
        self._pool = pool
        listening: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._listener_task = asyncio.create_task(self._listen(listening))
        await listening
        if self._ingest_process:
            self._ingester = IngestProcess(self.url)
            await self._ingester.start()

    async def close(self) -> None:
        ingester, self._ingester = self._ingester, None
        if ingester is not None:
            await ingester.stop()
        task, self._listener_task = self._listener_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        if self._sink is not None:
            await asyncio.get_running_loop().run_in_executor(self._sink_thread, self._sink.close)
            self._sink = None
        self._sink_thread.shutdown(wait=True)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._pool is None:
            raise RuntimeError("storage is not open")
        async with self._pool.connection() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._connection() as conn, conn.transaction():
            yield conn

    async def _one(self, sql: str, params: Sequence[Any]) -> Any:
        async with self._connection() as conn:
            return await (await conn.execute(sql, params)).fetchone()

    async def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        async with self._connection() as conn:
            return await (await conn.execute(sql, params)).fetchall()

    async def _run(self, sql: str, params: Sequence[Any]) -> int:
        async with self._connection() as conn:
            return (await conn.execute(sql, params)).rowcount

    # -- notifications ----------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _announce(self, change: ConfigChange) -> None:
        if change.deleted:
            self._versions.pop(change.site_code, None)
        else:
            self._versions[change.site_code] = max(change.version, self._versions.get(change.site_code, 0))
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("configuration change listener failed")

    def _on_notify(self, payload: str) -> None:
        data = json.loads(payload)
        if data["o"] == self._origin:
            return  # announced already, right after the commit
        self._announce(ConfigChange(data["id"], data["code"], data["v"], data["t"], bool(data["d"])))

    async def _listen(self, listening: asyncio.Future[None]) -> None:
        """Keeps one LISTEN connection; after re-opening it, re-reads the sites it knows."""
        delay = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, application_name=LISTEN_APPLICATION
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if listening.done():
                        self.listen_reconnects += 1
                        await self._reconcile()
                    else:
                        listening.set_result(None)
                    delay = 0.2
                    async for notify in conn.notifies():
                        self._on_notify(notify.payload)
            except psycopg.Error as exc:
                if not listening.done():
                    listening.set_exception(exc)
                    return
                log.warning("configuration change listener lost its connection (%s); reconnecting", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _reconcile(self) -> None:
        """Announces changes that may have been missed while not listening."""
        sites = {site.code: site for site in await self.list_sites()}
        for code in [code for code in self._versions if code not in sites]:
            self._announce(ConfigChange(0, code, self._versions[code] + 1, 0, deleted=True))
        for site in sites.values():
            if site.version > self._versions.get(site.code, site.version):
                self._announce(_change(site))

    async def _notify(self, conn: psycopg.AsyncConnection[Any], change: ConfigChange) -> None:
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, _payload(self._origin, change)))

    def counters(self) -> dict[str, int]:
        if self._pool is None:
            return {}
        pool = self._pool.get_stats()
        i = self._ingester.counters if self._ingester is not None else IngestCounters()
        return {
            "events_stored": i.rows_stored,
            "events_duplicate": i.rows_duplicate,
            "ingest_batches": i.batches,
            "ingest_requests": i.requests,
            "ingest_largest_batch": i.largest_batch,
            "ingest_process_starts": i.starts,
            "ingest_queue_depth": self._ingester.queue_depth() if self._ingester is not None else 0,
            "pg_pool_size": pool.get("pool_size", 0),
            "pg_pool_available": pool.get("pool_available", 0),
            "pg_listen_reconnects": self.listen_reconnects,
        }

    # -- sites ------------------------------------------------------------------------------
    async def create_site(self, code: str, model: bytes, now_ms: int) -> SiteRecord:
        try:
            async with self._transaction() as conn:
                cur = await conn.execute(
                    "INSERT INTO sites (code, version, created_ms, updated_ms, model)"
                    " VALUES (%s, 1, %s, %s, %s) RETURNING id",
                    (code, now_ms, now_ms, model),
                )
                site_id = (await cur.fetchone())[0]  # type: ignore[index]
                await conn.execute(
                    "INSERT INTO site_history (site_id, version, updated_ms, model) VALUES (%s, 1, %s, %s)",
                    (site_id, now_ms, model),
                )
                site = SiteRecord(site_id, code, 1, now_ms, model)
                await self._notify(conn, _change(site))
        except errors.UniqueViolation:
            raise AlreadyExists(f"site {code!r} exists already") from None
        self._announce(_change(site))
        return site

    async def get_site(self, code: str) -> SiteRecord | None:
        row = await self._one(f"SELECT {SITE_COLUMNS} FROM sites WHERE code = %s", (code,))
        if row is None:
            return None
        site = SiteRecord.from_row(row)
        self._versions[code] = max(site.version, self._versions.get(code, 0))
        return site

    async def list_sites(self) -> list[SiteRecord]:
        rows = await self._all(f"SELECT {SITE_COLUMNS} FROM sites ORDER BY code", ())
        return [SiteRecord.from_row(r) for r in rows]

    async def update_site(self, code: str, base_version: int, model: bytes, now_ms: int) -> SiteRecord:
        async with self._transaction() as conn:
            cur = await conn.execute(
                "SELECT id, version, updated_ms FROM sites WHERE code = %s FOR UPDATE", (code,)
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound(f"site {code!r} not found")
            site_id, version, previous_ms = row
            if version != base_version:
                raise Conflict(f"site {code!r} changed (version {version}, expected {base_version})")
            updated_ms = next_config_ms(previous_ms, now_ms)
            await conn.execute(
                "UPDATE sites SET version = %s, updated_ms = %s, model = %s WHERE id = %s",
                (version + 1, updated_ms, model, site_id),
            )
            await conn.execute(
                "INSERT INTO site_history (site_id, version, updated_ms, model) VALUES (%s, %s, %s, %s)",
                (site_id, version + 1, updated_ms, model),
            )
            site = SiteRecord(site_id, code, version + 1, updated_ms, model)
            await self._notify(conn, _change(site))
        self._announce(_change(site))
        return site

    async def delete_site(self, code: str) -> bool:
        async with self._transaction() as conn:
            cur = await conn.execute(
                "SELECT id, version, updated_ms FROM sites WHERE code = %s FOR UPDATE", (code,)
            )
            row = await cur.fetchone()
            if row is None:
                return False
            site_id = row[0]
            for table in ("site_history", "credentials", "remote_data", "events", "visitor_links"):
                await conn.execute(f"DELETE FROM {table} WHERE site_id = %s", (site_id,))
            await conn.execute("DELETE FROM sites WHERE id = %s", (site_id,))
            change = ConfigChange(site_id, code, row[1] + 1, row[2], deleted=True)
            await self._notify(conn, change)
        self._announce(change)
        return True

    # -- credentials ------------------------------------------------------------------------
    async def add_credential(self, credential: CredentialRecord) -> None:
        try:
            await self._run(
                f"INSERT INTO credentials ({_CREDENTIAL_COLUMNS}) VALUES (%s, %s, %s, %s)",
                (credential.client_id, credential.site_id, credential.secret_hash, credential.created_ms),
            )
        except errors.UniqueViolation:
            raise AlreadyExists(f"client id {credential.client_id!r} exists already") from None

    async def get_credential(self, client_id: str) -> CredentialRecord | None:
        row = await self._one(
            f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE client_id = %s", (client_id,)
        )
        return None if row is None else CredentialRecord(*row)

    async def list_credentials(self, site_id: int) -> list[CredentialRecord]:
        sql = f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE site_id = %s ORDER BY created_ms"
        return [CredentialRecord(*r) for r in await self._all(sql, (site_id,))]

    async def delete_credential(self, client_id: str) -> bool:
        return await self._run("DELETE FROM credentials WHERE client_id = %s", (client_id,)) > 0

    # -- remote data ------------------------------------------------------------------------
    async def put_remote_data(self, site_id: int, key: str, value: bytes, now_ms: int) -> None:
        await self._run(
            "INSERT INTO remote_data (site_id, key, value, updated_ms) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (site_id, key) DO UPDATE"
            " SET value = excluded.value, updated_ms = excluded.updated_ms",
            (site_id, key, value, now_ms),
        )

    async def get_remote_data(self, site_id: int, key: str) -> bytes | None:
        row = await self._one("SELECT value FROM remote_data WHERE site_id = %s AND key = %s", (site_id, key))
        return None if row is None else bytes(row[0])

    async def list_remote_data(self, site_id: int, prefix: str, limit: int) -> list[str]:
        sql = "SELECT key FROM remote_data WHERE site_id = %s AND key >= %s ORDER BY key LIMIT %s"
        keys = [r[0] for r in await self._all(sql, (site_id, prefix, limit))]
        return [k for k in keys if k.startswith(prefix)]

    async def delete_remote_data(self, site_id: int, key: str) -> bool:
        return await self._run("DELETE FROM remote_data WHERE site_id = %s AND key = %s", (site_id, key)) > 0

    # -- events -----------------------------------------------------------------------------
    def _write_events(self, rows: Sequence[EventRow], links: Sequence[LinkRow]) -> int:
        if self._sink is None:
            self._sink = PostgresSink(self.url)
        return self._sink.write(rows, links)

    async def ingest(self, rows: Sequence[EventRow], links: Sequence[LinkRow]) -> None:
        if rows or links:
            await asyncio.get_running_loop().run_in_executor(
                self._sink_thread, self._write_events, rows, links
            )

    async def ingest_body(self, site_id: int, body: bytes, time_ms: int, max_lines: int) -> BodySummary:
        if self._ingester is not None:
            return await self._ingester.submit(site_id, body, time_ms, max_lines)
        return await ingest_in_process(self, site_id, body, time_ms, max_lines)

    def ingest_body_soon(
        self, site_id: int, body: bytes, time_ms: int, max_lines: int
    ) -> asyncio.Future[BodySummary] | None:
        ingester = self._ingester
        return ingester.submit_soon(site_id, body, time_ms, max_lines) if ingester is not None else None

    async def visitor_events(
        self, site_id: int, identities: Sequence[str], limit: int, max_bytes: int
    ) -> VisitorEvents:
        if not identities:
            return VisitorEvents([], False)
        sizes = await self._all(
            "SELECT id, octet_length(line) FROM events WHERE site_id = %s AND identity = ANY(%s)"
            " ORDER BY id DESC LIMIT %s",
            (site_id, list(identities), limit + 1),
        )
        ids, truncated = newest_within(sizes, limit, max_bytes)
        # the visitor's own conditions select by index (events_dedup): ``id`` has none
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE site_id = %s AND identity = ANY(%s) AND id = ANY(%s)"
        rows = await self._all(sql, (site_id, list(identities), ids)) if ids else []
        return VisitorEvents(StoredEvent.received_in_order(rows), truncated)

    async def linked_visitors(self, site_id: int, user_id: str, limit: int) -> list[str]:
        sql = (
            "SELECT visitor_code FROM visitor_links WHERE site_id = %s AND user_id = %s"
            " ORDER BY time_ms DESC, visitor_code LIMIT %s"
        )
        return [r[0] for r in await self._all(sql, (site_id, user_id, limit))]

    async def event_counts(self, site_id: int) -> list[EventTypeCount]:
        sql = (
            "SELECT etype, count(*), count(DISTINCT identity) FROM events WHERE site_id = %s"
            " GROUP BY etype ORDER BY etype"
        )
        return [EventTypeCount(*r) for r in await self._all(sql, (site_id,))]

    async def experiment_sums(self, query: SumsQuery) -> SumsAnswer:
        async with self._transaction() as conn:
            # both statements (links probe, results) see one snapshot and write nothing
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # it groups and sorts per visitor: let that happen in memory rather than on disk
            await conn.execute(f"SET LOCAL work_mem = '{RESULTS_WORK_MEM}'")
            # Hash joins only: with missing or stale statistics (a table just loaded, before
            # autovacuum analyses it) the planner can pick a nested loop that rescans every
            # exposure for each conversion (minutes instead of seconds); hash joins are linear
            # whatever the estimates, and as fast as the best nested loop here.
            await conn.execute("SET LOCAL enable_nestloop = off")

            async def execute(sql: str, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
                return await (await conn.execute(sql, params)).fetchall()

            return await results_sql.experiment_sums_async(execute, query, POSTGRESQL)

    # -- settings ---------------------------------------------------------------------------
    async def get_setting(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM settings WHERE key = %s", (key,))
        return None if row is None else str(row[0])

    async def set_setting(self, key: str, value: str) -> None:
        await self._run(
            "INSERT INTO settings (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def init_setting(self, key: str, value: str) -> str:
        await self._run(
            "INSERT INTO settings (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, value)
        )
        return await self.get_setting(key) or value


def _change(site: SiteRecord) -> ConfigChange:
    return ConfigChange(site.id, site.code, site.version, site.updated_ms)
