"""Bulk event writes to PostgreSQL.

A batch first goes straight into ``events`` with COPY (the cheapest way in). If any row exists
already, the unique (site_id, identity, nonce) index fails that transaction, and the batch is
written again the careful way: COPY into a session-local staging table, then one
``INSERT … SELECT … ON CONFLICT DO NOTHING`` (which costs PostgreSQL about a third more per row,
so it is kept for batches that are resent). Either way ingest is idempotent, across instances too.

Used by the ingest process (synchronous psycopg) and, in a worker thread, by
``PostgresStorage.ingest``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from operator import itemgetter
from typing import Any, Final

import psycopg
from psycopg import errors

from kameleoon_server._wire import ET_ACTIVITY, ET_CONVERSION, ET_EXPERIMENT, FastBody, Link, Row
from kameleoon_server.storage._sqlite_writer import EVENT_COLUMNS, LINK_COLUMNS

log = logging.getLogger("kameleoon_server.storage")
_STAGING: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS events_in (site_id bigint, identity text, is_mapping smallint,"
    " nonce text, etype smallint, time_ms bigint, exp_id bigint, var_id bigint, goal_id bigint,"
    " revenue double precision, negative smallint, cd_index bigint, bot smallint, line text)"
    " ON COMMIT DELETE ROWS"
)
_COPY: Final = f"COPY events_in ({EVENT_COLUMNS}) FROM STDIN"
_COPY_STRAIGHT: Final = f"COPY events ({EVENT_COLUMNS}) FROM STDIN"
_MOVE: Final = (
    f"INSERT INTO events ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS} FROM events_in"
    " ON CONFLICT (site_id, identity, nonce) DO NOTHING"
)
_LINK: Final = (
    f"INSERT INTO visitor_links ({LINK_COLUMNS}) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (site_id, user_id, visitor_code) DO NOTHING"
)
ATTEMPTS: Final = 5  # two instances storing the same resent batch can deadlock on the unique index


def _escape(text: str) -> str:
    """A value for COPY's text format (the fast-path layout already excludes CR and LF)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t")


def _keyed_rows(body: FastBody, out: list[tuple[str, str]]) -> None:
    """Appends (visitor, row in COPY's text format) for every line of ``body``."""
    head, now = f"{body.site_id}\t", body.time_ms
    exposure = f"\t{ET_EXPERIMENT}\t{now}\t"
    conversion = f"\t{ET_CONVERSION}\t{now}\t\\N\t\\N\t"
    activity = f"\t{ET_ACTIVITY}\t{now}\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t0\t"
    add = out.append
    for line, nonce, exp_id, var_id, goal, revenue, negative, _, kind, identity, _ in body.lines:
        if "\\" in line or "\t" in line:
            line, identity = _escape(line), _escape(identity)
        start = f"{head}{identity}\t{int(kind == 'mappingValue')}\t{nonce}"
        if exp_id:
            add((identity, f"{start}{exposure}{exp_id}\t{var_id}\t\\N\t\\N\t\\N\t\\N\t0\t{line}\n"))
        elif goal:
            negative = "1" if negative == "true" else "0"
            add((identity, f"{start}{conversion}{goal}\t{revenue}\t{negative}\t\\N\t0\t{line}\n"))
        else:
            add((identity, f"{start}{activity}{line}\n"))


def copy_text(bodies: Sequence[FastBody]) -> str:
    """The rows of fast-path bodies in COPY's text format, built from the lines' own digits: the
    fast-path pattern admits only integers that fit a bigint and decimals that PostgreSQL reads
    as Python's ``float`` does (both round correctly), so nothing is converted here. About a fifth
    of the CPU time of ``write_row`` on the tuples of :meth:`FastBody.rows`.

    The rows come out in visitor order, by a stable sort (each visitor's rows keep their order,
    and so their ids do). Every index of ``events`` has the visitor among its first columns, so
    consecutive inserts then land on neighbouring index pages. That matters when a request
    holds many visitors with a line or two each, as an SDK's flush from a busy application
    does: 14–16 % less PostgreSQL CPU per row than arrival order (``bench/pg_copy.py``, random
    codes, a visitor per line, commits of 2,400 rows). Requests of a few visitors with several
    lines each already keep each visitor's lines together, and gain nothing measurable."""
    keyed: list[tuple[str, str]] = []
    for body in bodies:
        _keyed_rows(body, keyed)
    keyed.sort(key=itemgetter(0))
    return "".join([row for _, row in keyed])


def _copy(cur: Any, sql: str, rows: Sequence[Row], fast: Sequence[FastBody]) -> None:
    with cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
        if fast:
            copy.write(copy_text(fast))


def write_events(
    conn: Any,
    rows: Sequence[Row],
    links: Sequence[Link],
    straight: bool = False,
    fast: Sequence[FastBody] = (),
) -> int:
    """Writes ``rows`` and the rows of ``fast`` in the connection's current transaction; returns
    how many rows were new. ``straight``: COPY into ``events`` (raises UniqueViolation if any
    row exists)."""
    stored = 0
    if rows or fast:
        with conn.cursor() as cur:
            if straight:
                _copy(cur, _COPY_STRAIGHT, rows, fast)
                stored = len(rows) + sum(len(body.lines) for body in fast)
            else:
                _copy(cur, _COPY, rows, fast)
                cur.execute(_MOVE)
                stored = max(cur.rowcount, 0)
    if links:
        with conn.cursor() as cur:
            cur.executemany(_LINK, links)
    return stored


APPLICATION_NAME: Final = "kameleoon-ingest"


class PostgresSink:
    """One connection; when it is lost, the batch is written again on a new one."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn = self._connect()

    def _connect(self) -> Any:
        conn = psycopg.connect(self._url, autocommit=True, application_name=APPLICATION_NAME)
        conn.execute(_STAGING)
        return conn

    def write(self, rows: Sequence[Row], links: Sequence[Link], fast: Sequence[FastBody] = ()) -> int:
        if self._conn.broken or self._conn.closed:
            self._reconnect()
        try:
            return self._write(rows, links, fast)
        except psycopg.OperationalError:
            if not (self._conn.broken or self._conn.closed):
                raise
        # The connection was lost (a database restart, a killed backend): once more on a new one.
        # If the lost transaction did commit, the unique key turns the rows into duplicates.
        log.warning("ingest lost its database connection; writing the batch again on a new one")
        self._reconnect()
        return self._write(rows, links, fast)

    def _reconnect(self) -> None:
        self._conn.close()
        self._conn = self._connect()

    def _write(self, rows: Sequence[Row], links: Sequence[Link], fast: Sequence[FastBody]) -> int:
        # without links, one COPY: atomic on its own, with no BEGIN and COMMIT round trips
        try:
            with self._conn.transaction() if links else nullcontext():
                return write_events(self._conn, rows, links, straight=True, fast=fast)
        except errors.UniqueViolation:
            pass  # a resent batch (or one already stored by another instance)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._conn.transaction():
                    return write_events(self._conn, rows, links, fast=fast)
            except (errors.DeadlockDetected, errors.SerializationFailure):
                if attempt == ATTEMPTS:
                    raise
                log.info("event batch deadlocked with another writer; retrying")
        raise AssertionError("unreachable")

    def rewind(self) -> None:
        pass  # no WAL of ours to rewind

    def close(self) -> None:
        self._conn.close()
