"""The framing between the server and its ingest process (see ``_ingest_process``). Pure, no I/O.

Both directions carry length-prefixed frames (4-byte little-endian length, then the payload):

* server → ingest process: one frame per request: ``REQUEST`` header (request id, site id,
  receive time, line limit) followed by the raw body; site id ``REWIND_SITE`` asks for a WAL
  rewind instead (:func:`rewind_request`);
* ingest process → server: one msgpack frame per committed batch:
  ``[stored, duplicates, [reply, ...]]`` with one reply per request of the batch
  (``[request id, status, received, malformed, bots, unknown types, invalid utf-8, errors,
  message]``), and once at start-up ``["ready"]``.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgspec

from kameleoon_server._wire import BodySummary

LENGTH: Final = struct.Struct("<I")
HEAD: Final = struct.Struct("<IqqI")  # request id, site id, time (ms), max lines
OK: Final = 0
TOO_MANY_LINES: Final = 1
FAILED: Final = 2
READY: Final = ["ready"]
REWIND_SITE: Final = -1

Request = tuple[int, int, int, int, bytes]  # request id, site id, time ms, max lines, body
Reply = list[Any]


def encode_request(request_id: int, site_id: int, time_ms: int, max_lines: int, body: bytes) -> bytes:
    head = HEAD.pack(request_id, site_id, time_ms, max_lines)
    return LENGTH.pack(HEAD.size + len(body)) + head + body


def rewind_request() -> bytes:
    """The frame that asks the process to rewind the SQLite WAL (``_sqlite_checkpoint``): a
    request header with site id ``REWIND_SITE`` and no body, never answered."""
    return encode_request(0, REWIND_SITE, 0, 0, b"")


def encode_message(message: Any) -> bytes:
    payload = msgspec.msgpack.encode(message)
    return LENGTH.pack(len(payload)) + payload


def take_frames(buffer: bytearray) -> list[bytes]:
    """Removes the complete frames from the start of ``buffer`` and returns their payloads."""
    frames = []
    offset = 0
    while len(buffer) - offset >= LENGTH.size:
        (size,) = LENGTH.unpack_from(buffer, offset)
        end = offset + LENGTH.size + size
        if end > len(buffer):
            break
        frames.append(bytes(buffer[offset + LENGTH.size : end]))
        offset = end
    del buffer[:offset]
    return frames


def decode_request(payload: bytes) -> Request:
    request_id, site_id, time_ms, max_lines = HEAD.unpack_from(payload)
    return request_id, site_id, time_ms, max_lines, payload[HEAD.size :]


def ok_reply(request_id: int, summary: BodySummary) -> Reply:
    return [
        request_id,
        OK,
        summary.received,
        summary.malformed,
        summary.bots,
        summary.unknown_types,
        summary.invalid_utf8,
        list(summary.errors),
        "",
    ]


def error_reply(request_id: int, status: int, message: str, received: int = 0) -> Reply:
    return [request_id, status, received, 0, 0, 0, False, [], message]


def summary_of(reply: Reply) -> BodySummary:
    return BodySummary(reply[2], reply[3], reply[4], reply[5], bool(reply[6]), tuple(reply[7]))


def decode_message(payload: bytes) -> Any:
    return msgspec.msgpack.decode(payload)
