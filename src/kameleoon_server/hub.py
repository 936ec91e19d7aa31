"""Fan-out of configuration changes to the connected SSE streams of each site."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from kameleoon_server.storage import ConfigChange


class ChangeHub:
    """Each stream gets its own small queue; a slow stream only ever holds the latest change."""

    def __init__(self) -> None:
        self._streams: defaultdict[str, set[asyncio.Queue[ConfigChange | None]]] = defaultdict(set)
        self.connections = 0

    def open(self, site_code: str) -> asyncio.Queue[ConfigChange | None]:
        queue: asyncio.Queue[ConfigChange | None] = asyncio.Queue(maxsize=1)
        self._streams[site_code].add(queue)
        self.connections += 1
        return queue

    def close(self, site_code: str, queue: asyncio.Queue[ConfigChange | None]) -> None:
        streams = self._streams.get(site_code)
        if streams is not None and queue in streams:
            streams.discard(queue)
            self.connections -= 1
            if not streams:
                del self._streams[site_code]

    def publish(self, change: ConfigChange) -> int:
        """Queues the change for every stream of the site; returns how many streams got it."""
        streams = self._streams.get(change.site_code, ())
        for queue in streams:
            if queue.full():
                queue.get_nowait()  # only the latest timestamp matters
            queue.put_nowait(change)
        return len(streams)

    def shutdown(self) -> None:
        """Ends every stream (server shutdown)."""
        for streams in self._streams.values():
            for queue in streams:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)
