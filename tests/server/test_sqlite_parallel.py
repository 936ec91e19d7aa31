"""SQLite's memory statistics switched off so that connections of one process run in parallel."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, sqlite3, _sqlite3
from kameleoon_server.storage._sqlite_parallel import disable_memory_statistics
lib = ctypes.CDLL(_sqlite3.__file__)
lib.sqlite3_memory_used.restype = ctypes.c_int64
alive = sqlite3.connect(":memory:") if {alive} else None
print(disable_memory_statistics(multithread={multithread}), disable_memory_statistics())
conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE t (x)")
conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
print(lib.sqlite3_memory_used() == 0, conn.execute("SELECT sum(x) FROM t").fetchone()[0])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
@pytest.mark.parametrize("multithread", [False, True], ids=["serialized", "multithread"])
@pytest.mark.parametrize("alive", [False, True], ids=["fresh-process", "connection-open"])
def test_statistics_go_off_only_when_no_connection_exists(alive: bool, multithread: bool) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(alive=alive, multithread=multithread)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    if alive:
        assert out == ["False", "False", "False", "499500"]  # left alone: a connection was open
    else:
        assert out == ["True", "True", "True", "499500"]  # off, and SQLite works as before
