"""Fixtures for the framework integrations: an offline client with a two-flag configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CONFIGURATION: dict[str, Any] = {
    "configuration": {"consentType": "NOT_REQUIRED"},
    "featureFlags": [
        {
            "id": 1,
            "featureKey": "new_checkout",
            "defaultVariationKey": "off",
            "environmentEnabled": True,
            "variations": [{"key": "off"}, {"key": "on"}],
            "rules": [
                {
                    "id": 11,
                    "type": "TARGETED_DELIVERY",
                    "exposition": 1.0,
                    "experimentId": 101,
                    "variationByExposition": [{"variationKey": "on", "variationId": 1001, "exposition": 1.0}],
                }
            ],
        }
    ],
}


def with_consent(required: bool, targeted_delivery: bool = True) -> dict[str, Any]:
    """The configuration with consent required or not, with or without a targeted delivery rule."""
    document = json.loads(json.dumps(CONFIGURATION))
    document["configuration"]["consentType"] = "REQUIRED" if required else "NOT_REQUIRED"
    if not targeted_delivery:
        document["featureFlags"][0]["rules"][0]["type"] = "EXPERIMENTATION"
    return document


@pytest.fixture
def configuration_file(tmp_path: Path) -> Path:
    path = tmp_path / "configuration.json"
    path.write_text(json.dumps(CONFIGURATION), encoding="utf-8")
    return path
