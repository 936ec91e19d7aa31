"""Targeting condition validation: what the SDK rejects (§1.10) and the strict admin checks (§3.4)."""

from __future__ import annotations

from typing import Any

import pytest

from kameleoon_server._conditions import conditions_data_errors, referenced


def group(*conditions: dict[str, Any], ops: list[bool] | None = None) -> dict[str, Any]:
    return {
        "firstLevelOrOperators": [],
        "firstLevel": [
            {
                "orOperators": ops if ops is not None else [False] * (len(conditions) - 1),
                "conditions": list(conditions),
            }
        ],
    }


GOOD = [
    {"targetingType": "CUSTOM_DATUM", "customDataIndex": "0", "valueMatchType": "EXACT", "value": "vip"},
    {
        "targetingType": "CUSTOM_DATUM",
        "customDataIndex": "1",
        "valueMatchType": "AMONG_VALUES",
        "value": '[1, "a"]',
    },
    {"targetingType": "CUSTOM_DATUM", "customDataIndex": "1", "valueMatchType": "UNDEFINED"},
    {"targetingType": "DEVICE_TYPE", "device": "desktop"},
    {"targetingType": "BROWSER", "browser": "CHROME", "version": "100.1", "versionMatchType": "GREATER"},
    {"targetingType": "OPERATING_SYSTEM", "os": "LINUX"},
    {"targetingType": "PAGE_URL", "url": "^/shop.*", "matchType": "REGULAR_EXPRESSION"},
    {"targetingType": "PAGE_VIEWS", "pageCount": 3, "matchType": "GREATER"},
    {"targetingType": "CONVERSIONS"},
    {"targetingType": "SDK_LANGUAGE", "sdkLanguage": "PYTHON"},
    {
        "targetingType": "COOKIE",
        "name": "a",
        "nameMatchType": "EXACT",
        "value": "b",
        "valueMatchType": "CONTAINS",
    },
    {"targetingType": "GEOLOCATION", "country": "France", "region": None},
    {"targetingType": "VISITS", "visitCount": 2, "matchType": "EQUAL"},
    {"targetingType": "NEW_VISITORS", "visitorType": "RETURNING"},
    {"targetingType": "HEAT_SLICE", "goalId": 1, "keyMomentId": 2, "lowerBound": 0, "upperBound": 50.5},
    {"targetingType": "TARGET_FEATURE_FLAG", "featureFlagId": 3},
    {"targetingType": "EXPLICIT_TRIGGER", "isInclude": False},
]


@pytest.mark.parametrize("condition", GOOD, ids=lambda c: c["targetingType"])
def test_valid_conditions_pass_strict_checks(condition: dict[str, Any]) -> None:
    assert conditions_data_errors(group(condition), strict=True) == []


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            {"targetingType": "CUSTOM_DATUM", "customDataIndex": 0, "valueMatchType": "EXACT", "value": "x"},
            "customDataIndex",
        ),
        (
            {"targetingType": "CUSTOM_DATUM", "customDataIndex": "0", "valueMatchType": "LIKE", "value": "x"},
            "valueMatchType",
        ),
        (
            {
                "targetingType": "CUSTOM_DATUM",
                "customDataIndex": "0",
                "valueMatchType": "REGULAR_EXPRESSION",
                "value": "(",
            },
            "regular expression",
        ),
        (
            {
                "targetingType": "CUSTOM_DATUM",
                "customDataIndex": "0",
                "valueMatchType": "GREATER",
                "value": "a",
            },
            "number",
        ),
        ({"targetingType": "DEVICE_TYPE", "device": "WATCH"}, "device"),
        (
            {"targetingType": "BROWSER", "browser": "CHROME", "version": "1.x", "versionMatchType": "EQUAL"},
            "version",
        ),
        ({"targetingType": "BROWSER", "browser": "CHROME", "version": "1"}, "versionMatchType"),
        ({"targetingType": "OPERATING_SYSTEM", "os": "linux"}, "os"),
        ({"targetingType": "PAGE_URL", "url": "/a"}, "matchType"),
        ({"targetingType": "PAGE_VIEWS", "pageCount": "3", "matchType": "EQUAL"}, "pageCount"),
        ({"targetingType": "GEOLOCATION"}, "country"),
        ({"targetingType": "SEGMENT"}, "segmentId"),
        ({"targetingType": "TYPO"}, "unknown targetingType"),
        ({"targetingType": "EXPLICIT_TRIGGER", "isInclude": "no"}, "isInclude"),
    ],
)
def test_invalid_conditions_are_reported(condition: dict[str, Any], message: str) -> None:
    errors = conditions_data_errors(group(condition), strict=True)
    assert any(message in e for e in errors), errors


def test_unknown_types_are_parseable_but_not_strictly_valid() -> None:
    data = group({"targetingType": "SOMETHING_NEW"})
    assert conditions_data_errors(data, strict=False) == []
    assert conditions_data_errors(data, strict=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"firstLevel": None}, "firstLevel"),
        ({"firstLevel": [{"orOperators": []}]}, "conditions list"),
        ({"firstLevel": [{"conditions": []}, {"conditions": []}]}, "firstLevelOrOperators"),
        (group(GOOD[0], GOOD[3], ops=[]), "orOperators needs 1"),
    ],
)
def test_structures_the_sdk_rejects_fail_even_when_lenient(data: dict[str, Any], message: str) -> None:
    errors = conditions_data_errors(data, strict=False)
    assert any(message in e for e in errors), errors


def test_null_conditions_data_matches_everyone_and_references_are_found() -> None:
    assert conditions_data_errors(None, strict=True) == []
    data = group({"targetingType": "SEGMENT", "segmentId": 4}, {"targetingType": "SEGMENT", "segmentId": 5})
    assert referenced(data, "SEGMENT", "segmentId") == [4, 5]
