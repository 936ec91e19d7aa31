"""SQLite implementation of :class:`~kameleoon_server.storage.base.Storage`.

One writer thread (see ``_sqlite_writer``) and a small pool of reader threads, each with its own
connection, over one database file in WAL mode. Experiment results have their own pool of
reader threads: a results query is cut into disjoint visitor ranges run in parallel, one per
core (SQLite releases the GIL while it runs a statement), so that it neither waits for nor holds
up the ordinary reads.

Durability: ``synchronous=NORMAL`` (the default) makes every commit reach the operating system
before the HTTP answer, so acknowledged events survive a crash or ``kill -9`` of the server; a
power failure can lose the last commits. ``synchronous=FULL`` also survives power loss, at the
cost of an fsync per batch.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from kameleoon_server.results import sql as results_sql
from kameleoon_server.results.dialect import SQLITE
from kameleoon_server.results.query import SumsAnswer, SumsQuery
from kameleoon_server.storage import _schema
from kameleoon_server.storage._ingest import ingest_in_process
from kameleoon_server.storage._ingest_client import INGEST_PROCESS_AVAILABLE, IngestCounters, IngestProcess
from kameleoon_server.storage._sqlite_checkpoint import Checkpointer
from kameleoon_server.storage._sqlite_conn import Synchronous, connect
from kameleoon_server.storage._sqlite_parallel import disable_memory_statistics
from kameleoon_server.storage._sqlite_writer import CallJob, IngestJob, Job, Writer
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

T = TypeVar("T")
MMAP_BYTES = 1 << 31
BOUNDS_SECONDS = 600.0
"""How long the split points of an experiment's results partitions are reused."""


def next_config_ms(previous_ms: int, now_ms: int) -> int:
    """A configuration timestamp later than ``previous_ms`` and in a later whole second.

    Distinct seconds keep HTTP ``Last-Modified``/``If-Modified-Since`` (second precision) exact.
    """
    return max(now_ms, (previous_ms // 1000 + 1) * 1000)


class SQLiteStorage:
    """Storage in one SQLite database file."""

    def __init__(
        self,
        path: str | Path,
        synchronous: Synchronous = "normal",
        readers: int = 2,
        ingest_process: bool = INGEST_PROCESS_AVAILABLE,
        results_partitions: int | None = None,
        results_min_exposures: int = results_sql.MIN_PARTITION_EXPOSURES,
    ) -> None:
        """``results_partitions``: how many visitor ranges a results query is cut into, run in
        parallel (default: the number of usable cores, at most 4); experiments with fewer than
        ``results_min_exposures`` exposures (and percentile caps) take one statement."""
        self.path = Path(path)
        self.synchronous = synchronous
        self._ingest_process = ingest_process
        self._ingester: IngestProcess | None = None
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="kameleoon-sqlite-reader")
        if results_partitions is None:
            results_partitions = min(
                4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
            )
        self.results_partitions = max(1, results_partitions)
        self.results_min_exposures = results_min_exposures
        # (site, experiment) -> (expiry, unit ids where the partitions start): finding them costs
        # a count and a seek per bound; the experiment's identities change little in minutes.
        self._results_bounds: dict[tuple[int, int], tuple[float, list[str]]] = {}
        self.parallel_statements = False
        """Whether statements on separate connections can run in parallel (see
        ``_sqlite_parallel``); known once open."""
        self._results = ThreadPoolExecutor(
            max_workers=self.results_partitions, thread_name_prefix="kameleoon-sqlite-results"
        )
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._writer: Writer | None = None
        self._checkpointer: Checkpointer | None = None
        self._listeners: list[Listener] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- connections ------------------------------------------------------------------------
    def _connect(self, *, writer: bool, read_only: bool = True) -> sqlite3.Connection:
        conn = connect(self.path, self.synchronous, writer=writer, read_only=read_only)
        if writer:
            _schema.migrate(conn)
        elif read_only:
            # Readers map the file instead of copying pages through read() calls: the results
            # query seeks all over the indexes (about 12 % of its CPU time). SQLite caps it at the
            # compile-time maximum (2 GiB for Debian's build); larger files read the rest.
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(writer=False)
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))

    async def _write(
        self, fn: Callable[[sqlite3.Connection], T], after: Callable[[T], None] | None = None
    ) -> T:
        loop = asyncio.get_running_loop()
        job = CallJob(loop=loop, future=loop.create_future(), fn=fn, after_commit=after)
        return await self._submit(job)  # type: ignore[no-any-return]

    async def _submit(self, job: Job) -> Any:
        if self._writer is None:
            raise RuntimeError("storage is not open")
        self._writer.submit(job)
        return await job.future

    # -- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        self.parallel_statements = disable_memory_statistics()
        checkpointer = Checkpointer(
            lambda: self._connect(writer=False, read_only=False),
            Path(f"{self.path}-wal"),
            rewind=self._ask_rewind if self._ingest_process else None,
        )
        writer = Writer(lambda: self._connect(writer=True))
        await self._loop.run_in_executor(None, writer.start)
        checkpointer.start()
        self._writer, self._checkpointer = writer, checkpointer
        if self._ingest_process:
            self._ingester = IngestProcess(str(self.path.resolve()), self.synchronous)
            await self._ingester.start()

    def _ask_rewind(self) -> bool:
        """The checkpoint thread asks the ingest process, the busy writer, to rewind the WAL;
        False (the thread then rewinds it itself) when no ingest process is running. A request
        lost because the process just died is asked again at the next round."""
        loop, ingester = self._loop, self._ingester
        if loop is None or ingester is None or not ingester.running:
            return False
        try:
            loop.call_soon_threadsafe(ingester.request_rewind)
        except RuntimeError:  # the event loop is closed
            return False
        return True

    async def close(self) -> None:
        ingester, self._ingester = self._ingester, None
        if ingester is not None:
            await ingester.stop()
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, writer.stop)
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.stop)
            self._checkpointer = None
        self._readers.shutdown(wait=True)
        self._results.shutdown(wait=True)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    # -- notifications ----------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _announce(self, change: ConfigChange | None) -> None:
        if change is not None:
            for listener in list(self._listeners):
                listener(change)

    def counters(self) -> dict[str, int]:
        if self._writer is None:
            return {}
        c = self._writer.counters
        i = self._ingester.counters if self._ingester is not None else IngestCounters()
        return {
            "write_batches": c.batches,
            "write_jobs": c.jobs,
            "write_largest_batch": c.largest_batch,
            "write_failed_jobs": c.failed_jobs,
            "events_stored": c.rows_stored + i.rows_stored,
            "events_duplicate": c.rows_duplicate + i.rows_duplicate,
            "write_queue_depth": self._writer.queue_depth(),
            "ingest_batches": i.batches,
            "ingest_requests": i.requests,
            "ingest_largest_batch": i.largest_batch,
            "ingest_process_starts": i.starts,
            "ingest_queue_depth": self._ingester.queue_depth() if self._ingester is not None else 0,
            "wal_checkpoints": self._checkpointer.checkpoints if self._checkpointer else 0,
            "wal_restarts": self._checkpointer.restarts if self._checkpointer else 0,
        }

    # -- sites ------------------------------------------------------------------------------
    async def create_site(self, code: str, model: bytes, now_ms: int) -> SiteRecord:
        def insert(conn: sqlite3.Connection) -> SiteRecord:
            try:
                cur = conn.execute(
                    "INSERT INTO sites (code, version, created_ms, updated_ms, model) VALUES (?, 1, ?, ?, ?)",
                    (code, now_ms, now_ms, model),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"site {code!r} exists already") from None
            site_id = int(cur.lastrowid or 0)
            conn.execute(
                "INSERT INTO site_history (site_id, version, updated_ms, model) VALUES (?, 1, ?, ?)",
                (site_id, now_ms, model),
            )
            return SiteRecord(site_id, code, 1, now_ms, model)

        return await self._write(insert, lambda s: self._announce(_change(s)))

    async def get_site(self, code: str) -> SiteRecord | None:
        def get(conn: sqlite3.Connection) -> SiteRecord | None:
            row = conn.execute(f"SELECT {SITE_COLUMNS} FROM sites WHERE code = ?", (code,)).fetchone()
            return None if row is None else SiteRecord.from_row(row)

        return await self._read(get)

    async def list_sites(self) -> list[SiteRecord]:
        def get(conn: sqlite3.Connection) -> list[SiteRecord]:
            rows = conn.execute(f"SELECT {SITE_COLUMNS} FROM sites ORDER BY code")
            return [SiteRecord.from_row(r) for r in rows]

        return await self._read(get)

    async def update_site(self, code: str, base_version: int, model: bytes, now_ms: int) -> SiteRecord:
        def update(conn: sqlite3.Connection) -> SiteRecord:
            row = conn.execute("SELECT id, version, updated_ms FROM sites WHERE code = ?", (code,)).fetchone()
            if row is None:
                raise NotFound(f"site {code!r} not found")
            site_id, version, previous_ms = row
            if version != base_version:
                raise Conflict(f"site {code!r} changed (version {version}, expected {base_version})")
            updated_ms = next_config_ms(previous_ms, now_ms)
            conn.execute(
                "UPDATE sites SET version = ?, updated_ms = ?, model = ? WHERE id = ?",
                (version + 1, updated_ms, model, site_id),
            )
            conn.execute(
                "INSERT INTO site_history (site_id, version, updated_ms, model) VALUES (?, ?, ?, ?)",
                (site_id, version + 1, updated_ms, model),
            )
            return SiteRecord(site_id, code, version + 1, updated_ms, model)

        return await self._write(update, lambda s: self._announce(_change(s)))

    async def delete_site(self, code: str) -> bool:
        def delete(conn: sqlite3.Connection) -> ConfigChange | None:
            row = conn.execute("SELECT id, version, updated_ms FROM sites WHERE code = ?", (code,)).fetchone()
            if row is None:
                return None
            site_id = row[0]
            for table in ("sites", "site_history", "credentials", "remote_data", "events", "visitor_links"):
                column = "id" if table == "sites" else "site_id"
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (site_id,))
            return ConfigChange(site_id, code, row[1] + 1, row[2], deleted=True)

        return await self._write(delete, self._announce) is not None

    # -- credentials ------------------------------------------------------------------------
    async def add_credential(self, credential: CredentialRecord) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO credentials (client_id, site_id, secret_hash, created_ms)"
                    " VALUES (?, ?, ?, ?)",
                    (credential.client_id, credential.site_id, credential.secret_hash, credential.created_ms),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"client id {credential.client_id!r} exists already") from None

        await self._write(insert)

    async def get_credential(self, client_id: str) -> CredentialRecord | None:
        def get(conn: sqlite3.Connection) -> CredentialRecord | None:
            row = conn.execute(
                "SELECT client_id, site_id, secret_hash, created_ms FROM credentials WHERE client_id = ?",
                (client_id,),
            ).fetchone()
            return None if row is None else CredentialRecord(*row)

        return await self._read(get)

    async def list_credentials(self, site_id: int) -> list[CredentialRecord]:
        def get(conn: sqlite3.Connection) -> list[CredentialRecord]:
            sql = "SELECT client_id, site_id, secret_hash, created_ms FROM credentials WHERE site_id = ?"
            return [CredentialRecord(*r) for r in conn.execute(sql + " ORDER BY created_ms", (site_id,))]

        return await self._read(get)

    async def delete_credential(self, client_id: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM credentials WHERE client_id = ?", (client_id,)).rowcount > 0

        return await self._write(delete)

    # -- remote data ------------------------------------------------------------------------
    async def put_remote_data(self, site_id: int, key: str, value: bytes, now_ms: int) -> None:
        def put(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO remote_data (site_id, key, value, updated_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (site_id, key) DO UPDATE"
                " SET value = excluded.value, updated_ms = excluded.updated_ms",
                (site_id, key, value, now_ms),
            )

        await self._write(put)

    async def get_remote_data(self, site_id: int, key: str) -> bytes | None:
        def get(conn: sqlite3.Connection) -> bytes | None:
            sql = "SELECT value FROM remote_data WHERE site_id = ? AND key = ?"
            row = conn.execute(sql, (site_id, key)).fetchone()
            return None if row is None else bytes(row[0])

        return await self._read(get)

    async def list_remote_data(self, site_id: int, prefix: str, limit: int) -> list[str]:
        def get(conn: sqlite3.Connection) -> list[str]:
            sql = "SELECT key FROM remote_data WHERE site_id = ? AND key >= ? ORDER BY key LIMIT ?"
            keys = [r[0] for r in conn.execute(sql, (site_id, prefix, limit))]
            return [k for k in keys if k.startswith(prefix)]

        return await self._read(get)

    async def delete_remote_data(self, site_id: int, key: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            sql = "DELETE FROM remote_data WHERE site_id = ? AND key = ?"
            return conn.execute(sql, (site_id, key)).rowcount > 0

        return await self._write(delete)

    # -- events -----------------------------------------------------------------------------
    async def ingest(self, rows: Sequence[EventRow], links: Sequence[LinkRow]) -> None:
        if not rows and not links:
            return
        loop = asyncio.get_running_loop()
        job = IngestJob(loop=loop, future=loop.create_future(), weight=len(rows) + 1, rows=rows, links=links)
        await self._submit(job)

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
        def get(conn: sqlite3.Connection) -> VisitorEvents:
            where = f"site_id = ? AND identity IN ({','.join('?' * len(identities))})"
            conn.execute("BEGIN")  # one snapshot for both reads
            try:
                sizes = conn.execute(
                    f"SELECT id, length(CAST(line AS BLOB)) FROM events WHERE {where}"
                    " ORDER BY id DESC LIMIT ?",
                    (site_id, *identities, limit + 1),
                ).fetchall()
                ids, truncated = newest_within(sizes, limit, max_bytes)
                rows = conn.execute(
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} AND id BETWEEN ? AND ?",
                    (site_id, *identities, ids[-1], ids[0]),
                ).fetchall() if ids else []  # fmt: skip
            finally:
                conn.execute("COMMIT")
            return VisitorEvents(StoredEvent.received_in_order(rows), truncated)

        return await self._read(get) if identities else VisitorEvents([], False)

    async def linked_visitors(self, site_id: int, user_id: str, limit: int) -> list[str]:
        def get(conn: sqlite3.Connection) -> list[str]:
            sql = (
                "SELECT visitor_code FROM visitor_links WHERE site_id = ? AND user_id = ?"
                " ORDER BY time_ms DESC, visitor_code LIMIT ?"
            )
            return [r[0] for r in conn.execute(sql, (site_id, user_id, limit))]

        return await self._read(get)

    async def event_counts(self, site_id: int) -> list[EventTypeCount]:
        def get(conn: sqlite3.Connection) -> list[EventTypeCount]:
            sql = (
                "SELECT etype, count(*), count(DISTINCT identity) FROM events WHERE site_id = ?"
                " GROUP BY etype ORDER BY etype"
            )
            return [EventTypeCount(*r) for r in conn.execute(sql, (site_id,))]

        return await self._read(get)

    async def experiment_sums(self, query: SumsQuery) -> SumsAnswer:
        loop = asyncio.get_running_loop()

        def execute(sql: str, params: Mapping[str, Any]) -> list[Any]:
            return self._reader().execute(sql, params).fetchall()

        key = (query.site_id, query.experiment_id)
        cached = self._results_bounds.get(key)
        known = cached[1] if cached is not None and cached[0] > time.monotonic() else None

        def plan() -> tuple[results_sql.Statement, ...]:
            parts, least = self.results_partitions, self.results_min_exposures
            return results_sql.statements(execute, query, SQLITE, parts, least, known)

        statements = await loop.run_in_executor(self._results, plan)
        if known is None and len(statements) > 1:
            self._results_bounds[key] = (time.monotonic() + BOUNDS_SECONDS, results_sql.bounds_of(statements))
        # Each partition on its own thread and connection, so in parallel. (Each reads its own
        # snapshot: rows committed while they start may be counted by some partitions only; a
        # visitor is in one partition, so it is counted once either way.)
        results = await asyncio.gather(
            *(loop.run_in_executor(self._results, execute, s.sql, s.params) for s in statements)
        )
        return results_sql.parse_answers(query, statements, results)

    # -- settings ---------------------------------------------------------------------------
    async def get_setting(self, key: str) -> str | None:
        def get(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._read(get)

    async def set_setting(self, key: str, value: str) -> None:
        def put(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

        await self._write(put)

    async def init_setting(self, key: str, value: str) -> str:
        def put(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, value))
            return str(conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0])

        return await self._write(put)


def _change(site: SiteRecord) -> ConfigChange:
    return ConfigChange(site.id, site.code, site.version, site.updated_ms)
