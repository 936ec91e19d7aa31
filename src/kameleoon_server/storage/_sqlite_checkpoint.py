"""WAL checkpoints in their own thread, so the writer never pays for them.

The writer runs with ``wal_autocheckpoint=0``; this thread copies the WAL back into the database
(a PASSIVE checkpoint does not block the writer) once the WAL passes a size threshold. If the WAL
keeps growing anyway, a RESTART checkpoint briefly holds the writer back (back-pressure).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("kameleoon_server.storage")


class Checkpointer:
    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        wal_path: Path,
        threshold_bytes: int = 64 * 1024 * 1024,
        interval: float = 1.0,
    ) -> None:
        self._connect = connect
        self._wal = wal_path
        self._threshold = threshold_bytes
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="kameleoon-sqlite-checkpoint", daemon=True)
        self.checkpoints = 0

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """Called after each commit: wakes the thread when the WAL may need a checkpoint."""
        self._wake.set()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stopping = True
            self._wake.set()
            self._thread.join()

    def _wal_size(self) -> int:
        try:
            return self._wal.stat().st_size
        except OSError:
            return 0

    def _run(self) -> None:
        conn = self._connect()
        try:
            while not self._stopping:
                self._wake.wait(self._interval)
                self._wake.clear()
                if self._wal_size() > self._threshold:
                    self._checkpoint(conn, "RESTART" if self._wal_size() > 8 * self._threshold else "PASSIVE")
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> None:
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            self.checkpoints += 1
        except sqlite3.Error as exc:  # e.g. busy: the next round retries
            log.warning("WAL checkpoint (%s) failed: %s", mode, exc)
