"""GET /sse on a live server (protocol.md §3): update events with padding, keep-alives, limits."""

from __future__ import annotations

import json
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from kameleoon_server.routes.sse import PADDING, update_event
from kameleoon_server.storage import ConfigChange, Storage

from .conftest import LiveServer, Site, start_server, stop_server
from .serve_process import ServerProcess

EVENT_RE = re.compile(rb"event: configuration-update-event\ndata: (\{[^\n]*\})\n\n")


class Stream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.data = b""
        self._chunks: queue.Queue[bytes] = queue.Queue()
        self.ended = threading.Event()  # set when the response has ended
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        try:
            for chunk in self.response.iter_raw():
                self._chunks.put(chunk)
        except httpx.HTTPError:
            pass
        self.ended.set()

    def wait_for(self, pattern: re.Pattern[bytes], timeout: float, start: int = 0) -> re.Match[bytes] | None:
        deadline = time.monotonic() + timeout
        while (match := pattern.search(self.data, start)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self.data += self._chunks.get(timeout=left)
            except queue.Empty:
                return None
        return match


@contextmanager
def stream(live: LiveServer, code: str) -> Iterator[Stream]:
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    with (
        httpx.Client(base_url=live.base_url, timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", f"/sse?siteCode={code}", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


def test_an_admin_change_reaches_every_connected_stream_within_a_second(live: LiveServer, site: Site) -> None:
    with stream(live, site.code) as first, stream(live, site.code) as second:
        assert first.wait_for(re.compile(rb": kameleoon"), 5)
        assert second.wait_for(re.compile(rb": kameleoon"), 5)
        r = live.admin(
            "PATCH", f"/api/sites/{site.code}/flags/new_checkout/environments/production", {"enabled": False}
        )
        assert r.status_code == 200
        events = [s.wait_for(EVENT_RE, 1.0) for s in (first, second)]
        assert all(events)
        assert events[0] is not None
        ts = json.loads(events[0].group(1))["ts"]
        served = live.http.get(f"/{site.code}?ts={ts}")
        assert served.json()["featureFlags"][0]["environmentEnabled"] is False


def test_each_event_is_followed_by_at_least_128_bytes_of_comment(live: LiveServer, site: Site) -> None:
    with stream(live, site.code) as s:
        assert s.wait_for(re.compile(rb": kameleoon"), 5)
        live.admin("POST", f"/api/sites/{site.code}/goals", {"name": "g"})
        match = s.wait_for(EVENT_RE, 1.0)
        assert match is not None
        padding = s.wait_for(re.compile(rb":[^\n]*\n"), 1.0, start=match.end())
        assert padding is not None and padding.start() == match.end()
        assert len(padding.group(0)) >= 128


def test_keep_alive_comments_flow_while_nothing_changes(live: LiveServer, site: Site) -> None:
    with stream(live, site.code) as s:
        assert s.wait_for(re.compile(rb": keep-alive\n\n(.|\n)*: keep-alive\n\n"), 5)


def test_other_sites_do_not_get_the_event(live: LiveServer, site: Site) -> None:
    other = live.create_site()
    with stream(live, other.code) as s:
        assert s.wait_for(re.compile(rb": kameleoon"), 5)
        live.admin("POST", f"/api/sites/{site.code}/goals", {"name": "g"})
        assert s.wait_for(EVENT_RE, 0.5) is None


def test_connection_cap_answers_503(new_storage: Callable[..., Storage]) -> None:
    srv, server, thread = start_server(new_storage(), sse_max_connections=1, sse_keepalive_seconds=0.2)
    try:
        capped = srv.create_site()
        with stream(srv, capped.code) as s:
            assert s.wait_for(re.compile(rb": kameleoon"), 5)
            assert srv.http.get(f"/sse?siteCode={capped.code}").status_code == 503
    finally:
        srv.http.close()
        server.should_exit = True
        thread.join(10)


def test_the_cap_holds_against_a_burst_of_concurrent_opens(new_storage: Callable[..., Storage]) -> None:
    """Opens that arrive together are counted as they start: no more than the cap get a stream,
    and every place is given back when the streams close."""
    srv, server, thread = start_server(new_storage(), sse_max_connections=3, sse_keepalive_seconds=0.2)
    capped = srv.create_site()
    host, port = srv.base_url.removeprefix("http://").split(":")

    def open_streams(count: int) -> list[socket.socket]:
        request = f"GET /sse?siteCode={capped.code} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        sockets = [socket.create_connection((host, int(port)), timeout=10) for _ in range(count)]
        for sock in sockets:  # every request is in before any answer is read
            sock.sendall(request)
        return sockets

    def statuses(sockets: list[socket.socket]) -> list[bytes]:
        answers = [sock.recv(12)[9:12] for sock in sockets]
        for sock in sockets:
            sock.close()
        return answers

    try:
        first = statuses(open_streams(12))
        assert first.count(b"200") == 3 and first.count(b"503") == 9
        deadline = time.monotonic() + 5  # the closed streams give their places back
        while (again := statuses(open_streams(3))) != [b"200"] * 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert again == [b"200"] * 3
    finally:
        stop_server(srv, server, thread)


def test_deleting_a_site_ends_its_streams(live: LiveServer) -> None:
    doomed = live.create_site()
    with stream(live, doomed.code) as s:
        assert s.wait_for(re.compile(rb": kameleoon"), 5)
        assert live.admin("DELETE", f"/api/sites/{doomed.code}").status_code == 204
        assert s.ended.wait(5)  # the server ended the response


def test_unknown_site_and_missing_site_code(live: LiveServer) -> None:
    assert live.http.get("/sse?siteCode=nope").status_code == 404
    assert live.http.get("/sse").status_code == 400


def test_event_bytes() -> None:
    event = update_event(ConfigChange(1, "s", 2, 1700000000123))
    assert event.startswith(b'event: configuration-update-event\ndata: {"ts":1700000000123}\n\n')
    assert event.endswith(PADDING) and len(PADDING) >= 130


def test_a_reader_blocking_on_128_byte_blocks_sees_the_event_at_once(
    new_storage: Callable[..., Storage],
) -> None:
    """Emulates the 3.4.0 client (§3.4): no keep-alive helps here, only the padding does."""
    import urllib3

    srv, server, thread = start_server(new_storage(), sse_keepalive_seconds=60)
    pool = urllib3.PoolManager()
    try:
        site = srv.create_site()
        response = pool.request(
            "GET",
            f"{srv.base_url}/sse?siteCode={site.code}",
            preload_content=False,
            headers={"Accept": "text/event-stream"},
            timeout=urllib3.Timeout(read=None),
        )
        blocks: queue.Queue[bytes] = queue.Queue()

        def pump() -> None:
            try:
                while block := response.read(128):
                    blocks.put(block)
            except Exception:  # the server shuts down at the end of the test
                return

        threading.Thread(target=pump, daemon=True).start()
        data = b""
        while b"kameleoon configuration stream" not in data:
            data += blocks.get(timeout=5)
        srv.admin("POST", f"/api/sites/{site.code}/goals", {"name": "g"})
        deadline = time.monotonic() + 1.0
        while EVENT_RE.search(data) is None and time.monotonic() < deadline:
            try:
                data += blocks.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
        assert EVENT_RE.search(data) is not None
        response.release_conn()
    finally:
        pool.clear()
        srv.http.close()
        server.should_exit = True
        thread.join(10)


def test_a_server_shutting_down_ends_its_streams_cleanly(tmp_path: Path) -> None:
    """On SIGTERM the streams end at once with the chunked terminator, instead of being cut
    mid-stream when uvicorn's graceful period runs out."""
    server = ServerProcess("--data-dir", str(tmp_path), "--demo")
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /sse?siteCode=demo HTTP/1.1\r\nHost: x\r\n\r\n")
        received = sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200")
        server.stop()  # SIGTERM, then waits for the exit
        while chunk := sock.recv(65536):
            received += chunk
    assert received.endswith(b"0\r\n\r\n")
