"""``add_data`` handlers: how each data type is stored on the visitor record, marked unsent, and
how the mapping identifier links visitors (evaluation spec §4.2-§4.4)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kameleoon._engine.parse import parse_configuration
from kameleoon._visitors import data, pending
from kameleoon._visitors.data import DataContext, add_items, add_page, store_custom_data
from kameleoon._visitors.outbox import unsent_items
from kameleoon._visitors.record import Visitor, pack_values
from kameleoon._visitors.store import VisitorStore
from kameleoon._wire import lines
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
from kameleoon.exceptions import VisitorCodeInvalid

from ._support import example_config

CONFIG = parse_configuration(example_config())  # index 0 VISITOR, 1 mapping identifier, 2 local only
LOG = logging.getLogger("kameleoon.tests")


class Harness:
    """A store plus ``add(code, *items)`` through the real handlers."""

    def __init__(self) -> None:
        self.store = VisitorStore(1800.0, 1000)

    def add(self, code: str, *items: Any) -> Visitor:
        visitor = self.store.get_or_create(code)
        add_items(DataContext(self.store, code, visitor, CONFIG, LOG), items)
        return visitor


def custom_bit(position: int) -> int:
    return pending.bit(pending.CUSTOM, position)


# -- custom data ---------------------------------------------------------------------------------
def test_custom_data_is_stored_by_index_in_first_insertion_order() -> None:
    """Indexes keep their first position; a new add for an index replaces its values."""
    visitor = Harness().add("v", CustomData(5, "a"), CustomData(0, "b", "c"), CustomData(5, "z"))
    assert visitor.keys == (5, 0)
    assert visitor.custom_items() == [(5, ("z",)), (0, ("b", "c"))]
    assert visitor.custom_values(7) is None


def test_custom_data_single_value_is_stored_bare() -> None:
    """One non-tuple value is stored as itself; several as a tuple; reads always give tuples."""
    assert pack_values(("a",)) == "a"
    assert pack_values(("a", "b")) == ("a", "b")
    assert pack_values(()) == ()
    assert pack_values((("x",),)) == (("x",),)
    visitor = Harness().add("v", CustomData(0, ("x",)))
    assert visitor.custom_values(0) == (("x",),)


def test_custom_data_marks_unsent() -> None:
    """Custom data with values is unsent; without values it is never sent."""
    visitor = Harness().add("v", CustomData(0, "a"), CustomData(3))
    assert visitor.pending & custom_bit(0)
    assert not visitor.pending & custom_bit(1)


def test_local_only_custom_data_is_marked_sent() -> None:
    """Values at a localOnly index are stored (targeting sees them) but never sent."""
    visitor = Harness().add("v", CustomData(2, "debug"))
    assert visitor.custom_values(2) == ("debug",)
    assert visitor.pending == 0


def test_replacing_custom_data_marks_it_unsent_again() -> None:
    """Re-adding a sent index makes it unsent again."""
    visitor = Harness().add("v", CustomData(0, "a"))
    visitor.pending = 0
    store_custom_data(visitor, 0, ("b",), unsent=True)
    assert visitor.pending == custom_bit(0)
    store_custom_data(visitor, 0, ("c",), unsent=False)
    assert visitor.pending == 0


def test_custom_data_id_is_not_converted() -> None:
    """``CustomData("1", ...)`` is kept under the string key "1" (not the mapping index 1)."""
    harness = Harness()
    visitor = harness.add("v", CustomData("1", "x"))
    assert visitor.keys == ("1",)
    assert visitor.mapping is None


def test_custom_data_values_may_be_a_list() -> None:
    """Values given as a list object are stored as a tuple."""
    data = CustomData(0)
    data.values = ["a", "b"]  # type: ignore[assignment]
    assert Harness().add("v", data).custom_values(0) == ("a", "b")


_VALUE = st.one_of(st.integers(0, 2), st.sampled_from([1.0, True, "a", "b", ""]), st.tuples(st.just("t")))
_ITEMS = st.lists(
    st.tuples(st.sampled_from([0, 3, 4, 1.0, "0"]), st.lists(_VALUE, max_size=3).map(tuple), st.booleans()),
    max_size=12,
)


@given(_ITEMS)
@example([(0, (1,), False), (0, (True,), False), (0, (1.0,), True)])
def test_usual_custom_data_is_stored_as_the_general_path_stores_it(items: list[Any]) -> None:
    """With no mapping identifier and no local-only index in the configuration, add_data takes a
    shorter path for one-value items; keys, values and pending bits end as store_custom_data
    makes them (value types kept: 1, 1.0 and True are different data), also when some items
    are marked sent in between (as a tracking request does)."""
    harness, model = Harness(), Visitor(0.0)
    plain = parse_configuration({"featureFlags": []})
    visitor = harness.store.get_or_create("v")
    for index, values, sent in items:
        add_items(DataContext(harness.store, "v", visitor, plain, LOG), (CustomData(index, *values),))
        store_custom_data(model, index, values, unsent=len(values) > 0)
        if sent:
            visitor.pending = model.pending = 0
        assert (visitor.keys, visitor.pending) == (model.keys, model.pending)
        assert [(v, v.__class__) for v in visitor.values] == [(v, v.__class__) for v in model.values]


# -- mapping identifier ------------------------------------------------------------------------------
def test_mapping_identifier_links_the_other_code() -> None:
    """A's mapping custom data sets A's mapping to A and makes U share A's record."""
    harness = Harness()
    harness.store.get_or_create("crm-555")  # U's previous record is replaced
    anonymous = harness.add("anon-77", CustomData(1, "crm-555"))
    assert anonymous.mapping == "anon-77"
    assert harness.store.get("crm-555") is anonymous
    assert anonymous.extra is not None and anonymous.extra.mapping_index == 1
    assert anonymous.pending & custom_bit(0)


def test_data_added_through_either_code_is_shared() -> None:
    """After the link, data added through either code is visible through both."""
    harness = Harness()
    harness.add("anon", CustomData(1, "user"))
    harness.add("user", Device(DeviceType.PHONE))
    harness.add("anon", CustomData(0, "premium"))
    shared = harness.store.get("anon")
    assert harness.store.get("user") is shared
    assert shared is not None and shared.device == DeviceType.PHONE
    assert shared.custom_values(0) == ("premium",)


def test_mapping_identifier_to_itself_links_nothing() -> None:
    """U == A: the mapping is set, no other record is made."""
    harness = Harness()
    visitor = harness.add("same", CustomData(1, "same"))
    assert visitor.mapping == "same"
    assert len(harness.store) == 1


@pytest.mark.parametrize("values", [(), ("",), (5,), (None, "x")])
def test_mapping_needs_a_non_empty_string_first_value(values: tuple[Any, ...]) -> None:
    """Only a non-empty string first value is a mapping identifier."""
    harness = Harness()
    visitor = harness.add("anon", CustomData(1, *values))
    assert visitor.mapping is None
    assert len(harness.store) == 1


def test_replacing_the_mapping_index_with_plain_data_clears_its_role() -> None:
    """A later CustomData at the mapping index that is no mapping is plain custom data."""
    harness = Harness()
    visitor = harness.add("anon", CustomData(1, "user"), CustomData(1, ""))
    assert visitor.extra is not None and visitor.extra.mapping_index is None


def test_mapping_identifier_from_a_local_only_index_is_still_sent() -> None:
    """A mapping identifier is always sent, even if its index is localOnly."""
    doc = example_config()
    doc["customData"][1]["localOnly"] = True
    config = parse_configuration(doc)
    store = VisitorStore(1800.0, 10)
    visitor = store.get_or_create("anon")
    add_items(DataContext(store, "anon", visitor, config, LOG), (CustomData(1, "user"),))
    assert visitor.pending & custom_bit(0)


def test_mapping_identifier_uses_the_current_configuration() -> None:
    """Without a mapping index in the configuration, index 1 is plain custom data."""
    store = VisitorStore(1800.0, 10)
    visitor = store.get_or_create("anon")
    add_items(DataContext(store, "anon", visitor, parse_configuration({}), LOG), (CustomData(1, "user"),))
    assert visitor.mapping is None
    assert store.get("user") is None


def test_unique_identifier_flag_is_copied_at_link_time() -> None:
    """At link time the linked code takes the anonymous visitor's unique-identifier flag."""
    harness = Harness()
    harness.add("anon", UniqueIdentifier(True))
    harness.add("anon", CustomData(1, "user"))
    assert harness.store.is_unique_identifier("user") is True


# -- single-valued kinds ------------------------------------------------------------------------
def test_static_data_last_wins_and_is_unsent() -> None:
    """Browser, device, OS and geolocation keep the last value and are marked unsent."""
    geo = Geolocation("France", "IDF")
    visitor = Harness().add(
        "v",
        Browser(BrowserType.FIREFOX),
        Browser(BrowserType.CHROME, 120.5),
        Device(DeviceType.TABLET),
        OperatingSystem(OperatingSystemType.LINUX),
        Geolocation("Spain"),
        geo,
    )
    assert (visitor.browser, visitor.browser_version) == (BrowserType.CHROME, 120.5)
    assert visitor.device == DeviceType.TABLET
    assert visitor.os == OperatingSystemType.LINUX
    assert visitor.geo is geo
    assert (
        visitor.pending == pending.DEVICE | pending.BROWSER | pending.GEOLOCATION | pending.OPERATING_SYSTEM
    )


def test_cookie_and_user_agent_are_never_sent() -> None:
    """Cookie (a dict copy, last wins) and UserAgent (last wins) set no unsent bit."""
    jar = {"a": "1"}
    visitor = Harness().add("v", Cookie({"x": "y"}), Cookie(jar), UserAgent("UA/1"), UserAgent("UA/2"))
    assert visitor.cookie == {"a": "1"} and visitor.cookie is not jar
    assert visitor.ua == "UA/2"
    assert visitor.pending == 0


@pytest.mark.parametrize("item", [Cookie("a=1"), Cookie(None), UserAgent(5), UserAgent(None)])  # type: ignore[arg-type]
def test_malformed_cookie_or_user_agent_is_ignored(item: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A Cookie without a dict or a UserAgent without a string is ignored with a warning."""
    with caplog.at_level(logging.WARNING, logger="kameleoon.tests"):
        visitor = Harness().add("v", item)
    assert visitor.cookie is None and visitor.ua is None
    assert "ignored" in caplog.text


# -- page views ----------------------------------------------------------------------------------
def test_page_views_per_url() -> None:
    """First add of a URL: count 1 and a timestamp; later adds replace the page and count up."""
    harness = Harness()
    first = PageView("https://x/a", "A1")
    visitor = harness.add("v", first, PageView("https://x/b", None))
    seen = visitor.pages[2]  # type: ignore[index]
    later = PageView("https://x/a", "A2", [3])
    harness.add("v", later)
    assert visitor.pages == [later, 2, seen, visitor.pages[3], 1, visitor.pages[5]]  # type: ignore[index]
    assert isinstance(seen, float) and seen == int(seen)
    assert visitor.pending == pending.bit(pending.PAGE, 0) | pending.bit(pending.PAGE, 1)


def test_page_view_timestamp_is_wall_clock_milliseconds() -> None:
    """The first-seen timestamp is the current time in whole milliseconds."""
    import time

    before = time.time() * 1000
    visitor = Harness().add("v", PageView("u", None))
    after = time.time() * 1000
    assert before - 1 <= visitor.pages[2] <= after  # type: ignore[index]


@pytest.mark.parametrize("url", ["", None])
def test_page_view_without_url_is_ignored(url: Any, caplog: pytest.LogCaptureFixture) -> None:
    """An empty URL is ignored with an error log."""
    with caplog.at_level(logging.ERROR, logger="kameleoon.tests"):
        visitor = Harness().add("v", PageView(url, "t"))
    assert visitor.pages is None
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_add_page_counts_and_marks() -> None:
    """``add_page`` adds several views at once and may leave them sent."""
    visitor = Visitor(0.0)
    add_page(visitor, PageView("u", None), 3, 42.0, unsent=False)
    assert visitor.pages[1:] == [3, 42.0]  # type: ignore[index]
    assert visitor.pending == 0


# -- conversions and unique identifiers ------------------------------------------------------------
def test_conversions_accumulate() -> None:
    """Every Conversion is kept, in order, each with its own unsent bit."""
    a, b, c = Conversion(1), Conversion(1), Conversion(2, 5.0, True)
    visitor = Harness().add("v", a, b, c)
    assert visitor.conversions == (a, b, c)
    assert visitor.pending == sum(pending.bit(pending.CONVERSION, i) for i in range(3))


def _sent(visitor: Visitor) -> list[str]:
    """The tracking parameters the visitor's unsent items would be sent with."""
    return [params for _, params, _ in unsent_items(visitor, CONFIG, consent=True)]


def test_a_full_visitor_keeps_unsent_conversions_and_one_sent_per_goal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the bound, sent conversions are compacted to the last of each goal (goal ids of
    other types kept apart): the unsent ones are still sent, and the CONVERSIONS condition
    answers as before for every goal."""
    monkeypatch.setattr(data, "MAX_CONVERSIONS", 6)
    harness = Harness()
    visitor = harness.add("v", Conversion(1, 1.0), Conversion(2), Conversion(1, 2.0), Conversion(1.0))
    visitor.pending = 0  # sent by a tracking request
    harness.add("v", Conversion(3, 3.0), Conversion(1, 4.0), Conversion(4, 5.0))
    assert [(c.goal_id, c.revenue) for c in visitor.conversions] == [
        (2, 0.0), (1, 2.0), (1.0, 0.0), (3, 3.0), (1, 4.0), (4, 5.0)
    ]  # fmt: skip
    assert _sent(visitor) == [lines.conversion(3, 3.0, False), lines.conversion(1, 4.0, False),
                              lines.conversion(4, 5.0, False)]  # fmt: skip
    assert harness.store.data_dropped == 0


def test_a_visitor_full_of_unsent_conversions_drops_new_ones_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(data, "MAX_CONVERSIONS", 3)
    harness = Harness()
    with caplog.at_level(logging.WARNING, logger="kameleoon"):
        visitor = harness.add("v", *(Conversion(goal) for goal in range(5)))
        harness.add("v", Conversion(9))
    assert [c.goal_id for c in visitor.conversions] == [0, 1, 2]
    assert len(_sent(visitor)) == 3
    assert harness.store.data_dropped == 3
    assert caplog.text.count("reached their bounds") == 1  # at most once a minute


def test_a_full_visitor_drops_its_oldest_sent_page_views(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the bound, the oldest tenth of the sent page entries leaves (counted) to make room;
    every unsent page keeps its pending mark, so it is still sent."""
    monkeypatch.setattr(data, "MAX_PAGES", 20)
    harness = Harness()
    visitor = harness.add("v", *(PageView(f"/{i}", None) for i in range(10)))
    visitor.pending &= ~pending.bit(pending.PAGE, 1) & ~pending.bit(pending.PAGE, 4)  # /1 and /4 sent
    harness.add("v", *(PageView(f"/{i}", None) for i in range(10, 20)))
    held = visitor.pages
    harness.add("v", PageView("/new", None))
    urls = [page.url for page in (visitor.pages or [])[::3]]
    assert urls == [f"/{i}" for i in range(20) if i not in (1, 4)] + ["/new"]
    assert visitor.pages is not held  # a new list: a decision reading the old one is unaffected
    assert _sent(visitor) == [lines.page(url, None, None) for url in urls]
    assert harness.store.data_dropped == 2


def test_a_visitor_full_of_unsent_page_views_drops_the_new_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "MAX_PAGES", 3)
    harness = Harness()
    visitor = harness.add("v", *(PageView(f"/{i}", None) for i in range(4)), PageView("/0", None))
    assert [page.url for page in (visitor.pages or [])[::3]] == ["/0", "/1", "/2"]
    assert visitor.pages is not None and visitor.pages[1] == 2  # a known URL is still counted
    assert harness.store.data_dropped == 1


@pytest.mark.parametrize("configuration", [CONFIG, parse_configuration({"featureFlags": []})])
def test_a_visitor_at_its_custom_data_bound_leaves_new_indexes_out_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, configuration: Any
) -> None:
    """Past MAX_CUSTOM_DATA distinct indexes a new index is left out and counted, on the usual
    one-value path and the general one alike; indexes already held are still replaced."""
    monkeypatch.setattr(data, "MAX_CUSTOM_DATA", 3)
    store = VisitorStore(1800.0, 1000)
    visitor = store.get_or_create("v")
    items = (CustomData(10, "a"), CustomData(11, "b", "c"), CustomData(12, "d"), CustomData(13, "e"))
    with caplog.at_level(logging.WARNING, logger="kameleoon"):
        add_items(DataContext(store, "v", visitor, configuration, LOG), items)
        add_items(DataContext(store, "v", visitor, configuration, LOG), (CustomData(14, "f", "g"),))
        add_items(DataContext(store, "v", visitor, configuration, LOG), (CustomData(10, "z"),))
    assert visitor.keys == (10, 11, 12)
    assert visitor.custom_values(10) == ("z",)
    assert visitor.custom_values(13) is None
    assert store.data_dropped == 2
    assert "reached their bounds" in caplog.text


def test_store_custom_data_reports_a_new_index_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "MAX_CUSTOM_DATA", 1)
    visitor = Visitor(0.0)
    assert store_custom_data(visitor, 0, ("a",), unsent=True)
    assert not store_custom_data(visitor, 1, ("b",), unsent=True)
    assert store_custom_data(visitor, 0, ("c",), unsent=True)
    assert visitor.keys == (0,) and visitor.pending == custom_bit(0)


@given(st.integers(0, 2**48), st.integers(0, 3), st.sets(st.integers(0, 10)))
def test_renumber_moves_a_familys_bits_with_its_items(mask: int, family: int, kept_set: set[int]) -> None:
    count, kept = 11, sorted(kept_set)
    new = pending.renumber(mask, family, count, kept)
    for position in range(count):
        expected = position < len(kept) and pending.is_set(mask, family, kept[position])
        assert pending.is_set(new, family, position) == expected
    others = ~pending.family_bits(family, count)
    assert new & others == mask & others


def test_unique_identifier_sets_the_per_code_flag() -> None:
    """UniqueIdentifier(True/False) sets or clears the flag of that code."""
    harness = Harness()
    harness.add("v", UniqueIdentifier(True))
    assert harness.store.is_unique_identifier("v")
    harness.add("v", UniqueIdentifier(False))
    assert not harness.store.is_unique_identifier("v")


# -- dispatch -----------------------------------------------------------------------------------
class MyCustomData(CustomData):
    __slots__ = ()


@pytest.mark.parametrize("item", ["text", None, 5, {"id": 1}, MyCustomData(0, "x")])
def test_unknown_types_are_ignored(item: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Objects that are not exactly a data type (subclasses included) are ignored with a warning."""
    with caplog.at_level(logging.WARNING, logger="kameleoon.tests"):
        visitor = Harness().add("v", item)
    assert visitor.keys == () and visitor.pending == 0
    assert "ignores" in caplog.text


def test_a_failing_item_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    """An item whose handler fails is logged and skipped; later items are still stored."""
    broken = CustomData(0)
    broken.values = 5  # type: ignore[assignment]  # not iterable
    with caplog.at_level(logging.ERROR, logger="kameleoon.tests"):
        visitor = Harness().add("v", broken, Device(DeviceType.PHONE))
    assert visitor.device == DeviceType.PHONE
    assert "could not store" in caplog.text


# -- through the client ----------------------------------------------------------------------------
def test_add_data_creates_the_record_even_for_ignored_items(client: Any) -> None:
    """``add_data`` creates the visitor record whatever the items (none, or ignored ones)."""
    client.add_data("v1")
    client.add_data("v2", "not data")
    assert client._store.get("v1") is not None
    assert client._store.get("v2") is not None


@pytest.mark.parametrize("code", ["", None, "x" * 256, 5])
def test_add_data_validates_the_visitor_code(client: Any, code: Any) -> None:
    """``add_data`` raises VisitorCodeInvalid for an empty, missing, too long or non-string code."""
    with pytest.raises(VisitorCodeInvalid):
        client.add_data(code, CustomData(0, "x"))
    assert len(client._store) == 0


def test_add_data_does_not_schedule_tracking(client: Any) -> None:
    """``add_data`` stores data but schedules nothing."""
    client.add_data("v", CustomData(0, "x"), Conversion(1))
    assert client._tracker.pending_codes == 0
