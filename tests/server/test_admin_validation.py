"""Admin API input validation: malformed bodies and query parameters, id ranges, duplicate and
dangling references, validated imports, site environments and concurrent edits."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .conftest import (
    ADMIN_TOKEN,
    MINIMAL_DATAFILE,
    LiveServer,
    Site,
    same_database,
    start_server,
    stop_server,
)

MAX_ID = 2**63 - 1
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SPLIT_ON = [{"variation_key": "on", "exposition": 1.0}]


def rules_path(site: Site, flag: str = "banner", env: str = "production") -> str:
    return f"/api/sites/{site.code}/flags/{flag}/environments/{env}/rules"


def model(live: LiveServer, site: Site) -> dict[str, Any]:
    body: dict[str, Any] = live.admin("GET", f"/api/sites/{site.code}").json()["model"]
    return body


def condition_segment(condition: dict[str, Any]) -> dict[str, Any]:
    return {"conditions": [condition]}


# -- bug 1: no 500 for malformed input ------------------------------------------------------------


DEEP_OBJECT = b'{"name":' * 5000 + b"1" + b"}" * 5000
DEEP_LIST_IN_OBJECT = b'{"name":' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.mark.parametrize(
    ("method", "raw"),
    [
        ("POST", b'{"name":"\xff"}'),
        ("PATCH", b'{"name":"\xff"}'),
        ("PATCH", DEEP_OBJECT),
        ("PATCH", DEEP_LIST_IN_OBJECT),
    ],
    ids=["post-not-utf8", "patch-not-utf8", "patch-deep-object", "patch-deep-list"],
)
def test_undecodable_bodies_are_400(live: LiveServer, site: Site, method: str, raw: bytes) -> None:
    path = f"/api/sites/{site.code}/goals" if method == "POST" else f"/api/sites/{site.code}"
    r = live.http.request(method, path, content=raw, headers=AUTH)
    assert r.status_code == 400, r.text
    assert r.json()["error"]


def test_deeply_nested_typed_bodies_are_refused(live: LiveServer, site: Site) -> None:
    for raw in (b"[" * 5000 + b"]" * 5000, DEEP_OBJECT, DEEP_LIST_IN_OBJECT):
        r = live.http.post(f"/api/sites/{site.code}/goals", content=raw, headers=AUTH)
        assert r.status_code in (400, 422), r.text


def test_undecodable_raw_bodies_are_400(live: LiveServer, site: Site) -> None:
    for path in (f"/api/sites/{site.code}/configuration", f"/api/sites/{site.code}/remote-data/k"):
        for raw in (b'{"a":"\xff"}', b"[" * 5000 + b"]" * 5000, DEEP_OBJECT):
            assert live.http.put(path, content=raw, headers=AUTH).status_code == 400


@pytest.mark.parametrize("position", ["--5", "²", "1_0", "1 2", "+1", "x", "9" * 5000])
def test_rule_position_must_be_an_ascii_integer(live: LiveServer, site: Site, position: str) -> None:
    body = {"type": "TARGETED_DELIVERY", "variations": SPLIT_ON}
    r = live.admin("POST", rules_path(site), body, params={"position": position})
    assert r.status_code == 422, r.text
    assert "position" in r.json()["error"]


def test_rule_position_still_inserts_where_asked(live: LiveServer, site: Site) -> None:
    body = {"type": "TARGETED_DELIVERY", "variations": SPLIT_ON}
    first = live.admin("POST", rules_path(site), body, params={"position": "0"})
    assert first.status_code == 201, first.text
    assert live.admin("GET", rules_path(site)).json()[0]["id"] == first.json()["id"]


@pytest.mark.parametrize("limit", ["abc", "²", "--1", "-5", "0", "1.5", "9" * 5000])
def test_remote_data_limit_must_be_a_positive_integer(live: LiveServer, site: Site, limit: str) -> None:
    r = live.admin("GET", f"/api/sites/{site.code}/remote-data", params={"limit": limit})
    assert r.status_code == 422, r.text
    assert "limit" in r.json()["error"]


def test_remote_data_limit_is_applied(live: LiveServer, site: Site) -> None:
    for key in ("a", "b", "c"):
        live.admin("PUT", f"/api/sites/{site.code}/remote-data/{key}", {"v": key})
    assert len(live.admin("GET", f"/api/sites/{site.code}/remote-data", params={"limit": "2"}).json()) == 2
    assert len(live.admin("GET", f"/api/sites/{site.code}/remote-data", params={"limit": "5000"}).json()) == 3


@pytest.mark.parametrize("body", [{"settings": None}, {"settings": [1]}, {"settings": "x"}, {"name": None}])
def test_site_patch_needs_an_object_of_settings_and_a_string_name(
    live: LiveServer, site: Site, body: dict[str, Any]
) -> None:
    r = live.admin("PATCH", f"/api/sites/{site.code}", body)
    assert r.status_code == 422, r.text
    assert live.admin("GET", f"/api/sites/{site.code}").json()["name"] == site.code


@pytest.mark.parametrize(
    "doc",
    [
        {"featureFlags": [], "configuration": 5},
        {"featureFlags": [1]},
        {"featureFlags": {"a": 1}},
        {"featureFlags": [{}]},
        {"customData": 5},
        {"customData": [1]},
        {"segments": 5},
        [{}],
        dict(MINIMAL_DATAFILE, featureFlags=[dict(MINIMAL_DATAFILE["featureFlags"][0], id="x")]),
        dict(MINIMAL_DATAFILE, featureFlags=[dict(MINIMAL_DATAFILE["featureFlags"][0], featureKey="a b")]),
        dict(
            MINIMAL_DATAFILE,
            featureFlags=[dict(MINIMAL_DATAFILE["featureFlags"][0], defaultVariationKey="nope")],
        ),
        dict(MINIMAL_DATAFILE, featureFlags=[dict(MINIMAL_DATAFILE["featureFlags"][1], id=2**63)]),
    ],
)
def test_imports_are_validated_like_admin_edits(live: LiveServer, site: Site, doc: Any) -> None:
    before = model(live, site)
    r = live.admin("PUT", f"/api/sites/{site.code}/configuration", doc)
    assert r.status_code == 422, r.text
    assert r.json()["details"]
    assert model(live, site) == before


def test_an_import_keeps_next_id_past_its_ids_and_gives_custom_data_ids(live: LiveServer) -> None:
    site = live.create_site(MINIMAL_DATAFILE)
    stored = model(live, site)
    assert all(1 <= c["id"] < stored["next_id"] for c in stored["custom_data"])
    goal = live.admin("POST", f"/api/sites/{site.code}/goals", {"name": "g"}).json()
    assert goal["id"] not in {c["id"] for c in stored["custom_data"]}


# -- bug 2: ids in 1..2**63-1 ---------------------------------------------------------------------


@pytest.mark.parametrize("goal_id", [2**63, -1, 2**64 + 5])
def test_goal_ids_out_of_range_are_refused(live: LiveServer, site: Site, goal_id: int) -> None:
    r = live.admin("POST", f"/api/sites/{site.code}/goals", {"id": goal_id, "name": "g"})
    assert r.status_code == 422, r.text
    assert "id" in r.text


def test_the_largest_goal_id_is_accepted_and_results_still_work(live: LiveServer, site: Site) -> None:
    r = live.admin("POST", f"/api/sites/{site.code}/goals", {"id": MAX_ID, "name": "g"})
    assert r.status_code == 201, r.text
    results = live.admin("GET", f"/api/sites/{site.code}/experiments/5001/results")
    assert results.status_code == 200, results.text
    after = live.admin("POST", f"/api/sites/{site.code}/goals", {"name": "h"})
    assert after.status_code == 201 and after.json()["id"] < MAX_ID  # a free id below it


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/flags", {"key": "f", "id": 2**63}),
        ("/flags", {"key": "f", "id": -3}),
        ("/segments", {"id": 2**63, "conditions_data": None}),
        ("/custom-data", {"id": 2**63, "index": 9}),
        ("/custom-data", {"index": 2**63}),
        ("/custom-data", {"index": -1}),
        ("/flags/banner/environments/production/rules", {"id": 2**63, "variations": SPLIT_ON}),
        ("/flags/banner/environments/production/rules", {"experiment_id": -1, "variations": SPLIT_ON}),
        (
            "/flags/banner/environments/production/rules",
            {"variations": [{"variation_key": "on", "exposition": 1, "variation_id": 2**63}]},
        ),
    ],
)
def test_ids_out_of_range_are_refused_everywhere(live: LiveServer, site: Site, path: str, body: Any) -> None:
    r = live.admin("POST", f"/api/sites/{site.code}{path}", body)
    assert r.status_code == 422, r.text


def test_out_of_range_path_ids_are_404(live: LiveServer, site: Site) -> None:
    for path in (f"/goals/{2**63}", "/goals/²", f"/segments/{2**64}", "/custom-data/²"):
        assert live.admin("PATCH", f"/api/sites/{site.code}{path}", {}).status_code == 404
    assert live.admin("GET", f"/api/sites/{site.code}/experiments/{2**63}/results").status_code == 404


@pytest.mark.parametrize(
    "query", [{"goal": str(2**63)}, {"goal": "²"}, {"breakdown": "²"}, {"from": "--5"}, {"to": str(10**30)}]
)
def test_results_parameters_out_of_range_are_422(live: LiveServer, site: Site, query: dict[str, str]) -> None:
    r = live.admin("GET", f"/api/sites/{site.code}/experiments/5001/results", params=query)
    assert r.status_code == 422, r.text


# -- bug 3: duplicates and dangling references ----------------------------------------------------


def test_experiment_ids_are_unique(live: LiveServer, site: Site) -> None:
    r = live.admin("POST", rules_path(site), {"experiment_id": 5002, "variations": SPLIT_ON})
    assert r.status_code == 422, r.text
    assert "5002" in r.text
    other = live.admin(
        "POST", rules_path(site, "new_checkout"), {"experiment_id": 5002, "variations": SPLIT_ON}
    )
    assert other.status_code == 422, other.text


def test_rule_ids_are_unique_across_flags(live: LiveServer, site: Site) -> None:
    r = live.admin("POST", rules_path(site, "new_checkout"), {"id": 102, "variations": SPLIT_ON})
    assert r.status_code == 422, r.text


def test_variation_ids_are_unique(live: LiveServer, site: Site) -> None:
    split = [
        {"variation_key": "off", "exposition": 0.5, "variation_id": 424242},
        {"variation_key": "on", "exposition": 0.5, "variation_id": 424242},
    ]
    assert live.admin("POST", rules_path(site), {"variations": split}).status_code == 422
    reused = [{"variation_key": "on", "exposition": 1, "variation_id": 7001}]  # new_checkout's
    assert live.admin("POST", rules_path(site), {"variations": reused}).status_code == 422


def test_a_split_lists_each_variation_once(live: LiveServer, site: Site) -> None:
    split = [{"variation_key": "on", "exposition": 0.5}, {"variation_key": "on", "exposition": 0.5}]
    r = live.admin("POST", rules_path(site), {"variations": split})
    assert r.status_code == 422, r.text
    assert "twice" in r.text


def test_explicit_ids_move_next_id_past_them(live: LiveServer) -> None:
    site = live.create_site()
    next_id = model(live, site)["next_id"]
    explicit = live.admin("POST", f"/api/sites/{site.code}/goals", {"id": next_id + 1, "name": "a"})
    assert explicit.status_code == 201, explicit.text
    allocated = [live.admin("POST", f"/api/sites/{site.code}/goals", {"name": n}).json()["id"] for n in "bc"]
    assert next_id + 1 not in allocated and len(set(allocated)) == 2
    flag = live.admin(
        "POST", f"/api/sites/{site.code}/flags", {"key": "f", "id": model(live, site)["next_id"]}
    )
    assert flag.status_code == 201, flag.text
    rule = live.admin(
        "POST", rules_path(site, "f"), {"experiment_id": flag.json()["id"] + 1, "variations": SPLIT_ON}
    ).json()
    ids = {flag.json()["id"], rule["id"], rule["experiment_id"], rule["variations"][0]["variation_id"]}
    assert len(ids) == 4 and model(live, site)["next_id"] > max(ids)


def test_ids_given_inside_a_new_flag_are_not_handed_out_again(live: LiveServer) -> None:
    site = live.create_site()
    next_id = model(live, site)["next_id"]
    body = {
        "key": "f",
        "environments": {
            "production": {
                "rules": [
                    {"experiment_id": next_id + 2, "variations": [{"variation_key": "on", "exposition": 1}]}
                ]
            }
        },
    }
    r = live.admin("POST", f"/api/sites/{site.code}/flags", body)
    assert r.status_code == 201, r.text
    rule = r.json()["environments"]["production"]["rules"][0]
    ids = [r.json()["id"], rule["id"], rule["experiment_id"], rule["variations"][0]["variation_id"]]
    assert len(set(ids)) == 4, ids


@pytest.mark.parametrize(
    "condition",
    [
        {"targetingType": "CONVERSIONS", "goalId": 987654},
        {"targetingType": "HEAT_SLICE", "goalId": 987654, "keyMomentId": 1, "lowerBound": 0, "upperBound": 1},
        {"targetingType": "CUSTOM_DATUM", "customDataIndex": "77", "valueMatchType": "EXACT", "value": "x"},
        {"targetingType": "CUSTOM_DATUM", "customDataIndex": "²", "valueMatchType": "EXACT", "value": "x"},
    ],
)
def test_segments_must_refer_to_existing_goals_and_custom_data(
    live: LiveServer, site: Site, condition: dict[str, Any]
) -> None:
    r = live.admin("POST", f"/api/sites/{site.code}/segments", condition_segment(condition))
    assert r.status_code == 422, r.text


def test_goals_and_custom_data_used_by_segments_cannot_be_deleted(live: LiveServer, site: Site) -> None:
    base = f"/api/sites/{site.code}"
    goal = live.admin("POST", f"{base}/goals", {"name": "g"}).json()["id"]
    conditions = [
        {"targetingType": "CONVERSIONS", "goalId": goal},
        {"targetingType": "CUSTOM_DATUM", "customDataIndex": "0", "valueMatchType": "EXACT", "value": "x"},
    ]
    segment = live.admin("POST", f"{base}/segments", {"conditions": conditions})
    assert segment.status_code == 201, segment.text
    r = live.admin("DELETE", f"{base}/goals/{goal}")
    assert r.status_code == 409 and f"segment {segment.json()['id']}" in r.text
    assert live.admin("DELETE", f"{base}/custom-data/0").status_code == 409
    assert live.admin("DELETE", f"{base}/custom-data/1").status_code == 204  # unused
    assert live.admin("DELETE", f"{base}/segments/{segment.json()['id']}").status_code == 204
    assert live.admin("DELETE", f"{base}/goals/{goal}").status_code == 204


# -- bug 5: site environments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "environments",
    [["production", "a/b"], ["production", ""], ["production", "\u0000"], ["staging"], []],
)
def test_site_environments_are_validated(live: LiveServer, environments: list[str]) -> None:
    r = live.admin("POST", "/api/sites", {"environments": environments})
    assert r.status_code == 422, r.text


def test_site_with_its_own_environments(live: LiveServer) -> None:
    r = live.admin("POST", "/api/sites", {"environments": ["production", "qa", "qa"]})
    assert r.status_code == 201, r.text
    code = r.json()["site"]["code"]
    assert r.json()["site"]["environments"] == ["production", "qa"]
    assert live.http.get(f"/{code}").status_code == 200
    assert live.admin("DELETE", f"/api/sites/{code}/environments/production").status_code == 409
    assert live.admin("DELETE", f"/api/sites/{code}/environments/qa").status_code == 204


# -- bug 6: concurrent edits ----------------------------------------------------------------------


def post_goals(urls: list[str], count: int) -> list[int]:
    """Creates ``count`` goals at once (16 threads), spread over ``urls``; their statuses."""

    def post(i: int) -> int:
        with httpx.Client(timeout=30) as client:
            body = json.dumps({"name": f"g{i}"})
            return client.post(urls[i % len(urls)], content=body, headers=AUTH).status_code

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(post, range(count)))


def test_concurrent_edits_succeed(live: LiveServer) -> None:
    site = live.create_site()
    statuses = post_goals([f"{live.base_url}/api/sites/{site.code}/goals"], 48)
    assert statuses.count(201) == 48, statuses
    goals = live.admin("GET", f"/api/sites/{site.code}/goals").json()
    assert len({g["id"] for g in goals}) == 48


def test_concurrent_edits_through_two_instances_mostly_succeed(live: LiveServer) -> None:
    """Two servers on one database race for real: the retries back off and mostly win."""
    other, server, thread = start_server(same_database(live.storage))
    try:
        site = live.create_site()
        path = f"/api/sites/{site.code}/goals"
        statuses = post_goals([live.base_url + path, other.base_url + path], 32)
    finally:
        stop_server(other, server, thread)
    assert statuses.count(201) == 32, statuses
    assert len({g["id"] for g in live.admin("GET", path).json()}) == 32


def test_results_parameters_and_stored_values_with_unicode_digits() -> None:
    from kameleoon_server.results.params import parse_fields, parse_time
    from kameleoon_server.results.query import Breakdown
    from kameleoon_server.results.sql import decode_dimension

    assert parse_time("-5") == -5 and parse_time("1700000000000") == 1700000000000
    for text in ("--5", "²", str(10**30)):
        with pytest.raises(ValueError):
            parse_time(text)
    with pytest.raises(ValueError):
        parse_fields({"goal": [f"1,{2**63}"]})
    assert parse_fields({"goal": ["1, 2"]})["goal_ids"] == (1, 2)
    assert decode_dimension(Breakdown.BROWSER, "%C2%B2") == "²"


def test_after_the_largest_id_the_server_allocates_the_smallest_free_ones(live: LiveServer) -> None:
    """An explicit id of 2**63-1 (allowed) leaves no id above it: later allocations take the
    smallest ids the site does not use, instead of failing with an id nobody gave."""
    site = live.create_site()
    top = live.admin("POST", f"/api/sites/{site.code}/flags", {"key": "top", "id": 2**63 - 1})
    assert top.status_code == 201, top.text
    flag = live.admin("POST", f"/api/sites/{site.code}/flags", {"key": "next"})
    assert flag.status_code == 201, flag.text
    rule = live.admin("POST", rules_path(site, "next"), {"variations": SPLIT_ON})
    assert rule.status_code == 201, rule.text
    goal = live.admin("POST", f"/api/sites/{site.code}/goals", {"name": "g"})
    assert goal.status_code == 201, goal.text
    ids = [flag.json()["id"], rule.json()["id"], rule.json()["experiment_id"], goal.json()["id"]]
    ids.append(rule.json()["variations"][0]["variation_id"])
    assert len(set(ids)) == len(ids) and all(0 < i < 2**63 - 1 for i in ids)
