"""What clients get when storage cannot serve (a read-only or damaged SQLite file, a database
server down): a 503 that says to retry, and the reason in the server log, never a 500."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from kameleoon_server.storage import SQLiteStorage

from .conftest import start_server, stop_server


class FailingStorage(SQLiteStorage):
    """A SQLite storage whose site creation fails as on a read-only or damaged file (a test
    double of the storage interface)."""

    def __init__(self, path: Path, failure: sqlite3.Error) -> None:
        super().__init__(path)
        self.failure = failure

    async def create_site(self, code: str, model: bytes, now_ms: int) -> object:  # type: ignore[override]
        raise self.failure


@pytest.mark.parametrize(
    "failure",
    [
        sqlite3.OperationalError("attempt to write a readonly database"),
        sqlite3.DatabaseError("database disk image is malformed"),
    ],
)
def test_a_storage_failure_is_a_503_and_logged(
    tmp_path: Path, failure: sqlite3.Error, caplog: pytest.LogCaptureFixture
) -> None:
    srv, server, thread = start_server(FailingStorage(tmp_path / "k.db", failure))
    try:
        with caplog.at_level(logging.ERROR, logger="kameleoon_server"):
            answer = srv.admin("POST", "/api/sites", {"code": "shop"})
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert "storage unavailable" in answer.json()["error"]
        assert str(failure) in caplog.text
        assert srv.admin("GET", "/api/sites").status_code == 200  # the server still serves
    finally:
        stop_server(srv, server, thread)


def test_a_constraint_violation_is_still_a_server_error(tmp_path: Path) -> None:
    """An integrity error is a bug, not an unavailable storage: it stays a 500."""
    srv, server, thread = start_server(FailingStorage(tmp_path / "k.db", sqlite3.IntegrityError("UNIQUE")))
    try:
        assert srv.admin("POST", "/api/sites", {"code": "shop"}).status_code == 500
    finally:
        stop_server(srv, server, thread)
