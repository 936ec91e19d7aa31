"""The event-stream parser (kameleoon._wire.sse): framing, fields, and chunk boundaries."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kameleoon._network.config_updates import update_timestamp
from kameleoon._wire.sse import Event, EventStreamParser, StreamTooLong

STREAM = (
    "\ufeff: comment line\r\n"
    "retry: 3000\n"
    "event: configuration-update-event\n"
    'data: {"ts":1700000000123}\n'
    "\n"
    "id: 7\r"
    "data: first line\r\n"
    "data:second line é\n"
    "\r\n"
    "event: other\n"
    "\n"  # no data: not dispatched
    "data\n"  # a field without colon: empty data
    "\n"
).encode()

EXPECTED = [
    Event("configuration-update-event", '{"ts":1700000000123}', None),
    Event("message", "first line\nsecond line é", "7"),
    Event("message", "", "7"),
]


def parse_in(chunks: list[bytes]) -> list[Event]:
    parser = EventStreamParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_whole_stream() -> None:
    """Every line ending, comments, retry, id, multi-line data, BOM and empty data."""
    assert parse_in([STREAM]) == EXPECTED


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_split_at_every_byte_boundary(cut: int) -> None:
    """Two chunks split anywhere (inside CRLF, inside a UTF-8 character, inside the BOM)."""
    assert parse_in([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_one_byte_at_a_time() -> None:
    assert parse_in([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_number_of_cuts(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    assert parse_in([STREAM[a:b] for a, b in itertools.pairwise(points)]) == EXPECTED


def test_incomplete_event_is_not_dispatched() -> None:
    """A stream cut in the middle of an event yields nothing for that event."""
    parser = EventStreamParser()
    assert parser.feed(b'event: configuration-update-event\ndata: {"ts":17') == []
    assert parser.feed(b"") == []


def test_bom_only_at_the_start() -> None:
    """A leading BOM is dropped; later, it is part of the line (so the field is unknown)."""
    assert parse_in([b"\xef\xbb\xbfdata: y\n\n"]) == [Event("message", "y")]
    assert parse_in([b"data: x\n\n\xef\xbb\xbfdata: y\n\n"]) == [Event("message", "x")]


def test_too_long_line_raises() -> None:
    parser = EventStreamParser(max_line=100)
    parser.feed(b"data: " + b"x" * 90)
    with pytest.raises(StreamTooLong):
        parser.feed(b"x" * 20)


def test_id_with_nul_is_ignored() -> None:
    assert parse_in([b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"]) == [
        Event("message", "a", "1"),
        Event("message", "b", "1"),
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"ts":1700000000123}', "1700000000123"),
        ('{"ts":1,"other":true}', "1"),
        ('{"ts":"1700000000999"}', "1700000000999"),
        ('{"ts":1700000000555.0}', "1700000000555.0"),
        ('{"ts":true}', None),
        ('{"ts":null}', None),
        ('{"ts":[1]}', None),
        ("{}", None),
        ("[1]", None),
        ('{"ts":', None),
        ("", None),
    ],
)
def test_update_timestamp(data: str, expected: str | None) -> None:
    """A number or string ``ts`` member counts, stringified (spec §2.2, §3.3)."""
    assert update_timestamp(data) == expected


def test_too_long_event_raises() -> None:
    """Data lines that never end their event are bounded too."""
    parser = EventStreamParser(max_line=100)
    parser.feed(b"data: " + b"x" * 40 + b"\n" + b"data: " + b"y" * 40 + b"\n")
    with pytest.raises(StreamTooLong):
        parser.feed(b"data: " + b"z" * 40 + b"\n")
    fresh = EventStreamParser(max_line=100)
    for _ in range(10):  # dispatched events start the count again
        assert fresh.feed(b"data: " + b"x" * 60 + b"\n\n") == [Event("message", "x" * 60)]
