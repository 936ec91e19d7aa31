"""The HTTP protocol's own answers to ``POST /visit/events`` (``_http.py``, ``events.answer_soon``):
the same answers as the application's handler, and uvicorn's connection rules kept (keep-alive,
pipelining, HTTP/1.0, a client that goes away), on raw sockets against a live server."""

from __future__ import annotations

import logging
import socket
import struct
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kameleoon_server.routes import events
from kameleoon_server.storage import SQLiteStorage

from .conftest import SDK_QUERY, LiveServer, Site, start_server, stop_server

Answer = tuple[int, dict[str, str], bytes]
LINES = (
    "nonce=N{0}A&eventType=activity&visitorCode=v{0}\n"
    "nonce=N{0}B&eventType=experiment&id=5001&variationId=7002&visitorCode=v{0}"
)


def connect(live: LiveServer) -> socket.socket:
    where = urlsplit(live.base_url)
    sock = socket.create_connection((where.hostname, where.port), timeout=10)
    return sock


def request(
    site: Site, body: str, token: str | None, *, chunked: bool = False, version: str = "1.1"
) -> bytes:
    """A raw ``POST /visit/events``; ``chunked``: without Content-Length (the application's
    handler answers it)."""
    data = body.encode()
    head = [f"POST /visit/events?{SDK_QUERY}&siteCode={site.code} HTTP/{version}", "Host: test"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    if chunked:
        head.append("Transfer-Encoding: chunked")
        data = b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data) if data else b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


class Reader:
    """Reads answers off a socket, one after the other (no chunked bodies: none are sent here)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def answer(self) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            assert self._more(), f"connection closed before an answer: {self.buffer!r}"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, value = line.split(":", 1)
            assert name.lower() not in headers, f"header {name} twice"
            headers[name.lower()] = value.strip()
        assert "transfer-encoding" not in headers
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            assert self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self) -> bool:
        """Whether the server closes the connection (after whatever it still sends)."""
        try:
            while self._more():
                pass
        except TimeoutError:
            return False
        return True


def exchange(live: LiveServer, raw: bytes, count: int = 1) -> list[Answer]:
    with connect(live) as sock:
        sock.sendall(raw)
        reader = Reader(sock)
        return [reader.answer() for _ in range(count)]


def stored_nonces(live: LiveServer, site: Site) -> list[str]:
    rows = live.db_rows(
        "SELECT e.nonce FROM events e JOIN sites s ON s.id = e.site_id WHERE s.code = ? ORDER BY e.id",
        site.code,
    )
    return [nonce for (nonce,) in rows]


@pytest.fixture
def application_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The application's handler fails every request it gets: an answer other than uvicorn's
    500 comes from the protocol's fast path."""

    async def refuse(*args: Any) -> None:
        raise AssertionError("the application's handler was called")

    monkeypatch.setattr(events, "post_events", refuse)


@pytest.mark.usefixtures("application_refuses")
def test_a_tracking_request_with_a_length_is_answered_by_the_protocol(live: LiveServer, site: Site) -> None:
    token = live.token(site)
    [(status, headers, body)] = exchange(live, request(site, LINES.format(1), token))
    assert (status, body) == (204, b"")
    assert "date" in headers and "content-length" not in headers
    assert stored_nonces(live, site) == ["N1A", "N1B"]
    # without a Content-Length, the application's handler answers (here: fails)
    [(status, _, _)] = exchange(live, request(site, LINES.format(2), token, chunked=True))
    assert status == 500
    assert stored_nonces(live, site) == ["N1A", "N1B"]


def _cases(live: LiveServer, site: Site) -> dict[str, tuple[Site, str, str | None]]:
    token = live.token(site)
    other = live.create_site()
    unknown = Site(f"nosuch{site.code}", "", "")
    five_lines = "\n".join(f"nonce=L{i}&eventType=activity&visitorCode=v" for i in range(5))
    return {
        "stored": (site, LINES.format("S"), token),
        "malformed lines": (site, "nonce=M1&eventType=activity&visitorCode=v\nnot a line", token),
        "no token": (site, LINES.format("T"), None),
        "wrong token": (site, LINES.format("W"), live.token(other)),
        "unknown site": (unknown, LINES.format("U"), token),
        "too many lines": (site, five_lines, token),
        "empty body": (site, "", token),
    }


def test_the_protocol_and_the_application_give_the_same_answers(tmp_path: Path) -> None:
    srv, server, thread = start_server(tmp_path / "k.db", max_lines=4)
    try:
        first = srv.create_site()  # created just before: not in the site cache yet
        for name, (site, body, token) in _cases(srv, first).items():
            answers = []
            for chunked in (False, True, False):  # the first and the last differ in the cache
                [(status, headers, content)] = exchange(srv, request(site, body, token, chunked=chunked))
                headers.pop("date")
                answers.append((status, headers, content))
            assert answers[0] == answers[1] == answers[2], name
            expected = {
                "stored": 204, "malformed lines": 204, "no token": 401, "wrong token": 401,
                "unknown site": 404, "too many lines": 413, "empty body": 204,
            }[name]  # fmt: skip
            assert answers[0][0] == expected, name
        assert stored_nonces(srv, first) == ["NSA", "NSB", "M1"]
    finally:
        stop_server(srv, server, thread)


@pytest.mark.usefixtures("application_refuses")
def test_a_site_not_in_the_cache_yet_is_looked_up_then_answered(live: LiveServer) -> None:
    site = live.create_site()  # a change empties the cache's entry: the answer waits for the database
    [(status, _, _)] = exchange(live, request(site, LINES.format(3), live.token(site)))
    assert status == 204
    assert stored_nonces(live, site) == ["N3A", "N3B"]


@pytest.mark.usefixtures("application_refuses")
def test_a_storage_without_an_ingest_process_is_waited_for(tmp_path: Path) -> None:
    """``ingest_body_soon`` gives no future (bodies written in the server process): the
    protocol still answers, from a task."""
    srv, server, thread = start_server(SQLiteStorage(tmp_path / "k.db", ingest_process=False))
    try:
        site = srv.create_site()
        token = srv.token(site)
        for n in range(2):  # the site not cached yet, then cached
            [(status, _, _)] = exchange(srv, request(site, LINES.format(f"P{n}"), token))
            assert status == 204
        assert stored_nonces(srv, site) == ["NP0A", "NP0B", "NP1A", "NP1B"]
    finally:
        stop_server(srv, server, thread)


def test_pipelined_requests_are_answered_in_order(live: LiveServer, site: Site) -> None:
    token = live.token(site)
    raw = b"".join(
        [
            request(site, LINES.format(9), "not-a-token"),  # refused at once
            request(site, LINES.format(4), token),
            request(site, LINES.format(5), token),  # arrives while the first is answered
            f"GET /{site.code} HTTP/1.1\r\nHost: test\r\n\r\n".encode(),
            request(site, LINES.format(6), token, chunked=True),
            request(site, LINES.format(7), token),
        ]
    )
    answers = exchange(live, raw, 6)
    assert [status for status, *_ in answers] == [401, 204, 204, 200, 204, 204]
    assert b"featureFlags" in answers[3][2]
    assert stored_nonces(live, site) == [f"N{i}{x}" for i in range(4, 8) for x in "AB"]


def test_keep_alive_and_http_1_0(live: LiveServer, site: Site) -> None:
    token = live.token(site)
    with connect(live) as sock:
        reader = Reader(sock)
        for n in range(3):
            sock.sendall(request(site, LINES.format(f"K{n}"), token))
            status, headers, _ = reader.answer()
            assert status == 204 and "connection" not in headers
        sock.sendall(request(site, LINES.format("H"), token, version="1.0"))
        status, headers, _ = reader.answer()
        assert (status, headers["connection"]) == (204, "close")
        assert reader.closed()
    assert len(stored_nonces(live, site)) == 8


def test_a_client_that_leaves_before_its_answer_does_not_disturb_the_server(
    live: LiveServer, site: Site
) -> None:
    token = live.token(site)
    for n in range(20):
        with connect(live) as sock:
            sock.sendall(request(site, LINES.format(f"Q{n}"), token))
            if n % 2:  # reset at once: the server may not even read the request
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:  # the request is complete, then the client closes without reading
                sock.shutdown(socket.SHUT_WR)
    [(status, _, _)] = exchange(live, request(site, LINES.format("Z"), token))
    assert status == 204
    complete = {f"NQ{n}{x}" for n in range(0, 20, 2) for x in "AB"} | {"NZA", "NZB"}
    deadline = time.monotonic() + 10
    while not complete <= set(nonces := stored_nonces(live, site)) and time.monotonic() < deadline:
        time.sleep(0.05)  # requests of other connections may commit after Z's
    assert complete <= set(nonces)
    assert len(nonces) == len(set(nonces))


def test_the_access_log_has_the_same_line_for_both(
    live: LiveServer, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn's access log, where it is on (pytest's log capture turns it on for every server
    of the test session; ``kameleoon serve`` turns it off)."""
    token = live.token(site)
    ports = []
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        for chunked in (False, True):
            with connect(live) as sock:
                sock.sendall(request(site, LINES.format(f"L{chunked}"), token, chunked=chunked))
                assert Reader(sock).answer()[0] == 204
                ports.append(sock.getsockname()[1])
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    target = f"/visit/events?{SDK_QUERY}&siteCode={site.code}"
    assert lines[-2:] == [f'127.0.0.1:{port} - "POST {target} HTTP/1.1" 204' for port in ports]


class BrokenLookup(SQLiteStorage):
    """A storage whose site lookups fail with an unexpected error (a bug's stand-in)."""

    async def get_site(self, code: str) -> Any:
        raise RuntimeError("lookup broken")


def test_an_unexpected_failure_is_a_500_and_the_connection_closes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    srv, server, thread = start_server(BrokenLookup(tmp_path / "k.db"))
    try:
        site = Site("anysite", "", "")
        with connect(srv) as sock:
            sock.sendall(request(site, LINES.format(8), None))
            reader = Reader(sock)
            status, headers, body = reader.answer()
            assert (status, body, headers["connection"]) == (500, b"Internal Server Error", "close")
            assert reader.closed()
        assert "lookup broken" in caplog.text
    finally:
        stop_server(srv, server, thread)
