"""Lets statements on different SQLite connections of this process run in parallel.

SQLite keeps memory statistics by default (``SQLITE_CONFIG_MEMSTATUS``): every allocation
takes one process-wide mutex. Debian's build also omits the lookaside allocator, so a statement
allocates for nearly every value it handles, and two statements running in two threads fight
over that mutex: measured on the results query, each then takes twice its CPU time, and the two
together finish later than one after the other. With the statistics off they run side by side
(2.2 times faster on 2 cores) and each is a little faster alone.

The setting can only change while SQLite is not initialised; Python's ``sqlite3`` module
initialises it on import, so :func:`disable_memory_statistics` shuts SQLite down and starts it
again, which is only allowed while no connection exists: it checks that SQLite holds no memory
(with statistics on, any open connection holds some) and otherwise does nothing. It is called
when a storage opens, before its first connection. Linux only (ctypes and ``sqlite3_config``'s
variadic call); elsewhere, or with a Python whose SQLite symbols are not reachable, it does
nothing: results are the same, partitions just do not overlap.

The ingest process, whose only connection is used by one thread at a time, also asks for
SQLite's multi-thread mode (``SQLITE_CONFIG_MULTITHREAD``): no mutex around each call on a
connection (about 3 % of the instructions of a fast-path insert). A process where threads
share a connection must not ask for it.
"""

from __future__ import annotations

import ctypes
import sqlite3
import sys
import threading
from typing import Final

__all__ = ["disable_memory_statistics"]

_SQLITE_CONFIG_MULTITHREAD: Final = 2
_SQLITE_CONFIG_MEMSTATUS: Final = 9
_lock = threading.Lock()
_state: list[bool] = []  # the outcome, once known


def disable_memory_statistics(*, multithread: bool = False) -> bool:
    """Turns SQLite's memory statistics off if nothing of SQLite is alive in this process, and
    with ``multithread`` the connection mutexes too (only if no thread ever uses a connection
    while another does). True when the statistics are off (now or already); the first outcome
    is kept."""
    with _lock:
        if not _state:
            _state.append(_disable(multithread))
        return _state[0]


def _disable(multithread: bool) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import _sqlite3

        lib = ctypes.CDLL(_sqlite3.__file__)
        used, shutdown = lib.sqlite3_memory_used, lib.sqlite3_shutdown
        config, initialize = lib.sqlite3_config, lib.sqlite3_initialize
    except (ImportError, OSError, AttributeError):
        return False
    used.restype = ctypes.c_int64
    if used() != 0:
        return False  # a connection (or statement) is alive: too late
    probe = sqlite3.connect(":memory:")
    try:
        counting = used() != 0
    finally:
        probe.close()
    if not counting:
        return True  # already off
    if used() != 0 or shutdown() != 0:
        return False
    done = config(_SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == 0
    if multithread:
        config(_SQLITE_CONFIG_MULTITHREAD)  # refused (harmlessly) by a single-threaded build
    initialize()
    return bool(done)
