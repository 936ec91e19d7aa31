"""The served configuration document (evaluation.md §1) built from a model, and its import."""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

import pytest

from kameleoon_server._datafile import build_datafile
from kameleoon_server._import import DatafileError, import_datafile
from kameleoon_server.model import SiteModel, decode_model, encode_model

from .conftest import MINIMAL_DATAFILE

CONFORMANCE = sorted(glob.glob(str(Path(__file__).parents[3] / "shared" / "conformance" / "public_*.json")))
if not CONFORMANCE:
    CONFORMANCE = sorted(glob.glob("/work/shared/conformance/public_*.json"))


def _normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """Drops what 3.4.0 does not read (segment names, custom data id/name, dataApiDomain)."""
    doc = json.loads(json.dumps(doc))
    doc["configuration"].pop("dataApiDomain", None)
    for entry in doc.get("customData", []):
        entry.pop("id", None)
        entry.pop("name", None)
    for flag in doc.get("featureFlags", []):
        for rule in flag["rules"]:
            rule.setdefault("respoolTime", None)
            if not rule.get("segment"):
                rule["segment"] = None
            else:
                rule["segment"].pop("name", None)
        for variation in flag["variations"]:
            variation.setdefault("variables", [])
    return doc


@pytest.mark.parametrize("path", CONFORMANCE, ids=lambda p: Path(p).stem)
def test_conformance_configurations_survive_import_and_serving(path: str) -> None:
    original = json.loads(Path(path).read_text())["config"]
    model = decode_model(encode_model(import_datafile(SiteModel(), original, "production")))
    served = build_datafile(model, "production", 0)
    assert _normalise(served) == _normalise(original)


def test_minimal_datafile_round_trip_and_other_environments_are_disabled() -> None:
    model = import_datafile(SiteModel(), MINIMAL_DATAFILE, "production")
    assert _normalise(build_datafile(model, "production", 0)) == _normalise(MINIMAL_DATAFILE)
    staging = build_datafile(model, "staging", 0)
    assert [f["environmentEnabled"] for f in staging["featureFlags"]] == [False, False]
    assert all(f["rules"] == [] for f in staging["featureFlags"])


def test_data_api_domain_is_served_only_when_configured() -> None:
    doc = dict(MINIMAL_DATAFILE, configuration={"realTimeUpdate": True, "dataApiDomain": "data.kameleoon.io"})
    model = import_datafile(SiteModel(), doc, "production")
    assert "dataApiDomain" not in build_datafile(model, "production", 0)["configuration"]
    kept = import_datafile(SiteModel(), doc, "production", keep_data_api_domain=True)
    assert build_datafile(kept, "production", 0)["configuration"]["dataApiDomain"] == "data.kameleoon.io"


def test_v3_document_has_top_level_segments_and_segment_ids() -> None:
    doc = json.loads(json.dumps(MINIMAL_DATAFILE))
    segment = {"id": 9, "conditionsData": {"firstLevelOrOperators": [], "firstLevel": []}}
    doc["featureFlags"][0]["rules"][0]["segment"] = segment
    model = import_datafile(SiteModel(), doc, "production")
    v3 = build_datafile(model, "production", 1234, v3=True)
    assert v3["segments"] == [
        {"id": 9, "name": "", "conditionsData": segment["conditionsData"], "audienceTracking": False}
    ]
    assert v3["featureFlags"][0]["rules"][0]["segmentId"] == 9
    assert v3["dateModified"] == 1234
    assert "segments" not in build_datafile(model, "production", 1234)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["featureFlags"][0]["rules"][0].pop("id"), "integer id"),
        (lambda d: d["featureFlags"][0].__setitem__("variations", None), "variations must be a list"),
        (lambda d: d["featureFlags"][0]["rules"][0].__setitem__("segment", {"id": 1}), "conditionsData"),
        (lambda d: d["customData"][0].__setitem__("index", "x"), "index"),
        (
            lambda d: d["featureFlags"][0]["rules"][0].__setitem__(
                "segment",
                {
                    "id": 1,
                    "conditionsData": {
                        "firstLevel": [
                            {
                                "conditions": [
                                    {
                                        "targetingType": "CUSTOM_DATUM",
                                        "customDataIndex": 0,
                                        "valueMatchType": "EXACT",
                                    }
                                ]
                            }
                        ]
                    },
                },
            ),
            "customDataIndex",
        ),
    ],
)
def test_documents_the_sdk_would_reject_are_refused(mutate: Any, message: str) -> None:
    doc = json.loads(json.dumps(MINIMAL_DATAFILE))
    mutate(doc)
    with pytest.raises(DatafileError, match=message):
        import_datafile(SiteModel(), doc, "production")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["featureFlags"][0].pop("id"), r"featureFlags\[0\]\.id must be an integer"),
        (lambda d: d["featureFlags"][0].__setitem__("id", "x"), r"featureFlags\[0\]\.id must be an integer"),
        (lambda d: d["featureFlags"][0]["rules"][0].pop("experimentId"), "experimentId must be an integer"),
        (
            lambda d: d["featureFlags"][0]["rules"][0]["variationByExposition"][0].pop("variationId"),
            "variationId must be an integer",
        ),
        (lambda d: d["featureFlags"][1]["rules"][0].__setitem__("experimentId", 5001), "experiment id 5001"),
        (lambda d: d["featureFlags"][1].__setitem__("id", 2**63), "must be an integer from 1"),
        (lambda d: d["featureFlags"][0].__setitem__("featureKey", ""), "flag key"),
        (lambda d: d["featureFlags"].append(7), r"featureFlags\[2\] must be an object"),
        (lambda d: d.__setitem__("featureFlags", {"a": 1}), "featureFlags must be a list"),
        (lambda d: d.__setitem__("configuration", 5), "configuration must be an object"),
        (lambda d: d["customData"].append("x"), r"customData\[2\] must be an object"),
        (lambda d: d["customData"][0].__setitem__("index", 1), "defined already"),
    ],
)
def test_imports_get_the_admin_api_validation(mutate: Any, message: str) -> None:
    doc = json.loads(json.dumps(MINIMAL_DATAFILE))
    mutate(doc)
    with pytest.raises(DatafileError, match=message):
        import_datafile(SiteModel(), doc, "production")


def _with_segment_id(doc: dict[str, Any], segment_id: Any) -> None:
    """The first rule names its segment by ``segmentId`` (the v3 form) instead of embedding it."""
    rule = doc["featureFlags"][0]["rules"][0]
    rule.pop("segment", None)
    rule["segmentId"] = segment_id


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["featureFlags"][0]["rules"][0].__setitem__("id", True), "integer id"),
        (
            lambda d: d["featureFlags"][0]["rules"][0].__setitem__(
                "segment", {"id": True, "conditionsData": {"firstLevel": []}}
            ),
            "integer id",
        ),
        (
            lambda d: _with_segment_id(d, True),
            "segmentId must be an integer",
        ),
        (
            lambda d: _with_segment_id(d, "9"),
            "segmentId must be an integer",
        ),
        (lambda d: d["featureFlags"][0]["rules"][0].__setitem__("respoolTime", "abc"), "respoolTime"),
        (lambda d: d["featureFlags"][0]["rules"][0].__setitem__("respoolTime", True), "respoolTime"),
        (
            lambda d: d["featureFlags"][0]["rules"][0].__setitem__("exposition", True),
            "exposition must be a number",
        ),
        (
            lambda d: d["featureFlags"][0]["rules"][0]["variationByExposition"][0].__setitem__(
                "exposition", "0.5"
            ),
            "exposition must be a number",
        ),
    ],
)
def test_imports_refuse_values_the_model_would_serve_differently(mutate: Any, message: str) -> None:
    """A boolean id could not even be stored (the site then answered 500 everywhere); a
    respoolTime or exposition of another type would be served as null or 0, which the SDK
    decides differently from the imported document."""
    doc = json.loads(json.dumps(MINIMAL_DATAFILE))
    mutate(doc)
    with pytest.raises(DatafileError, match=message):
        import_datafile(SiteModel(), doc, "production")


def _served(model: SiteModel, environment: str) -> dict[str, Any]:
    return _normalise(build_datafile(model, environment, 0))


def _renumbered(doc: dict[str, Any], offset: int) -> dict[str, Any]:
    """``doc`` with other rule, experiment and variation ids (ids are unique across a site)."""
    doc = json.loads(json.dumps(doc))
    for flag in doc["featureFlags"]:
        for rule in flag["rules"]:
            rule["id"] += offset
            rule["experimentId"] += offset
            for entry in rule["variationByExposition"]:
                entry["variationId"] += offset
    return doc


def test_an_import_into_one_environment_keeps_the_others() -> None:
    """Importing into staging leaves production as it was, and re-importing staging's own
    export changes nothing; a flag the document leaves out stays for the environments that use
    it (here, served disabled and without rules)."""
    model = import_datafile(SiteModel(), MINIMAL_DATAFILE, "production")
    production = _served(model, "production")
    first, second = _renumbered(MINIMAL_DATAFILE, 1000)["featureFlags"]
    staging_doc = dict(MINIMAL_DATAFILE, featureFlags=[first])
    model = import_datafile(model, staging_doc, "staging")
    assert _served(model, "production") == production
    staging = _served(model, "staging")
    assert staging["featureFlags"][0] == _normalise(staging_doc)["featureFlags"][0]
    assert [(f["featureKey"], f["environmentEnabled"], f["rules"]) for f in staging["featureFlags"][1:]] == [
        (second["featureKey"], False, [])
    ]
    again = import_datafile(model, build_datafile(model, "staging", 0), "staging")
    assert (_served(again, "production"), _served(again, "staging")) == (production, staging)


def test_an_import_of_another_environments_export_says_why_it_clashes() -> None:
    """Ids are unique across the site: production's own document cannot go into staging while
    production keeps its rules, and the error says so."""
    model = import_datafile(SiteModel(), MINIMAL_DATAFILE, "production")
    with pytest.raises(DatafileError, match="used more than once") as raised:
        import_datafile(model, build_datafile(model, "production", 0), "staging")
    assert raised.value.errors[-1].startswith("ids are unique across the site")


def test_imports_allocate_custom_data_ids_above_every_imported_id() -> None:
    doc = json.loads(json.dumps(MINIMAL_DATAFILE))
    doc["featureFlags"][0]["rules"][0]["experimentId"] = 50000
    model = import_datafile(SiteModel(), doc, "production")
    assert [c.id for c in model.custom_data] == [50001, 50002] and model.next_id == 50003
