"""Storage back ends behind one interface (:class:`Storage`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from kameleoon_server.storage._sqlite_conn import Synchronous
from kameleoon_server.storage.base import (
    AlreadyExists,
    BodySummary,
    ConfigChange,
    Conflict,
    CredentialRecord,
    EventRow,
    EventTypeCount,
    IngestResult,
    LinkRow,
    NotFound,
    SiteRecord,
    Storage,
    StorageError,
    StoredEvent,
    TooManyLines,
    VisitorEvents,
)
from kameleoon_server.storage.sqlite import SQLiteStorage

__all__ = [
    "AlreadyExists",
    "BodySummary",
    "ConfigChange",
    "Conflict",
    "CredentialRecord",
    "EventRow",
    "EventTypeCount",
    "IngestResult",
    "LinkRow",
    "NotFound",
    "SQLiteStorage",
    "SiteRecord",
    "Storage",
    "StorageError",
    "StoredEvent",
    "TooManyLines",
    "VisitorEvents",
    "open_storage",
]


def open_storage(url: str, synchronous: Synchronous = "normal") -> Storage:
    """A storage for ``sqlite:///path/to/file.db`` (or a plain file path) or ``postgresql://…``."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file") or (len(parts.scheme) == 1 and url[1:3] in (":\\", ":/")):
        return SQLiteStorage(Path(url.removeprefix("file:")), synchronous)
    if parts.scheme == "sqlite":
        # SQLAlchemy style: sqlite:///relative.db, sqlite:////absolute/path.db
        path = (
            url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
        )
        return SQLiteStorage(Path(path or "kameleoon.db"), synchronous)
    if parts.scheme in ("postgres", "postgresql"):
        try:
            from kameleoon_server.storage.postgres import PostgresStorage
        except ImportError as exc:
            extra = "pip install 'kameleoon-client-python[postgres]'"
            raise ValueError(f"PostgreSQL needs the [postgres] extra ({extra}): {exc}") from None
        return PostgresStorage(url)
    raise ValueError(
        f"unsupported database URL {url!r} (expected sqlite:///path/to/file.db or postgresql://…)"
    )
