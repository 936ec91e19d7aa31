"""The single SQLite writer: one thread, a queue of jobs, one transaction per batch of jobs.

Callers submit jobs and await their future; a future is resolved only after the transaction that
contains the job has committed. Many concurrent jobs share one commit (group commit), which is
what makes durable acknowledgements cheap.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from typing import Any, Final

from kameleoon_server.storage.base import EventRow, IngestResult, LinkRow

log = logging.getLogger("kameleoon_server.storage")

EVENT_COLUMNS: Final = (
    "site_id, identity, is_mapping, nonce, etype, time_ms, exp_id, var_id, goal_id, revenue, negative,"
    " cd_index, bot, line"
)
EVENT_WIDTH: Final = 14
LINK_COLUMNS: Final = "site_id, user_id, visitor_code, time_ms"
# Rows go in as multi-row INSERT statements of up to this many parameters. The sqlite3 module
# releases the GIL around each statement step and must win it back afterwards, which costs up to
# one thread switch interval while the event loop is busy: so the fewer statements the better.
MAX_PARAMETERS: Final = 32_000 if sqlite3.sqlite_version_info >= (3, 32) else 999


@lru_cache(maxsize=512)
def _insert_sql(table: str, columns: str, width: int, rows: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return f"INSERT OR IGNORE INTO {table} ({columns}) VALUES " + ",".join([one] * rows)


def insert_rows(conn: sqlite3.Connection, table: str, columns: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """Inserts rows (duplicates ignored) with as few statements as possible; returns how many were new."""
    if not rows:
        return 0
    width = len(rows[0])
    per_statement = max(1, MAX_PARAMETERS // width)
    before = conn.total_changes
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        conn.execute(_insert_sql(table, columns, width, len(part)), tuple(chain.from_iterable(part)))
    return conn.total_changes - before


def single_statement(batch: Sequence[Job], ingests: Sequence[IngestJob]) -> bool:
    """Whether a batch is one INSERT: then it runs without BEGIN/COMMIT (a statement is atomic)."""
    if len(ingests) != len(batch) or any(job.links for job in ingests):
        return False
    rows = sum(len(job.rows) for job in ingests)
    return rows > 0 and rows * EVENT_WIDTH <= MAX_PARAMETERS


@dataclass(slots=True)
class Job:
    """Work for the writer thread. ``run`` executes inside the batch transaction."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    weight: int = 1
    after_commit: Callable[[Any], None] | None = None  # runs on ``loop`` before the future resolves

    def run(self, conn: sqlite3.Connection) -> Any:
        raise NotImplementedError


@dataclass(slots=True)
class CallJob(Job):
    fn: Callable[[sqlite3.Connection], Any] = field(default=lambda conn: None)

    def run(self, conn: sqlite3.Connection) -> Any:
        return self.fn(conn)


@dataclass(slots=True)
class IngestJob(Job):
    """Events to store. All ingest jobs of one batch are written together (see Writer._commit)."""

    rows: Sequence[EventRow] = ()
    links: Sequence[LinkRow] = ()

    def run(self, conn: sqlite3.Connection) -> IngestResult:
        return ingest(conn, [self])


def ingest(conn: sqlite3.Connection, jobs: Sequence[IngestJob]) -> IngestResult:
    rows = [row for job in jobs for row in job.rows] if len(jobs) > 1 else jobs[0].rows
    links = [link for job in jobs for link in job.links]
    stored = insert_rows(conn, "events", EVENT_COLUMNS, rows)
    insert_rows(conn, "visitor_links", LINK_COLUMNS, links)
    return IngestResult(stored=stored, duplicates=len(rows) - stored)


@dataclass(slots=True)
class WriterCounters:
    batches: int = 0
    jobs: int = 0
    rows_stored: int = 0
    rows_duplicate: int = 0
    failed_jobs: int = 0
    largest_batch: int = 0


def _resolve(outcomes: list[tuple[Job, Any, BaseException | None]]) -> None:
    for job, result, error in outcomes:
        if error is None and job.after_commit is not None:
            try:
                job.after_commit(result)
            except Exception:
                log.exception("after-commit callback failed")
        if job.future.done():
            continue
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)


class Writer:
    """Owns the only writing connection. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        max_batch_weight: int = 50_000,
    ) -> None:
        self._connect = connect
        self._max_weight = max_batch_weight
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="kameleoon-sqlite-writer", daemon=True)
        self.counters = WriterCounters()
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    def submit(self, job: Job) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("the storage writer is not running")
        self._queue.put(job)

    def queue_depth(self) -> int:
        return self._queue.qsize()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        try:
            self._loop(conn)
        finally:
            conn.close()

    def _loop(self, conn: sqlite3.Connection) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch, weight, stop = [job], job.weight, False
            while weight < self._max_weight:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
                weight += more.weight
            try:
                self._commit(conn, batch)
            except Exception as exc:  # never let the writer die: fail this batch, go on
                log.exception("storage writer: unexpected error")
                self._dispatch([(job, None, exc) for job in batch])
            if stop:
                return

    def _commit(self, conn: sqlite3.Connection, batch: list[Job]) -> None:
        ingests = [job for job in batch if isinstance(job, IngestJob)]
        try:
            if single_statement(batch, ingests):  # the common case under load: one autocommit INSERT
                total: IngestResult | None = ingest(conn, ingests)
            else:
                conn.execute("BEGIN IMMEDIATE")
                total = ingest(conn, ingests) if ingests else None
            results = [total if isinstance(job, IngestJob) else job.run(conn) for job in batch]
            if conn.in_transaction:
                conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(batch) > 1:  # isolate the failing job: replay one transaction per job
                for job in batch:
                    self._commit(conn, [job])
                return
            log.warning("storage write failed: %s", exc)
            self.counters.failed_jobs += 1
            self._dispatch([(batch[0], None, exc)])
            return
        self._count(batch, results)
        self._dispatch([(job, result, None) for job, result in zip(batch, results, strict=True)])

    def _count(self, batch: list[Job], results: list[Any]) -> None:
        c = self.counters
        c.batches += 1
        c.jobs += len(batch)
        c.largest_batch = max(c.largest_batch, len(batch))
        total = next((r for r in results if isinstance(r, IngestResult)), None)
        if total is not None:  # shared by every ingest job of the batch
            c.rows_stored += total.stored
            c.rows_duplicate += total.duplicates

    @staticmethod
    def _dispatch(outcomes: list[tuple[Job, Any, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, Any, BaseException | None]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, items in by_loop.items():
            _call_soon(loop, items)


def _call_soon(loop: asyncio.AbstractEventLoop, items: list[tuple[Job, Any, BaseException | None]]) -> None:
    try:
        loop.call_soon_threadsafe(_resolve, items)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        log.debug("dropping %d results for a closed event loop", len(items))
