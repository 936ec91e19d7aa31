"""Shared material of the SDK tests: the worked-example configuration (evaluation spec §1.12),
configuration builders, an exact reference computation of the bucketing hash, and visitor
records filled through the real ``add_data`` handlers."""

from __future__ import annotations

import copy
import hashlib
import logging
from typing import Any

from kameleoon._engine.conditions import Lookups, compile_condition
from kameleoon._engine.hashing import bucket_bytes
from kameleoon._engine.model import EMPTY_CONFIGURATION, Configuration
from kameleoon._visitors.data import DataContext, add_items
from kameleoon._visitors.record import Visitor
from kameleoon._visitors.store import VisitorStore

LOG = logging.getLogger("kameleoon.tests")

# The configuration of every worked example of evaluation spec §2.9 (copied from §1.12).
EXAMPLE_CONFIG: dict[str, Any] = {
    "configuration": {
        "realTimeUpdate": False,
        "consentType": "OPTIONAL",
        "dataApiDomain": "data.kameleoon.io",
    },
    "customData": [
        {
            "id": 101,
            "index": 0,
            "name": "account_tier",
            "scope": "VISITOR",
            "localOnly": False,
            "isMappingIdentifier": False,
        },
        {
            "id": 102,
            "index": 1,
            "name": "crm_user_id",
            "scope": "VISITOR",
            "localOnly": False,
            "isMappingIdentifier": True,
        },
        {
            "id": 103,
            "index": 2,
            "name": "debug_tag",
            "scope": "VISIT",
            "localOnly": True,
            "isMappingIdentifier": False,
        },
    ],
    "featureFlags": [
        {
            "id": 11,
            "featureKey": "new_checkout",
            "defaultVariationKey": "off",
            "environmentEnabled": True,
            "variations": [
                {
                    "key": "off",
                    "variables": [
                        {"key": "button_color", "type": "STRING", "value": "grey"},
                        {"key": "steps", "type": "NUMBER", "value": 3},
                        {"key": "express", "type": "BOOLEAN", "value": False},
                    ],
                },
                {
                    "key": "on",
                    "variables": [
                        {"key": "button_color", "type": "STRING", "value": "green"},
                        {"key": "steps", "type": "NUMBER", "value": 1},
                        {"key": "express", "type": "BOOLEAN", "value": True},
                    ],
                },
                {
                    "key": "two_step",
                    "variables": [
                        {"key": "button_color", "type": "STRING", "value": "blue"},
                        {"key": "steps", "type": "NUMBER", "value": 2.5},
                        {"key": "express", "type": "BOOLEAN", "value": True},
                    ],
                },
            ],
            "rules": [
                {
                    "id": 501,
                    "order": 1,
                    "type": "TARGETED_DELIVERY",
                    "exposition": 0.3,
                    "experimentId": 9001,
                    "respoolTime": None,
                    "variationByExposition": [
                        {"variationKey": "on", "variationId": 70001, "exposition": 1.0}
                    ],
                    "segment": {
                        "id": 3001,
                        "name": "Premium accounts",
                        "conditionsData": {
                            "firstLevelOrOperators": [],
                            "firstLevel": [
                                {
                                    "orOperators": [],
                                    "conditions": [
                                        {
                                            "targetingType": "CUSTOM_DATUM",
                                            "isInclude": True,
                                            "customDataIndex": "0",
                                            "valueMatchType": "EXACT",
                                            "value": "premium",
                                        }
                                    ],
                                }
                            ],
                        },
                    },
                },
                {
                    "id": 502,
                    "order": 2,
                    "type": "EXPERIMENTATION",
                    "exposition": 0.8,
                    "experimentId": 9002,
                    "respoolTime": None,
                    "variationByExposition": [
                        {"variationKey": "off", "variationId": 70010, "exposition": 0.34},
                        {"variationKey": "on", "variationId": 70011, "exposition": 0.33},
                        {"variationKey": "two_step", "variationId": 70012, "exposition": 0.33},
                    ],
                    "segment": None,
                },
            ],
        },
        {
            "id": 12,
            "featureKey": "pricing_banner",
            "defaultVariationKey": "off",
            "environmentEnabled": False,
            "variations": [{"key": "off", "variables": []}, {"key": "on", "variables": []}],
            "rules": [],
        },
        {
            "id": 13,
            "featureKey": "recommendations",
            "defaultVariationKey": "classic",
            "environmentEnabled": True,
            "variations": [
                {
                    "key": "classic",
                    "variables": [
                        {"key": "widget", "type": "JSON", "value": '{"slots": 4, "source": "bestsellers"}'},
                        {"key": "labels", "type": "JSON", "value": '["a", "b"]'},
                    ],
                },
                {
                    "key": "ml",
                    "variables": [
                        {"key": "widget", "type": "JSON", "value": '{"slots": 8, "source": "model-v2"}'},
                        {"key": "labels", "type": "JSON", "value": "[]"},
                    ],
                },
            ],
            "rules": [
                {
                    "id": 601,
                    "order": 1,
                    "type": "EXPERIMENTATION",
                    "exposition": 1.0,
                    "experimentId": 9101,
                    "respoolTime": 1700000000,
                    "variationByExposition": [
                        {"variationKey": "classic", "variationId": 71000, "exposition": 0.5},
                        {"variationKey": "ml", "variationId": 71001, "exposition": 0.5},
                    ],
                    "segment": {
                        "id": 3002,
                        "name": "Desktop Chrome shoppers or returning FR",
                        "conditionsData": {
                            "firstLevelOrOperators": [True],
                            "firstLevel": [
                                {
                                    "orOperators": [False, False],
                                    "conditions": [
                                        {
                                            "targetingType": "BROWSER",
                                            "isInclude": True,
                                            "browser": "CHROME",
                                            "version": "100",
                                            "versionMatchType": "GREATER",
                                        },
                                        {
                                            "targetingType": "DEVICE_TYPE",
                                            "isInclude": True,
                                            "device": "DESKTOP",
                                        },
                                        {
                                            "targetingType": "PAGE_URL",
                                            "isInclude": True,
                                            "url": "/shop",
                                            "matchType": "CONTAINS",
                                        },
                                    ],
                                },
                                {
                                    "orOperators": [False, False],
                                    "conditions": [
                                        {
                                            "targetingType": "GEOLOCATION",
                                            "isInclude": True,
                                            "country": "France",
                                            "region": None,
                                            "city": None,
                                        },
                                        {
                                            "targetingType": "COOKIE",
                                            "isInclude": False,
                                            "name": "optout",
                                            "nameMatchType": "EXACT",
                                            "value": "1",
                                            "valueMatchType": "EXACT",
                                        },
                                        {
                                            "targetingType": "SDK_LANGUAGE",
                                            "isInclude": True,
                                            "sdkLanguage": "PYTHON",
                                            "version": "3.0.0",
                                            "versionMatchType": "GREATER",
                                        },
                                    ],
                                },
                            ],
                        },
                    },
                },
                {
                    "id": 602,
                    "order": 2,
                    "type": "TARGETED_DELIVERY",
                    "exposition": 1.0,
                    "experimentId": 9102,
                    "respoolTime": None,
                    "variationByExposition": [
                        {"variationKey": "ml", "variationId": 71002, "exposition": 1.0}
                    ],
                    "segment": {
                        "id": 3003,
                        "name": "Checkout testers",
                        "conditionsData": {
                            "firstLevelOrOperators": [],
                            "firstLevel": [
                                {
                                    "orOperators": [True],
                                    "conditions": [
                                        {
                                            "targetingType": "TARGET_FEATURE_FLAG",
                                            "isInclude": True,
                                            "featureFlagId": 11,
                                            "variationKey": "on",
                                            "ruleId": None,
                                        },
                                        {"targetingType": "SEGMENT", "isInclude": True, "segmentId": 3001},
                                    ],
                                }
                            ],
                        },
                    },
                },
            ],
        },
    ],
}


def example_config() -> dict[str, Any]:
    """A fresh deep copy of :data:`EXAMPLE_CONFIG`."""
    return copy.deepcopy(EXAMPLE_CONFIG)


def variation(key: str, *variables: tuple[str, str, Any]) -> dict[str, Any]:
    return {"key": key, "variables": [{"key": k, "type": t, "value": v} for k, t, v in variables]}


def entry(key: str, variation_id: int | None, exposition: float) -> dict[str, Any]:
    return {"variationKey": key, "variationId": variation_id, "exposition": exposition}


def segment(
    segment_id: int, *conditions: dict[str, Any], or_operators: list[bool] | None = None
) -> dict[str, Any]:
    """A one-group segment (AND between conditions unless ``or_operators`` says otherwise)."""
    ops = [False] * (len(conditions) - 1) if or_operators is None else or_operators
    return {
        "id": segment_id,
        "conditionsData": {
            "firstLevelOrOperators": [],
            "firstLevel": [{"orOperators": ops, "conditions": list(conditions)}],
        },
    }


def rule(
    rule_id: int,
    kind: str = "EXPERIMENTATION",
    exposition: float = 1.0,
    experiment_id: int = 0,
    entries: list[dict[str, Any]] | None = None,
    seg: dict[str, Any] | None = None,
    respool: Any = None,
) -> dict[str, Any]:
    return {
        "id": rule_id,
        "type": kind,
        "exposition": exposition,
        "experimentId": experiment_id,
        "respoolTime": respool,
        "variationByExposition": entries if entries is not None else [],
        "segment": seg,
    }


def flag(
    key: str,
    rules: list[dict[str, Any]] | None = None,
    variations: list[dict[str, Any]] | None = None,
    default: str = "off",
    enabled: bool = True,
    flag_id: int = 1,
) -> dict[str, Any]:
    return {
        "id": flag_id,
        "featureKey": key,
        "defaultVariationKey": default,
        "environmentEnabled": enabled,
        "variations": variations if variations is not None else [variation("off"), variation("on")],
        "rules": rules or [],
    }


def document(
    *flags: dict[str, Any], custom_data: list[dict[str, Any]] | None = None, **settings: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {"featureFlags": list(flags)}
    if custom_data is not None:
        doc["customData"] = custom_data
    if settings:
        doc["configuration"] = settings
    return doc


# -- the hash, computed independently ---------------------------------------------------------
class FakeDigest:
    """Stands in for a SHA-256 object whose digest is a chosen 256-bit integer."""

    def __init__(self, n: int) -> None:
        self.n = n

    def digest(self) -> bytes:
        return self.n.to_bytes(32, "big")


def bucket_of(n: int) -> float:
    """What the SDK's conversion makes of the digest integer ``n``."""
    return bucket_bytes(b"", _sha=lambda data: FakeDigest(n))


def nearest_double_ratio(n: int, bits: int = 256) -> float:
    """``n / 2**bits`` rounded to the nearest double, ties to even, with integer arithmetic only
    (an independent check of the SDK's ``float(int) * 2**-256``)."""
    if n == 0:
        return 0.0
    length = n.bit_length()
    shift = max(length - 53, 0)
    mantissa, rest = n >> shift, n & ((1 << shift) - 1)
    half = 1 << (shift - 1) if shift else 0
    if shift and (rest > half or (rest == half and mantissa & 1)):
        mantissa += 1
    # mantissa * 2**(shift - bits) is exact in a double (mantissa <= 2**53)
    exponent = shift - bits
    result = float(mantissa)
    while exponent < 0:
        step = max(exponent, -1000)
        result *= 2.0**step
        exponent -= step
    return result


def digest_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")


def exact_bucket(text: str) -> float:
    """The bucketing hash of ``text`` by the spec (§2.1), computed without the SDK."""
    return nearest_double_ratio(digest_int(text))


# -- visitor records --------------------------------------------------------------------------
def record(*items: Any, config: Configuration = EMPTY_CONFIGURATION, code: str = "v") -> Visitor:
    """A visitor record holding ``items``, stored through the real add_data handlers."""
    store = VisitorStore(1800.0, 1000)
    visitor = store.get_or_create(code)
    add_items(DataContext(store, code, visitor, config, LOG), items)
    return visitor


def check(cond: dict[str, Any], visitor: Visitor | None, code: str = "v", experiment_id: Any = 0) -> bool:
    """The raw outcome of one condition (before ``isInclude``)."""
    leaf = compile_condition(cond, Lookups())
    return bool(leaf.check(visitor, code, experiment_id))
