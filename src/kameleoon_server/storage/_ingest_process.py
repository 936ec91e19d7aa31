"""The ingest process: parses tracking bodies and writes their rows, beside the server process.

The server hands every ``POST /visit/events`` body over a socket (``_ingest_proto`` frames) and
answers ``204`` when this process replies, which it does only after the transaction holding the
rows has committed. Bodies that arrive while a transaction runs go into the next one (group
commit). Parsing and writing here instead of in the server gives them a core and an interpreter
lock of their own, so the server's event loop only does HTTP.

Run as ``KAMELEOON_INGEST_DATABASE=<path or URL> python -m kameleoon_server.storage._ingest_process
FD SYNCHRONOUS``; it ends when the server closes its end of the socket (including when the
server dies).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kameleoon_server._wire import FastBody, Link, ParsedBody, Row, TooManyLines, parse_for_storage
from kameleoon_server.storage import _ingest_proto as proto

log = logging.getLogger("kameleoon_server.ingest")
MAX_BATCH_BYTES = 8 * 1024 * 1024
POSTGRES_WRITERS = 3
SWITCH_INTERVAL_SECONDS = 0.0005
# SQLite: commits much larger than this make the server and this process take turns (one waits
# while the other works on the whole batch) instead of overlapping; much smaller ones pay more
# per commit.
MAX_COMMIT_EVENTS = 400
# PostgreSQL: the writers overlap each other, and a commit's round trips and fixed costs are
# what larger ones save (measured with 512 connections: 1,200 events 91,000–99,200 events/s,
# 2,400 events 101,600; with 128 connections, 400 events 73,600–75,900 and 1,200 80,500–83,100).
POSTGRES_COMMIT_EVENTS = 2400
_RECV = 1024 * 1024


class Sink(Protocol):
    """Where rows go: ``write`` commits them (or raises, leaving nothing written)."""

    def write(self, rows: Sequence[Row], links: Sequence[Link], fast: Sequence[FastBody] = ()) -> int:
        """Stores rows and the rows of ``fast`` (ignoring existing (site, identity, nonce)) and
        links in one transaction; returns how many rows were new."""

    def rewind(self) -> None:
        """Called between two writes when the server asks: SQLite rewinds its WAL
        (``_sqlite_checkpoint``); PostgreSQL does nothing."""

    def close(self) -> None: ...


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql:", "postgres:"))


def writer_count(url: str) -> int:
    """SQLite has one writer at a time; PostgreSQL commits several transactions at once."""
    return POSTGRES_WRITERS if is_postgres(url) else 1


def commit_events(url: str) -> int:
    """About how many events a writer puts in one commit at most."""
    return POSTGRES_COMMIT_EVENTS if is_postgres(url) else MAX_COMMIT_EVENTS


def open_sink(url: str, synchronous: str) -> Sink:
    if is_postgres(url):
        from kameleoon_server.storage._pg_sink import PostgresSink

        return PostgresSink(url)
    from kameleoon_server.storage._sqlite_parallel import disable_memory_statistics
    from kameleoon_server.storage._sqlite_sink import SQLiteSink

    # Before the first connection: without the statistics' process-wide mutex, every allocation
    # of the writer's statements costs less (about 8 % of the instructions of a fast-path insert);
    # the only connection is used by one writer thread at a time (``writer_count``).
    disable_memory_statistics(multithread=True)
    return SQLiteSink(url, synchronous)


class Reader:
    """Reads frames from the server's socket into one reusable buffer (``recv(n)`` would allocate
    ``n`` bytes per call, which costs more than the read itself for large ``n``)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._chunk = memoryview(bytearray(_RECV))
        self._buffer = bytearray()

    def _read(self, flags: int = 0) -> bool:
        """Appends what arrived; False at end of input. Raises BlockingIOError (MSG_DONTWAIT)."""
        size = self._sock.recv_into(self._chunk, 0, flags)
        self._buffer += self._chunk[:size]
        return size > 0

    def batch(self) -> list[bytes] | None:
        """Blocks until at least one frame is complete, then takes whatever else already arrived.
        None at end of input. (The socket stays blocking: the sender thread sends on it.)"""
        frames = proto.take_frames(self._buffer)
        while not frames:
            if not self._read():
                return None
            frames = proto.take_frames(self._buffer)
        while len(self._buffer) < MAX_BATCH_BYTES:
            try:
                if not self._read(socket.MSG_DONTWAIT):
                    break
            except BlockingIOError:
                break
        return frames + proto.take_frames(self._buffer)


Parsed = ParsedBody | FastBody


@dataclass(slots=True)
class Batch:
    """Parsed request bodies waiting for the writer, and answers already known (413s)."""

    parsed: list[tuple[int, Parsed]] = field(default_factory=list)
    replies: list[proto.Reply] = field(default_factory=list)
    events: int = 0
    rewind: bool = False  # the server asked for a WAL rewind (``proto.rewind_request``)

    def add(self, request_id: int, parsed: Parsed) -> None:
        self.parsed.append((request_id, parsed))
        self.events += len(parsed.lines) if isinstance(parsed, FastBody) else len(parsed.rows)

    def extend(self, other: Batch) -> None:
        self.parsed += other.parsed
        self.replies += other.replies
        self.events += other.events
        self.rewind |= other.rewind


def parse(frames: list[bytes]) -> Batch:
    batch = Batch()
    for frame in frames:
        request_id, site_id, time_ms, max_lines, body = proto.decode_request(frame)
        if site_id == proto.REWIND_SITE:
            batch.rewind = True
            continue
        try:
            batch.add(request_id, parse_for_storage(body, site_id, time_ms, max_lines))
        except TooManyLines as exc:
            batch.replies.append(proto.error_reply(request_id, proto.TOO_MANY_LINES, str(exc)))
        except Exception as exc:  # a parser bug must not stop the process: fail this request only
            log.exception("could not parse a tracking body")
            batch.replies.append(proto.error_reply(request_id, proto.FAILED, str(exc)))
    return batch


def _write(sink: Sink, parsed: list[tuple[int, Parsed]]) -> int:
    rows: list[Row] = []
    links: list[Link] = []
    fast: list[FastBody] = []
    for _, body in parsed:
        if isinstance(body, FastBody):
            fast.append(body)
        else:
            rows += body.rows
            links += body.links
    return sink.write(rows, links, fast)


def _store(sink: Sink, parsed: list[tuple[int, Parsed]]) -> tuple[int, list[proto.Reply]]:
    """Writes every body in one transaction; if that fails, each body alone, so one bad body
    fails only its own request."""
    try:
        stored = _write(sink, parsed)
        return stored, [proto.ok_reply(rid, p.summary()) for rid, p in parsed]
    except Exception as exc:
        if len(parsed) == 1:
            rid, body = parsed[0]
            received = body.summary().received
            log.warning("could not store %d events: %s", received, exc)
            return 0, [proto.error_reply(rid, proto.FAILED, str(exc) or type(exc).__name__, received)]
    stored, replies = 0, []
    for item in parsed:
        count, reply = _store(sink, [item])
        stored += count
        replies += reply
    return stored, replies


def handle(sink: Sink, batch: Batch) -> list[object]:
    """Stores a batch; returns the reply message (``_ingest_proto``)."""
    stored, replies = (0, []) if not batch.parsed else _store(sink, batch.parsed)
    received = sum(p.summary().received for _, p in batch.parsed)
    return [stored, received - stored, batch.replies + replies]


def _write_loop(
    send: Callable[[list[object]], None], sink: Sink, work: queue.SimpleQueue[Batch | None], most: int
) -> None:
    """A writer thread: what was parsed while its previous transaction ran goes in the next, up
    to about ``most`` events. Ends at the first ``None`` it takes."""
    try:
        while (batch := work.get()) is not None:
            done = False
            while not work.empty() and batch.events < most:
                more = work.get()
                if more is None:
                    done = True
                    break
                batch.extend(more)
            if batch.parsed or batch.replies:
                send(handle(sink, batch))
            if batch.rewind:
                sink.rewind()
            if done:
                return
    finally:
        sink.close()


def _send_loop(sock: socket.socket, replies: queue.SimpleQueue[list[object] | None]) -> None:
    """The sender thread: answers the server. A writer that sent itself would give up the
    interpreter lock for the ``send`` call, then wait to get it back while the reader thread
    parses the bodies that the answers just let in (measured: 15 % of the writer's time under
    load). Commits are the critical path, so writers only hand their replies over. Ends at the
    first ``None`` it takes."""
    gone = False
    while (message := replies.get()) is not None:
        if not gone:
            try:
                sock.sendall(proto.encode_message(message))
            except OSError:  # the server is gone: nobody waits for these answers
                gone = True


def serve(sock: socket.socket, sinks: list[Sink], commit_events: int = MAX_COMMIT_EVENTS) -> None:
    """Reads and parses on this thread while writer threads (one per sink) commit and a sender
    thread answers. SQLite and PostgreSQL work without the interpreter lock, so parsing the next
    bodies overlaps with the commits; several PostgreSQL writers also overlap their round trips
    and commit flushes."""
    sock.sendall(proto.encode_message(proto.READY))
    work: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
    replies: queue.SimpleQueue[list[object] | None] = queue.SimpleQueue()
    sender = threading.Thread(target=_send_loop, args=(sock, replies), name="kameleoon-ingest-sender")
    writers = [
        threading.Thread(
            target=_write_loop,
            args=(replies.put, sink, work, commit_events),
            name=f"kameleoon-ingest-writer-{n}",
        )
        for n, sink in enumerate(sinks)
    ]
    sender.start()
    for writer in writers:
        writer.start()
    reader = Reader(sock)
    try:
        while (frames := reader.batch()) is not None:
            for frame in frames:  # one at a time: a writer can start on the first ones
                work.put(parse([frame]))
    finally:
        for _ in writers:
            work.put(None)
        for writer in writers:
            writer.join()
        replies.put(None)
        sender.join()


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group: the server stops this process itself, after the
    # last batches (its socket closes), so the interrupt is not for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A writer coming back from SQLite (which runs without the interpreter lock) should not wait
    # the default 5 ms for the reader thread to yield the lock: commits are the critical path.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    fd, synchronous = int(argv[0]), argv[1]
    url = os.environ.pop("KAMELEOON_INGEST_DATABASE")
    sock = socket.socket(fileno=fd)
    sinks = [open_sink(url, synchronous) for _ in range(writer_count(url))]
    try:
        serve(sock, sinks, commit_events(url))
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
