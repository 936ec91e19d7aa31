"""Opening SQLite connections with the server's settings (shared by the server and its ingest process)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

Synchronous = Literal["normal", "full"]
BUSY_TIMEOUT_MS = 30_000
"""How long a connection waits for a lock before SQLite reports it busy."""
WAL_SIZE_LIMIT = 256 * 1024 * 1024
"""Bytes a writer leaves of the WAL file when it rewinds the WAL (see ``_sqlite_checkpoint``)."""


def connect(
    path: Path,
    synchronous: Synchronous,
    *,
    writer: bool,
    read_only: bool = True,
    cached_statements: int = 128,
) -> sqlite3.Connection:
    """A connection in WAL mode; a writer never checkpoints itself (see ``_sqlite_checkpoint``)."""
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000,
        cached_statements=cached_statements,
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA cache_size=-65536")
    if writer:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    elif read_only:
        conn.execute("PRAGMA query_only=ON")
    return conn
