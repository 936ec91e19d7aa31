"""Incremental parser of a ``text/event-stream`` body (the server-sent events format).

Feed it byte chunks split anywhere; it returns the events completed so far. Comments,
``id:`` and ``retry:`` fields are accepted and ignored except ``id`` which is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "EventStreamParser"]


@dataclass(frozen=True, slots=True)
class Event:
    event: str
    data: str
    id: str | None = None


class EventStreamParser:
    """Turns byte chunks into :class:`Event` objects; one instance per connection."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        buffer = self._buffer + chunk
        start = 0
        while True:
            if self._skip_lf and start < len(buffer):
                if buffer[start : start + 1] == b"\n":
                    start += 1
                self._skip_lf = False
            cr, lf = buffer.find(b"\r", start), buffer.find(b"\n", start)
            ends = [position for position in (cr, lf) if position >= 0]
            if not ends:
                break
            end = min(ends)
            if buffer[end : end + 1] == b"\r":
                if end + 1 == len(buffer):
                    self._skip_lf = True  # a following "\n" may arrive in the next chunk
                elif buffer[end + 1 : end + 2] == b"\n":
                    end_of_line = end + 2
                    self._line(buffer[start:end], events)
                    start = end_of_line
                    continue
            self._line(buffer[start:end], events)
            start = end + 1
        self._buffer = buffer[start:]
        return events

    def _line(self, raw: bytes, events: list[Event]) -> None:
        line = raw.decode("utf-8", "replace")
        if not line:
            if self._data:
                events.append(Event(self._event or "message", "\n".join(self._data), self._id))
            self._event, self._data = "", []
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
        elif name == "id" and "\0" not in value:
            self._id = value
