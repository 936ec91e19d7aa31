"""The public client methods through the test kit: decisions, exceptions, recording and scheduling
(evaluation spec §2.5-§2.9, §3.3, §4.2, §4.4, §4.5)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from kameleoon import KameleoonClient, Variable, Variation, data
from kameleoon.data import Browser, BrowserType, Conversion, CustomData, Device, DeviceType, PageView
from kameleoon.exceptions import (
    FeatureEnvironmentDisabled,
    FeatureNotFound,
    FeatureVariableNotFound,
    FeatureVariationNotFound,
    VisitorCodeInvalid,
)
from kameleoon.testing import (
    MockTransport,
    Request,
    Response,
    client_transport,
    flush_tracking,
    update_configuration,
)

from ._support import document, entry, flag, rule, segment, variation

BAD_CODES = ["", None, "x" * 256]


def assigned(client: KameleoonClient, code: str) -> dict[Any, tuple[Any, str]]:
    visitor = client._store.get(code)
    if visitor is None or not visitor.assigned:
        return {}
    return {exp: (a[0], a[1]) for exp, a in visitor.assigned.items()}


def scheduled(client: KameleoonClient) -> set[str]:
    return set(client._tracker._scheduled)


# -- the worked examples (§2.9) ---------------------------------------------------------------------
def test_example_1(client: KameleoonClient) -> None:
    """Example 1: two_step for visitor_42, exposure recorded, is_feature_active True, steps 2.5."""
    assert client.get_feature_variation_key("visitor_42", "new_checkout") == "two_step"
    assert assigned(client, "visitor_42") == {9002: (70012, "EXPERIMENTATION")}
    assert client.is_feature_active("visitor_42", "new_checkout") is True
    assert client.get_feature_variable("visitor_42", "new_checkout", "steps") == 2.5


def test_example_2_and_active_features(client: KameleoonClient) -> None:
    """Example 2: premium visitor_8 gets "on"; active features then add "ml" and record nothing."""
    client.add_data("visitor_8", CustomData(0, "premium"))
    assert client.get_feature_variation_key("visitor_8", "new_checkout") == "on"
    assert assigned(client, "visitor_8") == {9001: (70001, "TARGETED_DELIVERY")}
    active = client.get_active_features("visitor_8")
    assert list(active) == ["new_checkout", "recommendations"]
    assert active["new_checkout"] == Variation(
        "on",
        70001,
        9001,
        {
            "button_color": Variable("button_color", "STRING", "green"),
            "steps": Variable("steps", "NUMBER", 1),
            "express": Variable("express", "BOOLEAN", True),
        },
    )
    assert active["recommendations"] == Variation(
        "ml",
        71002,
        9102,
        {
            "widget": Variable("widget", "JSON", {"slots": 8, "source": "model-v2"}),
            "labels": Variable("labels", "JSON", []),
        },
    )
    assert assigned(client, "visitor_8") == {9001: (70001, "TARGETED_DELIVERY")}


def test_example_3(client: KameleoonClient) -> None:
    """Example 3: user-100 is targeted, misses the delivery, stops: "off", nothing recorded."""
    client.add_data("user-100", CustomData(0, "premium"))
    assert client.get_feature_variation_key("user-100", "new_checkout") == "off"
    assert assigned(client, "user-100") == {}
    assert "user-100" in scheduled(client)


def test_example_4(client: KameleoonClient) -> None:
    """Example 4: user-100 without data is assigned "off" by rule 502: inactive but recorded."""
    assert client.is_feature_active("user-100", "new_checkout") is False
    assert assigned(client, "user-100") == {9002: (70010, "EXPERIMENTATION")}


def test_example_5(client: KameleoonClient) -> None:
    """Example 5: visitor_7 is outside rule 502's exposition: default, no record created."""
    assert client.get_feature_variation_key("visitor_7", "new_checkout") == "off"
    assert client._store.get("visitor_7") is None
    assert "visitor_7" in scheduled(client)


def test_example_6(client: KameleoonClient) -> None:
    """Example 6: crm-555 linked to anon-77 hashes anon-77: "off"; unlinked it would be two_step."""
    assert client.get_feature_variation_key("crm-555", "new_checkout") == "two_step"  # before the link
    client.add_data("anon-77", CustomData(1, "crm-555"))
    assert client.get_feature_variation_key("crm-555", "new_checkout") == "off"
    assert client._store.get("crm-555") is client._store.get("anon-77")


def test_example_7(client: KameleoonClient) -> None:
    """Example 7: zed gets "ml" for recommendations and its JSON widget variable."""
    client.add_data(
        "zed",
        Browser(BrowserType.CHROME, 120.0),
        Device(DeviceType.DESKTOP),
        PageView("https://x.com/shop/a", "Shop"),
    )
    assert client.get_feature_variation_key("zed", "recommendations") == "ml"
    assert client.get_feature_variable("zed", "recommendations", "widget") == {
        "slots": 8,
        "source": "model-v2",
    }
    assert assigned(client, "zed") == {9101: (71001, "EXPERIMENTATION")}


# -- exceptions -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", BAD_CODES)
@pytest.mark.parametrize(
    "call",
    [
        lambda c, code: c.is_feature_active(code, "new_checkout"),
        lambda c, code: c.get_feature_variation_key(code, "new_checkout"),
        lambda c, code: c.get_feature_variable(code, "new_checkout", "steps"),
        lambda c, code: c.get_active_features(code),
        lambda c, code: c.track_conversion(code, 1),
        lambda c, code: c.flush(code or ""),
        lambda c, code: c.add_data(code),
        lambda c, code: c.set_legal_consent(code, True),
    ],
)
def test_invalid_visitor_codes(client: KameleoonClient, call: Any, code: Any) -> None:
    """Every visitor-taking method validates the code first; nothing is recorded or scheduled."""
    with pytest.raises(VisitorCodeInvalid):
        call(client, code)
    assert len(client._store) == 0
    assert scheduled(client) == set()


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.is_feature_active("v", "nope"),
        lambda c: c.get_feature_variation_key("v", "nope"),
        lambda c: c.get_feature_variable("v", "nope", "x"),
        lambda c: c.get_feature_variation_variables("nope", "on"),
    ],
)
def test_unknown_feature(client: KameleoonClient, call: Any) -> None:
    """An unknown key raises FeatureNotFound with the documented message; nothing is queued."""
    with pytest.raises(FeatureNotFound) as info:
        call(client)
    assert str(info.value) == "Kameleoon error: Feature flag Id: nope not found."
    assert scheduled(client) == set()


def test_disabled_feature(make_client: Any) -> None:
    """A disabled flag: is_feature_active is False; the other single-flag methods raise."""
    client = make_client(environment="staging")
    assert client.is_feature_active("v", "pricing_banner") is False
    message = "Kameleoon error: Feature error: Feature 'pricing_banner' is disabled for 'staging' environment"
    for call in (
        lambda: client.get_feature_variation_key("v", "pricing_banner"),
        lambda: client.get_feature_variable("v", "pricing_banner", "x"),
        lambda: client.get_feature_variation_variables("pricing_banner", "on"),
    ):
        with pytest.raises(FeatureEnvironmentDisabled) as info:
            call()
        assert str(info.value) == message
    assert scheduled(client) == set()
    assert len(client._store) == 0


def test_disabled_feature_default_environment(client: KameleoonClient) -> None:
    """Without an environment the message says "default environment"."""
    with pytest.raises(FeatureEnvironmentDisabled, match="for default environment"):
        client.get_feature_variation_key("v", "pricing_banner")


def test_flag_without_environment_enabled_is_disabled(make_client: Any) -> None:
    """``environmentEnabled`` absent means disabled."""
    raw = flag("f")
    del raw["environmentEnabled"]
    client = make_client(document(raw))
    with pytest.raises(FeatureEnvironmentDisabled):
        client.get_feature_variation_key("v", "f")


def test_missing_variable_raises_after_recording(client: KameleoonClient) -> None:
    """FeatureVariableNotFound is raised after the exposure was recorded and the visitor queued."""
    with pytest.raises(FeatureVariableNotFound) as info:
        client.get_feature_variable("visitor_42", "new_checkout", "nope")
    assert str(info.value) == "Kameleoon error: Feature variable nope not found."
    assert assigned(client, "visitor_42") == {9002: (70012, "EXPERIMENTATION")}
    assert "visitor_42" in scheduled(client)


def test_missing_variation_raises_variable_not_found(make_client: Any) -> None:
    """A served key without a variation definition raises FeatureVariableNotFound too."""
    client = make_client(document(flag("f", default="ghost")))
    with pytest.raises(FeatureVariableNotFound):
        client.get_feature_variable("v", "f", "x")
    assert client.get_feature_variation_key("v", "f") == "ghost"


def test_unknown_variation(client: KameleoonClient) -> None:
    """``get_feature_variation_variables`` raises FeatureVariationNotFound for an unknown variation."""
    with pytest.raises(FeatureVariationNotFound) as info:
        client.get_feature_variation_variables("new_checkout", "purple")
    assert str(info.value) == "Kameleoon error: Variation purple not found."


def test_get_feature_variation_variables(client: KameleoonClient) -> None:
    """The variables of a variation as a typed dict; without a variation key, the default's."""
    assert client.get_feature_variation_variables("new_checkout", "two_step") == {
        "button_color": "blue",
        "steps": 2.5,
        "express": True,
    }
    assert client.get_feature_variation_variables("new_checkout") == {
        "button_color": "grey",
        "steps": 3,
        "express": False,
    }
    assert len(client._store) == 0 and scheduled(client) == set()


# -- list methods ---------------------------------------------------------------------------------------
def test_get_feature_list(client: KameleoonClient) -> None:
    """All feature keys in configuration order, disabled ones included."""
    assert client.get_feature_list() == ["new_checkout", "pricing_banner", "recommendations"]


def test_active_features_skip_off_and_disabled(client: KameleoonClient) -> None:
    """Active features skip disabled flags and flags whose key is "off"; nothing is recorded."""
    assert client.get_active_features("user-100") == {
        "recommendations": Variation(
            "classic",
            None,
            None,
            {
                "widget": Variable("widget", "JSON", {"slots": 4, "source": "bestsellers"}),
                "labels": Variable("labels", "JSON", ["a", "b"]),
            },
        )
    }  # new_checkout is "off" (70010) for user-100
    assert len(client._store) == 0
    assert scheduled(client) == set()


def test_active_feature_without_variation_definition(make_client: Any) -> None:
    """A served key without variation definition gives empty variables."""
    client = make_client(document(flag("f", default="ghost")))
    assert client.get_active_features("v") == {"f": Variation("ghost", None, None, {})}


def test_active_feature_list(client: KameleoonClient, caplog: pytest.LogCaptureFixture) -> None:
    """Deprecated list: keys of active enabled flags, a deprecation warning, no validation."""
    client.add_data("visitor_8", CustomData(0, "premium"))
    with caplog.at_level(logging.WARNING, logger="kameleoon"):
        assert client.get_active_feature_list_for_visitor("visitor_42") == ["new_checkout", "recommendations"]
    assert "deprecated" in caplog.text
    assert client.get_active_feature_list_for_visitor("") == ["new_checkout", "recommendations"]
    assert isinstance(client.get_active_feature_list_for_visitor("x" * 300), list)
    assert client.get_active_feature_list_for_visitor(None) == []  # type: ignore[arg-type]
    assert scheduled(client) == set()
    assert assigned(client, "visitor_42") == {}


# -- recording and scheduling ------------------------------------------------------------------------
def test_rule_match_creates_the_record(client: KameleoonClient) -> None:
    """A tracking evaluation through a rule creates the visitor record; the default path does not."""
    client.get_feature_variation_key("visitor_7", "new_checkout")
    assert client._store.get("visitor_7") is None
    client.get_feature_variation_key("visitor_42", "new_checkout")
    assert client._store.get("visitor_42") is not None


def test_assignment_is_replaced_on_every_evaluation(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each tracking evaluation replaces the experiment's assignment with a fresh one."""
    client = make_client(
        document(flag("f", rules=[rule(1, experiment_id=5, entries=[entry("on", 50, 1.0)])]))
    )
    monkeypatch.setattr("kameleoon._client.time.time", lambda: 1000.0)
    client.get_feature_variation_key("v", "f")
    monkeypatch.setattr("kameleoon._client.time.time", lambda: 2000.0)
    client.is_feature_active("v", "f")
    assert client._store.get("v").assigned[5][:3] == (50, "EXPERIMENTATION", 2000.0)  # type: ignore[union-attr]


def test_assignments_are_never_removed(make_client: Any) -> None:
    """A later evaluation giving the default keeps the earlier assignment."""
    only_premium = segment(
        7, {"targetingType": "CUSTOM_DATUM", "customDataIndex": "0", "valueMatchType": "EXACT", "value": "p"}
    )
    doc = document(
        flag(
            "f",
            rules=[
                rule(
                    1,
                    kind="TARGETED_DELIVERY",
                    experiment_id=5,
                    entries=[entry("on", 50, 1.0)],
                    seg=only_premium,
                )
            ],
        )
    )
    client = make_client(doc)
    client.add_data("v", CustomData(0, "p"))
    assert client.get_feature_variation_key("v", "f") == "on"
    client.add_data("v", CustomData(0, "basic"))
    assert client.get_feature_variation_key("v", "f") == "off"
    assert assigned(client, "v") == {5: (50, "TARGETED_DELIVERY")}


def test_entry_without_variation_id_records_nothing(make_client: Any) -> None:
    """An entry with a null variationId serves its key but records no assignment."""
    client = make_client(document(flag("f", rules=[rule(1, entries=[entry("on", None, 1.0)])])))
    assert client.get_feature_variation_key("v", "f") == "on"
    assert client._store.get("v") is not None  # the rule matched: the record exists
    assert assigned(client, "v") == {}


def test_every_tracking_evaluation_schedules(client: KameleoonClient) -> None:
    """The three single-flag methods schedule the visitor, default variation included."""
    client.is_feature_active("a", "new_checkout")
    client.get_feature_variable("visitor_7", "new_checkout", "steps")
    client.get_feature_variation_key("visitor_42", "recommendations")
    assert scheduled(client) == {"a", "visitor_7", "visitor_42"}


def test_unique_identifier_argument_creates_the_record(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-null ``is_unique_identifier`` creates the record (CUSTOM_DATUM UNDEFINED turns true)."""
    undefined = segment(
        7, {"targetingType": "CUSTOM_DATUM", "customDataIndex": "5", "valueMatchType": "UNDEFINED"}
    )
    client = make_client(
        document(
            flag("f", rules=[rule(1, kind="TARGETED_DELIVERY", entries=[entry("on", 1, 1.0)], seg=undefined)])
        )
    )
    assert client.get_feature_variation_key("v", "f") == "off"  # no record: UNDEFINED is false
    with caplog.at_level(logging.WARNING, logger="kameleoon"):
        assert client.get_feature_variation_key("w", "f", is_unique_identifier=False) == "on"
    assert "deprecated" in caplog.text
    assert client._store.is_unique_identifier("w") is False
    client.get_feature_variation_key("x", "f", is_unique_identifier=True)
    assert client._store.is_unique_identifier("x") is True


def test_any_add_data_creates_the_record_for_targeting(make_client: Any) -> None:
    """CUSTOM_DATUM UNDEFINED turns true once any add_data created the record."""
    undefined = segment(
        7, {"targetingType": "CUSTOM_DATUM", "customDataIndex": "5", "valueMatchType": "UNDEFINED"}
    )
    client = make_client(
        document(
            flag("f", rules=[rule(1, kind="TARGETED_DELIVERY", entries=[entry("on", 1, 1.0)], seg=undefined)])
        )
    )
    client.add_data("v")
    assert client.get_feature_variation_key("v", "f") == "on"
    client.set_legal_consent("w", False)
    assert client.get_feature_variation_key("w", "f") == "on"


def test_page_views_condition_with_and_without_record(make_client: Any) -> None:
    """PAGE_VIEWS: no record -> false; an existing record without pages counts 0."""
    zero = segment(7, {"targetingType": "PAGE_VIEWS", "pageCount": 0, "matchType": "EQUAL"})
    client = make_client(
        document(
            flag("f", rules=[rule(1, kind="TARGETED_DELIVERY", entries=[entry("on", 1, 1.0)], seg=zero)])
        )
    )
    assert client.get_feature_variation_key("v", "f") == "off"
    client.add_data("w", Conversion(1))
    assert client.get_feature_variation_key("w", "f") == "on"


def test_track_conversion(client: KameleoonClient) -> None:
    """track_conversion adds Conversion(goal, revenue) and schedules the visitor."""
    client.track_conversion("v", 12, 3.5)
    visitor = client._store.get("v")
    assert visitor is not None
    [conversion] = visitor.conversions
    assert (conversion.goal_id, conversion.revenue, conversion.negative) == (12, 3.5, False)
    assert scheduled(client) == {"v"}
    client.track_conversion("w", 1, is_unique_identifier=True)
    assert client._store.is_unique_identifier("w")


def test_flush_with_a_code_schedules_it(client: KameleoonClient) -> None:
    """flush(code) schedules that visitor, even without data."""
    client.flush("v")
    assert scheduled(client) == {"v"}


def test_flush_without_code_schedules_visitors_with_sendable_data(client: KameleoonClient) -> None:
    """flush() schedules every stored visitor holding sendable data, sent or not."""
    client.add_data("data", Device(DeviceType.PHONE))
    client.add_data("local", CustomData(2, "local only"))
    client.add_data("nothing")
    client.flush()
    assert scheduled(client) == {"data"}
    assert flush_tracking(client)
    client.flush()
    assert scheduled(client) == {"data"}  # already sent, still scheduled: activity


def test_flush_without_code_counts_the_zero_valued_kinds_as_data(client: KameleoonClient) -> None:
    """A Chrome browser or a Windows OS is data (their enum values are 0, which is falsy)."""
    client.add_data("chrome", Browser(BrowserType.CHROME))
    client.add_data("windows", data.OperatingSystem(data.OperatingSystemType.WINDOWS))
    client.flush()
    assert scheduled(client) == {"chrome", "windows"}


def test_flush_instant_sends_now(client: KameleoonClient) -> None:
    """flush(code, instant=True) sends that visitor's data in a request of its own."""
    client.track_conversion("v", 1)
    client.flush("v", instant=True)
    assert flush_tracking(client)
    lines = client_transport(client).tracked_lines()
    assert [line["eventType"] for line in lines] == ["conversion", "activity"]


def test_engine_tracking_code(client: KameleoonClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Assignments of the last 5 s (strictly) as compact JS, in first-assignment order."""
    prefix = "window.kameleoonQueue=window.kameleoonQueue||[];"
    assert client.get_engine_tracking_code("visitor_42") == prefix
    client.add_data("visitor_8", CustomData(0, "premium"))
    client.get_feature_variation_key("visitor_8", "new_checkout")
    client.get_feature_variation_key("visitor_8", "recommendations")
    assert client.get_engine_tracking_code("visitor_8") == (
        prefix + "window.kameleoonQueue.push(['Experiments.assignVariation',9001,70001]);"
        "window.kameleoonQueue.push(['Experiments.trigger',9001,true]);"
        "window.kameleoonQueue.push(['Experiments.assignVariation',9102,71002]);"
        "window.kameleoonQueue.push(['Experiments.trigger',9102,true]);"
    )
    later = time.time() + 5.0
    monkeypatch.setattr("kameleoon._client.time.time", lambda: later)
    assert client.get_engine_tracking_code("visitor_8") == prefix


def test_engine_tracking_code_leaves_out_ids_that_are_not_numbers(client: KameleoonClient) -> None:
    """A string id in a malformed or tampered configuration is not printed into the page's
    script (it could close the script tag or call a function); numeric ids still are."""
    evil_experiment: Any = "1]);</script><script>alert(document.cookie)</script>//"
    evil_variation: Any = "2'+alert(1)+'"
    flags = [
        flag("evil_experiment", [rule(1, experiment_id=evil_experiment, entries=[entry("on", 2, 1.0)])]),
        flag("evil_variation", [rule(2, experiment_id=31, entries=[entry("on", evil_variation, 1.0)])]),
        flag("nan", [rule(4, experiment_id=float("nan"), entries=[entry("on", 5, 1.0)])]),  # type: ignore[arg-type]
        flag("inf", [rule(5, experiment_id=6, entries=[entry("on", float("inf"), 1.0)])]),  # type: ignore[arg-type]
        flag("good", [rule(3, experiment_id=41, entries=[entry("on", 42, 1.0)])]),
    ]
    update_configuration(client, document(*flags))
    for key in ("evil_experiment", "evil_variation", "nan", "inf", "good"):
        assert client.get_feature_variation_key("v-js", key) == "on"
    assert client.get_engine_tracking_code("v-js") == (
        "window.kameleoonQueue=window.kameleoonQueue||[];"
        "window.kameleoonQueue.push(['Experiments.assignVariation',41,42]);"
        "window.kameleoonQueue.push(['Experiments.trigger',41,true]);"
    )


@pytest.mark.parametrize("code", ["", None, 5, "x" * 300])
def test_engine_tracking_code_does_not_validate(client: KameleoonClient, code: Any) -> None:
    """get_engine_tracking_code never raises for odd codes."""
    assert client.get_engine_tracking_code(code) == "window.kameleoonQueue=window.kameleoonQueue||[];"


# -- configuration lifecycle -----------------------------------------------------------------------------
def test_wait_init(client: KameleoonClient) -> None:
    """A test-kit client is initialized with its configuration."""
    assert client.wait_init() is True
    assert asyncio.run(client.wait_init_async()) is True


def test_update_handler_runs_on_updates(client: KameleoonClient) -> None:
    """``on_update_configuration`` handlers run after each later configuration update."""
    calls: list[int] = []
    client.on_update_configuration(lambda: calls.append(1))
    update_configuration(client, document(flag("other")))
    assert calls == [1]
    assert client.get_feature_list() == ["other"]
    client.on_update_configuration(None)
    update_configuration(client, document(flag("third")))
    assert calls == [1]


def test_failing_update_handler_is_contained(
    client: KameleoonClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in the user's handler is logged, and the update still applies."""

    def boom() -> None:
        raise RuntimeError("handler")

    client.on_update_configuration(boom)
    with caplog.at_level(logging.ERROR, logger="kameleoon"):
        update_configuration(client, document(flag("other")))
    assert client.get_feature_list() == ["other"]
    assert "handler" in caplog.text


def test_empty_configuration_raises_feature_not_found(make_client: Any) -> None:
    """With no flags at all, every feature-level call raises FeatureNotFound."""
    client = make_client({})
    with pytest.raises(FeatureNotFound):
        client.get_feature_variation_key("v", "any")
    assert client.get_active_features("v") == {}
    assert client.get_feature_list() == []


def test_decisions_follow_the_new_configuration(client: KameleoonClient) -> None:
    """After an update, decisions use the new configuration."""
    update_configuration(
        client,
        document(
            flag("new_checkout", rules=[rule(1, entries=[entry("on", 1, 1.0)])], variations=[variation("on")])
        ),
    )
    assert client.get_feature_variation_key("visitor_7", "new_checkout") == "on"


# -- remote data feeding decisions -------------------------------------------------------------------
def remote_client(make_client: Any, answer: Any) -> KameleoonClient:
    def handler(request: Request) -> Response:
        if "/visit/visitor" in request.url:
            return Response(200, {"content-type": "application/json"}, json.dumps(answer).encode())
        return Response(204, {}, b"")

    return make_client(transport=MockTransport(handler))  # type: ignore[no-any-return]


def test_remote_assignments_feed_target_feature_flag(make_client: Any) -> None:
    """An imported assignment (9001 -> 70001 "on") makes rule 602 match through TARGET_FEATURE_FLAG."""
    answer = {"currentVisit": {"experimentEvents": [{"time": 1, "data": {"id": 9001, "variationId": 70001}}]}}
    client = remote_client(make_client, answer)
    client.get_remote_visitor_data("v")
    assert assigned(client, "v") == {9001: (70001, "UNKNOWN")}
    assert client.get_feature_variation_key("v", "recommendations") == "ml"


def test_remote_assignment_with_an_odd_variation_id(make_client: Any) -> None:
    """An imported assignment whose variation id is not hashable is ignored (decisions never fail)."""
    answer = {
        "currentVisit": {"experimentEvents": [{"time": 1, "data": {"id": 9001, "variationId": [70001]}}]}
    }
    client = remote_client(make_client, answer)
    client.get_remote_visitor_data("v")
    assert client.get_feature_variation_key("v", "recommendations") == "classic"
    assert "recommendations" in client.get_active_features("v")


@pytest.mark.parametrize("code", [[1], {"a": 1}, 5, None])
def test_remote_visitor_data_with_an_odd_code(client: KameleoonClient, code: Any) -> None:
    """get_remote_visitor_data with an odd code (even a unique identifier) gives no data, no error."""
    assert client.get_remote_visitor_data(code, is_unique_identifier=True) == []
    assert client.get_remote_visitor_data(code) == []


def test_unhashable_experiment_id_does_not_break_decisions(make_client: Any) -> None:
    """A rule with a list experimentId decides normally; its assignment is not recorded."""
    raw = rule(1, entries=[entry("on", 2, 1.0)])
    raw["experimentId"] = [1]
    client = make_client(document(flag("f", rules=[raw])))
    assert client.get_feature_variation_key("v", "f") == "on"
    assert not client._store.get("v").assigned


def test_wait_init_without_any_configuration() -> None:
    """Without any configuration wait_init is False and every feature call raises FeatureNotFound."""
    from kameleoon import KameleoonClientConfig

    client = KameleoonClient("s", KameleoonClientConfig("a", "b", offline=True))
    try:
        assert client.wait_init() is False
        assert asyncio.run(client.wait_init_async()) is False
        with pytest.raises(FeatureNotFound):
            client.is_feature_active("v", "f")
        assert client.get_feature_list() == []
    finally:
        client._close(timeout=1.0)


def test_data_api_domain_follows_the_configuration(client: KameleoonClient) -> None:
    """After a configuration with a dataApiDomain, tracking goes to that host."""
    update_configuration(
        client, {**document(flag("f")), "configuration": {"dataApiDomain": "data.example.net"}}
    )
    client.flush("v")
    assert flush_tracking(client)
    [request] = [r for r in client_transport(client).requests if "/visit/events" in r.url]
    assert request.url.startswith("https://data.example.net/visit/events?")


def test_consent_does_not_change_decisions(make_client: Any) -> None:
    """Required-but-missing consent changes neither decisions nor recorded assignments."""
    doc = {**document(flag("f", rules=[rule(1, experiment_id=5, entries=[entry("on", 50, 1.0)])])),
           "configuration": {"consentType": "REQUIRED"}}  # fmt: skip
    client = make_client(doc)
    assert client.get_feature_variation_key("v", "f") == "on"
    assert assigned(client, "v") == {5: (50, "EXPERIMENTATION")}


@pytest.mark.parametrize("timeout", ["soon", object(), [1]])
def test_remote_calls_with_a_timeout_that_is_not_a_number(client: KameleoonClient, timeout: Any) -> None:
    """A timeout that is not a number means the default timeout (no TypeError)."""
    assert client.get_remote_data("key", timeout) is None
    assert client.get_remote_visitor_data("v", True, timeout) == []
    assert client.get_visitor_warehouse_audience("v", 1, None, timeout) is None


def test_flush_all_reports_linked_data_under_the_owner_code(make_client: Any) -> None:
    """flush() without a code reports a linked record's data under its own (anonymous) code, as the
    reference's visitor map order does, whatever the store's recency order."""
    doc = document(flag("f"), custom_data=[{"index": 2, "isMappingIdentifier": True}])
    client = make_client(doc)
    store = client._store
    clock = [1000.0]
    store._clock = lambda: clock[0]
    store.refresh_clock()
    client.add_data("anon", Device(DeviceType.PHONE), CustomData(2, "user-42"))
    clock[0] += 5.0
    store.refresh_clock()
    client.add_data("user-42", Conversion(1))  # used again later, through the linked code:
    store.reorder()  # the next tick moves both codes to the recent end, the linked one first
    assert list(store) == ["user-42", "anon"]
    client.flush(instant=True)
    assert flush_tracking(client)
    device = [line for line in client_transport(client).tracked_lines() if line.get("deviceType") == "PHONE"]
    assert [line.get("visitorCode") for line in device] == ["anon"]
