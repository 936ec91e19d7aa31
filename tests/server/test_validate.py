"""Admin-edit checks against the site model (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from kameleoon_server._conditions import conditions_data_errors
from kameleoon_server._validate import (
    custom_data_errors,
    environments_errors,
    flag_errors,
    id_errors,
    model_errors,
    rule_errors,
    segment_errors,
    settings_errors,
    site_errors,
    usage,
    variable_errors,
)
from kameleoon_server.model import (
    MAX_ID,
    CustomDataDefinition,
    Flag,
    FlagEnvironment,
    Goal,
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


def conditions(*items: dict[str, object]) -> dict[str, object]:
    return {
        "firstLevelOrOperators": [],
        "firstLevel": [{"orOperators": [False] * (len(items) - 1), "conditions": list(items)}],
    }


def test_ids_must_be_in_range_unique_per_kind_and_below_next_id() -> None:
    model, flag = model_with_flag()
    rule = Rule(id=2, experiment_id=3, variations=split(("off", 0.5), ("on", 0.5)))
    rule.variations[0].variation_id = 10
    rule.variations[1].variation_id = 11
    flag.environments["production"] = FlagEnvironment(rules=[rule])
    assert id_errors(model) == []
    model.goals = [Goal(id=2, name="same id as the rule: another kind")]
    assert id_errors(model) == []
    other = Rule(
        id=4, experiment_id=3, variations=[SplitEntry(variation_key="on", exposition=1, variation_id=10)]
    )
    flag.environments["staging"] = FlagEnvironment(rules=[other])
    errors = " | ".join(id_errors(model))
    assert "experiment id 3 is used more than once" in errors and "variation id 10" in errors
    model.goals = [Goal(id=MAX_ID + 1, name="g"), Goal(id=0, name="h")]
    errors = " | ".join(id_errors(model))
    assert f"goal id {MAX_ID + 1} must be" in errors and "goal id 0 must be" in errors
    model.goals, model.next_id = [Goal(id=900, name="g")], 900
    assert "not below next_id" in " | ".join(id_errors(model))
    model.move_next_id_past_ids()
    assert model.next_id == 901 and not any("next_id" in e for e in id_errors(model))


def test_a_split_names_each_variation_once() -> None:
    model, flag = model_with_flag()
    rule = Rule(id=2, experiment_id=3, variations=split(("on", 0.5), ("on", 0.5)))
    assert "variation 'on' is listed twice in the split" in rule_errors(model, flag, rule)


def test_segments_refer_to_existing_goals_and_custom_data_and_keep_them_in_use() -> None:
    model = SiteModel(goals=[Goal(id=7, name="g")], custom_data=[CustomDataDefinition(id=8, index=3)])
    good = Segment(
        id=1,
        conditions_data=conditions(
            {"targetingType": "CONVERSIONS", "goalId": 7},
            {"targetingType": "CONVERSIONS", "goalId": None},
            {
                "targetingType": "CUSTOM_DATUM",
                "customDataIndex": "3",
                "valueMatchType": "EXACT",
                "value": "x",
            },
        ),
    )
    model.segments = [good]
    assert segment_errors(model, good) == []
    assert usage(model, "goal", 7) == ["segment 1"] and usage(model, "custom_data", 3) == ["segment 1"]
    assert usage(model, "goal", 8) == [] and usage(model, "custom_data", 4) == []
    bad = Segment(
        id=2,
        conditions_data=conditions(
            {"targetingType": "CONVERSIONS", "goalId": 9},
            {
                "targetingType": "CUSTOM_DATUM",
                "customDataIndex": "4",
                "valueMatchType": "EXACT",
                "value": "x",
            },
            {
                "targetingType": "CUSTOM_DATUM",
                "customDataIndex": "²",
                "valueMatchType": "EXACT",
                "value": "x",
            },
        ),
    )
    errors = " | ".join(segment_errors(model, bad))
    assert "goal 9 does not exist" in errors and "index 4 is not defined" in errors
    assert "customDataIndex must be digits only" in errors


@pytest.mark.parametrize("index", ["²", " 0", "-0", "0\n", "+1", "1.0"])
def test_a_custom_data_index_the_sdk_reads_as_no_index_is_refused(index: str) -> None:
    """The SDK reads a customDataIndex of anything but digits as an index without data: such a
    condition would never match, so the admin API refuses it rather than store it."""
    condition = {
        "targetingType": "CUSTOM_DATUM",
        "customDataIndex": index,
        "valueMatchType": "EXACT",
        "value": "x",
    }
    errors = conditions_data_errors({"firstLevel": [{"conditions": [condition]}]}, strict=True)
    assert [e for e in errors if "customDataIndex must be digits only" in e]


@pytest.mark.parametrize(
    "conditions_data",
    [
        {"firstLevel": 5},
        {"firstLevel": [{"conditions": 5}]},
        {
            "firstLevel": [
                {
                    "conditions": [
                        {"targetingType": "CUSTOM_DATUM", "customDataIndex": "0", "valueMatchType": []}
                    ]
                }
            ]
        },
        {
            "firstLevel": [
                {"conditions": [{"targetingType": "VISITOR_CODE", "matchType": {}, "visitorCode": "a"}]}
            ]
        },
        {"firstLevel": [{"conditions": [{"targetingType": "PAGE_VIEWS", "matchType": [], "pageCount": 1}]}]},
        {"firstLevel": [{"conditions": [{"targetingType": "SEGMENT", "segmentId": [1]}]}]},
        {"firstLevel": [{"conditions": [{"targetingType": "CONVERSIONS", "goalId": {"a": 1}}]}]},
        {"firstLevel": [{"conditions": [{"targetingType": "TARGET_FEATURE_FLAG", "featureFlagId": [2]}]}]},
        {
            "firstLevel": [
                {
                    "conditions": [
                        {
                            "targetingType": "BROWSER",
                            "browser": "CHROME",
                            "version": "1",
                            "versionMatchType": [],
                        }
                    ]
                }
            ]
        },
    ],
)
def test_conditions_of_the_wrong_types_are_reported_not_raised(conditions_data: Any) -> None:
    """Lists or objects where names or ids belong are errors to report (they raised TypeError:
    a 500 from the admin API)."""
    model = SiteModel(name="s")
    assert segment_errors(model, Segment(id=1, conditions_data=conditions_data))


def test_site_environments_need_valid_keys_and_production() -> None:
    assert environments_errors(["production", "qa-1"]) == []
    assert len(environments_errors(["production", "a/b", "", "\u0000"])) == 3
    assert any("production" in e for e in environments_errors(["staging"]))


def test_site_errors_check_every_flag_and_custom_data() -> None:
    model, flag = model_with_flag()
    model.custom_data = [CustomDataDefinition(id=20, index=-1)]
    flag.default_variation_key = "nope"
    errors = " | ".join(site_errors(model))
    assert "flag 'f': default_variation_key" in errors and "index must be" in errors


def test_a_json_variable_nested_too_deeply_is_an_error_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    errors = variable_errors(Variable(key="v", type="JSON", value=deep))
    assert errors and "valid JSON" in errors[0]
