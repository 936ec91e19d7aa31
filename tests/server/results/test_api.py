"""The results endpoint's contract: auth, parameter checks, OpenAPI description with units."""

from __future__ import annotations

from typing import Any

import pytest

from kameleoon_server.results.params import PARAMS, parse_fields, parse_time
from kameleoon_server.results.query import Breakdown, MetricValue

from ..conftest import LiveServer

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
