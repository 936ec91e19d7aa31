"""WAL checkpoints in their own thread, so the writer never pays for them.

The writer runs with ``wal_autocheckpoint=0``. Every ``interval`` this thread copies the WAL's
new frames back into the database with a PASSIVE checkpoint, which never blocks the writer. A
PASSIVE checkpoint alone cannot keep the WAL small under steady writes: the writer rewinds the
WAL to its start only when every frame has been copied back, and by the time a checkpoint ends
the writer has appended more. So once the WAL holds more than ``threshold_bytes``, a second
PASSIVE pass copies what came in during the first, and a RESTART checkpoint copies the few
frames left while it holds the writer back, letting the next transaction rewind the WAL. The
RESTART waits at most ``RESTART_WAIT_MS`` for readers still using the WAL (a long results query,
say) and otherwise gives up until the next round: ingest is never held back for the length of a
query.

A writer that never pauses would starve that RESTART: SQLite grants the write lock to whoever
asks first, and the checkpoint thread polls for it (sleeping 1, 2, 5, … ms) while the writer
takes it again microseconds after each commit. So when the writer is the ingest process, the
thread does not RESTART itself but asks the writer (``rewind``, True once asked), which runs
the RESTART between two of its transactions, with nothing to wait for but readers; the thread
starts no checkpoint meanwhile, until its next round.

The WAL's size is read from the checkpoints' own counts, not from the file, whose size stays at
its largest after a rewind (the writers' ``journal_size_limit`` trims it back to
``_sqlite_conn.WAL_SIZE_LIMIT`` when they rewind).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kameleoon_server.storage._sqlite_conn import BUSY_TIMEOUT_MS, WAL_SIZE_LIMIT

log = logging.getLogger("kameleoon_server.storage")
RESTART_WAIT_MS: Final = 50


@dataclass(frozen=True, slots=True)
class WalState:
    """What ``PRAGMA wal_checkpoint`` reports: whether it was blocked, the WAL's frames and how
    many of them are now in the database."""

    busy: bool
    frames: int
    copied: int


class Checkpointer:
    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        wal_path: Path,
        threshold_bytes: int = WAL_SIZE_LIMIT,
        interval: float = 0.25,
        rewind: Callable[[], bool] | None = None,
    ) -> None:
        self._connect = connect
        self._rewind = rewind
        self._wal = wal_path
        self._threshold = threshold_bytes
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kameleoon-sqlite-checkpoint", daemon=True)
        self.checkpoints = 0
        self.restarts = 0  # made here, or asked of the writer (``rewind``)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()

    def _wal_size(self) -> int:
        try:
            return self._wal.stat().st_size
        except OSError:
            return 0

    def _run(self) -> None:
        conn = self._connect()
        try:
            while not self._stop.wait(self._interval):
                if self._wal_size() > 0:
                    self.round(conn)
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def round(self, conn: sqlite3.Connection) -> WalState | None:
        """One round: copy new frames back; rewind the WAL once it is past the threshold."""
        state = self._checkpoint(conn, "PASSIVE")
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        if state is None or state.frames * page <= self._threshold:
            return state
        self._checkpoint(conn, "PASSIVE")  # what the writer appended during the first pass
        if self._rewind is not None and self._rewind():
            self.restarts += 1  # the writer runs the RESTART before the next round
            return state
        state = restart(conn)
        self.checkpoints += state is not None
        if state is not None and not state.busy:
            self.restarts += 1
        return state

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> WalState | None:
        state = checkpoint(conn, mode)
        self.checkpoints += state is not None
        return state


def checkpoint(conn: sqlite3.Connection, mode: str) -> WalState | None:
    """``PRAGMA wal_checkpoint(mode)``; None (logged) if SQLite refused it."""
    try:
        busy, frames, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    except sqlite3.Error as exc:  # e.g. busy: the next round retries
        log.warning("WAL checkpoint (%s) failed: %s", mode, exc)
        return None
    return WalState(bool(busy), int(frames), int(copied))


def restart(conn: sqlite3.Connection, wait_ms: int = RESTART_WAIT_MS) -> WalState | None:
    """A RESTART checkpoint that waits at most ``wait_ms`` for locks and readers (then the
    connection's usual wait again)."""
    conn.execute(f"PRAGMA busy_timeout={wait_ms}")
    try:
        return checkpoint(conn, "RESTART")
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
