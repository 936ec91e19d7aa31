"""``kameleoon serve --request-timeout``: silent and slow clients are cut off (``_http.py``),
without touching idle keep-alive connections, responses or SSE streams."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kameleoon_server import _http

from .conftest import MINIMAL_DATAFILE
from .serve_process import ADMIN_TOKEN, ServerProcess

TIMEOUT = 0.5
PATIENCE = 15.0  # how long a test waits for the server to act before it fails


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("timeout")
    process = ServerProcess("--data-dir", str(data_dir), "--request-timeout", str(TIMEOUT))
    yield process
    process.stop()


def _connect(server: ServerProcess) -> socket.socket:
    host, port = server.base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(PATIENCE)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _drip(sock: socket.socket, data: bytes, pause: float) -> bool:
    """Sends ``data`` a byte at a time; False once the server has closed the connection."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return False
        time.sleep(pause)
    return True


def _timed_out(server: ServerProcess) -> int:
    stats = server.admin("GET", "/api/stats").json()
    return int(stats["requests_timed_out"])


def test_a_connection_that_sends_nothing_gets_408_and_is_closed(server: ServerProcess) -> None:
    before = _timed_out(server)
    with _connect(server) as sock:
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert _timed_out(server) == before + 1


def test_a_head_sent_a_byte_at_a_time_is_cut_off(server: ServerProcess) -> None:
    # Every byte comes well within the timeout; the whole head would take 40 times it.
    head = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
    with _connect(server) as sock:
        finished = _drip(sock, head, TIMEOUT / 10)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert not finished or b"200 OK" not in answer


def test_a_body_sent_slowly_is_cut_off_and_nothing_of_it_is_stored(server: ServerProcess) -> None:
    code = "slowbody"
    created = server.admin("POST", "/api/sites", {"code": code})
    assert created.status_code == 201, created.text
    creds = created.json()["credentials"]
    grant = "grant_type=client_credentials&client_id={client_id}&client_secret={client_secret}"
    grant = grant.format(**creds)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    token = server.http.post("/oauth/token", content=grant, headers=headers).json()["access_token"]
    body = b"nonce=AAAA000000000001&eventType=activity&visitorCode=slow-visitor"
    head = (
        f"POST /visit/events?sdkName=PYTHON&sdkVersion=3.4.0&siteCode={code} HTTP/1.1\r\n"
        f"Host: x\r\nAuthorization: Bearer {token}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    before = _timed_out(server)
    with _connect(server) as sock:
        sock.sendall(head + body[:10])
        _drip(sock, body[10:], TIMEOUT / 5)
        answer = _read_all(sock)
    assert b"204" not in answer.split(b"\r\n", 1)[0], answer
    assert _timed_out(server) == before + 1
    summary = server.admin("GET", f"/api/sites/{code}/events/summary").json()
    assert sum(int(row["events"]) for row in summary) == 0


def test_an_idle_keep_alive_connection_outlives_the_request_timeout(server: ServerProcess) -> None:
    request = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connect(server) as sock:
        for _ in range(2):
            sock.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, "the server closed an idle keep-alive connection"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            time.sleep(3 * TIMEOUT)  # idle between requests: only the keep-alive timeout applies


def test_an_sse_stream_stays_open_past_the_request_timeout(server: ServerProcess) -> None:
    code = "ssetimeout"
    assert server.admin("POST", "/api/sites", {"code": code}).status_code == 201
    with (
        httpx.Client(base_url=server.base, timeout=httpx.Timeout(PATIENCE)) as client,
        client.stream("GET", f"/sse?siteCode={code}") as response,
    ):
        assert response.status_code == 200
        time.sleep(3 * TIMEOUT)
        changed = server.admin("PUT", f"/api/sites/{code}/configuration", MINIMAL_DATAFILE)
        assert changed.status_code == 200, changed.text
        received = b""
        for chunk in response.iter_bytes():
            received += chunk
            if b"configuration-update-event" in received:
                break
    assert b"configuration-update-event" in received


def test_no_limit_with_zero(tmp_path: Path) -> None:
    process = ServerProcess("--data-dir", str(tmp_path), "--request-timeout", "0")
    try:
        with _connect(process) as sock:
            sock.settimeout(4 * TIMEOUT)
            with pytest.raises(TimeoutError):  # nothing comes back: the connection just waits
                sock.recv(1)
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sock.settimeout(PATIENCE)
            assert _read_all(sock).startswith(b"HTTP/1.1 200 ")
    finally:
        process.stop()


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_configure_refuses_negative_and_nan(bad: float) -> None:
    with pytest.raises(ValueError, match="request timeout"):
        _http.configure(bad)


def test_the_command_line_refuses_a_negative_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    from kameleoon_server import cli

    with pytest.raises(SystemExit):
        cli.main(["serve", "--request-timeout", "-1", "--admin-token", ADMIN_TOKEN])
    assert "finite number of seconds" in capsys.readouterr().err


def test_a_client_that_reads_nothing_of_a_large_answer_is_dropped(server: ServerProcess) -> None:
    """The answer waits for the client past the timeout with the transport's buffer full: the
    connection goes, and with it the queued answer (the server's memory)."""
    code = "stalled"
    assert server.admin("POST", "/api/sites", {"code": code}).status_code == 201
    big = {"blob": "x" * (6 * 1024 * 1024)}
    stored = server.admin("PUT", f"/api/sites/{code}/remote-data/big", big)
    assert stored.status_code in (200, 201, 204), stored.text
    before = _timed_out(server)
    with _connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(
            f"GET /api/sites/{code}/remote-data/big HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
        )
        deadline = time.monotonic() + PATIENCE
        while _timed_out(server) == before and time.monotonic() < deadline:
            time.sleep(0.1)  # reading nothing meanwhile
        assert _timed_out(server) == before + 1  # dropped (what the kernel holds still trickles in)
