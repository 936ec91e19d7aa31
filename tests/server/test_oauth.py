"""POST /oauth/token (protocol.md §4, Appendix A.4) and token checks on the Data API."""

from __future__ import annotations

import asyncio
import base64
import time

from kameleoon_server.app import signing_key
from kameleoon_server.tokens import TokenIssuer

from .conftest import LiveServer, Site, same_database


def test_form_body_as_3_4_0_sends_it(live: LiveServer, site: Site) -> None:
    body = f"grant_type=client_credentials&client_id={site.client_id}&client_secret={site.client_secret}"
    r = live.http.post(
        "/oauth/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert data["token_type"] == "Bearer" and data["access_token"]
    assert isinstance(data["expires_in"], int) and data["expires_in"] > 1800
    assert b'"expires_in":7200' in r.content  # an integer on the wire, not 7200.0


def test_basic_header_as_3_22_2_sends_it(live: LiveServer, site: Site) -> None:
    basic = base64.b64encode(f"{site.client_id}:{site.client_secret}".encode()).decode()
    r = live.http.post(
        f"/oauth/token?sdkName=PYTHON&sdkVersion=3.22.2&siteCode={site.code}",
        content="grant_type=client_credentials",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and r.json()["access_token"]


def test_bad_credentials_are_401(live: LiveServer, site: Site) -> None:
    for client_id, secret in ((site.client_id, "wrong"), ("nobody", site.client_secret)):
        body = f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}"
        r = live.http.post("/oauth/token", content=body)
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"
    assert live.http.post("/oauth/token", content="grant_type=client_credentials").status_code == 400


def test_tokens_expire_and_are_bound_to_their_site(live: LiveServer, site: Site) -> None:
    key = asyncio.run(_key(live))
    issuer = TokenIssuer(key, ttl_seconds=60)
    site_id = live.db_rows("SELECT id FROM sites WHERE code = ?", site.code)[0][0]
    expired, _ = issuer.issue(site_id, now=time.time() - 120)
    fresh, _ = issuer.issue(site_id)
    other_site, _ = issuer.issue(site_id + 1000)
    url = f"/map/map?siteCode={site.code}&key=k"
    assert live.http.get(url, headers={"Authorization": f"Bearer {fresh}"}).status_code == 404  # accepted
    for token in (expired, other_site, fresh[:-2] + "xx", "garbage"):
        r = live.http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token


def test_a_renewed_token_works(live: LiveServer, site: Site) -> None:
    first, second = live.token(site), live.token(site)
    assert first != second
    for token in (first, second):
        r = live.http.get(
            f"/map/map?siteCode={site.code}&key=k", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 404


def test_token_issuer_expiry_without_a_server() -> None:
    issuer = TokenIssuer(b"k" * 32, ttl_seconds=100)
    token, ttl = issuer.issue(5, now=1000.0)
    assert ttl == 100
    assert issuer.verify(token, now=1050.0) == 5
    assert issuer.verify(token, now=1100.0) is None
    assert TokenIssuer(b"other", 100).verify(token, now=1050.0) is None


async def _key(live: LiveServer) -> bytes:
    reader = same_database(live.storage, ingest_process=False)
    await reader.open()
    try:
        return await signing_key(reader)
    finally:
        await reader.close()
