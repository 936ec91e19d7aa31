"""POST /visit/events on a live server (protocol.md §5): parsing, de-duplication, limits, auth."""

from __future__ import annotations

from .conftest import SDK_QUERY, LiveServer, Site
from .test_wire import CAPTURED_BODY


def stored(live: LiveServer, site: Site) -> list[tuple[str, str, int, str]]:
    return live.db_rows(
        "SELECT e.identity, e.nonce, e.bot, e.line FROM events e JOIN sites s ON s.id = e.site_id"
        " WHERE s.code = ? ORDER BY e.id",
        site.code,
    )


def test_captured_3_4_0_body_is_stored_exactly_and_answered_204(live: LiveServer, site: Site) -> None:
    r = live.post_events(site, CAPTURED_BODY, live.token(site))
    assert r.status_code == 204 and r.content == b""
    rows = stored(live, site)
    assert [line for *_, line in rows] == CAPTURED_BODY.split("\n")
    assert {identity for identity, *_ in rows} == {"visitor-1"}


def test_resent_lines_are_stored_once_but_linked_identities_may_share_a_nonce(
    live: LiveServer, site: Site
) -> None:
    token = live.token(site)
    body = (
        "nonce=2FA720F6D05D5662&eventType=customData&index=1&valuesCountMap=%7B%22user-42%22%3A1%7D"
        "&overwrite=true&mappingIdentifier=true&mappingValue=user-42\n"
        "nonce=2FA720F6D05D5662&eventType=customData&index=1&valuesCountMap=%7B%22user-42%22%3A1%7D"
        "&overwrite=true&mappingIdentifier=true&visitorCode=anon-1"
    )
    for _ in range(3):
        assert live.post_events(site, body, token).status_code == 204
    assert [(i, n) for i, n, *_ in stored(live, site)] == [
        ("user-42", "2FA720F6D05D5662"),
        ("anon-1", "2FA720F6D05D5662"),
    ]


def test_malformed_lines_are_skipped_and_counted(live: LiveServer, site: Site) -> None:
    before = live.admin("GET", "/api/stats").json().get("events_malformed", 0)
    body = (
        "nonce=A&eventType=activity&visitorCode=v\nthis is not a line\n"
        "nonce=B&eventType=experiment&visitorCode=v"
    )
    r = live.post_events(site, body, live.token(site))
    assert r.status_code == 204
    assert r.headers["x-kameleoon-rejected-lines"] == "2"
    assert [n for _, n, *_ in stored(live, site)] == ["A"]
    assert live.admin("GET", "/api/stats").json()["events_malformed"] == before + 2


def test_bot_user_agents_are_marked(live: LiveServer, site: Site) -> None:
    body = (
        "nonce=C1&eventType=activity&visitorCode=bot-1&userAgent=curl%2F8.0\n"
        "nonce=C2&eventType=activity&visitorCode=human&userAgent=Mozilla%2F5.0%20(X11%3B%20Linux)"
    )
    live.post_events(site, body, live.token(site))
    assert {i: bot for i, _, bot, _ in stored(live, site)} == {"bot-1": 1, "human": 0}


def test_auth_is_required_by_default(live: LiveServer, site: Site) -> None:
    body = "nonce=D&eventType=activity&visitorCode=v"
    assert live.post_events(site, body).status_code == 401
    assert live.post_events(site, body, "not-a-token").status_code == 401
    assert stored(live, site) == []


def test_sites_can_accept_unauthenticated_tracking(live: LiveServer) -> None:
    open_site = live.create_site(data_api_auth="optional")
    body = "nonce=E&eventType=activity&visitorCode=v"
    assert live.post_events(open_site, body).status_code == 204
    assert live.post_events(open_site, body, "bad-token").status_code == 401  # a wrong token is still wrong
    assert len(stored(live, open_site)) == 1


def test_unknown_site_missing_site_code_and_limits(live: LiveServer, site: Site) -> None:
    token = live.token(site)
    unknown = live.http.post(
        f"/visit/events?{SDK_QUERY}&siteCode=nope", content=b"x", headers={"Authorization": f"Bearer {token}"}
    )
    assert unknown.status_code == 404
    assert live.http.post(f"/visit/events?{SDK_QUERY}", content=b"x").status_code == 400
    too_big = "x" * (live.settings.max_body_bytes + 1)
    assert live.post_events(site, too_big, token).status_code == 413
    too_many = "\n".join(["nonce=F&eventType=activity&visitorCode=v"] * (live.settings.max_lines + 1))
    assert live.post_events(site, too_many, token).status_code == 413
    assert stored(live, site) == []


def test_chunked_bodies_without_content_length_are_read(live: LiveServer, site: Site) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b"nonce=G1&eventType=activity&visitorCode=v\n"
        yield b"nonce=G2&eventType=activity&visitorCode=v"

    r = live.http.post(
        f"/visit/events?{SDK_QUERY}&siteCode={site.code}",
        content=chunks(),
        headers={"Authorization": f"Bearer {live.token(site)}"},
    )
    assert r.status_code == 204
    assert [n for _, n, *_ in stored(live, site)] == ["G1", "G2"]


def test_large_bodies_are_stored_whole_in_several_statements(live: LiveServer, site: Site) -> None:
    """More lines than one SQL statement takes (SQLite: about 2,900 fast lines, 2,285 rows)."""
    token = live.token(site)
    fast = [f"nonce=F{i:06d}&eventType=activity&visitorCode=big-{i % 97}" for i in range(7_000)]
    mixed = [f"nonce=M{i:06d}&eventType=activity&visitorCode=big-{i % 97}" for i in range(5_000)]
    mixed[2_500] = "nonce=PAGE1&eventType=page&href=x&visitorCode=big-1"  # not only the fast layout
    for body in (fast, mixed):
        assert live.post_events(site, "\n".join(body), token).status_code == 204
    sql = "SELECT count(DISTINCT e.nonce) FROM events e JOIN sites s ON s.id = e.site_id WHERE s.code = ?"
    assert live.db_rows(sql, site.code) == [(12_000,)]
