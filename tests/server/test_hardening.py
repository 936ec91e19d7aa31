"""Hostile or odd input against a live server: every answer is a clear 4xx or a success, never
a 500, and one bad line costs only itself (both back ends)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest

from kameleoon_server._http import MAX_HEAD_BYTES

from .conftest import LiveServer, Site
from .test_http_events import Reader, connect

ALL = "currentVisit=true&customData=true&page=true&experiment=true&conversion=true&staticData=true"
ALL += "&geolocation=true&maxNumberPreviousVisits=25&version=0"


def visitor(live: LiveServer, site: Site, token: str, code: str) -> Any:
    r = live.http.get(
        f"/visit/visitor?siteCode={site.code}&visitorCode={code}&{ALL}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return r.json()


def conversions(document: Any) -> list[int]:
    visits = [document.get("currentVisit") or {}, *document.get("previousVisits", [])]
    return sorted(e["data"]["goalId"] for visit in visits for e in visit.get("conversionEvents", []))


def good(code: str, nonce: str) -> str:
    return f"nonce={nonce}&eventType=conversion&goalId=7&revenue=1.0&negative=false&visitorCode={code}"


@pytest.mark.parametrize(
    "bad",
    [
        "nonce=B1&eventType=customData&index=1&valuesCountMap="
        + "%5B" * 100_000
        + "&overwrite=true&visitorCode={code}",
        "nonce=B2&eventType=customData&index=1&valuesCountMap=%7B%22%5Cud800%22%3A1%7D&overwrite=true&visitorCode={code}",
        "nonce=B3&eventType=customData&index=1&valuesCountMap=%7B%22%5Cud800%22%3A1%7D&overwrite=true"
        "&mappingIdentifier=true&visitorCode={code}",
    ],
    ids=["nested too deeply", "lone surrogate", "lone surrogate as a user id"],
)
def test_a_bad_custom_data_line_costs_only_itself(live: LiveServer, site: Site, bad: str) -> None:
    token = live.token(site)
    code = f"hard{time.monotonic_ns()}"
    r = live.post_events(site, bad.format(code=code) + "\n" + good(code, "G1"), token)
    assert r.status_code == 204 and r.headers["x-kameleoon-rejected-lines"] == "1"
    assert conversions(visitor(live, site, token, code)) == [7]


@pytest.mark.parametrize(
    "line",
    [
        "nonce=P1&eventType=experiment&id=5001&variationId=7002&visitorCode={code}&%69d=abc",
        "nonce=P2&eventType=customData&index=1&valuesCountMap=%7B%22a%22%3A1%7D&overwrite=true"
        "&visitorCode={code}&%69ndex=x",
        "nonce=P3&eventType=staticData&browserIndex=%C2%B2&visitorCode={code}",
        "nonce=P4&eventType=staticData&os=X&osIndex=" + "9" * 5000 + "&visitorCode={code}",
        "nonce=P5&eventType=page&href=https%3A%2F%2Fex.com%2F&referrersIndices=%5B%22%5Cudc80%22%5D"
        "&visitorCode={code}",
    ],
    ids=["escaped name id", "escaped name index", "unicode digit", "huge index", "surrogate referrer"],
)
def test_a_stored_line_never_breaks_the_visitor_answer(live: LiveServer, site: Site, line: str) -> None:
    token = live.token(site)
    code = f"poison{time.monotonic_ns()}"
    r = live.post_events(site, line.format(code=code) + "\n" + good(code, "G2"), token)
    assert r.status_code == 204
    assert conversions(visitor(live, site, token, code)) == [7]


@pytest.mark.parametrize(
    "token",
    ["1.2.3.\u00e9", "\u00b2.1.a.b", "1." + "9" * 5000 + ".a.b", "caf\u00e9"],
    ids=["a", "b", "c", "d"],
)
def test_a_token_with_odd_characters_is_refused(live: LiveServer, site: Site, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}".encode()}
    for path in (
        f"/map/map?siteCode={site.code}&key=k",
        f"/visit/visitor?siteCode={site.code}&visitorCode=v",
    ):
        assert live.http.get(path, headers=headers).status_code == 401  # type: ignore[arg-type]
    assert live.post_events(site, good("v", "T1"), None).status_code == 401
    with connect(live) as sock:  # the protocol's own path, with a Content-Length
        body = good("v", "T2").encode()
        head = f"POST /visit/events?siteCode={site.code} HTTP/1.1\r\nContent-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"Authorization: Bearer " + token.encode() + b"\r\n\r\n" + body)
        assert Reader(sock).answer()[0] == 401


def test_a_huge_ts_is_ignored(live: LiveServer, site: Site) -> None:
    r = live.http.get(f"/{site.code}?ts={'9' * 5000}")
    assert r.status_code == 200 and "featureFlags" in r.json()


def test_a_request_head_too_large_is_refused_and_closed(live: LiveServer) -> None:
    with connect(live) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: t\r\nX-Long: ")
        try:
            for _ in range(2 * MAX_HEAD_BYTES // 4096 + 2):
                sock.sendall(b"a" * 4096)
        except OSError:  # closed while still sending: fine
            pass
        reader = Reader(sock)
        try:  # (a server that keeps reading never answers: the socket's timeout fails the test)
            status, _, _ = reader.answer()
            assert status == 431
            assert reader.closed()
        except ConnectionResetError:  # closed with bytes of ours unread: the kernel resets
            pass
    assert live.http.get("/api/health").status_code == 200


def _refused_as_too_large(sock: Any) -> bool:
    reader = Reader(sock)
    try:
        status, _, _ = reader.answer()
        return status == 431 and reader.closed()
    except ConnectionResetError:  # closed with bytes of ours unread: the kernel resets
        return True


@pytest.mark.parametrize("before", [0, 1], ids=["first request", "after a keep-alive request"])
def test_a_request_head_too_large_in_one_write_is_refused(live: LiveServer, before: int) -> None:
    """The limit holds when the whole head arrives at once, for every request of a connection."""
    small = b"GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n"
    with connect(live) as sock:
        for _ in range(before):
            sock.sendall(small)
            assert Reader(sock).answer()[0] == 200
        long_header = b"X-Long: " + b"a" * (MAX_HEAD_BYTES + 1000) + b"\r\n"
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: t\r\n" + long_header + b"\r\n")
        assert _refused_as_too_large(sock)


def test_a_pipelined_head_too_large_is_refused(live: LiveServer) -> None:
    """A head that begins in the read where the request before it ends counts from there."""
    small = b"GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n"
    long_head = b"GET /api/health HTTP/1.1\r\nHost: t\r\nX-Long: " + b"a" * (2 * MAX_HEAD_BYTES) + b"\r\n\r\n"
    cut = MAX_HEAD_BYTES + MAX_HEAD_BYTES // 2  # most of it with the small request, the rest later
    with connect(live) as sock:
        sock.sendall(small + long_head[:cut])
        time.sleep(0.2)
        with contextlib.suppress(OSError):
            sock.sendall(long_head[cut:])
        reader = Reader(sock)
        try:  # (the small request's answer may or may not come first)
            statuses = [reader.answer()[0]]
            if statuses == [200]:
                statuses.append(reader.answer()[0])
            assert statuses[-1] == 431 and reader.closed()
        except ConnectionResetError:  # closed with bytes of ours unread: the kernel resets
            pass


def test_pipelined_requests_after_a_large_body_are_served(live: LiveServer, site: Site) -> None:
    """A body of several head limits, then a small request in the same write: not a large head."""
    token = live.token(site)
    body = "\n".join(good(f"pipe{n}", f"PIPE{n}") for n in range(3 * MAX_HEAD_BYTES // 80)).encode()
    post = (
        f"POST /visit/events?siteCode={site.code} HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with connect(live) as sock:
        sock.sendall(post + b"GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = Reader(sock)
        assert [reader.answer()[0], reader.answer()[0]] == [204, 200]


def test_a_head_ending_across_two_writes_does_not_count_the_body(live: LiveServer, site: Site) -> None:
    """The blank line that ends a head may be split between two reads: the body that follows
    it in the second one is not counted as head."""
    token = live.token(site)
    body = "\n".join(good(f"split{n}", f"SPLIT{n}") for n in range(3 * MAX_HEAD_BYTES // 80)).encode()
    head = (
        f"POST /visit/events?siteCode={site.code} HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with connect(live) as sock:
        sock.sendall(head[:-1])
        time.sleep(0.2)  # two reads on the server's side
        sock.sendall(head[-1:] + body)
        assert Reader(sock).answer()[0] == 204


def test_a_large_body_in_one_read_is_not_a_large_head(live: LiveServer, site: Site) -> None:
    """Only head bytes count: a body of several head limits, sent with its head at once, goes."""
    token = live.token(site)
    lines = [good(f"big{n}", f"BIG{n}") for n in range(3 * MAX_HEAD_BYTES // 80)]
    assert live.post_events(site, "\n".join(lines), token).status_code == 204


def _stored(body: str) -> list[tuple[str, int]]:
    """(nonce, bot) of each line stored from ``body``, whichever path parses it."""
    from kameleoon_server._wire import FastBody, parse_for_storage

    parsed = parse_for_storage(body.encode(), 1, 0, 100)
    if isinstance(parsed, FastBody):
        return [(groups[1], 0) for groups in parsed.lines]
    return [(row[3], row[12]) for row in parsed.rows]


FAST = "nonce=F1&eventType=experiment&id=12&variationId=1&visitorCode=v"
GENERAL = (
    "nonce=G1&eventType=customData&index=1&valuesCountMap=%7B%22a%22%3A1%7D&overwrite=true&visitorCode=w"
)


@pytest.mark.parametrize("neighbour", [[], [GENERAL]], ids=["alone", "beside a general-path line"])
def test_the_fast_and_general_paths_store_lines_alike(neighbour: list[str]) -> None:
    """A line is stored the same whether its body takes the fast path or not: non-ASCII digits
    are refused, an empty user agent is a robot's."""
    unicode_digits = FAST.replace("id=12", "id=\u0661\u0662")
    assert _stored("\n".join([unicode_digits, *neighbour])) == _stored("\n".join(neighbour))
    empty_agent = _stored("\n".join([FAST + "&userAgent=", *neighbour]))
    assert empty_agent[0] == ("F1", 1)
