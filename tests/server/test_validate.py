"""Admin-edit checks against the site model (pure)."""

from __future__ import annotations

from kameleoon_server._validate import (
    custom_data_errors,
    flag_errors,
    model_errors,
    rule_errors,
    segment_errors,
    settings_errors,
    usage,
    variable_errors,
)
from kameleoon_server.model import (
    CustomDataDefinition,
    Flag,
    FlagEnvironment,
    Rule,
    Segment,
    SiteModel,
    SiteSettings,
    SplitEntry,
    Variable,
    Variation,
)


def model_with_flag() -> tuple[SiteModel, Flag]:
    flag = Flag(id=1, key="f", variations=[Variation(key="off"), Variation(key="on")])
    model = SiteModel(flags=[flag], segments=[Segment(id=5, conditions_data=None)])
    return model, flag


def split(*entries: tuple[str, float]) -> list[SplitEntry]:
    return [SplitEntry(variation_key=k, exposition=e, variation_id=i) for i, (k, e) in enumerate(entries)]


def test_a_valid_flag_and_rule_have_no_errors() -> None:
    model, flag = model_with_flag()
    rule = Rule(id=2, experiment_id=3, segment_id=5, variations=split(("off", 0.5), ("on", 0.5)))
    flag.environments["production"] = FlagEnvironment(enabled=True, rules=[rule])
    assert flag_errors(model, flag) == []


def test_rule_errors_name_each_problem() -> None:
    model, flag = model_with_flag()
    rule = Rule(id=2, type="AB", exposition=1.5, segment_id=9, variations=split(("x", 0.7), ("on", 0.7)))
    errors = " | ".join(rule_errors(model, flag, rule))
    for part in (
        "type must be",
        "exposition must be between",
        "'x' is not a variation",
        "add up",
        "segment 9 does not exist",
    ):
        assert part in errors


def test_flag_errors_cover_keys_defaults_environments_and_duplicates() -> None:
    model, flag = model_with_flag()
    flag.default_variation_key = "missing"
    flag.environments["nowhere"] = FlagEnvironment()
    flag.variations.append(Variation(key="on"))
    model.flags.append(Flag(id=2, key="f"))
    errors = " | ".join(flag_errors(model, flag))
    for part in (
        "default_variation_key",
        "unknown environment",
        "variation keys must be unique",
        "used by another flag",
    ):
        assert part in errors
    assert flag_errors(model, Flag(key="bad key!")) != []


def test_variable_values_must_match_their_type() -> None:
    assert variable_errors(Variable(key="a", type="NUMBER", value=1.5)) == []
    assert variable_errors(Variable(key="a", type="NUMBER", value=True)) != []
    assert variable_errors(Variable(key="a", type="JSON", value="[1]")) == []
    assert variable_errors(Variable(key="a", type="JSON", value="{")) != []
    assert variable_errors(Variable(key="a", type="JS", value="alert(1)")) == []


def test_segments_must_not_loop_or_point_nowhere() -> None:
    model = SiteModel()
    a = Segment(
        id=1,
        conditions_data={
            "firstLevel": [{"orOperators": [], "conditions": [{"targetingType": "SEGMENT", "segmentId": 2}]}],
            "firstLevelOrOperators": [],
        },
    )
    b = Segment(
        id=2,
        conditions_data={
            "firstLevel": [{"orOperators": [], "conditions": [{"targetingType": "SEGMENT", "segmentId": 1}]}],
            "firstLevelOrOperators": [],
        },
    )
    model.segments = [a]
    assert any("does not exist" in e for e in segment_errors(model, a))
    model.segments = [a, b]
    assert any("refer back" in e for e in segment_errors(model, a))
    assert usage(model, "segment", 2) == ["segment 1"]


def test_custom_data_settings_and_model_checks() -> None:
    model = SiteModel(
        custom_data=[
            CustomDataDefinition(index=1, is_mapping_identifier=True),
            CustomDataDefinition(index=1, is_mapping_identifier=True),
        ]
    )
    errors = " | ".join(custom_data_errors(model, model.custom_data[1]))
    assert "defined already" in errors and "mapping identifier" in errors
    assert settings_errors(SiteSettings(data_api_domain="data.example.com:8443")) == []
    assert settings_errors(SiteSettings(data_api_domain="https://data.example.com")) != []
    model.segments = [Segment(id=1, conditions_data={"firstLevel": "nope"})]
    assert model_errors(model) != []
