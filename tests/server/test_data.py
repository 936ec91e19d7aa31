"""GET /map/map on a live server (protocol.md §6, §7): remote data and warehouse audiences."""

from __future__ import annotations

from .conftest import LiveServer, Site


def test_stored_data_round_trips_as_json(live: LiveServer, site: Site) -> None:
    value = {"warehouseAudiences": {"high_value": 1, "newsletter": 1}}
    assert live.admin("PUT", f"/api/sites/{site.code}/remote-data/user-42", value).status_code == 200
    r = live.http.get(
        f"/map/map?siteCode={site.code}&key=user-42", headers={"Authorization": f"Bearer {live.token(site)}"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == value


def test_any_json_value_and_keys_needing_encoding(live: LiveServer, site: Site) -> None:
    key = "a key/with ü&="
    live.admin("PUT", f"/api/sites/{site.code}/remote-data/a%20key%2Fwith%20%C3%BC%26%3D", [1, "two", None])
    r = live.http.get(
        f"/map/map?siteCode={site.code}&key=a%20key/with%20%C3%BC%26%3D",
        headers={"Authorization": f"Bearer {live.token(site)}"},
    )
    assert r.json() == [1, "two", None]
    keys = live.admin("GET", f"/api/sites/{site.code}/remote-data?prefix=a%20").json()
    assert keys == [key]


def test_unknown_key_is_404_with_empty_body(live: LiveServer, site: Site) -> None:
    r = live.http.get(
        f"/map/map?siteCode={site.code}&key=missing", headers={"Authorization": f"Bearer {live.token(site)}"}
    )
    assert r.status_code == 404 and r.content == b""


def test_auth_missing_key_and_deletion(live: LiveServer, site: Site) -> None:
    """Errors are plain text: the SDKs decode any JSON answer whatever its status and would
    return a JSON error to the application as if it were the stored data."""
    token = live.token(site)
    auth = {"Authorization": f"Bearer {token}"}
    errors = {
        401: live.http.get(f"/map/map?siteCode={site.code}&key=x"),
        400: live.http.get(f"/map/map?siteCode={site.code}", headers=auth),
        404: live.http.get("/map/map?siteCode=no-such-site&key=x", headers=auth),
    }
    for status, answer in errors.items():
        assert answer.status_code == status
        assert answer.headers["content-type"].startswith("text/plain"), status
    live.admin("PUT", f"/api/sites/{site.code}/remote-data/gone", {"a": 1})
    assert live.admin("DELETE", f"/api/sites/{site.code}/remote-data/gone").status_code == 204
    assert live.admin("GET", f"/api/sites/{site.code}/remote-data/gone").status_code == 404
