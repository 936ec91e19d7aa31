"""What a visitor sends: unsent items in protocol order, consent filtering, identities, and whole
tracking requests through the test kit (protocol spec §5.4, §5.7, §5.8, §9, §12; evaluation
spec §2.7-§2.8)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from kameleoon import KameleoonClient
from kameleoon._engine.parse import parse_configuration
from kameleoon._visitors import pending
from kameleoon._visitors.data import DataContext, add_items
from kameleoon._visitors.outbox import (
    consent_given,
    identity_of,
    prepare_unique_identifier,
    unsent_items,
)
from kameleoon._visitors.record import Visitor
from kameleoon._visitors.store import VisitorStore
from kameleoon.data import (
    Browser,
    BrowserType,
    Conversion,
    Cookie,
    CustomData,
    Device,
    DeviceType,
    Geolocation,
    OperatingSystem,
    OperatingSystemType,
    PageView,
    UniqueIdentifier,
    UserAgent,
)
from kameleoon.testing import client_transport, flush_tracking

from ._support import document, entry, flag, rule

LOG = logging.getLogger("kameleoon.tests")

# §5.8: index 0 sent, 1 local only, 3 without values; flag "exp" (5001 -> 7002), flag "td" (5002 -> 7003)
CAPTURE = document(
    flag("exp", flag_id=1, rules=[rule(11, experiment_id=5001, entries=[entry("v", 7002, 1.0)])]),
    flag(
        "td",
        flag_id=2,
        rules=[rule(12, kind="TARGETED_DELIVERY", experiment_id=5002, entries=[entry("on", 7003, 1.0)])],
    ),
    custom_data=[
        {"index": 0},
        {"index": 1, "localOnly": True},
        {"index": 2, "isMappingIdentifier": True},
        {"index": 3},
    ],
)
CONFIG = parse_configuration(CAPTURE)
REQUIRED = parse_configuration({**CAPTURE, "configuration": {"consentType": "REQUIRED"}})


def filled(*items: Any, code: str = "visitor-1", config: Any = CONFIG) -> tuple[VisitorStore, Visitor]:
    store = VisitorStore(1800.0, 100)
    visitor = store.get_or_create(code)
    add_items(DataContext(store, code, visitor, config, LOG), items)
    return store, visitor


def assign(visitor: Visitor, experiment_id: int, variation_id: int, kind: str) -> None:
    assigned = visitor.assigned if visitor.assigned is not None else {}
    position = assigned[experiment_id][3] if experiment_id in assigned else len(assigned)
    assigned[experiment_id] = (variation_id, kind, 0.0, position, -1, None)
    visitor.assigned = assigned
    visitor.pending |= pending.bit(pending.ASSIGNMENT, position)


def params(visitor: Visitor, consent: bool = True) -> list[str]:
    return [text for _, text, _ in unsent_items(visitor, CONFIG, consent)]


# -- order and content -------------------------------------------------------------------------------
def test_protocol_order() -> None:
    """Device, browser, geolocation, OS, custom data, pages, conversions, exposures."""
    _, visitor = filled(
        Conversion(1),
        PageView("/p", None),
        CustomData(0, "x"),
        OperatingSystem(OperatingSystemType.MAC),
        Geolocation("FR"),
        Browser(BrowserType.OPERA),
        Device(DeviceType.PHONE),
    )
    assign(visitor, 5001, 7002, "EXPERIMENTATION")
    assert [p.split("&")[1] for p in params(visitor)] == [
        "deviceType=PHONE",
        "browserIndex=4",
        "country=FR",
        "os=MAC",
        "index=0",
        "href=%2Fp",
        "goalId=1",
        "id=5001",
    ]


def test_sequences_keep_first_insertion_order() -> None:
    """Custom data by first index insertion, pages by first URL insertion, exposures by first assignment."""
    _, visitor = filled(
        CustomData(3, "a"),
        CustomData(0, "b"),
        CustomData(3, "c"),
        PageView("/b", None),
        PageView("/a", None),
        PageView("/b", "t"),
    )
    assign(visitor, 9, 90, "EXPERIMENTATION")
    assign(visitor, 8, 80, "EXPERIMENTATION")
    assign(visitor, 9, 91, "EXPERIMENTATION")
    texts = params(visitor)
    assert [t for t in texts if "customData" in t] == [
        "eventType=customData&index=3&valuesCountMap=%7B%22c%22%3A1%7D&overwrite=true",
        "eventType=customData&index=0&valuesCountMap=%7B%22b%22%3A1%7D&overwrite=true",
    ]
    assert [t for t in texts if "eventType=page" in t] == [
        "eventType=page&href=%2Fb&title=t",
        "eventType=page&href=%2Fa",
    ]
    assert [t for t in texts if "experiment" in t] == [
        "eventType=experiment&id=9&variationId=91",
        "eventType=experiment&id=8&variationId=80",
    ]


def test_never_sent_items() -> None:
    """Cookie, user agent, unique identifier, local-only and value-less custom data make no items."""
    _, visitor = filled(
        Cookie({"a": "b"}), UserAgent("UA"), UniqueIdentifier(True), CustomData(1, "local"), CustomData(3)
    )
    assert params(visitor) == []


def test_sent_items_are_not_listed_again() -> None:
    """Once their bits are cleared, items are not listed; new data is."""
    _, visitor = filled(Device(DeviceType.PHONE), Conversion(1))
    for bit, _, _ in unsent_items(visitor, CONFIG, True):
        visitor.pending &= ~bit
    assert params(visitor) == []
    add_items(DataContext(VisitorStore(1, 1), "visitor-1", visitor, CONFIG, LOG), (Conversion(2),))
    assert params(visitor) == ["eventType=conversion&goalId=2&revenue=0.0&negative=false"]


def test_mapping_identifier_is_always_unsent() -> None:
    """The mapping-identifier item carries bit 0: clearing never removes it (re-sent every time)."""
    _, visitor = filled(CustomData(2, "user-42"), code="anon-1")
    items = unsent_items(visitor, CONFIG, True)
    assert items == [
        (
            0,
            "eventType=customData&index=2&valuesCountMap=%7B%22user-42%22%3A1%7D&overwrite=true&mappingIdentifier=true",
            False,
        )
    ]


# -- consent ---------------------------------------------------------------------------------------------
def test_consent_given() -> None:
    """Consent is given when not required, or when the visitor's flag is true."""
    _, visitor = filled()
    assert consent_given(CONFIG, visitor) is True
    assert consent_given(CONFIG, None) is True
    assert consent_given(REQUIRED, visitor) is False
    assert consent_given(REQUIRED, None) is False
    visitor.extras().consent = True
    assert consent_given(REQUIRED, visitor) is True


def test_without_consent_only_conversions_and_targeted_delivery_exposures() -> None:
    """Without consent only conversions and TARGETED_DELIVERY exposures are listed."""
    _, visitor = filled(Device(DeviceType.PHONE), CustomData(0, "x"), PageView("/p", None), Conversion(5))
    assign(visitor, 5001, 7002, "EXPERIMENTATION")
    assign(visitor, 5002, 7003, "TARGETED_DELIVERY")
    assign(visitor, 5003, 7004, "UNKNOWN")
    assert params(visitor, consent=False) == [
        "eventType=conversion&goalId=5&revenue=0.0&negative=false",
        "eventType=experiment&id=5002&variationId=7003",
    ]
    assert len(params(visitor, consent=True)) == 7


# -- identities ------------------------------------------------------------------------------------------
def test_identity_of() -> None:
    """mappingValue for a unique identifier not equal to the record's mapping; else visitorCode."""
    _, visitor = filled()
    assert identity_of("u", visitor, unique=False) == "visitorCode"
    assert identity_of("u", visitor, unique=True) == "mappingValue"  # no mapping at all
    assert identity_of("u", None, unique=True) == "mappingValue"
    visitor.extras().mapping = "u"
    assert identity_of("u", visitor, unique=True) == "visitorCode"
    visitor.extras().mapping = "anon"
    assert identity_of("u", visitor, unique=True) == "mappingValue"


def test_prepare_unique_identifier_adds_its_own_mapping() -> None:
    """A unique identifier without mapping gets CustomData(mappingIndex, code) as its mapping."""
    _, visitor = filled(code="user-9")
    prepare_unique_identifier(visitor, "user-9", CONFIG)
    assert visitor.mapping == "user-9"
    assert visitor.custom_values(2) == ("user-9",)
    assert params(visitor) == [
        "eventType=customData&index=2&valuesCountMap=%7B%22user-9%22%3A1%7D&overwrite=true&mappingIdentifier=true"
    ]


def test_prepare_unique_identifier_leaves_linked_or_unmapped_configurations() -> None:
    """Nothing changes for a visitor already mapped or without a mapping index in the configuration."""
    _, visitor = filled(CustomData(2, "user-9"), code="anon")
    prepare_unique_identifier(visitor, "user-9", CONFIG)
    assert visitor.mapping == "anon"
    _, plain = filled(code="user-9")
    prepare_unique_identifier(plain, "user-9", parse_configuration({}))
    assert plain.mapping is None and plain.keys == ()


# -- whole requests through the test kit ---------------------------------------------------------------
def bodies(client: KameleoonClient) -> list[list[str]]:
    """The lines of every tracking request, nonces removed."""
    assert flush_tracking(client)
    requests = [r for r in client_transport(client).requests if "/visit/events" in r.url]
    return [[line.split("&", 1)[1] for line in r.body.decode().split("\n")] for r in requests]


UA = "Mozilla/5.0 (X11; Linux) TestUA/1.0"
UA_ENCODED = "Mozilla%2F5.0%20(X11%3B%20Linux)%20TestUA%2F1.0"


def test_captured_request_of_the_protocol(make_client: Any) -> None:
    """The complete captured example of protocol §5.8, line for line."""
    client = make_client(CAPTURE)
    client.add_data(
        "visitor-1",
        UserAgent(UA),
        Browser(BrowserType.CHROME, 120.5),
        Device(DeviceType.DESKTOP),
        OperatingSystem(OperatingSystemType.LINUX),
        Geolocation("France", "Île-de-France", "Paris", "75001", 48.85, 2.35),
        CustomData(0, "val one", "v&2=ü"),
        CustomData(1, "local only"),
        CustomData(3),
        PageView("https://ex.com/p?a=1&b=2", "Title é", [1, 3]),
        Conversion(32, 10.5, True),
        Cookie({"k": "v"}),
    )
    assert client.get_feature_variation_key("visitor-1", "exp") == "v"
    assert client.get_feature_variation_key("visitor-1", "td") == "on"
    assert bodies(client) == [
        [
            f"eventType=staticData&deviceType=DESKTOP&visitorCode=visitor-1&userAgent={UA_ENCODED}",
            "eventType=staticData&browserIndex=0&browserVersion=120.5&visitorCode=visitor-1",
            "eventType=staticData&country=France&region=%C3%8Ele-de-France&city=Paris&postalCode=75001"
            "&latitude=48.85&longitude=2.35&visitorCode=visitor-1",
            "eventType=staticData&os=LINUX&osIndex=3&visitorCode=visitor-1",
            "eventType=customData&index=0&valuesCountMap=%7B%22val%20one%22%3A1%2C%22v%262%3D%5Cu00fc%22%3A1%7D"
            "&overwrite=true&visitorCode=visitor-1",
            "eventType=page&href=https%3A%2F%2Fex.com%2Fp%3Fa%3D1%26b%3D2&title=Title%20%C3%A9"
            "&referrersIndices=%5B1%2C3%5D&visitorCode=visitor-1",
            "eventType=conversion&goalId=32&revenue=10.5&negative=true&visitorCode=visitor-1",
            "eventType=experiment&id=5001&variationId=7002&visitorCode=visitor-1",
            "eventType=experiment&id=5002&variationId=7003&visitorCode=visitor-1",
        ]
    ]
    client.track_conversion("visitor-1", 77, 12.0)
    client.flush("visitor-1", instant=True)
    assert bodies(client)[1:] == [
        [
            f"eventType=conversion&goalId=77&revenue=12.0&negative=false&visitorCode=visitor-1&userAgent={UA_ENCODED}"
        ],
        [f"eventType=activity&visitorCode=visitor-1&userAgent={UA_ENCODED}"],
    ]


def test_activity_for_a_scheduled_visitor_without_data(make_client: Any) -> None:
    """A scheduled visitor with nothing unsent sends one activity line."""
    client = make_client(CAPTURE)
    client.flush("visitor-empty")
    assert bodies(client) == [["eventType=activity&visitorCode=visitor-empty"]]


def test_consent_required_and_missing(make_client: Any) -> None:
    """Protocol §12: without consent only conversions and TD exposures go; the rest after consent."""
    client = make_client({**CAPTURE, "configuration": {"consentType": "REQUIRED"}})
    client.add_data("v-noconsent", UserAgent("UA-X"), Device(DeviceType.PHONE), CustomData(0, "x"))
    client.track_conversion("v-noconsent", 5)
    client.get_feature_variation_key("v-noconsent", "exp")
    client.get_feature_variation_key("v-noconsent", "td")
    assert bodies(client) == [
        [
            "eventType=conversion&goalId=5&revenue=0.0&negative=false&visitorCode=v-noconsent&userAgent=UA-X",
            "eventType=experiment&id=5002&variationId=7003&visitorCode=v-noconsent",
        ]
    ]
    client.flush("v-noconsent")
    assert bodies(client)[1:] == []  # nothing allowed, and no activity line
    client.set_legal_consent("v-noconsent", True)
    client.flush("v-noconsent")
    assert bodies(client)[1:] == [
        [
            "eventType=staticData&deviceType=PHONE&visitorCode=v-noconsent&userAgent=UA-X",
            "eventType=customData&index=0&valuesCountMap=%7B%22x%22%3A1%7D&overwrite=true&visitorCode=v-noconsent",
            "eventType=experiment&id=5001&variationId=7002&visitorCode=v-noconsent",
        ]
    ]


def test_mapping_identifier_line_is_resent_with_every_request(make_client: Any) -> None:
    """The mapping-identifier custom data goes out in every request of the anonymous visitor."""
    client = make_client(CAPTURE)
    client.add_data("anon-1", CustomData(2, "user-42"))
    mapping = (
        "eventType=customData&index=2&valuesCountMap=%7B%22user-42%22%3A1%7D"
        "&overwrite=true&mappingIdentifier=true"
    )
    client.flush("anon-1")
    assert bodies(client) == [[f"{mapping}&visitorCode=anon-1"]]
    client.track_conversion("anon-1", 3)
    assert bodies(client)[1:] == [
        [
            f"{mapping}&visitorCode=anon-1",
            "eventType=conversion&goalId=3&revenue=0.0&negative=false&visitorCode=anon-1",
        ]
    ]


def test_unique_identifier_linked_code_uses_mapping_value(make_client: Any) -> None:
    """A unique-identifier code linked to an anonymous visitor is reported as mappingValue."""
    client = make_client(CAPTURE)
    client.add_data("anon-1", CustomData(2, "user-42"))
    client.add_data("user-42", UniqueIdentifier(True))
    client.get_feature_variation_key("user-42", "exp")
    lines_ = bodies(client)[0]
    assert "eventType=experiment&id=5001&variationId=7002&mappingValue=user-42" in lines_
    assert all(line.endswith("mappingValue=user-42") for line in lines_)


def test_unique_identifier_without_link_maps_to_itself(make_client: Any) -> None:
    """An unlinked unique identifier first gets its own mapping custom data, and stays visitorCode."""
    client = make_client(CAPTURE)
    client.track_conversion("user-7", 1, is_unique_identifier=True)
    assert bodies(client) == [
        [
            "eventType=customData&index=2&valuesCountMap=%7B%22user-7%22%3A1%7D&overwrite=true"
            "&mappingIdentifier=true&visitorCode=user-7",
            "eventType=conversion&goalId=1&revenue=0.0&negative=false&visitorCode=user-7",
        ]
    ]


def test_unique_identifier_without_mapping_index_uses_mapping_value(make_client: Any) -> None:
    """Without a mapping index in the configuration a unique identifier is reported as mappingValue."""
    client = make_client(document(flag("f")))
    client.track_conversion("user-7", 1, is_unique_identifier=True)
    assert bodies(client) == [
        ["eventType=conversion&goalId=1&revenue=0.0&negative=false&mappingValue=user-7"]
    ]


def test_reevaluation_before_a_send_makes_one_exposure(make_client: Any) -> None:
    """Evaluating the same flag twice before a send produces one line; after a send, a new one."""
    client = make_client(CAPTURE)
    client.get_feature_variation_key("v", "exp")
    client.is_feature_active("v", "exp")
    assert bodies(client) == [["eventType=experiment&id=5001&variationId=7002&visitorCode=v"]]
    client.get_feature_variation_key("v", "exp")
    assert bodies(client)[1:] == [["eventType=experiment&id=5001&variationId=7002&visitorCode=v"]]


def test_reevaluations_between_two_sends_queue_one_exposure(make_client: Any) -> None:
    """A decision that repeats an assignment still waiting to be sent queues nothing more, so
    a visitor evaluated in a loop does not grow the exposure queue."""
    client = make_client(CAPTURE)
    for _ in range(100):
        client.get_feature_variation_key("v", "exp")
    assert len(client._store._exposures) == 1
    assert bodies(client) == [["eventType=experiment&id=5001&variationId=7002&visitorCode=v"]]


def test_reevaluation_after_an_instant_flush_makes_a_new_exposure(make_client: Any) -> None:
    """An instant flush sends the assignment: the next evaluation must queue and send it again."""
    client = make_client(CAPTURE)
    client.get_feature_variation_key("v", "exp")
    client.flush("v", instant=True)
    client.get_feature_variation_key("v", "exp")
    line = "eventType=experiment&id=5001&variationId=7002&visitorCode=v"
    assert sorted(bodies(client)) == [[line], [line]]


def test_linked_codes_each_schedule_their_own_request(make_client: Any) -> None:
    """Two codes sharing one record (cross-device mapping) are both reported after a decision
    each, even though the second repeats an assignment the first has not sent yet."""
    client = make_client(CAPTURE)
    client.add_data("anon-1", CustomData(2, "user-42"))
    client.get_feature_variation_key("anon-1", "exp")
    client.get_feature_variation_key("user-42", "exp")
    sent = {line.rsplit("&", 1)[1] for body in bodies(client) for line in body}
    assert sent == {"visitorCode=anon-1", "visitorCode=user-42"}


# -- data the protocol cannot carry ------------------------------------------------------------------------
MALFORMED = [
    PageView("/p", "t", 5),  # type: ignore[arg-type]  # referrers not a list
    PageView("/p", "t", [object()]),  # type: ignore[list-item]  # referrers not JSON
    CustomData(0, [1]),  # type: ignore[arg-type]  # an unhashable value
    CustomData(0, ("a", "b")),  # type: ignore[arg-type]  # a tuple cannot be a JSON key
    Browser("chrome"),  # type: ignore[arg-type]
    Browser(float("inf")),  # type: ignore[arg-type]
    OperatingSystem("LINUX"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("item", MALFORMED, ids=repr)
def test_data_that_cannot_be_encoded_is_dropped(item: Any) -> None:
    """An item of the wrong type is dropped (its bit cleared) instead of failing the whole visitor."""
    _, visitor = filled(Conversion(9), item)
    assert params(visitor) == ["eventType=conversion&goalId=9&revenue=0.0&negative=false"]
    assert params(visitor) == ["eventType=conversion&goalId=9&revenue=0.0&negative=false"]
    for bit, _, _ in unsent_items(visitor, CONFIG, True):
        visitor.pending &= ~bit
    assert visitor.pending == 0


@pytest.mark.parametrize("item", MALFORMED, ids=repr)
def test_malformed_data_does_not_break_tracking(make_client: Any, item: Any) -> None:
    """flush(instant=True) does not raise, and other visitors of the same request are delivered."""
    client = make_client(CAPTURE)
    client.track_conversion("before", 1)
    client.add_data("bad", item, Conversion(2))
    client.flush("bad")
    client.track_conversion("after", 3)
    client.flush("bad", instant=True)
    sent = sorted(line for body in bodies(client) for line in body)
    assert sent == [
        "eventType=activity&visitorCode=bad",  # still scheduled after the instant flush
        "eventType=conversion&goalId=1&revenue=0.0&negative=false&visitorCode=before",
        "eventType=conversion&goalId=2&revenue=0.0&negative=false&visitorCode=bad",
        "eventType=conversion&goalId=3&revenue=0.0&negative=false&visitorCode=after",
    ]
