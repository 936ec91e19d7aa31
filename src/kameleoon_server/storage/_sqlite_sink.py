"""The ingest process's SQLite writer: every batch is one transaction.

Bodies of fast-path lines (``_wire.FastBody``) are inserted straight from their regex groups:
SQL converts the fields, which costs less than building a tuple per row in Python. The lines of
all the fast bodies of a batch go into one statement (several only past ``MAX_FAST_ROWS``); a
batch that is nothing else needs no BEGIN/COMMIT, a statement being atomic. Each statement
gives up the interpreter lock while SQLite runs it and must win it back from the thread that
parses the next bodies, so the fewer statements per commit the better.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Final, cast

from kameleoon_server._wire import ET_ACTIVITY, ET_CONVERSION, ET_EXPERIMENT, FastBody, Link, Row
from kameleoon_server.storage._sqlite_checkpoint import restart
from kameleoon_server.storage._sqlite_conn import Synchronous, connect
from kameleoon_server.storage._sqlite_writer import EVENT_COLUMNS, LINK_COLUMNS, MAX_PARAMETERS, insert_rows

WIDTH: Final = 13
# VALUES columns: 1 site id, 2 receive time, then the groups of the line (see _wire.FastLine):
# 3 line, 4 nonce, 5 experiment id, 6 variation id, 7 goal id, 8 revenue, 9 negative,
# 10 activity, 11 identity kind, 12 identity, 13 user agent. Rows of NULLs pad a statement to
# its size (see ``statement_rows``) and are skipped.
_FAST_SELECT: Final = (
    f"INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) SELECT column1, column12, column11 = 'mappingValue',"
    f" column4, CASE WHEN column5 <> '' THEN {ET_EXPERIMENT} WHEN column7 <> '' THEN {ET_CONVERSION}"
    f" ELSE {ET_ACTIVITY} END, column2, CAST(NULLIF(column5, '') AS INTEGER),"
    " CAST(NULLIF(column6, '') AS INTEGER), CAST(NULLIF(column7, '') AS INTEGER),"
    " CAST(NULLIF(column8, '') AS REAL), CASE WHEN column7 <> '' THEN column9 = 'true' END, NULL, 0,"
    " column3 FROM (VALUES {values}) WHERE column3 IS NOT NULL"
)
MAX_FAST_ROWS: Final = 1 << (MAX_PARAMETERS // WIDTH).bit_length() - 1
"""Rows per statement at most: the largest power of two within SQLite's parameter limit."""
_PADDING: Final = (None,) * WIDTH


def statement_rows(lines: int) -> int:
    """The size of the statement that takes ``lines`` rows (1 to ``MAX_FAST_ROWS``): ``lines``
    rounded up to a 16th of its power of two, so that about a hundred statements (each prepared
    once, then cached) serve every batch, with at most 1/16 of padding."""
    step = 1 << max(lines.bit_length() - 5, 0)
    return -(-lines // step) * step


@lru_cache(maxsize=256)
def fast_insert_sql(rows: int) -> str:
    one = "(" + ",".join("?" * WIDTH) + ")"
    return _FAST_SELECT.format(values=",".join([one] * rows))


def fast_parameters(fast: Sequence[FastBody]) -> list[str | int | None]:
    """The VALUES parameters of every line of ``fast``, in order."""
    parameters: list[str | int | None] = []
    for body in fast:
        head = (body.site_id, body.time_ms)
        for line in body.lines:
            parameters += head
            parameters += line
    return parameters


class SQLiteSink:
    def __init__(self, path: str, synchronous: str) -> None:
        self._conn = connect(
            Path(path), cast(Synchronous, synchronous), writer=True, read_only=False, cached_statements=256
        )
        self.rewinds = 0

    def write(self, rows: Sequence[Row], links: Sequence[Link], fast: Sequence[FastBody] = ()) -> int:
        conn = self._conn
        parameters = fast_parameters(fast)
        before = conn.total_changes
        if not rows and not links and 0 < len(parameters) <= MAX_FAST_ROWS * WIDTH:
            self._insert_fast(parameters)  # one statement: atomic, committed on its own
            return conn.total_changes - before
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._insert_fast(parameters)
            stored = conn.total_changes - before + insert_rows(conn, "events", EVENT_COLUMNS, rows)
            insert_rows(conn, "visitor_links", LINK_COLUMNS, links)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return stored

    def _insert_fast(self, parameters: list[str | int | None]) -> None:
        per_statement = MAX_FAST_ROWS * WIDTH
        for start in range(0, len(parameters), per_statement):
            part = (
                parameters[start : start + per_statement] if len(parameters) > per_statement else parameters
            )
            lines = len(part) // WIDTH
            size = statement_rows(lines)
            if size > lines:
                part += _PADDING * (size - lines)
            self._conn.execute(fast_insert_sql(size), part)

    def rewind(self) -> None:
        state = restart(self._conn)  # busy (a reader on the WAL): the checkpointer asks again
        self.rewinds += state is not None and not state.busy

    def close(self) -> None:
        self._conn.close()
