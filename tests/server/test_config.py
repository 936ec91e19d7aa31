"""GET /{siteCode} and /v3/{siteCode} on a live server (protocol.md §2, Appendix A.2)."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from .conftest import LiveServer, Site


def test_configuration_is_json_with_last_modified(live: LiveServer, site: Site) -> None:
    r = live.http.get(f"/{site.code}", headers={"X-Kameleoon-SDK-Type": "PYTHON"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert [f["featureKey"] for f in doc["featureFlags"]] == ["new_checkout", "banner"]
    assert "dataApiDomain" not in doc["configuration"]
    assert "last-modified" in r.headers


def test_environment_and_ts_query_parameters(live: LiveServer, site: Site) -> None:
    staging = live.http.get(f"/{site.code}?environment=staging&ts=1700000000123").json()
    assert [f["environmentEnabled"] for f in staging["featureFlags"]] == [False, False]
    production = live.http.get(f"/{site.code}?environment=production").json()
    assert production == live.http.get(f"/{site.code}").json()
    assert live.http.get(f"/{site.code}?environment=nowhere").status_code == 404


def test_v3_path_serves_segments_and_date_modified(live: LiveServer, site: Site) -> None:
    doc = live.http.get(f"/v3/{site.code}?environment=production").json()
    assert doc["segments"] == [] and isinstance(doc["dateModified"], int)


def test_if_modified_since_answers_304_until_the_next_change(live: LiveServer, site: Site) -> None:
    first = live.http.get(f"/v3/{site.code}")
    stamp = first.headers["last-modified"]
    again = live.http.get(f"/v3/{site.code}", headers={"If-Modified-Since": stamp})
    assert again.status_code == 304 and again.content == b""
    older = formatdate(time.time() - 3600, usegmt=True)
    assert live.http.get(f"/v3/{site.code}", headers={"If-Modified-Since": older}).status_code in (200, 304)
    r = live.admin(
        "PATCH", f"/api/sites/{site.code}/flags/banner/environments/production", {"enabled": False}
    )
    assert r.status_code == 200, r.text
    changed = live.http.get(f"/v3/{site.code}", headers={"If-Modified-Since": stamp})
    assert changed.status_code == 200
    assert changed.json()["featureFlags"][1]["environmentEnabled"] is False
    assert changed.headers["last-modified"] != stamp


def test_unknown_site_is_404(live: LiveServer) -> None:
    assert live.http.get("/no-such-site").status_code == 404
    assert live.http.get("/v3/no-such-site").status_code == 404


@pytest.mark.parametrize("ts", ["%C2%B2", "-5", "1e3", "", "99999999999999999999999"])
def test_an_odd_ts_is_ignored(live: LiveServer, site: Site, ts: str) -> None:
    """``ts`` only matters when it is a decimal number newer than the configuration; anything
    else (a superscript digit, which str.isdigit accepts, a sign, an exponent) is ignored."""
    expected = live.http.get(f"/{site.code}").json()
    for path in (f"/{site.code}", f"/v3/{site.code}", f"/cfg/{site.code}"):
        answer = live.http.get(f"{path}?ts={ts}")
        assert answer.status_code == 200, (path, answer.text)
    assert live.http.get(f"/{site.code}?ts={ts}").json() == expected


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/visit/events", "POST"),
        ("GET", "/oauth/token", "POST"),
        ("POST", "/sse", "GET, HEAD"),
        ("DELETE", "/map/map", "GET, HEAD"),
    ],
)
def test_another_method_on_a_fixed_path_is_405_not_a_site(
    live: LiveServer, method: str, path: str, allow: str
) -> None:
    """The configuration routes ("/{site}", "/{prefix}/{site}") do not answer the paths of the
    other routes: a wrong method there is a 405 that lists the right ones."""
    answer = live.http.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow


def test_a_path_prefix_before_the_site_code_is_accepted(live: LiveServer, site: Site) -> None:
    assert live.http.get(f"/cfg/{site.code}?ts=1700000000123").json() == live.http.get(f"/{site.code}").json()


def test_the_server_never_imports_the_sdk() -> None:
    import subprocess
    import sys

    code = "import sys, kameleoon_server.app, kameleoon_server.cli; print('kameleoon' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_configuration_gets_answered_without_the_router_answer_as_routed(
    live: LiveServer, site: Site
) -> None:
    """GET /{site} and /v3/{site} skip the router (dozens of patterns per request); the answer is
    the routed one: HEAD and the path-prefix form still go through the router."""
    direct = live.http.get(f"/{site.code}?environment=staging")
    routed = live.http.get(f"/cfg/{site.code}?environment=staging")
    assert (direct.status_code, direct.content) == (routed.status_code, routed.content)
    names = ("content-type", "content-length", "last-modified", "cache-control")
    assert [direct.headers.get(n) for n in names] == [routed.headers.get(n) for n in names]
    head = live.http.head(f"/{site.code}")
    assert head.status_code == 200 and head.headers["last-modified"] == direct.headers["last-modified"]


def test_one_segment_paths_of_other_routes_are_not_site_codes(live: LiveServer) -> None:
    """/sse and /metrics are their own routes, not the configuration of sites named so."""
    assert live.http.get("/sse").json()["error"] != "unknown site 'sse'"
    assert live.admin("GET", "/metrics").status_code == 200
    assert live.http.get("/v3/a/b").status_code == 404
