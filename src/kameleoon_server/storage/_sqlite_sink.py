"""The ingest process's SQLite writer: every batch is one transaction.

Bodies of fast-path lines (``_wire.FastBody``) are inserted straight from their regex groups:
SQL converts the fields, which costs less than building a tuple per row in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Final, cast

from kameleoon_server._wire import ET_ACTIVITY, ET_CONVERSION, ET_EXPERIMENT, FastBody, Link, Row
from kameleoon_server.storage._sqlite_conn import Synchronous, connect
from kameleoon_server.storage._sqlite_writer import EVENT_COLUMNS, LINK_COLUMNS, MAX_PARAMETERS, insert_rows

_GROUPS: Final = 11
# VALUES columns: 1 line, 2 nonce, 3 experiment id, 4 variation id, 5 goal id, 6 revenue,
# 7 negative, 8 activity, 9 identity kind, 10 identity, 11 user agent (see _wire.FastLine).
_FAST_SELECT: Final = (
    f"INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) SELECT ?1, column10, column9 = 'mappingValue',"
    f" column2, CASE WHEN column3 <> '' THEN {ET_EXPERIMENT} WHEN column5 <> '' THEN {ET_CONVERSION}"
    f" ELSE {ET_ACTIVITY} END, ?2, CAST(NULLIF(column3, '') AS INTEGER),"
    " CAST(NULLIF(column4, '') AS INTEGER), CAST(NULLIF(column5, '') AS INTEGER),"
    " CAST(NULLIF(column6, '') AS REAL), CASE WHEN column5 <> '' THEN column7 = 'true' END, NULL, 0,"
    " column1 FROM (VALUES "
)
LINES_PER_STATEMENT: Final = (MAX_PARAMETERS - 2) // _GROUPS


@lru_cache(maxsize=256)
def fast_insert_sql(lines: int) -> str:
    values = []
    for n in range(lines):
        first = 3 + n * _GROUPS
        values.append("(" + ",".join(f"?{first + k}" for k in range(_GROUPS)) + ")")
    return _FAST_SELECT + ",".join(values) + ")"


class SQLiteSink:
    def __init__(self, path: str, synchronous: str) -> None:
        self._conn = connect(Path(path), cast(Synchronous, synchronous), writer=True, read_only=False)

    def write(self, rows: Sequence[Row], links: Sequence[Link], fast: Sequence[FastBody] = ()) -> int:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            for body in fast:
                self._insert_fast(body)
            stored = conn.total_changes - before + insert_rows(conn, "events", EVENT_COLUMNS, rows)
            insert_rows(conn, "visitor_links", LINK_COLUMNS, links)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return stored

    def _insert_fast(self, body: FastBody) -> None:
        for start in range(0, len(body.lines), LINES_PER_STATEMENT):
            part = body.lines[start : start + LINES_PER_STATEMENT]
            self._conn.execute(
                fast_insert_sql(len(part)), (body.site_id, body.time_ms, *chain.from_iterable(part))
            )

    def close(self) -> None:
        self._conn.close()
