"""The storage interface every back end implements (SQLite now, PostgreSQL next).

Callers only see this module: records, errors and the :class:`Storage` protocol. SQL lives in the
implementations. Two promises every implementation keeps:

* ``ingest`` and ``ingest_body`` return only once the rows are committed (durable across a crash
  of the process);
* every committed configuration change (``create_site``, ``update_site``, ``delete_site``) is
  announced to the listeners registered with ``subscribe``, on the event loop that opened the
  storage, including changes made by other server instances sharing the same database when the
  back end can see them (PostgreSQL: LISTEN/NOTIFY).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kameleoon_server._wire import BodySummary as BodySummary  # the answer of ingest_body
from kameleoon_server._wire import Link, Row
from kameleoon_server._wire import TooManyLines as TooManyLines
from kameleoon_server.results.query import SumsAnswer, SumsQuery

EventRow = Row
"""One event: (site_id, identity, is_mapping, nonce, etype, time_ms, exp_id, var_id, goal_id,
revenue, negative, cd_index, bot, line) — the column order of the ``events`` table."""
LinkRow = Link
"""One identity link: (site_id, user_id, visitor_code, time_ms)."""


class StorageError(Exception):
    """Base class of storage errors."""


class NotFound(StorageError):
    """The site (or other record) does not exist."""


class AlreadyExists(StorageError):
    """A record with that key exists already."""


class Conflict(StorageError):
    """Optimistic concurrency: the site changed since it was read."""


@dataclass(frozen=True, slots=True)
class SiteRecord:
    id: int
    code: str
    version: int  # +1 on every change
    updated_ms: int  # configuration timestamp; strictly increasing, in distinct whole seconds
    model: bytes  # JSON document of kameleoon_server.model.SiteModel

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> SiteRecord:
        """The record of a ``SELECT {SITE_COLUMNS} FROM sites`` row."""
        return cls(id=row[0], code=row[1], version=row[2], updated_ms=row[3], model=bytes(row[4]))


SITE_COLUMNS = "id, code, version, updated_ms, model"  # in the order of SiteRecord.from_row


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    client_id: str
    site_id: int
    secret_hash: str  # hex SHA-256 of the secret
    created_ms: int


EVENT_COLUMNS = "id, identity, is_mapping, nonce, etype, time_ms, bot, line"  # a StoredEvent's


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    identity: str
    is_mapping: bool
    nonce: str
    etype: int
    time_ms: int
    bot: bool
    line: str

    @classmethod
    def received_in_order(cls, rows: Sequence[Sequence[Any]]) -> list[StoredEvent]:
        """The events of ``SELECT`` :data:`EVENT_COLUMNS` rows, in the order they were
        received: by reception time, then id. (Ids alone are not that order: one write may
        store a later request's lines before an earlier one's.)"""
        events = [cls(r[0], r[1], bool(r[2]), r[3], r[4], r[5], bool(r[6]), r[7]) for r in rows]
        events.sort(key=_reception)
        return events


def _reception(event: StoredEvent) -> tuple[int, int]:
    return event.time_ms, event.id


@dataclass(frozen=True, slots=True)
class VisitorEvents:
    """The answer of :meth:`Storage.visitor_events`: the events kept, oldest first, and whether
    older ones were left out (by the event limit or the byte budget)."""

    events: list[StoredEvent]
    truncated: bool


def newest_within(sizes: Sequence[Sequence[int]], limit: int, max_bytes: int) -> tuple[list[int], bool]:
    """The ids of the newest events that fit ``limit`` and ``max_bytes``, from ``(id, line
    bytes)`` rows newest first (at most ``limit + 1`` of them), and whether any was left out."""
    kept: list[int] = []
    total = 0
    for event_id, size in sizes[:limit]:
        total += size
        if total > max_bytes:
            return kept, True
        kept.append(event_id)
    return kept, len(sizes) > limit


@dataclass(frozen=True, slots=True)
class ConfigChange:
    site_id: int
    site_code: str
    version: int
    updated_ms: int
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class IngestResult:
    """Rows written by one storage transaction (for counters)."""

    stored: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class EventTypeCount:
    etype: int
    events: int
    visitors: int


Listener = Callable[[ConfigChange], None]


class Storage(Protocol):
    """Persistent state of the server. All methods are coroutines run on one event loop."""

    async def open(self) -> None:
        """Connects, applies pending schema migrations and starts background workers."""

    async def close(self) -> None:
        """Flushes pending writes and releases every resource. Idempotent."""

    # -- sites and their configuration model ------------------------------------------------
    async def create_site(self, code: str, model: bytes, now_ms: int) -> SiteRecord:
        """Raises AlreadyExists."""

    async def get_site(self, code: str) -> SiteRecord | None: ...

    async def list_sites(self) -> list[SiteRecord]: ...

    async def update_site(self, code: str, base_version: int, model: bytes, now_ms: int) -> SiteRecord:
        """Replaces the model if the site is still at ``base_version``; raises Conflict or NotFound."""

    async def delete_site(self, code: str) -> bool:
        """Deletes the site with its credentials, remote data and events."""

    # -- API credentials ---------------------------------------------------------------------
    async def add_credential(self, credential: CredentialRecord) -> None: ...

    async def get_credential(self, client_id: str) -> CredentialRecord | None: ...

    async def list_credentials(self, site_id: int) -> list[CredentialRecord]: ...

    async def delete_credential(self, client_id: str) -> bool: ...

    # -- remote data (GET /map/map) ----------------------------------------------------------
    async def put_remote_data(self, site_id: int, key: str, value: bytes, now_ms: int) -> None: ...

    async def get_remote_data(self, site_id: int, key: str) -> bytes | None: ...

    async def list_remote_data(self, site_id: int, prefix: str, limit: int) -> list[str]: ...

    async def delete_remote_data(self, site_id: int, key: str) -> bool: ...

    # -- tracking events ---------------------------------------------------------------------
    async def ingest(self, rows: Sequence[EventRow], links: Sequence[LinkRow]) -> None:
        """Stores rows, ignoring those whose (site_id, identity, nonce) exists. Durable on return.

        Implementations may write many callers' rows in one transaction; ``counters()`` reports
        how many rows were new and how many were duplicates."""

    async def ingest_body(self, site_id: int, body: bytes, time_ms: int, max_lines: int) -> BodySummary:
        """Parses a ``POST /visit/events`` body (``_wire.parse_events_bytes``) and stores its rows
        and links like :meth:`ingest`; durable on return. Raises TooManyLines (nothing stored)."""

    def ingest_body_soon(
        self, site_id: int, body: bytes, time_ms: int, max_lines: int
    ) -> asyncio.Future[BodySummary] | None:
        """:meth:`ingest_body` without a coroutine, for the server's hot path: the future of its
        answer when the body can be handed over at once (the storage's ingest process runs),
        else None (then call :meth:`ingest_body`). Event-loop thread only."""

    async def visitor_events(
        self, site_id: int, identities: Sequence[str], limit: int, max_bytes: int
    ) -> VisitorEvents:
        """The events of these identities stored last (the highest ids), at most ``limit`` of
        them and at most ``max_bytes`` of lines (UTF-8), oldest first (in the order they were
        received, :meth:`StoredEvent.received_in_order`). Only the kept lines are loaded."""

    async def linked_visitors(self, site_id: int, user_id: str, limit: int) -> list[str]:
        """The ``limit`` visitor codes linked last to a user id by mapping-identifier custom
        data, latest first."""

    async def event_counts(self, site_id: int) -> list[EventTypeCount]: ...

    async def experiment_sums(self, query: SumsQuery) -> SumsAnswer:
        """Sufficient statistics of an experiment's goal metrics per variation (x dimension
        value), computed by the database: the statement of ``kameleoon_server.results.sql``
        run in the back end's dialect, as one statement or cut into visitor ranges whose sums
        add up (``sql.statements`` then ``sql.parse_answers``; ranges may run in parallel).
        Never returns visitor-level data."""

    # -- server settings (key/value) ---------------------------------------------------------
    async def get_setting(self, key: str) -> str | None: ...

    async def set_setting(self, key: str, value: str) -> None: ...

    async def init_setting(self, key: str, value: str) -> str:
        """Stores ``value`` unless the key has one already; returns the stored value (so
        instances starting together agree on it)."""

    # -- configuration change notification ---------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Registers a listener for committed configuration changes; returns an unsubscribe."""

    def counters(self) -> dict[str, int]:
        """Implementation counters (batches, rows, queue depth, ...)."""
