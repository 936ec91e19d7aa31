"""The results endpoint's contract: auth, parameter checks, OpenAPI description with units."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kameleoon_server.results.params import PARAMS, parse_fields, parse_time
from kameleoon_server.results.query import Breakdown, MetricValue

from ..conftest import MINIMAL_DATAFILE, LiveServer, Site, write

PATH = "/api/sites/{}/experiments/5001/results"


def test_results_need_the_admin_token(live: LiveServer) -> None:
    site = live.create_site()
    assert live.http.get(PATH.format(site.code)).status_code == 401
    assert live.admin("GET", PATH.format("no-such-site")).status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        {"method": "magic"},
        {"correction": "sidak"},
        {"sequential": "maybe"},
        {"method": "bayesian", "sequential": "on"},
        {"breakdown": "planet"},
        {"from": "yesterday"},
        {"alpha": "2"},
        {"cap_percentile": "1.5"},
        {"metrics": "conversion", "cap_revenue": "-"},
        # beyond ±1e15 a capped value's square could overflow (a 500 on PostgreSQL)
        {"goal": "42", "metrics": "revenue", "cap_revenue": "-1e200"},
        {"goal": "42", "metrics": "count", "cap_count": "nan"},
        # a window or lookback of 1e300 hours or days does not fit a 64-bit time (a 500 on SQLite)
        {"goal": "42", "attribution_hours": "1e300"},
        {"goal": "42", "attribution_hours": "inf"},
        {"goal": "42", "cuped": "on", "cuped_lookback_days": "1e300"},
        {"goal": "x"},
        {"colour": "red"},
        {},  # the site has no goals and none was given
    ],
)
def test_impossible_requests_are_answered_422_with_a_reason(live: LiveServer, query: dict[str, str]) -> None:
    site = live.create_site()
    response = live.admin("GET", PATH.format(site.code), params=query)
    assert response.status_code == 422, response.text
    assert response.json()["error"]


def test_an_experiment_without_data_has_zero_visitors(live: LiveServer) -> None:
    site = live.create_site()
    doc = live.admin("GET", PATH.format(site.code), params={"goal": "42"}).json()
    assert doc["population"]["exposed_visitors"] == 0 and doc["variations"] == []


def test_openapi_documents_every_parameter_and_the_unit_of_every_number(live: LiveServer) -> None:
    document = live.http.get("/api/openapi.json").json()
    operation = document["paths"]["/api/sites/{site}/experiments/{experiment_id}/results"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"site", "experiment_id"} | {
        p.name for p in PARAMS
    }
    schemas = document["components"]["schemas"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ResultsDocument"
    )

    def numbers(name: str) -> dict[str, Any]:
        props = schemas[name]["properties"]

        def numeric(schema: dict[str, Any]) -> bool:
            types = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", [])]
            return "number" in types or "integer" in types

        return {k: v for k, v in props.items() if numeric(v)}

    assert numbers("Comparison") and numbers("SettingsOut")
    for name in (
        "Population",
        "VariationOut",
        "SrmOut",
        "Comparison",
        "MetricVariation",
        "SettingsOut",
        "MetricOut",
        "ExperimentOut",
    ):
        for field, schema in numbers(name).items():
            text = schema.get("description", "")
            assert "unit" in text.lower() or field.endswith("id"), (name, field, text)


def test_parameters_are_parsed_into_request_fields() -> None:
    fields = parse_fields(
        {
            "goal": ["1,2", "3"],
            "metrics": ["revenue,count"],
            "breakdown": ["4"],
            "cuped": ["on"],
            "to": ["2024-01-02"],
        }
    )
    assert fields["goal_ids"] == (1, 2, 3)
    assert fields["metrics"] == (MetricValue.REVENUE, MetricValue.COUNT)
    assert (fields["breakdown"], fields["custom_data_index"]) == (Breakdown.CUSTOM_DATA, 4)
    assert fields["cuped"] is True and fields["to_ms"] == 1704153600000
    assert parse_fields({"breakdown": ["os"]})["breakdown"] is Breakdown.OS


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1700000000000", 1700000000000),
        ("2024-01-01", 1704067200000),
        ("2024-01-01T01:00:00+01:00", 1704067200000),
    ],
)
def test_times_are_epoch_ms_dates_or_iso_datetimes(text: str, ms: int) -> None:
    assert parse_time(text) == ms


def _huge_revenue_site(live: LiveServer, revenue: str) -> tuple[Site, str]:
    """Visitors h1 (7001, converts with ``revenue``), h2 (7001, 10), h3 and h4 (7002, 20 and 30)."""
    site = live.create_site(MINIMAL_DATAFILE)
    token = live.token(site)
    exposures = [(1, 7001), (2, 7001), (3, 7002), (4, 7002)]
    lines = [
        f"nonce=E{i}&eventType=experiment&id=5001&variationId={v}&visitorCode=h{i}" for i, v in exposures
    ]
    for i, amount in ((1, revenue), (2, "10"), (3, "20"), (4, "30")):
        lines.append(
            f"nonce=C{i}&eventType=conversion&goalId=42&revenue={amount}&negative=false&visitorCode=h{i}"
        )
    response = live.post_events(site, "\n".join(lines), token)
    assert response.status_code == 204, response.text
    return site, token


def _revenue_totals(live: LiveServer, site: Site) -> dict[int, tuple[float, str | None]]:
    """(revenue total, comparison error) per variation id; the results must be a 200."""
    query = {"goal": "42", "metrics": "conversion,revenue"}
    response = live.admin("GET", PATH.format(site.code), params=query)
    assert response.status_code == 200, response.text
    doc = response.json()
    conversion, revenue = doc["metrics"]
    assert [v["total"] for v in conversion["variations"]] == [2, 2]  # every conversion counts
    return {
        v["variation_id"]: (v["total"], (v["comparison"] or {}).get("error")) for v in revenue["variations"]
    }


@pytest.mark.parametrize("revenue", ["1e200", "-1.5e154", "1.0000001e15"])
def test_a_revenue_beyond_the_bound_is_unknown_in_results_and_visitor_data(
    live: LiveServer, revenue: str
) -> None:
    """Its square (or its sum's) would overflow a double: PostgreSQL failed the results with a 500
    and SQLite reported ``non_finite_input``. Stored as unknown, the conversion still counts."""
    site, token = _huge_revenue_site(live, revenue)
    stored = (
        "SELECT e.revenue FROM events e JOIN sites s ON s.id = e.site_id WHERE s.code = ? AND e.nonce = 'C1'"
    )
    assert live.db_rows(stored, site.code) == [(None,)]
    assert _revenue_totals(live, site) == {7001: (10.0, None), 7002: (50.0, None)}
    response = live.http.get(
        f"/visit/visitor?siteCode={site.code}&visitorCode=h1&currentVisit=true&conversion=true",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    [event] = response.json()["currentVisit"]["conversionEvents"]
    assert event["data"] == {"goalId": 42, "revenue": 0.0, "negative": False}


@pytest.mark.parametrize("revenue", ["1e15", "999999999999999.99"])  # general and fast path
def test_a_revenue_at_the_bound_is_kept(live: LiveServer, revenue: str) -> None:
    site, _ = _huge_revenue_site(live, revenue)
    totals = _revenue_totals(live, site)
    assert totals[7001][0] == 1e15 + 10 and totals[7001][1] is None


@pytest.mark.parametrize("stored", [1e300, -1e300, math.inf])
def test_a_stored_revenue_beyond_the_bound_cannot_fail_the_results(live: LiveServer, stored: float) -> None:
    """Rows written before the bound existed (or by another tool) are read as unknown revenue."""
    site, _ = _huge_revenue_site(live, "5")
    update = (
        "UPDATE events SET revenue = ? WHERE nonce = 'C1' AND site_id = (SELECT id FROM sites WHERE code = ?)"
    )
    write(live.storage, update, stored, site.code)
    assert _revenue_totals(live, site) == {7001: (10.0, None), 7002: (50.0, None)}
