"""Ingest of a whole tracking body for storages without an ingest process."""

from __future__ import annotations

from kameleoon_server._wire import BodySummary, parse_events_bytes
from kameleoon_server.storage.base import Storage


async def ingest_in_process(
    storage: Storage, site_id: int, body: bytes, time_ms: int, max_lines: int
) -> BodySummary:
    """Parses on the event loop, then :meth:`Storage.ingest`. Raises TooManyLines."""
    parsed = parse_events_bytes(body, site_id, time_ms, max_lines)
    await storage.ingest(parsed.rows, parsed.links)
    return parsed.summary()
