"""The admin API on a live server: auth, CRUD with validation, configuration effects, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import MINIMAL_DATAFILE, LiveServer, Site


def served(live: LiveServer, site: Site, env: str = "production") -> dict[str, Any]:
    doc: dict[str, Any] = live.http.get(f"/{site.code}?environment={env}").json()
    return doc


def flag(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return next(f for f in doc["featureFlags"] if f["featureKey"] == key)


def test_admin_token_is_required(live: LiveServer) -> None:
    assert live.http.get("/api/sites").status_code == 401
    assert live.http.get("/api/sites", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert live.http.get("/api/health").json() == {"status": "ok"}


def test_create_site_validates_code_and_returns_credentials_once(live: LiveServer) -> None:
    for code in ("api", "bad code", "x" * 65):
        assert live.admin("POST", "/api/sites", {"code": code}).status_code == 422
    r = live.admin("POST", "/api/sites", {"name": "Shop"})
    assert r.status_code == 201
    body = r.json()
    assert len(body["site"]["code"]) == 10
    assert body["site"]["environments"] == ["production", "staging", "development"]
    assert body["credentials"]["client_secret"]
    code = body["site"]["code"]
    # real-time updates are off unless asked for, as on the vendor's platform (docs/server.md)
    assert live.http.get(f"/{code}").json()["configuration"]["realTimeUpdate"] is False
    assert live.admin("POST", "/api/sites", {"code": code}).status_code == 409
    listed = live.admin("GET", f"/api/sites/{code}/credentials").json()
    assert [c["client_id"] for c in listed] == [body["credentials"]["client_id"]]
    assert "client_secret" not in listed[0]
    assert live.admin("POST", "/api/sites", {"bogus": 1}).status_code == 422


def test_flag_lifecycle_with_both_rule_types(live: LiveServer) -> None:
    site = live.create_site()
    base = f"/api/sites/{site.code}/flags"
    r = live.admin(
        "POST",
        base,
        {
            "key": "checkout",
            "variations": [
                {"key": "off", "variables": [{"key": "color", "type": "STRING", "value": "grey"}]},
                {"key": "on", "variables": [{"key": "color", "type": "STRING", "value": "green"}]},
            ],
        },
    )
    assert r.status_code == 201, r.text
    rules = f"{base}/checkout/environments/production/rules"
    td = live.admin(
        "POST",
        rules,
        {
            "type": "TARGETED_DELIVERY",
            "exposition": 0.5,
            "variations": [{"variation_key": "on", "exposition": 1.0}],
        },
    )
    exp = live.admin(
        "POST",
        rules,
        {
            "type": "EXPERIMENTATION",
            "variations": [
                {"variation_key": "off", "exposition": 0.5},
                {"variation_key": "on", "exposition": 0.5},
            ],
        },
    )
    assert td.status_code == exp.status_code == 201
    live.admin("PATCH", f"{base}/checkout/environments/production", {"enabled": True})
    doc = flag(served(live, site), "checkout")
    assert doc["environmentEnabled"] is True
    assert [r["type"] for r in doc["rules"]] == ["TARGETED_DELIVERY", "EXPERIMENTATION"]
    split = doc["rules"][1]["variationByExposition"]
    assert [e["variationKey"] for e in split] == ["off", "on"]
    assert all(isinstance(e["variationId"], int) for e in split)
    rule_id = exp.json()["id"]
    r = live.admin("PATCH", f"{rules}/{rule_id}", {"exposition": 0.25})
    assert r.status_code == 200 and r.json()["exposition"] == 0.25
    again = flag(served(live, site), "checkout")["rules"][1]
    assert again["exposition"] == 0.25 and again["variationByExposition"] == split  # ids kept
    order = live.admin(
        "PUT", f"{base}/checkout/environments/production/rule-order", {"rule_ids": [rule_id, td.json()["id"]]}
    )
    assert [r["id"] for r in order.json()] == [rule_id, td.json()["id"]]
    assert live.admin("DELETE", f"{rules}/{rule_id}").status_code == 204
    assert live.admin("DELETE", f"{base}/checkout").status_code == 204
    assert served(live, site)["featureFlags"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "EXPERIMENTATION", "variations": [{"variation_key": "nope", "exposition": 1.0}]}, "nope"),
        (
            {
                "type": "EXPERIMENTATION",
                "exposition": 2,
                "variations": [{"variation_key": "on", "exposition": 1}],
            },
            "exposition",
        ),
        (
            {
                "type": "EXPERIMENTATION",
                "variations": [
                    {"variation_key": "on", "exposition": 0.7},
                    {"variation_key": "off", "exposition": 0.7},
                ],
            },
            "add up",
        ),
        ({"type": "OTHER", "variations": [{"variation_key": "on", "exposition": 1}]}, "type"),
        ({"type": "EXPERIMENTATION", "variations": []}, "at least one"),
        (
            {
                "type": "EXPERIMENTATION",
                "segment_id": 999999,
                "variations": [{"variation_key": "on", "exposition": 1}],
            },
            "segment",
        ),
        ({"type": "EXPERIMENTATION", "exposition": "high"}, "invalid body"),
    ],
)
def test_invalid_rules_are_refused_with_a_clear_message(
    live: LiveServer, site: Site, body: Any, message: str
) -> None:
    before = served(live, site)
    r = live.admin("POST", f"/api/sites/{site.code}/flags/banner/environments/production/rules", body)
    assert r.status_code == 422
    assert message in r.text
    assert served(live, site) == before


def test_variables_of_every_type_and_their_validation(live: LiveServer, site: Site) -> None:
    path = f"/api/sites/{site.code}/flags/banner/variations/on/variables"
    good = {
        "flag_on": ("BOOLEAN", True),
        "count": ("NUMBER", 2.5),
        "label": ("STRING", "hi"),
        "cfg": ("JSON", '{"a": [1]}'),
    }
    for name, (kind, value) in good.items():
        assert live.admin("PUT", f"{path}/{name}", {"type": kind, "value": value}).status_code == 200
    variables = next(v for v in flag(served(live, site), "banner")["variations"] if v["key"] == "on")[
        "variables"
    ]
    assert {v["key"]: (v["type"], v["value"]) for v in variables} == good
    for kind, value in (("BOOLEAN", "yes"), ("NUMBER", "1"), ("JSON", "{bad"), ("DATE", "x")):
        assert live.admin("PUT", f"{path}/bad", {"type": kind, "value": value}).status_code == 422


def test_segments_with_conditions_and_reference_checks(live: LiveServer) -> None:
    site = live.create_site(MINIMAL_DATAFILE)
    base = f"/api/sites/{site.code}/segments"
    r = live.admin(
        "POST",
        base,
        {
            "name": "vip",
            "match": "any",
            "conditions": [
                {
                    "targetingType": "CUSTOM_DATUM",
                    "customDataIndex": "0",
                    "valueMatchType": "EXACT",
                    "value": "vip",
                },
                {"targetingType": "DEVICE_TYPE", "device": "PHONE"},
            ],
        },
    )
    assert r.status_code == 201, r.text
    segment_id = r.json()["id"]
    assert r.json()["conditions_data"]["firstLevel"][0]["orOperators"] == [True]
    bad = live.admin("POST", base, {"conditions": [{"targetingType": "DEVICE_TYPE", "device": "WATCH"}]})
    assert bad.status_code == 422 and "device" in bad.text
    dangling = live.admin("POST", base, {"conditions": [{"targetingType": "SEGMENT", "segmentId": 424242}]})
    assert dangling.status_code == 422
    rules = f"/api/sites/{site.code}/flags/banner/environments/production/rules"
    rule = live.admin(
        "POST",
        rules,
        {
            "type": "TARGETED_DELIVERY",
            "segment_id": segment_id,
            "variations": [{"variation_key": "on", "exposition": 1}],
        },
    ).json()
    embedded = next(r for r in flag(served(live, site), "banner")["rules"] if r["id"] == rule["id"])[
        "segment"
    ]
    assert embedded["id"] == segment_id and embedded["conditionsData"]["firstLevel"]
    assert live.admin("DELETE", f"{base}/{segment_id}").status_code == 409
    patched = live.admin(
        "PATCH", f"{base}/{segment_id}", {"conditions": [{"targetingType": "OPERATING_SYSTEM", "os": "IOS"}]}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["conditions_data"]["firstLevel"][0]["conditions"][0]["os"] == "IOS"


def test_goals_custom_data_and_environments(live: LiveServer, site: Site) -> None:
    goal = live.admin("POST", f"/api/sites/{site.code}/goals", {"name": "purchase"})
    assert goal.status_code == 201 and isinstance(goal.json()["id"], int)
    assert live.admin("POST", f"/api/sites/{site.code}/goals", {"name": " "}).status_code == 422
    cd = live.admin(
        "POST", f"/api/sites/{site.code}/custom-data", {"index": 5, "name": "plan", "scope": "VISITOR"}
    )
    assert cd.status_code == 201
    assert live.admin("POST", f"/api/sites/{site.code}/custom-data", {"index": 5}).status_code == 422
    assert (
        live.admin(
            "POST", f"/api/sites/{site.code}/custom-data", {"index": 6, "is_mapping_identifier": True}
        ).status_code
        == 422
    )  # index 1 is one already
    entries = served(live, site)["customData"]
    assert {"index": 5, "scope": "VISITOR", "localOnly": False, "isMappingIdentifier": False}.items() <= next(
        e for e in entries if e["index"] == 5
    ).items()
    assert live.admin("POST", f"/api/sites/{site.code}/environments", {"key": "qa"}).status_code == 201
    assert live.http.get(f"/{site.code}?environment=qa").status_code == 200
    assert live.admin("DELETE", f"/api/sites/{site.code}/environments/qa").status_code == 204
    assert live.http.get(f"/{site.code}?environment=qa").status_code == 404


def test_every_change_bumps_the_configuration_timestamp(live: LiveServer, site: Site) -> None:
    stamps = [live.admin("GET", f"/api/sites/{site.code}").json()["updated_ms"]]
    for name in ("a", "b"):
        live.admin("POST", f"/api/sites/{site.code}/goals", {"name": name})
        stamps.append(live.admin("GET", f"/api/sites/{site.code}").json()["updated_ms"])
    assert stamps[0] < stamps[1] < stamps[2]
    assert len({s // 1000 for s in stamps}) == 3


def test_site_settings_and_configuration_import_export(live: LiveServer, site: Site) -> None:
    r = live.admin(
        "PATCH",
        f"/api/sites/{site.code}",
        {"settings": {"consent_type": "REQUIRED", "data_api_domain": "data.example.com"}},
    )
    assert r.status_code == 200, r.text
    conf = served(live, site)["configuration"]
    assert conf["consentType"] == "REQUIRED" and conf["dataApiDomain"] == "data.example.com"
    bad = live.admin("PATCH", f"/api/sites/{site.code}", {"settings": {"data_api_domain": "https://x/y"}})
    assert bad.status_code == 422
    exported = live.admin("GET", f"/api/sites/{site.code}/configuration").json()
    assert exported == served(live, site)
    broken = {"featureFlags": [{"featureKey": "x", "rules": [{"type": "EXPERIMENTATION"}]}]}
    r = live.admin("PUT", f"/api/sites/{site.code}/configuration", broken)
    assert r.status_code == 422 and r.json()["details"]


def test_delete_site_removes_everything(live: LiveServer) -> None:
    site = live.create_site(MINIMAL_DATAFILE)
    live.post_events(site, "nonce=Z&eventType=activity&visitorCode=v", live.token(site))
    assert live.admin("DELETE", f"/api/sites/{site.code}").status_code == 204
    assert live.http.get(f"/{site.code}").status_code == 404
    assert live.admin("GET", f"/api/sites/{site.code}").status_code == 404


def test_stats_metrics_events_and_openapi(live: LiveServer, site: Site) -> None:
    live.post_events(
        site, "nonce=S1&eventType=experiment&id=5001&variationId=7002&visitorCode=v", live.token(site)
    )
    summary = live.admin("GET", f"/api/sites/{site.code}/events/summary").json()
    assert summary == [{"type": "experiment", "events": 1, "visitors": 1}]
    lines = live.admin("GET", f"/api/sites/{site.code}/visitors/v/events").json()
    assert lines[0]["nonce"] == "S1"
    stats = live.admin("GET", "/api/stats").json()
    assert stats["events_stored"] >= 1 and "sse_connections" in stats
    assert "kameleoon_events_stored" in live.admin("GET", "/metrics").text
    spec = live.http.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/sites/{site}/flags/{flag}/environments/{env}/rules/{rule}" in spec["paths"]
    assert "Rule" in spec["components"]["schemas"]


def test_malformed_admin_bodies(live: LiveServer, site: Site) -> None:
    r = live.http.post(
        f"/api/sites/{site.code}/goals",
        content=b"{not json",
        headers={"Authorization": "Bearer test-admin-token"},
    )
    assert r.status_code == 400
    assert live.admin("GET", "/api/sites/nope/flags").status_code == 404
    assert live.admin("GET", f"/api/sites/{site.code}/flags/nope").status_code == 404
