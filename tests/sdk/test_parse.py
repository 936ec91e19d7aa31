"""Configuration parsing: defaults, the failure matrix and the derived indexes
(evaluation spec §1.2-§1.11)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kameleoon._engine.model import EXPERIMENTATION, TARGETED_DELIVERY, UNKNOWN_RULE
from kameleoon._engine.parse import ConfigError, parse_configuration, parse_configuration_text

from ._support import document, entry, example_config, flag, rule, segment

CUSTOM = {"targetingType": "CUSTOM_DATUM", "customDataIndex": "0", "valueMatchType": "EXACT", "value": "x"}


def with_rule(**fields: Any) -> dict[str, Any]:
    raw = rule(1)
    raw.update(fields)
    return document(flag("f", rules=[raw]))


def with_conditions_data(data: Any) -> dict[str, Any]:
    return with_rule(segment={"id": 5, "conditionsData": data})


def mutate(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = example_config()
    change(doc)
    return doc


def remove(mapping: dict[str, Any], key: str) -> None:
    del mapping[key]


# -- the failure matrix ------------------------------------------------------------------------
CONFIG_ERRORS = {
    "rule without id": mutate(lambda d: remove(d["featureFlags"][0]["rules"][1], "id")),
    "segment without id": mutate(lambda d: remove(d["featureFlags"][0]["rules"][0]["segment"], "id")),
    "segment without conditionsData": mutate(
        lambda d: remove(d["featureFlags"][0]["rules"][0]["segment"], "conditionsData")
    ),
    "conditionsData without firstLevel": with_conditions_data({"firstLevelOrOperators": []}),
    "group without conditions": with_conditions_data({"firstLevel": [{"orOperators": []}]}),
    "two groups without firstLevelOrOperators": with_conditions_data(
        {"firstLevel": [{"conditions": []}, {"conditions": []}]}
    ),
    "two conditions without orOperators": with_conditions_data(
        {"firstLevel": [{"conditions": [CUSTOM, CUSTOM]}]}
    ),
    "three conditions, one orOperator": with_conditions_data(
        {"firstLevel": [{"orOperators": [True], "conditions": [CUSTOM, CUSTOM, CUSTOM]}]}
    ),
    "two conditions, empty orOperators": with_conditions_data(
        {"firstLevel": [{"orOperators": [], "conditions": [CUSTOM, CUSTOM]}]}
    ),
    "null firstLevel": with_conditions_data({"firstLevel": None}),
    "null conditions": with_conditions_data({"firstLevel": [{"conditions": None}]}),
    "two groups, null firstLevelOrOperators": with_conditions_data(
        {"firstLevelOrOperators": None, "firstLevel": [{"conditions": []}, {"conditions": []}]}
    ),
    "two conditions, null orOperators": with_conditions_data(
        {"firstLevel": [{"orOperators": None, "conditions": [CUSTOM, CUSTOM]}]}
    ),
    "null variations": mutate(lambda d: d["featureFlags"][0].update(variations=None)),
    "null rules": mutate(lambda d: d["featureFlags"][0].update(rules=None)),
    "null variationByExposition": mutate(
        lambda d: d["featureFlags"][0]["rules"][0].update(variationByExposition=None)
    ),
    "null variables": mutate(lambda d: d["featureFlags"][0]["variations"][0].update(variables=None)),
    "non-numeric customData index": mutate(lambda d: d["customData"][0].update(index="zero")),
    "numeric customDataIndex": with_conditions_data(
        {"firstLevel": [{"conditions": [{**CUSTOM, "customDataIndex": 0}]}]}
    ),
    "unknown valueMatchType": with_conditions_data(
        {"firstLevel": [{"conditions": [{**CUSTOM, "valueMatchType": "SIMILAR"}]}]}
    ),
    "missing valueMatchType": with_conditions_data(
        {"firstLevel": [{"conditions": [{k: v for k, v in CUSTOM.items() if k != "valueMatchType"}]}]}
    ),
    "a document that is not an object": [],
    "a flag that is not an object": {"featureFlags": ["flag"]},
    "featureFlags that is not an array": {"featureFlags": {"a": 1}},
    "configuration that is not an object": {"configuration": [1]},
}


@pytest.mark.parametrize("doc", CONFIG_ERRORS.values(), ids=list(CONFIG_ERRORS))
def test_config_errors(doc: Any) -> None:
    """Every malformation of the failure matrix rejects the whole document."""
    with pytest.raises(ConfigError):
        parse_configuration(doc)


ACCEPTED = {
    "empty document": {},
    "null featureFlags, customData, configuration": {
        "featureFlags": None,
        "customData": None,
        "configuration": None,
    },
    "unknown rule type": with_rule(type="PROGRESSIVE_DELIVERY"),
    "unknown targetingType": with_conditions_data(
        {"firstLevel": [{"conditions": [{"targetingType": "NEW_THING"}]}]}
    ),
    "unknown top-level keys": {"segments": [1], "holdout": {}, "dateModified": 5, "experiments": None},
    "duplicate featureKey": document(flag("a", flag_id=1), flag("a", flag_id=2)),
    "segment {}": with_rule(segment={}),
    "null conditionsData": with_rule(segment={"id": 3, "conditionsData": None}),
    "empty firstLevel": with_conditions_data({"firstLevel": []}),
    "one group without firstLevelOrOperators": with_conditions_data(
        {"firstLevel": [{"conditions": [CUSTOM]}]}
    ),
    "short firstLevelOrOperators": with_conditions_data(
        {"firstLevelOrOperators": [], "firstLevel": [{"conditions": []}, {"conditions": []}]}
    ),
    "one group, operators null or not a list (not read)": with_conditions_data(
        {"firstLevelOrOperators": None, "firstLevel": [{"orOperators": {}, "conditions": [CUSTOM]}]}
    ),
    "customData index null or absent": {"customData": [{"index": None}, {"id": 4}]},
    "customData numeric string index": {"customData": [{"index": "7"}]},
    "CUSTOM_DATUM ANY": with_conditions_data(
        {"firstLevel": [{"conditions": [{**CUSTOM, "valueMatchType": "ANY"}]}]}
    ),
}


@pytest.mark.parametrize("doc", ACCEPTED.values(), ids=list(ACCEPTED))
def test_accepted_documents(doc: Any) -> None:
    """Lenient cases of the failure matrix parse without error."""
    parse_configuration(doc)


@pytest.mark.parametrize("text", ["", "{", "null", "[]", '"text"', "5", b"\xff\xfe"])
def test_text_that_is_not_a_json_object(text: str | bytes) -> None:
    """Invalid JSON, or JSON that is not an object, is a configuration error."""
    with pytest.raises(ConfigError):
        parse_configuration_text(text)


def test_parse_text_and_bytes() -> None:
    """A JSON text (str or bytes) parses like the decoded document."""
    assert list(parse_configuration_text(b'{"featureFlags": [{"featureKey": "k"}]}').flags) == ["k"]


# -- configuration settings --------------------------------------------------------------------
def test_empty_document_defaults() -> None:
    """No configuration: no flags, consent not required, no real-time, default Data API host."""
    config = parse_configuration({})
    assert dict(config.flags) == {}
    assert config.consent_required is False
    assert config.real_time_update is False
    assert config.data_api_domain is None
    assert config.mapping_index is None
    assert config.has_targeted_delivery_rule is False


@pytest.mark.parametrize(
    ("consent_type", "required"),
    [("REQUIRED", True), ("required", False), ("OPTIONAL", False), (None, False), (True, False)],
)
def test_consent_required_only_for_exact_required(consent_type: Any, required: bool) -> None:
    """Consent is required only when ``consentType`` is exactly "REQUIRED"."""
    assert parse_configuration({"configuration": {"consentType": consent_type}}).consent_required is required


@pytest.mark.parametrize(
    ("value", "streaming"), [(True, True), (1, True), ("yes", True), (False, False), (0, False)]
)
def test_real_time_update_is_truthiness(value: Any, streaming: bool) -> None:
    """Any truthy ``realTimeUpdate`` switches to streaming."""
    assert parse_configuration({"configuration": {"realTimeUpdate": value}}).real_time_update is streaming


@pytest.mark.parametrize(
    ("value", "kept"), [("data.example.com", "data.example.com"), (5, None), (None, None)]
)
def test_data_api_domain_only_strings(value: Any, kept: str | None) -> None:
    """A non-string ``dataApiDomain`` is ignored."""
    assert parse_configuration({"configuration": {"dataApiDomain": value}}).data_api_domain == kept


def test_custom_data_definitions() -> None:
    """Custom data: index (numeric strings accepted), localOnly, VISITOR scope, mapping index."""
    config = parse_configuration(example_config())
    assert set(config.custom_data) == {0, 1, 2}
    assert config.custom_data[0].visitor_scope is True
    assert config.custom_data[2].visitor_scope is False
    assert config.custom_data[2].local_only is True
    assert config.mapping_index == 1
    assert config.is_local_only(2) and not config.is_local_only(0)
    assert config.is_local_only([1]) is False  # unhashable indexes are simply not local-only
    assert parse_configuration({"customData": [{"index": "12"}]}).custom_data[12].index == 12


def test_last_mapping_identifier_wins() -> None:
    """With several mapping-identifier entries the last one is the mapping index."""
    doc = {
        "customData": [{"index": 3, "isMappingIdentifier": True}, {"index": 5, "isMappingIdentifier": True}]
    }
    assert parse_configuration(doc).mapping_index == 5


def test_raw_document_is_kept() -> None:
    """The parsed model keeps the raw document."""
    doc = example_config()
    assert parse_configuration(doc).raw == doc


# -- flags --------------------------------------------------------------------------------------
def test_flag_defaults() -> None:
    """A flag without fields: id 0, key "", default key "", disabled, no variations or rules."""
    parsed = parse_configuration({"featureFlags": [{}]}).flags[""]
    assert (parsed.id, parsed.key, parsed.default_variation_key) == (0, "", "")
    assert parsed.environment_enabled is False
    assert parsed.variations == ()
    assert parsed.rules == ()


def test_duplicate_feature_key_keeps_first_position_last_definition() -> None:
    """A duplicate key keeps the first position in order but the last definition."""
    doc = document(flag("a", flag_id=1), flag("b", flag_id=2), flag("a", flag_id=3, default="later"))
    config = parse_configuration(doc)
    assert list(config.flags) == ["a", "b"]
    assert config.flags["a"].id == 3
    assert config.flags["a"].default_variation_key == "later"


def test_first_variation_with_a_key_wins() -> None:
    """Variation lookup by key returns the first variation with that key."""
    doc = document(flag("f", variations=[{"key": "on", "variables": []}, {"key": "on", "variables": [{}]}]))
    parsed = parse_configuration(doc).flags["f"]
    assert parsed.variations_by_key["on"] is parsed.variations[0]


# -- rules ---------------------------------------------------------------------------------------
def test_rule_defaults() -> None:
    """A rule with only an id: type UNKNOWN, exposition 0, experiment 0, no entries, no segment."""
    parsed = parse_configuration(document(flag("f", rules=[{"id": 9}]))).flags["f"].rules[0]
    assert (parsed.id, parsed.type, parsed.exposition, parsed.experiment_id) == (9, UNKNOWN_RULE, 0.0, 0)
    assert parsed.respool_time is None
    assert parsed.entries == ()
    assert parsed.segment is None
    assert parsed.rule_suffix == b"9"
    assert parsed.experiment_suffix == b"0"


@pytest.mark.parametrize(
    ("kind", "parsed"),
    [
        ("EXPERIMENTATION", EXPERIMENTATION),
        ("TARGETED_DELIVERY", TARGETED_DELIVERY),
        ("targeted_delivery", UNKNOWN_RULE),
        ("", UNKNOWN_RULE),
        (None, UNKNOWN_RULE),
    ],
)
def test_rule_types(kind: Any, parsed: str) -> None:
    """Rule types are matched exactly; anything else is UNKNOWN."""
    assert parse_configuration(with_rule(type=kind)).flags["f"].rules[0].type == parsed


def test_rules_keep_array_order_not_order_field() -> None:
    """``order`` is parsed but ignored: rules stay in array order."""
    doc = document(flag("f", rules=[{**rule(1), "order": 9}, {**rule(2), "order": 1}]))
    assert [r.id for r in parse_configuration(doc).flags["f"].rules] == [1, 2]


def test_hash_suffixes_include_a_truthy_respool_time() -> None:
    """The precomputed hash suffixes are str(id)/str(experimentId) + str(respoolTime) if truthy."""
    parsed = parse_configuration(example_config()).flags["recommendations"].rules
    assert (parsed[0].rule_suffix, parsed[0].experiment_suffix) == (b"6011700000000", b"91011700000000")
    assert (parsed[1].rule_suffix, parsed[1].experiment_suffix) == (b"602", b"9102")


def test_entries_accumulate_in_array_order() -> None:
    """Variation entries carry the IEEE double running sum of the expositions."""
    entries = parse_configuration(example_config()).flags["new_checkout"].rules[1].entries
    assert [e.cumulative for e in entries] == [0.34, 0.34 + 0.33, 0.34 + 0.33 + 0.33]
    assert [e.variation_key for e in entries] == ["off", "on", "two_step"]
    assert [e.variation_id for e in entries] == [70010, 70011, 70012]


def test_entry_defaults() -> None:
    """An empty entry: key "", variation id None, exposition 0."""
    doc = document(flag("f", rules=[{**rule(1), "variationByExposition": [{}]}]))
    parsed = parse_configuration(doc).flags["f"].rules[0].entries[0]
    assert (parsed.variation_key, parsed.variation_id, parsed.exposition, parsed.cumulative) == (
        "",
        None,
        0.0,
        0.0,
    )


@pytest.mark.parametrize("seg", [None, {}])
def test_rule_without_segment_targets_everybody(seg: Any) -> None:
    """A null or empty segment means no segment at all."""
    assert parse_configuration(with_rule(segment=seg)).flags["f"].rules[0].segment is None


@pytest.mark.parametrize("data", [None, {"firstLevel": []}, {"firstLevel": [{"conditions": []}]}])
def test_segments_matching_everybody(data: Any) -> None:
    """A segment with null conditionsData, no groups or empty groups matches everybody."""
    seg = parse_configuration(with_conditions_data(data)).flags["f"].rules[0].segment
    assert seg is not None and seg.id == 5
    assert seg.check(None, "v", 0) is True
    assert seg.memo_check(None, "v", 0, []) is True


# -- derived indexes -------------------------------------------------------------------------------
def test_derived_indexes_of_the_example() -> None:
    """Flag-by-id, variation-by-id over all rules, rule-by-segment-id (-1 without segment)."""
    config = parse_configuration(example_config())
    assert {k: f.key for k, f in config.flags_by_id.items()} == {
        11: "new_checkout",
        12: "pricing_banner",
        13: "recommendations",
    }
    assert set(config.entries_by_variation_id) == {70001, 70010, 70011, 70012, 71000, 71001, 71002}
    assert config.entries_by_variation_id[71002].variation_key == "ml"
    assert {k: r.id for k, r in config.rules_by_segment_id.items()} == {
        3001: 501,
        -1: 502,
        3002: 601,
        3003: 602,
    }
    assert config.has_targeted_delivery_rule is True


def test_later_definitions_overwrite_in_indexes() -> None:
    """Later rules overwrite earlier ones in the variation-id and segment-id indexes."""
    doc = document(
        flag("a", flag_id=1, rules=[rule(1, entries=[entry("x", 7, 1.0)], seg=segment(50))]),
        flag(
            "b", flag_id=2, rules=[rule(2, entries=[entry("y", 7, 1.0)], seg=segment(50)), rule(3), rule(4)]
        ),
    )
    config = parse_configuration(doc)
    assert config.entries_by_variation_id[7].variation_key == "y"
    assert config.rules_by_segment_id[50].id == 2
    assert config.rules_by_segment_id[-1].id == 4


@pytest.mark.parametrize(
    ("enabled", "kind", "has_td"),
    [
        (True, "TARGETED_DELIVERY", True),
        (False, "TARGETED_DELIVERY", False),
        (True, "EXPERIMENTATION", False),
    ],
)
def test_has_targeted_delivery_rule(enabled: bool, kind: str, has_td: bool) -> None:
    """Only environment-enabled flags with a TARGETED_DELIVERY rule count."""
    doc = document(flag("f", enabled=enabled, rules=[rule(1, kind=kind)]))
    assert parse_configuration(doc).has_targeted_delivery_rule is has_td


def test_parsing_does_not_modify_the_document() -> None:
    """The decoded document is left untouched."""
    doc = example_config()
    before = copy.deepcopy(doc)
    parse_configuration(doc)
    assert doc == before


def test_a_segment_of_thousands_of_conditions_is_accepted_and_decides() -> None:
    """A group of 3 000 conditions (say, one per listed visitor code) is a valid configuration:
    neither parsing nor deciding recurses per condition."""
    from kameleoon.data import CustomData
    from kameleoon.testing import create_client

    conditions = [{**CUSTOM, "value": f"user-{n}"} for n in range(3_000)]
    targeted = rule(1, TARGETED_DELIVERY, entries=[entry("on", 11, 1.0)])
    targeted["segment"] = segment(5, *conditions, or_operators=[True] * 2_999)
    client = create_client(document(flag("f", rules=[targeted])))
    try:
        client.add_data("listed", CustomData(0, "user-2999"))
        client.add_data("other", CustomData(0, "user-3000"))
        assert client.get_feature_variation_key("listed", "f") == "on"
        assert client.get_feature_variation_key("other", "f") == "off"
        assert list(client.get_active_features("listed")) == ["f"]
    finally:
        client._close(timeout=0.1)
