"""The rule loop and variation resolution (evaluation spec §2.2-§2.4, worked examples §2.9)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest

from kameleoon._engine.decide import OFF, evaluate, resolve_key
from kameleoon._engine.hashing import bucket
from kameleoon._engine.model import Configuration
from kameleoon._engine.parse import parse_configuration
from kameleoon._visitors.record import Visitor
from kameleoon.data import Browser, BrowserType, CustomData, Device, DeviceType, PageView

from ._support import document, entry, example_config, flag, record, rule, segment

EXAMPLE = parse_configuration(example_config())
CONFIG = EXAMPLE  # shared by the worked examples: the parsed document of §1.12


def decide(
    config: Configuration, key: str, code: str, visitor: Visitor | None = None
) -> tuple[Any, Any, Any]:
    """(variation key, variation id, rule id) of a plain and a memoized evaluation, checked equal."""
    parsed = config.flags[key]
    entry_, rule_ = evaluate(parsed, visitor, code)
    memo = evaluate(parsed, visitor, code, [None] * config.fact_count)
    assert memo == (entry_, rule_)
    return (
        resolve_key(parsed, entry_, rule_),
        entry_.variation_id if entry_ is not None else None,
        rule_.id if rule_ is not None else None,
    )


def premium(code: str = "v") -> Visitor:
    return record(CustomData(0, "premium"), config=EXAMPLE, code=code)


# -- worked examples --------------------------------------------------------------------------
def test_example_1_experiment_without_visitor_data() -> None:
    """Example 1: rule 501 not targeted, rule 502 draws 0.996... -> two_step (70012)."""
    assert decide(EXAMPLE, "new_checkout", "visitor_42") == ("two_step", 70012, 502)


def test_example_2_targeted_delivery_hit() -> None:
    """Example 2: premium visitor_8 enters rule 501 (0.0888 <= 0.3) -> its first entry "on"."""
    assert decide(EXAMPLE, "new_checkout", "visitor_8", premium("visitor_8")) == ("on", 70001, 501)


def test_example_3_targeted_delivery_miss_stops() -> None:
    """Example 3: user-100 targeted by 501 but 0.507 > 0.3: stop, default "off", rule 502 never tried."""
    assert decide(EXAMPLE, "new_checkout", "user-100", premium("user-100")) == ("off", None, None)
    assert bucket("user-100502") <= 0.8  # rule 502 alone would have let this visitor in


def test_example_4_experiment_assigns_off() -> None:
    """Example 4: user-100 without data: rule 502, draw 0.0588 <= 0.34 -> "off" (70010) from a rule."""
    assert decide(EXAMPLE, "new_checkout", "user-100") == ("off", 70010, 502)
    assert decide(EXAMPLE, "new_checkout", "user-100", record()) == ("off", 70010, 502)


def test_example_5_outside_exposition() -> None:
    """Example 5: visitor_7 gets 0.9698 > 0.8 on rule 502: default, no rule."""
    assert decide(EXAMPLE, "new_checkout", "visitor_7") == ("off", None, None)


def test_example_6_mapping_identifier_is_hashed() -> None:
    """Example 6: crm-555 linked to anon-77 hashes "anon-77" (0.927 > 0.8) -> default."""
    linked = record()
    linked.extras().mapping = "anon-77"
    assert decide(EXAMPLE, "new_checkout", "crm-555", linked) == ("off", None, None)
    assert decide(EXAMPLE, "new_checkout", "crm-555") == ("two_step", 70012, 502)  # without the link


def test_example_7_respool_and_or_of_and_groups() -> None:
    """Example 7: zed matches group 1 of segment 3002; respool time in both hashes -> "ml"."""
    zed = record(
        Browser(BrowserType.CHROME, 120.0),
        Device(DeviceType.DESKTOP),
        PageView("https://x.com/shop/a", "Shop"),
    )
    assert decide(EXAMPLE, "recommendations", "zed", zed) == ("ml", 71001, 601)


def test_example_7_without_targeting_falls_to_rule_602() -> None:
    """Without segment 3002's data, recommendations goes to rule 602 (which needs flag 11's "on")."""
    assert decide(EXAMPLE, "recommendations", "zed", record()) == ("classic", None, None)


def test_example_2_active_features_through_target_feature_flag() -> None:
    """After visitor_8's "on" assignment (70001) rule 602 matches through TARGET_FEATURE_FLAG."""
    visitor = premium("visitor_8")
    visitor.assigned = {9001: (70001, "TARGETED_DELIVERY", 0.0, 0, -1, None)}
    assert decide(EXAMPLE, "recommendations", "visitor_8", visitor) == ("ml", 71002, 602)


# -- rule loop properties ---------------------------------------------------------------------
def single(*rules: dict[str, Any], default: str = "dflt") -> Configuration:
    return parse_configuration(document(flag("f", rules=list(rules), default=default)))


CODE = "acc3"


def test_exposition_boundary_is_inclusive() -> None:
    """``hR == exposition`` enters the rule; one ulp below does not."""
    h_rule = bucket(f"{CODE}1")
    inside = single(rule(1, exposition=h_rule, experiment_id=9, entries=[entry("a", 1, 1.0)]))
    outside = single(
        rule(1, exposition=math.nextafter(h_rule, 0), experiment_id=9, entries=[entry("a", 1, 1.0)])
    )
    assert decide(inside, "f", CODE) == ("a", 1, 1)
    assert decide(outside, "f", CODE) == ("dflt", None, None)


def test_variation_boundary_is_inclusive() -> None:
    """``cumulative == hV`` selects that entry; one ulp below falls to the next entry."""
    h_var = bucket(f"{CODE}9")
    exact = single(rule(1, experiment_id=9, entries=[entry("a", 1, h_var), entry("b", 2, 1.0)]))
    below = single(
        rule(1, experiment_id=9, entries=[entry("a", 1, math.nextafter(h_var, 0)), entry("b", 2, 1.0)])
    )
    assert decide(exact, "f", CODE) == ("a", 1, 1)
    assert decide(below, "f", CODE) == ("b", 2, 1)


def test_expositions_accumulate_as_doubles_in_array_order() -> None:
    """The running total is an IEEE double sum: it selects where exact arithmetic would not."""
    h_var = bucket(f"{CODE}9")
    first, second = 0.1, 0.4811934208207403
    assert first + second == h_var  # the double sum reaches the draw...
    assert Fraction(first) + Fraction(second) < Fraction(h_var)  # ...the exact sum does not
    config = single(rule(1, experiment_id=9, entries=[entry("a", 1, first), entry("b", 2, second)]))
    assert decide(config, "f", CODE) == ("b", 2, 1)


def test_entries_are_picked_in_array_order() -> None:
    """The first entry whose running total reaches the draw wins, whatever the others."""
    h_var = bucket(f"{CODE}9")  # 0.58...
    config = single(
        rule(1, experiment_id=9, entries=[entry("a", 1, 0.5), entry("b", 2, 0.5), entry("c", 3, 0.5)])
    )
    assert h_var > 0.5
    assert decide(config, "f", CODE) == ("b", 2, 1)


def test_variation_miss_falls_through_to_the_next_rule() -> None:
    """An entered experiment whose expositions never reach the draw lets the next rule decide."""
    config = single(
        rule(1, experiment_id=9, entries=[entry("a", 1, 0.1)]),  # 0.1 < hV = 0.58
        rule(2, experiment_id=9, entries=[entry("b", 2, 1.0)]),
    )
    assert decide(config, "f", CODE) == ("b", 2, 2)


def test_variation_miss_on_the_last_rule_gives_the_default() -> None:
    """Falling through the last rule gives the default variation, no rule."""
    assert decide(single(rule(1, experiment_id=9, entries=[entry("a", 1, 0.1)])), "f", CODE) == (
        "dflt",
        None,
        None,
    )


def test_experiment_outside_exposition_tries_the_next_rule() -> None:
    """An experimentation rule the visitor is not exposed to is skipped."""
    config = single(
        rule(1, exposition=0.0, entries=[entry("a", 1, 1.0)]), rule(2, entries=[entry("b", 2, 1.0)])
    )
    assert decide(config, "f", CODE) == ("b", 2, 2)


def test_targeted_delivery_miss_stops_evaluation() -> None:
    """A targeted delivery the visitor is targeted by but not exposed to ends evaluation."""
    config = single(
        rule(1, kind="TARGETED_DELIVERY", exposition=0.0, entries=[entry("a", 1, 1.0)]),
        rule(2, entries=[entry("b", 2, 1.0)]),
    )
    assert decide(config, "f", CODE) == ("dflt", None, None)


def test_untargeted_targeted_delivery_is_skipped() -> None:
    """A targeted delivery whose segment does not match does not stop evaluation."""
    never = segment(5, {"targetingType": "VISITOR_CODE", "visitorCode": "someone-else", "matchType": "EXACT"})
    config = single(
        rule(1, kind="TARGETED_DELIVERY", exposition=0.0, entries=[entry("a", 1, 1.0)], seg=never),
        rule(2, entries=[entry("b", 2, 1.0)]),
    )
    assert decide(config, "f", CODE) == ("b", 2, 2)


def test_targeted_delivery_hit_serves_its_first_entry_without_variation_hash() -> None:
    """An entered targeted delivery serves its first entry, whatever the entry's exposition."""
    config = single(rule(1, kind="TARGETED_DELIVERY", entries=[entry("a", 1, 0.0), entry("b", 2, 1.0)]))
    assert decide(config, "f", CODE) == ("a", 1, 1)


def test_targeted_delivery_without_entries_gives_the_default() -> None:
    """An entered targeted delivery without entries returns (None, rule): the default key."""
    config = single(rule(1, kind="TARGETED_DELIVERY"), rule(2, entries=[entry("b", 2, 1.0)]))
    parsed = config.flags["f"]
    entry_, rule_ = evaluate(parsed, None, CODE)
    assert entry_ is None and rule_ is not None and rule_.id == 1
    assert resolve_key(parsed, entry_, rule_) == "dflt"


def test_unknown_rule_type_behaves_like_an_experiment() -> None:
    """An UNKNOWN-type rule hashes its variation and falls through on a miss, like experimentation."""
    config = single(
        rule(1, kind="SOMETHING", exposition=0.0, entries=[entry("a", 1, 1.0)]),
        rule(2, kind="SOMETHING", experiment_id=9, entries=[entry("x", 3, 0.1), entry("b", 2, 1.0)]),
    )
    assert decide(config, "f", CODE) == ("b", 2, 2)


def test_exposition_zero_excludes_and_one_includes_everybody() -> None:
    """Exposition 0 admits (practically) nobody, 1 everybody."""
    for code in ("a", "b", "c", "visitor_42", "zed"):
        assert decide(single(rule(1, exposition=0, entries=[entry("a", 1, 1.0)])), "f", code)[0] == "dflt"
        assert decide(single(rule(1, exposition=1, entries=[entry("a", 1, 1.0)])), "f", code)[0] == "a"


@pytest.mark.parametrize("exposition", [-0.5, -1])
def test_negative_exposition_excludes_everybody(exposition: float) -> None:
    """A negative exposition admits nobody (and stops at a targeted delivery)."""
    assert (
        decide(single(rule(1, exposition=exposition, entries=[entry("a", 1, 1.0)])), "f", CODE)[0] == "dflt"
    )
    config = single(
        rule(1, kind="TARGETED_DELIVERY", exposition=exposition, entries=[entry("a", 1, 1.0)]),
        rule(2, entries=[entry("b", 2, 1.0)]),
    )
    assert decide(config, "f", CODE)[0] == "dflt"


def test_respool_time_changes_both_hashes() -> None:
    """A truthy respool time is appended to both hash texts; 0 changes nothing."""
    base = rule(1, exposition=bucket(f"{CODE}1"), experiment_id=9, entries=[entry("a", 1, 1.0)])
    assert decide(single({**base, "respoolTime": 0}), "f", CODE) == ("a", 1, 1)
    respooled = {**base, "respoolTime": 77}
    expected = "a" if bucket(f"{CODE}177") <= bucket(f"{CODE}1") else "dflt"
    assert decide(single(respooled), "f", CODE)[0] == expected


def test_default_experiment_id_is_zero_in_the_hash() -> None:
    """Without experimentId the variation hash text ends with "0"."""
    h_var = bucket(f"{CODE}0")
    config = single(
        {
            "id": 1,
            "type": "EXPERIMENTATION",
            "exposition": 1.0,
            "variationByExposition": [entry("a", 1, h_var)],
        }
    )
    assert decide(config, "f", CODE) == ("a", 1, 1)
    below = single(
        {
            "id": 1,
            "type": "EXPERIMENTATION",
            "exposition": 1.0,
            "variationByExposition": [entry("a", 1, math.nextafter(h_var, 0))],
        }
    )
    assert decide(below, "f", CODE) == ("dflt", None, None)


def test_hashed_code_is_the_visitor_code_without_mapping() -> None:
    """Without a mapping identifier the visitor code itself is hashed, record or not."""
    h_rule = bucket(f"{CODE}1")
    config = single(rule(1, exposition=h_rule, experiment_id=9, entries=[entry("a", 1, 1.0)]))
    assert decide(config, "f", CODE, record()) == ("a", 1, 1)
    mapped = record()
    mapped.extras().mapping = CODE
    assert decide(config, "f", "someone", mapped) == ("a", 1, 1)


def test_no_rules_gives_the_default() -> None:
    """A flag without rules serves its default variation key, which need not exist."""
    config = single(default="nonexistent")
    assert decide(config, "f", CODE) == ("nonexistent", None, None)


# -- resolve_key -----------------------------------------------------------------------------------
def test_resolve_key() -> None:
    """Entry key, else "off" for an experimentation rule without entry, else the default key."""
    config = single(rule(1, entries=[entry("a", 1, 1.0)]), rule(2, kind="TARGETED_DELIVERY"), default="dflt")
    parsed = config.flags["f"]
    experiment, delivery = parsed.rules
    assert resolve_key(parsed, experiment.entries[0], experiment) == "a"
    assert resolve_key(parsed, None, experiment) == OFF
    assert resolve_key(parsed, None, delivery) == "dflt"
    assert resolve_key(parsed, None, None) == "dflt"
    assert OFF == "off"
