"""Tracking at its edges: cuts between visitors, the final flush past the body cap, departed
visitors (unique identifiers, the bound of their buffer), and thread starts refused at exit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kameleoon._engine.parse import parse_configuration
from kameleoon._network import workers
from kameleoon._network.backoff import Backoff
from kameleoon._network.delivery import Delivery, Outcome, Poster, TrackerStats, split_by_size
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.resolver import resolve
from kameleoon._network.token import TokenSource
from kameleoon._network.tracker import MAX_BODY_CHARS, Tracker
from kameleoon._network.transport import Request, Response
from kameleoon._visitors import pending
from kameleoon._visitors.data import add_conversion, store_custom_data
from kameleoon._visitors.record import Visitor
from kameleoon._visitors.store import VisitorStore
from kameleoon.data import Conversion, PageView, UniqueIdentifier, UserAgent

from .conftest import eventually
from .fault_server import FaultServer, datafile
from .test_tracker import goals
from .test_tracker import tracker as base_tracker

LOG = logging.getLogger("kameleoon.tests")


# -- cuts between visitors -------------------------------------------------------------------
def visitor_lines(code: str, count: int, size: int, agent: str | None) -> list[str]:
    texts = [f"nonce={code}{n}&eventType=page&href={'p' * size}&visitorCode={code}" for n in range(count)]
    if agent:
        texts[0] += f"&userAgent={agent}"
    return texts


def identities(piece: list[str]) -> list[str]:
    return [dict(parse_qsl(line))["visitorCode"] for line in piece]


def joined(pieces: list[list[str]]) -> list[str]:
    return [line for piece in pieces for line in piece]


def check_pieces(pieces: list[list[str]], agents: dict[str, str], limit: int) -> None:
    """Each visitor's first line in each piece carries its user agent; no piece is over the
    limit unless it holds a single line."""
    for piece in pieces:
        seen: set[str] = set()
        for line in piece:
            fields = dict(parse_qsl(line))
            code = fields["visitorCode"]
            if code not in seen and agents.get(code):
                assert fields.get("userAgent") == agents[code], piece
            seen.add(code)
        assert len("\n".join(piece)) <= limit or len(piece) == 1


def test_a_cut_moves_back_to_the_first_line_of_a_visitor() -> None:
    lines = visitor_lines("a", 2, 10, "UA1") + visitor_lines("b", 3, 10, "UA2")
    pieces = list(split_by_size(lines, sum(map(len, lines[:4])) + 3))
    assert [identities(piece) for piece in pieces] == [["a", "a"], ["b", "b", "b"]]
    assert joined(pieces) == lines  # nothing changed: no visitor was cut


def test_a_visitor_larger_than_a_request_carries_its_user_agent_into_each() -> None:
    lines = visitor_lines("a", 1, 10, None) + visitor_lines("b", 6, 50, "UA2")
    pieces = list(split_by_size(lines, 130))
    assert len(pieces) > 2
    assert identities(pieces[0]) == ["a"]
    check_pieces(pieces, {"b": "UA2"}, 130)
    assert [line.split("&userAgent=")[0] for line in joined(pieces)] == [
        line.split("&userAgent=")[0] for line in lines
    ]


@given(
    st.lists(st.tuples(st.integers(1, 5), st.integers(0, 40), st.booleans()), max_size=12),
    st.integers(40, 400),
)
def test_split_keeps_each_visitors_user_agent(visitors: list[tuple[int, int, bool]], limit: int) -> None:
    lines: list[str] = []
    agents: dict[str, str] = {}
    for number, (count, size, has_agent) in enumerate(visitors):
        code = f"v{number}"
        agents[code] = f"UA{number}" if has_agent else ""
        lines += visitor_lines(code, count, size, agents[code])
    pieces = list(split_by_size(lines, limit))
    check_pieces(pieces, agents, limit)
    assert [line.split("&userAgent=")[0] for line in joined(pieces)] == [
        line.split("&userAgent=")[0] for line in lines
    ]


def test_halving_a_rejected_body_keeps_each_visitors_user_agent() -> None:
    lines = visitor_lines("a", 5, 5, "UA1") + visitor_lines("b", 3, 5, "UA2")
    bad = lines[6]
    posts: list[list[str]] = []

    def post(chunk: list[str], timeout: float) -> Outcome:
        posts.append(chunk)
        return Outcome.REJECTED if any(line.startswith(bad.split("&")[0]) for line in chunk) else Outcome.SENT

    stats = TrackerStats()
    Delivery(post, stats, 1.0, Backoff(1.0, 2.0), 100, LOG).submit(lines)
    assert stats.lines_rejected == 1
    check_pieces(posts, {"a": "UA1", "b": "UA2"}, 10**6)
    accepted = [line for chunk in posts[1:] if bad not in chunk for line in chunk]
    assert len([line for line in accepted if line.split("&")[0] != bad.split("&")[0]]) >= len(lines) - 1


# -- the tracker -------------------------------------------------------------------------------
def tracker(server: FaultServer, store: VisitorStore, interval: float, **options: Any) -> Tracker:
    """test_tracker's tracker, with the store handing departing visitors over to it."""
    config = parse_configuration(datafile())
    job = base_tracker(server, store, lambda: config, interval, **options)
    store._on_drop = job.adopt
    return job


def test_the_final_flush_sends_everything_past_the_body_cap(server: FaultServer) -> None:
    store = VisitorStore(3600, 1000)
    job = tracker(server, store, interval=60.0)  # no tick before the stop
    job.start()
    value = "x" * 50_000
    for number in range(100):
        visitor = store.get_or_create(f"v{number}")
        with store.data_lock:
            store_custom_data(visitor, 0, (f"{value}{number}",), unsent=True)
        job.schedule(f"v{number}")
    assert 100 * len(value) > MAX_BODY_CHARS
    job.stop(10.0)
    assert len(server.tracking_lines()) == 100
    assert job.stats.lines_dropped == 0 and job.pending_codes == 0


def test_departed_visitors_over_the_bound_lose_their_oldest_lines(server: FaultServer) -> None:
    store = VisitorStore(3600, 1)  # each new visitor evicts the previous one
    job = tracker(server, store, interval=60.0, max_orphan_lines=3)
    for goal in range(7):
        visitor = store.get_or_create(f"v{goal}")
        with store.data_lock:
            add_conversion(visitor, Conversion(goal), unsent=True)
        job.schedule(f"v{goal}")
    assert job.stats.lines_dropped == 3
    job.start()
    job.stop(5.0)
    assert goals(server) == [3, 4, 5, 6]


def test_an_evicted_unique_identifier_is_sent_with_its_mapping_value(
    server: FaultServer, make_client: Callable[..., Any]
) -> None:
    client = make_client(tracking_interval_millisecond=1000, max_visitors=1)
    client.add_data("user-42", UniqueIdentifier(True))
    client.track_conversion("user-42", 5)
    client.track_conversion("other", 6)  # evicts user-42 before the tick
    assert eventually(lambda: goals(server) == [5, 6], 5)
    lines = {line["goalId"]: line for line in server.tracking_lines() if line["eventType"] == "conversion"}
    assert lines["5"].get("mappingValue") == "user-42" and "visitorCode" not in lines["5"]
    assert lines["6"]["visitorCode"] == "other"


def test_a_forked_child_keeps_resending_the_mapping_identifier() -> None:
    store = VisitorStore(3600, 10)
    visitor = store.get_or_create("anon")
    store_custom_data(visitor, 0, ("local",), unsent=True)
    store_custom_data(visitor, 2, ("user-42",), unsent=True, mapping=True)
    add_conversion(visitor, Conversion(1), unsent=True)
    store.forget_unsent()
    assert visitor.pending == pending.bit(pending.CUSTOM, 1)  # only the mapping identifier


def test_user_agent_survives_a_size_cut_end_to_end(
    server: FaultServer, make_client: Callable[..., Any]
) -> None:
    client = make_client(tracking_interval_millisecond=1000)
    client.add_data("bot-1", UserAgent("curl/8.0"))
    for name in "ab":
        client.add_data("bot-1", PageView(f"https://ex.com/{name}{'x' * 1_500_000}", name))
    client.flush("bot-1")
    assert eventually(lambda: len(server.tracking_lines()) == 2, 10)
    assert [line.get("userAgent") for line in server.tracking_lines()] == ["curl/8.0", "curl/8.0"]


# -- thread starts refused (interpreter exit, Python 3.12+) ------------------------------------
@pytest.fixture
def no_new_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)


def test_a_pool_without_threads_runs_its_job_on_the_caller(no_new_threads: None) -> None:
    pool = workers.Pool(2, "test-pool")
    future = pool.submit(lambda left: ("ran", threading.current_thread().name), time.monotonic() + 5)
    assert future.result(0) == ("ran", threading.current_thread().name)


def test_resolving_a_name_needs_no_new_thread(no_new_threads: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from kameleoon._network import resolver

    monkeypatch.setattr(resolver, "_pool", workers.Pool(2, "test-resolver"))
    assert resolve("localhost", 80, 0, time.monotonic() + 5)


class _Transport:
    def __init__(self, response: Response | Exception) -> None:
        self.response = response
        self.sent: list[Request] = []

    def send(self, request: Request) -> Response:
        self.sent.append(request)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


def test_a_token_refresh_that_cannot_start_keeps_the_valid_token(no_new_threads: None) -> None:
    now = [0.0]
    body = b'{"access_token": "t1", "expires_in": 3600}'
    transport = _Transport(Response(200, {"content-type": "application/json"}, body))
    endpoints = Endpoints("s1", None, None)
    tokens = TokenSource(endpoints, transport, "id", "secret", 1.0, LOG, clock=lambda: now[0])
    assert tokens.get() == "t1"
    now[0] = 3500.0  # past the renewal time, before expiry: a background refresh is due
    assert tokens.cached() == "t1"
    assert tokens._flight is None  # released: a later refresh can start
    assert len(transport.sent) == 1


def test_an_unexpected_failure_while_posting_keeps_the_lines(caplog: pytest.LogCaptureFixture) -> None:
    stats = TrackerStats()
    poster = Poster(Endpoints("s1", None, None), _Transport(ValueError("bug")), None, stats, LOG)
    assert poster(["nonce=1&eventType=activity&visitorCode=v"], 1.0) is Outcome.UNAVAILABLE
    assert stats.failed_requests == 1
    assert "tracking request failed unexpectedly" in caplog.text


def test_a_visitor_record_marks_nothing_else_on_fork() -> None:
    visitor = Visitor(0.0)
    store_custom_data(visitor, 3, ("x",), unsent=True)
    store = VisitorStore(3600, 10)
    store._visitors["v"] = visitor
    store.forget_unsent()
    assert visitor.pending == 0
