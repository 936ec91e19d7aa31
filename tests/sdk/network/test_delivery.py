"""Tracking delivery (kameleoon._network.delivery): sizes, outcomes, retry buffer and backoff.

The delivery logic takes the poster as a plain callable, so these tests script the outcomes
and drive time with an injected clock; the HTTP side is covered in test_tracker.py.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kameleoon._network.backoff import Backoff
from kameleoon._network.delivery import Delivery, Outcome, TrackerStats, classify, split_by_size

SENT, REJECTED, UNAVAILABLE = Outcome.SENT, Outcome.REJECTED, Outcome.UNAVAILABLE


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Collector:
    """Answers each post with the next scripted outcome (then SENT), recording the bodies."""

    def __init__(self, *outcomes: Outcome, refuse: str | None = None) -> None:
        self.outcomes = list(outcomes)
        self.refuse = refuse  # a line that makes any body containing it REJECTED
        self.posts: list[list[str]] = []
        self.accepted: list[str] = []

    def __call__(self, lines: list[str], timeout: float) -> Outcome:
        self.posts.append(list(lines))
        outcome = self.outcomes.pop(0) if self.outcomes else SENT
        if outcome is SENT and self.refuse in lines:
            outcome = REJECTED
        if outcome is SENT:
            self.accepted.extend(lines)
        return outcome


def delivery(collector: Collector, clock: Clock, max_lines: int = 1000) -> tuple[Delivery, TrackerStats]:
    stats = TrackerStats()
    backoff = Backoff(base=1.0, cap=8.0)
    return Delivery(collector, stats, 1.0, backoff, max_lines, logging.getLogger("t"), clock), stats


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, SENT),
        (204, SENT),
        (403, SENT),
        (400, REJECTED),
        (413, REJECTED),
        (422, REJECTED),
        (404, UNAVAILABLE),
        (405, UNAVAILABLE),
        (410, UNAVAILABLE),
        (401, UNAVAILABLE),
        (408, UNAVAILABLE),
        (429, UNAVAILABLE),
        (500, UNAVAILABLE),
        (503, UNAVAILABLE),
        (302, UNAVAILABLE),
    ],
)
def test_classify(status: int, outcome: Outcome) -> None:
    assert classify(status) is outcome


@given(st.lists(st.text(alphabet="ab", min_size=0, max_size=30), max_size=40), st.integers(1, 80))
def test_split_by_size_keeps_order_and_bound(lines: list[str], limit: int) -> None:
    chunks = list(split_by_size(lines, limit))
    assert [line for chunk in chunks for line in chunk] == lines
    for chunk in chunks:
        assert chunk
        assert len("\n".join(chunk)) <= limit or len(chunk) == 1


def test_split_by_size_exact_fit() -> None:
    assert list(split_by_size(["aaa", "bbb", "ccc"], 7)) == [["aaa", "bbb"], ["ccc"]]


def test_failed_body_is_kept_and_resent_identically_after_the_delay() -> None:
    clock, collector = Clock(), Collector(UNAVAILABLE)
    sender, stats = delivery(collector, clock)
    sender.submit(["l1", "l2"])
    assert sender.buffered_lines == 2 and sender.down_until is not None
    assert 0.5 <= sender.down_until <= 1.0
    sender.retry_due()
    assert len(collector.posts) == 1  # not yet
    clock.now = sender.down_until
    sender.retry_due()
    assert collector.posts == [["l1", "l2"], ["l1", "l2"]]
    assert sender.buffered_lines == 0 and sender.down_until is None
    assert stats.lines_dropped == 0


def test_while_down_new_batches_wait_without_requests() -> None:
    clock, collector = Clock(), Collector(UNAVAILABLE)
    sender, _ = delivery(collector, clock)
    sender.submit(["a"])
    sender.submit(["b"])
    sender.submit(["c"])
    assert collector.posts == [["a"]]  # one failed request, the rest kept
    clock.now = 100
    sender.retry_due()
    assert collector.accepted == ["a", "b", "c"]


def test_failed_probe_keeps_everything_in_order_and_backs_off_further() -> None:
    clock, collector = Clock(), Collector(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
    sender, _ = delivery(collector, clock)
    sender.submit(["a"])
    sender.submit(["b"])
    delays = []
    for _ in range(2):
        start = clock.now = sender.down_until or 0.0
        sender.retry_due()
        delays.append((sender.down_until or 0.0) - start)
    assert collector.posts == [["a"], ["a"], ["a"]]  # only the probe goes out while down
    assert 1.0 <= delays[0] <= 2.0 and 2.0 <= delays[1] <= 4.0
    clock.now = 100
    sender.retry_due()
    assert collector.accepted == ["a", "b"]


def test_buffer_bound_drops_oldest_lines_and_counts_them() -> None:
    clock, collector = Clock(), Collector(UNAVAILABLE)
    sender, stats = delivery(collector, clock, max_lines=5)
    for batch in (["1", "2"], ["3", "4"], ["5", "6"], ["7"]):
        sender.submit(batch)
    assert stats.lines_dropped == 2
    assert sender.buffered_lines == 5
    clock.now = 100
    sender.retry_due()
    assert collector.accepted == ["3", "4", "5", "6", "7"]


def test_a_rejected_line_is_isolated_and_dropped_alone() -> None:
    clock, collector = Clock(), Collector(refuse="bad")
    sender, stats = delivery(collector, clock)
    lines = [f"l{i}" for i in range(7)]
    sender.submit([*lines[:3], "bad", *lines[3:]])
    assert sorted(collector.accepted) == sorted(lines)
    assert stats.lines_rejected == 1
    assert len(collector.posts) <= 2 * 8  # bisection: logarithmic in the batch size per bad line
    assert sender.down_until is None


def test_unavailable_during_bisection_keeps_the_rest() -> None:
    clock, collector = Clock(), Collector(REJECTED, UNAVAILABLE)
    sender, stats = delivery(collector, clock)
    sender.submit(["a", "b", "c", "d"])
    assert sender.buffered_lines == 4 and stats.lines_rejected == 0
    clock.now = 100
    sender.retry_due()
    assert sorted(collector.accepted) == ["a", "b", "c", "d"]


def test_flush_makes_one_last_attempt_and_counts_what_is_lost() -> None:
    clock, collector = Clock(), Collector(UNAVAILABLE, UNAVAILABLE)
    sender, stats = delivery(collector, clock)
    sender.submit(["a", "b"])
    sender.flush(deadline=clock.now + 5)
    assert collector.posts == [["a", "b"], ["a", "b"]]
    assert stats.lines_dropped == 2 and sender.buffered_lines == 0


def test_flush_after_the_deadline_sends_nothing() -> None:
    clock, collector = Clock(), Collector(UNAVAILABLE)
    sender, stats = delivery(collector, clock)
    sender.submit(["a"])
    clock.now = 10
    sender.flush(deadline=5)
    assert len(collector.posts) == 1 and stats.lines_dropped == 1


def test_clear_forgets_the_buffer_and_the_down_state() -> None:
    clock, collector = Clock(), Collector(UNAVAILABLE)
    sender, _ = delivery(collector, clock)
    sender.submit(["a"])
    sender.clear()
    assert sender.buffered_lines == 0 and sender.down_until is None
    sender.submit(["b"])
    assert collector.accepted == ["b"]


def test_a_stop_deadline_bounds_the_requests_of_a_tick_in_progress() -> None:
    """Once the tracker is told to stop, no request outlives the stop deadline, and a batch
    left without time is kept for the final flush (which counts it if it cannot go either)."""
    clock = Clock()
    timeouts: list[float] = []

    def slow_collector(lines: list[str], timeout: float) -> Outcome:
        timeouts.append(timeout)
        clock.now += 0.3
        return SENT

    stats = TrackerStats()
    sender = Delivery(slow_collector, stats, 1.0, Backoff(1.0, 8.0), 1000, logging.getLogger("t"), clock)
    sender.submit(["a"])
    sender.stop_deadline = clock.now + 0.5
    for line in ("b", "c", "d"):
        sender.submit([line])
    assert timeouts == pytest.approx([1.0, 0.5, 0.2])
    assert sender.buffered_lines == 1  # "d": no time left
    sender.flush(deadline=sender.stop_deadline)
    assert stats.lines_dropped == 1 and len(timeouts) == 3
