"""Incremental parser of a ``text/event-stream`` body (the server-sent events format). Pure.

Feed it byte chunks split anywhere (even inside a UTF-8 character or between ``\\r`` and
``\\n``); it returns the events completed so far. Lines end with ``\\r\\n``, ``\\n`` or ``\\r``;
a leading byte-order mark is dropped; comments and ``retry:`` are ignored; the last ``id:`` is
kept. An event is dispatched by an empty line and only if it had ``data``. A line (bytes), or
the data of an event (characters), longer than ``max_line`` raises :class:`StreamTooLong` (a
broken or hostile server).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "EventStreamParser", "StreamTooLong"]

_BOM = b"\xef\xbb\xbf"
MAX_LINE = 1024 * 1024


class StreamTooLong(ValueError):
    """A line or an event of the stream exceeds the parser's limit."""


@dataclass(frozen=True, slots=True)
class Event:
    event: str
    data: str
    id: str | None = None


class EventStreamParser:
    """Turns byte chunks into :class:`Event` objects; one instance per connection."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._max_line = max_line
        self._buffer = b""
        self._started = False
        self._skip_lf = False  # the previous chunk ended with "\r": a leading "\n" belongs to it
        self._event = ""
        self._data: list[str] = []
        self._size = 0  # characters of data in the event being read
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        events: list[Event] = []
        start = self._consume_lf(buffer, 0)
        while True:
            end = _line_end(buffer, start)
            if end < 0:
                break
            self._line(buffer[start:end], events)
            start = end + 1
            if buffer[end : end + 1] == b"\r":
                if end + 1 == len(buffer):
                    self._skip_lf = True
                elif buffer[end + 1 : end + 2] == b"\n":
                    start += 1
        self._buffer = buffer[start:]
        if len(self._buffer) > self._max_line:
            raise StreamTooLong(f"an event-stream line exceeds {self._max_line} bytes")
        return events

    def _consume_lf(self, buffer: bytes, start: int) -> int:
        if self._skip_lf and start < len(buffer):
            self._skip_lf = False
            if buffer[start : start + 1] == b"\n":
                return start + 1
        return start

    def _line(self, raw: bytes, events: list[Event]) -> None:
        line = raw.decode("utf-8", "replace")
        if not line:
            if self._data:
                events.append(Event(self._event or "message", "\n".join(self._data), self._id))
            self._event, self._data, self._size = "", [], 0
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
            self._size += len(value) + 1
            if self._size > self._max_line:
                raise StreamTooLong(f"an event-stream event exceeds {self._max_line} characters of data")
        elif name == "id" and "\0" not in value:
            self._id = value


def _line_end(buffer: bytes, start: int) -> int:
    """Position of the first ``\\r`` or ``\\n`` at or after ``start``, or -1."""
    cr, lf = buffer.find(b"\r", start), buffer.find(b"\n", start)
    if cr < 0:
        return lf
    return cr if lf < 0 else min(cr, lf)
