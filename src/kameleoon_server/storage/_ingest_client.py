"""The server's side of the ingest process (``_ingest_process``): starts it, sends it bodies,
resolves each request's future when the process says its rows are committed.

If the process dies, the requests waiting for it fail (the server answers 503, SDKs resend with
the same nonces) and the next request starts a new one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from kameleoon_server._wire import BodySummary, TooManyLines
from kameleoon_server.storage import _ingest_proto as proto
from kameleoon_server.storage.base import StorageError

log = logging.getLogger("kameleoon_server.storage")
START_TIMEOUT_SECONDS = 60.0
_COMMAND = (sys.executable, "-m", "kameleoon_server.storage._ingest_process")
TARGET_ENV = "KAMELEOON_INGEST_DATABASE"
# Handing a socket to a child process (pass_fds) is POSIX-only: elsewhere bodies are parsed and
# written in the server process itself.
INGEST_PROCESS_AVAILABLE = sys.platform != "win32"


@dataclass(slots=True)
class IngestCounters:
    batches: int = 0
    requests: int = 0
    rows_stored: int = 0
    rows_duplicate: int = 0
    largest_batch: int = 0
    starts: int = 0


class _Channel(asyncio.Protocol):
    """The socket to one ingest process: frames in, futures resolved."""

    def __init__(self, counters: IngestCounters) -> None:
        self.counters = counters
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending: dict[int, asyncio.Future[BodySummary]] = {}
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._outgoing: list[bytes] = []

    def send(self, frame: bytes) -> None:
        """Queues a frame; the frames of one event-loop iteration leave in one write."""
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(frame)

    def _flush(self) -> None:
        frames, self._outgoing = self._outgoing, []
        if self.transport is not None and not self.closed:
            self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for frame in proto.take_frames(self._buffer):
            self._on_message(proto.decode_message(frame))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = StorageError("the ingest process stopped")
        if not self.ready.done():
            self.ready.set_exception(error)
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    def _on_message(self, message: Any) -> None:
        if message == proto.READY:
            if not self.ready.done():
                self.ready.set_result(None)
            return
        stored, duplicates, replies = message
        c = self.counters
        c.batches += 1
        c.requests += len(replies)
        c.rows_stored += stored
        c.rows_duplicate += duplicates
        c.largest_batch = max(c.largest_batch, len(replies))
        for reply in replies:
            future = self.pending.pop(reply[0], None)
            if future is not None and not future.done():
                _resolve(future, reply)


def _resolve(future: asyncio.Future[BodySummary], reply: proto.Reply) -> None:
    status = reply[1]
    if status == proto.OK:
        future.set_result(proto.summary_of(reply))
    elif status == proto.TOO_MANY_LINES:
        future.set_exception(TooManyLines(reply[8]))
    else:
        future.set_exception(StorageError(f"events could not be stored: {reply[8]}"))


class IngestProcess:
    """Owns one ingest process for a database (``target`` as the process understands it)."""

    def __init__(self, target: str, synchronous: str = "normal") -> None:
        self._target = target
        self._synchronous = synchronous
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: _Channel | None = None
        self._starting = asyncio.Lock()
        self._ids = itertools.count(1)
        self.counters = IngestCounters()

    async def start(self) -> None:
        async with self._starting:
            if self._channel is not None and not self._channel.closed:
                return
            await self._stop_process()
            ours, theirs = socket.socketpair()
            with theirs:
                self._proc = subprocess.Popen(
                    [*_COMMAND, str(theirs.fileno()), self._synchronous],
                    pass_fds=[theirs.fileno()],
                    # the database URL may hold a password: the environment, unlike the command
                    # line, is readable by the same user only
                    env={**os.environ, TARGET_ENV: self._target},
                    stdin=subprocess.DEVNULL,
                )
            loop = asyncio.get_running_loop()
            _, channel = await loop.create_connection(lambda: _Channel(self.counters), sock=ours)
            self._channel = channel
            self.counters.starts += 1
            await asyncio.wait_for(asyncio.shield(channel.ready), START_TIMEOUT_SECONDS)

    async def submit(self, site_id: int, body: bytes, time_ms: int, max_lines: int) -> BodySummary:
        future = self.submit_soon(site_id, body, time_ms, max_lines)
        if future is None:
            log.warning("starting the ingest process again")
            await self.start()
            future = self.submit_soon(site_id, body, time_ms, max_lines)
            if future is None:
                raise StorageError("the ingest process stopped")
        return await future

    def submit_soon(
        self, site_id: int, body: bytes, time_ms: int, max_lines: int
    ) -> asyncio.Future[BodySummary] | None:
        """Sends a body to the running process and returns the future of its answer; None when
        the process is not running (:meth:`submit` starts it). Event-loop thread only."""
        channel = self._channel
        if channel is None or channel.closed:
            return None
        request_id = next(self._ids) & 0xFFFFFFFF
        future: asyncio.Future[BodySummary] = asyncio.get_running_loop().create_future()
        channel.pending[request_id] = future
        channel.send(proto.encode_request(request_id, site_id, time_ms, max_lines, body))
        return future

    @property
    def running(self) -> bool:
        return self._channel is not None and not self._channel.closed

    def request_rewind(self) -> None:
        """Asks the process to rewind the SQLite WAL after its current write (nothing if it is
        not running). Event-loop thread only."""
        channel = self._channel
        if channel is not None and not channel.closed:
            channel.send(proto.rewind_request())

    def queue_depth(self) -> int:
        return len(self._channel.pending) if self._channel is not None else 0

    async def stop(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None and channel.transport is not None:
            channel.transport.close()  # the process finishes its batch and ends at end of input
        await self._stop_process()

    async def _stop_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            await loop.run_in_executor(None, proc.wait)
