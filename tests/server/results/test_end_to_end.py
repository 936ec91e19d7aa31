"""A simulated experiment through our SDK and server, read back with the results API and CLI.

Thousands of visitors are decided and tracked by the ``kameleoon`` SDK (SDK -> HTTP -> ingest);
one treatment has a true lift, the other none. A second experiment gets a 45/55 split
injected as tracking lines over HTTP, against a configured 50/50 split. Seeded: deterministic.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kameleoon_server import cli

from ..conftest import ADMIN_TOKEN, LiveServer, Site

kameleoon: Any = pytest.importorskip("kameleoon")

VISITORS = 6000
BASE_RATE = 0.10
LIFT = {"off": 1.0, "on": 1.6, "alt": 1.0}  # "on" converts 60 % more often; "alt" like the control


def admin(live: LiveServer, method: str, path: str, body: Any = None) -> Any:
    response = live.admin(method, path, body)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def experiment_site(live: LiveServer) -> tuple[Site, int, int, int]:
    """A site with goal 'purchase', flag 'checkout' (off/on/alt, equal split) and flag 'banner'
    (a/b, 50/50); answers the site, the goal id and both experiment ids."""
    site = live.create_site()
    base = f"/api/sites/{site.code}"
    goal = admin(live, "POST", f"{base}/goals", {"name": "purchase"})["id"]
    ids = []
    for flag, keys in (("checkout", ("off", "on", "alt")), ("banner", ("a", "b"))):
        admin(
            live,
            "POST",
            f"{base}/flags",
            {"key": flag, "default_variation_key": keys[0], "variations": [{"key": k} for k in keys]},
        )
        split = [{"variation_key": k, "exposition": 1 / len(keys)} for k in keys]
        rule = admin(
            live,
            "POST",
            f"{base}/flags/{flag}/environments/production/rules",
            {"type": "EXPERIMENTATION", "variations": split},
        )
        admin(live, "PATCH", f"{base}/flags/{flag}/environments/production", {"enabled": True})
        ids.append(rule["experiment_id"])
    return site, goal, ids[0], ids[1]


def stored(live: LiveServer, site: Site, etype: int) -> int:
    rows = live.db_rows(
        "SELECT count(*) FROM events e JOIN sites s ON s.id = e.site_id WHERE s.code = ? AND e.etype = ?",
        site.code,
        etype,
    )
    return int(rows[0][0])


def simulate(live: LiveServer, site: Site, goal: int) -> tuple[int, int]:
    """Decides and tracks every visitor through the SDK; answers (exposures, conversions) sent."""
    config = kameleoon.KameleoonClientConfig(
        site.client_id, site.client_secret, network_domain=live.base_url, tracking_interval_millisecond=100
    )
    client = kameleoon.KameleoonClientFactory.create(site.code, config)
    try:
        assert client.wait_init()
        rng = random.Random(20240611)
        conversions = 0
        for i in range(VISITORS):
            visitor = f"visitor-{i}"
            key = client.get_feature_variation_key(visitor, "checkout")
            if rng.random() < BASE_RATE * LIFT[key]:
                client.track_conversion(visitor, goal, round(rng.uniform(10, 60), 2))
                conversions += 1
        client.flush()
        deadline = time.monotonic() + 30
        while (stored(live, site, 2), stored(live, site, 3)) != (VISITORS, conversions):
            assert time.monotonic() < deadline, "the SDK's events did not all arrive"
            time.sleep(0.1)
        return VISITORS, conversions
    finally:
        kameleoon.KameleoonClientFactory.forget(site.code)


def inject_split(live: LiveServer, site: Site, experiment: int, counts: dict[int, int]) -> None:
    """Exposure lines posted over HTTP, as an SDK would send them."""
    lines, n = [], 0
    for variation, count in counts.items():
        for _ in range(count):
            n += 1
            lines.append(
                f"nonce={n:016X}&eventType=experiment&id={experiment}&variationId={variation}"
                f"&visitorCode=srm-{n}"
            )
    response = live.post_events(site, "\n".join(lines), live.token(site))
    assert response.status_code == 204, response.text


@pytest.fixture(scope="module")
def experiment(live: LiveServer) -> Iterator[dict[str, Any]]:
    site, goal, checkout, banner = experiment_site(live)
    simulate(live, site, goal)
    rule = admin(live, "GET", f"/api/sites/{site.code}/flags/banner/environments/production/rules")[0]
    a, b = (v["variation_id"] for v in rule["variations"])
    inject_split(live, site, banner, {a: 900, b: 1100})
    yield {"site": site, "goal": goal, "checkout": checkout, "banner": banner}


def results(live: LiveServer, experiment: dict[str, Any], which: str = "checkout", **query: Any) -> Any:
    path = f"/api/sites/{experiment['site'].code}/experiments/{experiment[which]}/results"
    response = live.admin("GET", path, params=query)
    assert response.status_code == 200, response.text
    return response.json()


def comparisons(doc: dict[str, Any], metric: str = "conversion") -> dict[str, dict[str, Any]]:
    keys = {v["id"]: v["key"] for v in doc["variations"]}
    found = next(m for m in doc["metrics"] if m["metric"] == metric)
    return {keys[v["variation_id"]]: v["comparison"] for v in found["variations"] if v["comparison"]}


def test_the_lift_is_found_where_it_is_and_not_where_it_is_not(
    live: LiveServer, experiment: dict[str, Any]
) -> None:
    doc = results(live, experiment)
    assert doc["population"]["analyzed_visitors"] == VISITORS
    assert [v["key"] for v in doc["variations"]] == ["off", "on", "alt"] and doc["variations"][0]["control"]
    assert not doc["srm"]["mismatch"]
    lift = comparisons(doc)
    assert lift["on"]["significant"] and lift["on"]["p_value"] < 0.01
    assert lift["on"]["ci_lower"] < 0.6 < lift["on"]["ci_upper"]  # the true relative lift is inside
    assert not lift["alt"]["significant"] and lift["alt"]["ci_lower"] < 0 < lift["alt"]["ci_upper"]


def test_bayesian_sequential_and_corrected_views_agree(live: LiveServer, experiment: dict[str, Any]) -> None:
    bayes = comparisons(results(live, experiment, method="bayesian"))
    assert bayes["on"]["chance_to_win"] > 0.999 and 0.05 < bayes["alt"]["chance_to_win"] < 0.95
    sequential = comparisons(results(live, experiment, sequential="on", correction="holm"))
    assert sequential["on"]["significant"] and not sequential["alt"]["significant"]
    assert sequential["on"]["p_value_adjusted"] >= sequential["on"]["p_value"]


def test_an_injected_45_55_split_raises_the_srm_alarm(live: LiveServer, experiment: dict[str, Any]) -> None:
    doc = results(live, experiment, "banner")
    assert [v["visitors"] for v in doc["variations"]] == [900, 1100]
    assert [v["configured_share"] for v in doc["variations"]] == [0.5, 0.5]
    assert doc["srm"]["mismatch"] and doc["srm"]["p_value"] < 0.001


def test_the_cli_prints_the_same_results_as_a_table(
    live: LiveServer, experiment: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = experiment["site"].code
    args = [
        "results",
        code,
        str(experiment["checkout"]),
        "--url",
        live.base_url,
        "--admin-token",
        ADMIN_TOKEN,
    ]
    assert cli.main([*args, "--metrics", "conversion"]) == 0
    table = capsys.readouterr().out
    metric_table = table.split("conversion rate")[1]
    on_row = next(line for line in metric_table.splitlines() if line.startswith("on "))
    alt_row = next(line for line in metric_table.splitlines() if line.startswith("alt "))
    assert on_row.split()[-1] == "yes" and alt_row.split()[-1] == "no"
    assert "Sample ratio check" in table and "conversion rate" in table
    assert (
        cli.main(
            ["results", code, str(experiment["banner"]), "--url", live.base_url, "--admin-token", ADMIN_TOKEN]
        )
        == 0
    )
    assert "SAMPLE RATIO MISMATCH" in capsys.readouterr().out
