"""Data written to a visitor record while the store drops it (evicted or expired by another
thread) is still sent, once, under its own code; no record's lines go out under another code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kameleoon import KameleoonClient, KameleoonClientConfig
from kameleoon._visitors.record import Visitor
from kameleoon.data import Conversion, CustomData
from kameleoon.testing import client_transport, create_client, flush_tracking

from ._support import example_config


@pytest.fixture
def client() -> KameleoonClient:
    return create_client(example_config(), config=KameleoonClientConfig("id", "secret"))


def lines_of(client: KameleoonClient) -> list[dict[str, str]]:
    assert flush_tracking(client)
    return client_transport(client).tracked_lines()


def dropped_when_got(client: KameleoonClient, victim: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next ``get_or_create(victim)`` returns the record and then drops it from the store
    (as another thread's eviction would), handing it over, before the caller writes to it."""
    store = client._store
    original: Callable[[str], Visitor] = store.get_or_create

    def get_or_create(code: str) -> Visitor:
        visitor = original(code)
        if code == victim:
            monkeypatch.setattr(store, "get_or_create", original)
            with store._lock:
                dropped = store._remove(code)
            store._hand_over([dropped])
        return visitor

    monkeypatch.setattr(store, "get_or_create", get_or_create)


def goals(lines: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted(
        (line["visitorCode"], line["goalId"]) for line in lines if line["eventType"] == "conversion"
    )


def test_a_conversion_on_a_record_dropped_meanwhile_is_sent(
    client: KameleoonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped_when_got(client, "v1", monkeypatch)
    client.track_conversion("v1", 7)
    assert client._store.peek("v1") is None
    assert goals(lines_of(client)) == [("v1", "7")]


def test_data_added_to_a_record_dropped_meanwhile_is_sent(
    client: KameleoonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped_when_got(client, "v1", monkeypatch)
    client.add_data("v1", Conversion(8), CustomData(0, "gold"))
    lines = lines_of(client)
    assert goals(lines) == [("v1", "8")]
    assert [line["index"] for line in lines if line["eventType"] == "customData"] == ["0"]


def test_an_exposure_on_a_record_dropped_meanwhile_is_sent(
    client: KameleoonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped_when_got(client, "visitor_42", monkeypatch)
    assert client.get_feature_variation_key("visitor_42", "new_checkout") == "two_step"
    exposures = [line for line in lines_of(client) if line["eventType"] == "experiment"]
    assert [line["visitorCode"] for line in exposures] == ["visitor_42"]


def test_consent_given_while_the_record_is_dropped_is_kept(
    client: KameleoonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped_when_got(client, "v1", monkeypatch)
    client.set_legal_consent("v1", True)
    visitor = client._store.peek("v1")
    assert visitor is not None and visitor.extra is not None and visitor.extra.consent is True


def test_a_record_freed_during_a_build_never_lends_its_lines(
    client: KameleoonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lines encoded for a record are cached for the build by the record itself: a record
    created during the build (possibly at a freed record's address) gets its own lines."""
    tracker, store = client._tracker, client._store
    client.track_conversion("alice", 111)
    fillers = [f"f{number}" for number in range(127)]
    for code in fillers:
        client.track_conversion(code, 1)
    get: Callable[[str], Any] = store.get

    def get_with_churn(code: str) -> Any:
        if code == "bob":  # another thread evicts alice (her record is freed) and tracks bob
            monkeypatch.setattr(store, "get", get)
            del store._visitors["alice"]
            client.track_conversion("bob", 222)
        return get(code)

    monkeypatch.setattr(store, "get", get_with_churn)
    built = tracker._build(["alice", *fillers, "bob"])
    mine = [line for line in built if "visitorCode=alice" in line or "visitorCode=bob" in line]
    assert [("goalId=111" in line, "visitorCode=alice" in line) for line in mine] == [
        (True, True),
        (False, False),
    ]
    assert "goalId=222" in mine[1]


def test_a_linked_codes_own_record_is_handed_over(client: KameleoonClient) -> None:
    """Linking ``user-1`` to an anonymous visitor replaces user-1's own record; what it had not
    sent yet is still sent, under user-1."""
    client.track_conversion("user-1", 5)
    client.add_data("anon", CustomData(1, "user-1"))  # index 1: the mapping identifier
    assert client._store.peek("user-1") is client._store.peek("anon")
    assert ("user-1", "5") in goals(lines_of(client))


def test_relinking_a_code_leaves_the_shared_record_with_its_other_code(client: KameleoonClient) -> None:
    """``user-1`` shares anon-a's record, then anon-b links it: anon-a keeps that record and its
    unsent data, which goes under anon-a when anon-a is flushed, never under user-1."""
    client.add_data("anon-a", CustomData(1, "user-1"))  # index 1: the mapping identifier
    client.add_data("user-1", Conversion(5))  # stored in anon-a's record
    client.add_data("anon-b", CustomData(1, "user-1"))  # user-1 now shares anon-b's record
    assert lines_of(client) == []  # nobody was scheduled: nothing is sent
    client.flush("anon-a")
    assert goals(lines_of(client)) == [("anon-a", "5")]


def test_a_shared_record_is_handed_over_when_the_code_its_data_was_scheduled_under_leaves() -> None:
    """A conversion scheduled under anon, whose record user-1 shares: anon is evicted while
    user-1 stays. The record goes out under anon then (nothing else would send it)."""
    client = create_client(example_config(), config=KameleoonClientConfig("id", "secret", max_visitors=2))
    client.add_data("anon", CustomData(1, "user-1"))  # index 1: user-1 shares anon's record
    assert flush_tracking(client)
    client.track_conversion("anon", 7)
    client.add_data("other", CustomData(0, "x"))  # the store is full: anon, the oldest, goes
    assert client._store.peek("anon") is None and client._store.peek("user-1") is not None
    assert goals(lines_of(client)) == [("anon", "7")]


def test_a_unique_identifier_flag_needs_a_record(client: KameleoonClient) -> None:
    store = client._store
    store.set_unique_identifier("ghost", True)
    assert not store.is_unique_identifier("ghost")
    store.get_or_create("real")
    store.set_unique_identifier("real", True)
    assert store.is_unique_identifier("real")
