"""The visitor store: lookups, expiry after the session duration, LRU eviction and its counters
(evaluation spec §4.1)."""

from __future__ import annotations

from typing import Any

from kameleoon._visitors.record import Visitor
from kameleoon._visitors.store import TOUCH_GRANULARITY, VisitorStore
from kameleoon.data import Device, DeviceType


class Clock:
    """A settable monotonic clock (seconds)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(ttl: float = 10.0, size: int = 100) -> tuple[VisitorStore, Clock, list[tuple[str, Visitor]]]:
    clock = Clock()
    dropped: list[tuple[str, Visitor]] = []
    store = VisitorStore(
        ttl, size, clock=clock, on_drop=lambda code, visitor, unique: dropped.append((code, visitor))
    )
    return store, clock, dropped


def tick(store: VisitorStore, clock: Clock, at: float) -> None:
    """The tracker's periodic clock refresh, at time ``at``."""
    clock.now = at
    store.refresh_clock()


def test_get_does_not_create() -> None:
    """``get`` returns None for an unknown code and creates nothing."""
    store, _, _ = make()
    assert store.get("a") is None
    assert len(store) == 0


def test_get_or_create_creates_once() -> None:
    """``get_or_create`` creates a record once and returns the same record afterwards."""
    store, _, _ = make()
    visitor = store.get_or_create("a")
    assert store.get_or_create("a") is visitor
    assert store.get("a") is visitor
    assert len(store) == 1
    assert list(store) == ["a"]
    assert store.columns() == (["a"], [visitor])


def test_new_record_is_empty() -> None:
    """A new record holds no data and has no consent."""
    visitor = make()[0].get_or_create("a")
    assert (visitor.keys, visitor.values, visitor.conversions) == ((), (), ())
    assert visitor.pages is None and visitor.assigned is None and visitor.pending == 0
    assert (
        visitor.consent is False
        and visitor.mapping is None
        and visitor.visits is None
        and visitor.kcs is None
    )


def test_purge_removes_idle_records_only() -> None:
    """Records idle for longer than the TTL are removed, counted and handed over; others stay."""
    store, clock, dropped = make(ttl=10)
    old = store.get_or_create("old")
    tick(store, clock, 5.0)
    store.get_or_create("young")
    tick(store, clock, 11.0)
    assert store.purge() == 1  # "old" was last active at 0
    assert dropped == [("old", old)]
    assert store.get("old") is None
    assert store.get("young") is not None
    assert store.expirations == 1


def test_activity_postpones_expiry() -> None:
    """Reading a record refreshes its activity time."""
    store, clock, _ = make(ttl=10)
    store.get_or_create("a")
    tick(store, clock, 8.0)
    store.get("a")
    tick(store, clock, 17.0)
    assert store.purge() == 0
    tick(store, clock, 19.0)
    assert store.purge() == 1


def test_never_expires_before_the_ttl() -> None:
    """A record used less than a TTL ago is kept, even between two moves of the LRU order."""
    store, clock, _ = make(ttl=10)
    store.get_or_create("a")
    tick(store, clock, 0.5)
    store.get("a")  # active at 0.5 (within the touch granularity of its creation)
    tick(store, clock, 10.4)
    assert store.purge() == 0  # idle for 9.9 s only
    tick(store, clock, 11.5)
    assert store.purge() == 1  # idle for 11 s: at most TTL + 1 s late


def test_eviction_removes_the_least_recently_used() -> None:
    """At capacity, creating a record evicts the least recently used one and counts it."""
    store, clock, dropped = make(size=2)
    store.get_or_create("a")
    tick(store, clock, 5.0)
    store.get_or_create("b")
    tick(store, clock, 10.0)
    store.get("a")  # "a" is now more recent than "b"
    tick(store, clock, 15.0)
    store.get_or_create("c")
    assert [code for code, _ in dropped] == ["b"]
    assert store.evictions == 1
    assert sorted(store) == ["a", "c"]
    assert len(store) == 2


def linked_store(size: int = 100) -> tuple[VisitorStore, Clock, list[tuple[str, Visitor]], Visitor]:
    """A store where "U" shares the record of "A" (linked), then "X" is created."""
    store, clock, dropped = make(ttl=10, size=size)
    visitor = store.get_or_create("U")
    shared = store.get_or_create("A")
    store.link("U", shared, "A")
    store.get_or_create("X")
    assert store.get("U") is shared and dropped == [("U", visitor)]  # U's own record handed over
    dropped.clear()
    return store, clock, dropped, shared


def test_linked_codes_move_together_so_idle_records_behind_them_expire() -> None:
    """Touching a record through one of its codes moves all of them: the expiry scan does not
    stop at a code left at the front whose record is active (it kept every idle record behind
    it forever)."""
    store, clock, dropped, _ = linked_store()
    for at in range(2, 31, 2):  # A stays active, X is idle
        tick(store, clock, float(at))
        store.get("A")
        store.reorder()
    assert store.purge() == 1
    assert [code for code, _ in dropped] == ["X"]
    assert list(store) == ["U", "A"] or list(store) == ["A", "U"]


def test_a_code_linked_elsewhere_no_longer_moves_with_its_old_record() -> None:
    """A links U, then B links U: using A keeps A alone at the recent end, and U expires with
    B, its record now, once both are idle."""
    store, clock, dropped = make(ttl=10)
    a, b = store.get_or_create("A"), store.get_or_create("B")
    store.link("U", a, "A")
    tick(store, clock, 1.0)
    store.link("U", b, "B")
    for at in range(2, 41, 2):  # A stays active; B and U are idle from t=1
        tick(store, clock, float(at))
        store.get("A")
        store.reorder()
    tick(store, clock, 41.0)
    assert store.purge() == 2 and dropped == [("B", b)]  # one record, handed over once
    assert list(store) == ["A"]


def test_a_record_shared_by_more_codes_than_are_moved_does_not_stop_the_expiry_scan() -> None:
    """A record linked to 20 codes moves the latest 16 with it; the others, left at the front
    with a recent record, are passed over by the scan: the idle visitors behind them expire."""
    store, clock, dropped = make(ttl=10)
    anon = store.get_or_create("anon")
    for number in range(20):
        store.link(f"user-{number}", anon, "anon")
    store.get_or_create("idle-1")
    for at in range(2, 41, 2):  # the shared record stays active
        tick(store, clock, float(at))
        store.get("anon")
        store.reorder()
    tick(store, clock, 41.0)
    assert store.purge() == 1 and [code for code, _ in dropped] == ["idle-1"]
    assert len(store) == 21


def test_an_idle_shared_record_is_handed_over_once_under_its_owner() -> None:
    store, clock, dropped, shared = linked_store()
    shared.extras().mapping = "A"  # set by the mapping custom data that linked U
    tick(store, clock, 30.0)
    assert store.purge() == 3  # A, U and X
    assert [(code, visitor is shared) for code, visitor in dropped] == [("A", True), ("X", False)]


def test_eviction_takes_the_idle_record_not_a_linked_code_of_an_active_one() -> None:
    store, clock, dropped, shared = linked_store(size=3)
    tick(store, clock, 5.0)
    store.get("A")  # the shared record is used again: X is now the least recently used
    store.get_or_create("Y")
    assert [code for code, _ in dropped] == ["X"]
    assert store.get("U") is shared and store.get("A") is shared


def test_eviction_counter_accumulates() -> None:
    """Every eviction is counted; the store never exceeds its size."""
    store, clock, dropped = make(size=3)
    for i in range(10):
        tick(store, clock, float(i * 2))
        store.get_or_create(f"v{i}")
        assert len(store) <= 3
    assert store.evictions == 7
    assert [code for code, _ in dropped] == [f"v{i}" for i in range(7)]


def use_busy_for_20_seconds(store: VisitorStore, clock: Clock) -> None:
    """Creates "busy" then "idle", and reads "busy" every half second for 20 seconds."""
    store.get_or_create("busy")
    tick(store, clock, 0.1)
    store.get_or_create("idle")
    t = 0.1
    while t < 20:
        t += 0.5
        tick(store, clock, t)
        store.get("busy")


def test_frequently_used_record_is_not_evicted() -> None:
    """A record used continuously (every half second) is not the one evicted."""
    store, clock, dropped = make(size=2)
    use_busy_for_20_seconds(store, clock)
    store.get_or_create("new")
    assert [code for code, _ in dropped] == ["idle"]


def test_idle_record_behind_a_busy_one_expires() -> None:
    """An idle record expires even when an older, continuously used record precedes it."""
    store, clock, _ = make(ttl=10)
    use_busy_for_20_seconds(store, clock)
    store.purge()
    assert store.get("idle") is None
    assert store.get("busy") is not None


def test_touch_queues_the_move_and_reorder_makes_it() -> None:
    """A touch refreshes the activity time at once, lock-free; the record moves to the end when
    the store is reordered (as the tracker does on every tick), in touch order."""
    store, clock, _ = make()
    for code in "abc":
        store.get_or_create(code)
    tick(store, clock, 2.0)
    store.get("b")
    store.get("a")
    assert list(store) == ["a", "b", "c"]
    assert store.get("a").last == 2.0  # type: ignore[union-attr]
    store.reorder()
    assert list(store) == ["c", "b", "a"]


def test_reorder_skips_codes_that_left_the_store() -> None:
    """A queued move of a code removed since (a touch racing an expiry queues one) moves
    nothing; clearing the store drops the queue."""
    store, clock, _ = make(ttl=10)
    store.get_or_create("a")
    store.get_or_create("b")
    store._moves.append("gone")  # what a touch racing the removal of "gone" leaves behind
    store.reorder()
    assert list(store) == ["a", "b"]
    tick(store, clock, 2.0)
    store.get("a")
    store.clear()
    store.get_or_create("c")
    store.reorder()
    assert list(store) == ["c"]


def test_touches_are_bounded_when_nobody_reorders() -> None:
    """Without ticks, queued moves are made by the touching thread once they outnumber the
    store's capacity, so the queue stays bounded."""
    store, clock, _ = make(size=2)
    store.get_or_create("a")
    store.get_or_create("b")
    for second in range(1, 20):
        tick(store, clock, float(second))
        store.get("a" if second % 2 else "b")
        assert len(store._moves) <= 2
    assert list(store) == ["a", "b"]  # "b" was touched last


def test_link_shares_a_record() -> None:
    """``link`` makes a code share another code's record, replacing its own."""
    store, _, _ = make()
    anonymous = store.get_or_create("anon")
    store.get_or_create("crm")
    store.link("crm", anonymous, "anon")
    assert store.get("crm") is anonymous
    store.link("new-code", anonymous, "anon")
    assert store.get("new-code") is anonymous
    assert anonymous.extra is not None and anonymous.extra.linked == ("crm", "anon", "new-code")


def test_the_codes_moved_with_a_record_are_bounded() -> None:
    """A record linked to many codes remembers the latest few (and its owner) to move."""
    store, _, _ = make()
    anonymous = store.get_or_create("anon")
    for n in range(40):
        store.link(f"user-{n}", anonymous, "anon")
    linked = anonymous.extra.linked if anonymous.extra is not None else ()
    assert len(linked) == 16 and linked[-2:] == ("anon", "user-39") and "user-25" in linked


def test_unique_identifier_flags() -> None:
    """Per-code unique-identifier flags can be set and cleared; expiry clears them."""
    store, clock, _ = make(ttl=1)
    store.get_or_create("a")
    store.set_unique_identifier("a", True)
    assert store.is_unique_identifier("a") is True
    assert store.is_unique_identifier("b") is False
    store.set_unique_identifier("a", False)
    assert store.is_unique_identifier("a") is False
    store.set_unique_identifier("a", True)
    tick(store, clock, 5.0)
    store.purge()
    assert store.is_unique_identifier("a") is False


def test_eviction_clears_the_unique_identifier_flag() -> None:
    """An evicted code loses its unique-identifier flag."""
    store, clock, _ = make(size=1)
    store.get_or_create("a")
    store.set_unique_identifier("a", True)
    tick(store, clock, 2.0)
    store.get_or_create("b")
    assert store.is_unique_identifier("a") is False


def test_clear() -> None:
    """``clear`` forgets every record and flag."""
    store, _, _ = make()
    store.get_or_create("a")
    store.set_unique_identifier("a", True)
    store.clear()
    assert len(store) == 0 and not store.is_unique_identifier("a")


def test_store_without_drop_callback() -> None:
    """A store without ``on_drop`` evicts and expires silently."""
    clock = Clock()
    store = VisitorStore(1.0, 1, clock=clock)
    store.get_or_create("a")
    clock.now = 3.0
    store.get_or_create("b")
    clock.now = 10.0
    assert store.purge() == 1
    assert (store.evictions, store.expirations) == (1, 1)


def test_purge_through_the_client(make_client: Any) -> None:
    """The client's store uses the configured session duration as TTL."""
    client = make_client(session_duration_minute=2)
    assert client._store.ttl_seconds == 120
    assert client._store.max_visitors == 500_000
    assert make_client(max_visitors=3)._store.max_visitors == 3


def test_the_tracker_reorders_on_every_tick(make_client: Any) -> None:
    """The moves a client's decisions and data queue are made by its tracking thread's tick."""
    client = make_client()
    store = client._store
    client.add_data("a", Device(DeviceType.DESKTOP))
    client.add_data("b", Device(DeviceType.DESKTOP))
    store.now += 2 * TOUCH_GRANULARITY  # a later tick of the store's clock
    client.add_data("a", Device(DeviceType.PHONE))
    assert list(store) == ["a", "b"] and len(store._moves) == 1
    assert client._tracker.wait_idle()  # runs a tick
    assert list(store) == ["b", "a"] and not store._moves


def test_building_tracking_lines_is_visitor_activity(make_client: Any) -> None:
    """Building a visitor's tracking lines counts as its activity (evaluation spec §4.1): its
    expiry counts from the last tracking request made for it, and it moves to the recent end."""
    client = make_client()
    store = client._store
    client.add_data("a", Device(DeviceType.DESKTOP))
    client.add_data("b", Device(DeviceType.DESKTOP))
    visitor = store.peek("a")
    assert visitor is not None
    visitor.last -= 5 * TOUCH_GRANULARITY  # last used five seconds ago
    idle_since = visitor.last
    client.flush("a")
    assert client._tracker.wait_idle()  # a tick builds the visitor's lines
    assert visitor.pending == 0 and visitor.last > idle_since
    assert client._tracker.wait_idle()  # the next tick makes the queued move
    assert list(store) == ["b", "a"]
