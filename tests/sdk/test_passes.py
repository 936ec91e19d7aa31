"""The generated functions (``_engine/passes``): the all-flags pass, its fallback and its use by
the client; the decisions remembered in visitors' assignments.

That it decides exactly as the rule loop is a property test (``test_properties``)."""

from __future__ import annotations

import typing

import pytest

from kameleoon._engine import passes
from kameleoon._engine.decide import evaluate, resolve_key
from kameleoon._engine.parse import parse_configuration
from kameleoon.data import CustomData
from kameleoon.testing import create_client

from ._support import document, entry, example_config, flag, record, rule, segment

EXAMPLE = example_config()


def test_a_configuration_with_too_many_rules_is_decided_flag_by_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    small = parse_configuration(EXAMPLE)
    assert small.decide_all is not None
    monkeypatch.setattr(passes, "MAX_RULES", 1)
    large = parse_configuration(EXAMPLE)
    assert large.decide_all is None
    visitor = record(CustomData(0, "premium"), config=large, code="visitor_8")
    for code in ("visitor_8", "visitor_42", "user-100"):
        expected = [evaluate(f, visitor, code) for f in large.enabled_flags]
        assert passes.decide_all(large, visitor, code) == expected
        assert [(e and e.variation_id, r and r.id) for e, r in passes.decide_all(small, visitor, code)] == [
            (e and e.variation_id, r and r.id) for e, r in expected
        ]


def test_linked_codes_are_decided_with_the_anonymous_code() -> None:
    """A user id linked to an anonymous visitor hashes with the anonymous code, in a flag's own
    function and in the all-flags pass alike (evaluation spec §4.4)."""
    doc = document(
        flag("f", [rule(1, entries=[entry("a", 11, 0.5), entry("b", 12, 0.5)], experiment_id=5)]),
        custom_data=[{"index": 0, "isMappingIdentifier": True}],
    )
    client = create_client(doc)
    for n in range(20):
        anonymous, user = f"anon-{n}", f"user-{n}"
        client.add_data(anonymous, CustomData(0, user))
        expected = client.get_feature_variation_key(anonymous, "f")
        assert client.get_feature_variation_key(user, "f") == expected
        assert client.get_active_features(user)["f"].key == expected


@pytest.mark.parametrize("size", [3, 70, 400])
def test_segments_of_any_size_decide_as_the_rule_loop(size: int) -> None:
    """Small segments are inline; larger ones (too deep for one expression) are called through
    their own check; both decide as ``evaluate``."""
    conditions = [
        {"targetingType": "CUSTOM_DATUM", "customDataIndex": "0", "valueMatchType": "EXACT", "value": f"v{n}"}
        for n in range(size)
    ]
    doc = document(
        flag(
            "f",
            [
                rule(
                    1,
                    "TARGETED_DELIVERY",
                    0.5,
                    3,
                    [entry("on", 11, 1.0)],
                    segment(9, *conditions, or_operators=[True] * (size - 1)),
                ),
                rule(2, entries=[entry("a", 21, 0.5), entry("b", 22, 0.5)], experiment_id=4),
            ],
        )
    )
    config = parse_configuration(doc)
    parsed = config.flags["f"]
    for n in range(0, 2 * size, max(1, size // 10)):
        visitor = record(CustomData(0, f"v{n}"), config=config, code=f"c{n}")
        expected = evaluate(parsed, visitor, f"c{n}")
        assert parsed.decide is not None and parsed.decide(visitor, f"c{n}") == expected
        assert passes.decide_all(config, visitor, f"c{n}") == [expected]


# -- decisions remembered in the visitor's assignments ----------------------------------------------------
def halves(key: str, first_id: int) -> list[dict[str, object]]:
    return [entry(f"{key}0", first_id, 0.5), entry(f"{key}1", first_id + 1, 0.5)]


def test_a_remembered_decision_serves_only_the_rule_that_made_it() -> None:
    """Two flags whose rules share an experiment id: the second is decided by its own rule
    (exposition 0: nobody enters), not by the assignment the first left."""
    doc = document(
        flag("first", [rule(10, exposition=1.0, experiment_id=7, entries=halves("v", 100))], flag_id=1),
        flag("second", [rule(11, exposition=0.0, experiment_id=7, entries=halves("w", 200))], flag_id=2),
    )
    client = create_client(doc)
    for code in ("a", "b", "c"):
        assert client.get_feature_variation_key(code, "first") in ("v0", "v1")
        assert client.get_feature_variation_key(code, "second") == "off"
        assert client.get_feature_variation_key(code, "first") in ("v0", "v1")  # remembered again
    client._close(timeout=0.1)


def test_a_new_configuration_draws_again() -> None:
    """The same experiment in an updated configuration (exposition now 0) is drawn again."""
    before = document(flag("f", [rule(10, exposition=1.0, experiment_id=7, entries=halves("v", 100))]))
    after = document(flag("f", [rule(10, exposition=0.0, experiment_id=7, entries=halves("v", 100))]))
    client = create_client(before)
    assert client.get_feature_variation_key("a", "f") in ("v0", "v1")
    client._install(parse_configuration(after), None)
    assert client.get_feature_variation_key("a", "f") == "off"
    client._close(timeout=0.1)


def test_a_mapping_identifier_draws_again() -> None:
    """Once a visitor has a mapping identifier, the mapped code is hashed: what the visitor's own
    code drew before is not reused."""
    doc = document(flag("f", [rule(10, exposition=1.0, experiment_id=7, entries=halves("v", 100))]))
    client = create_client(doc)
    parsed = client._cfg.flags["f"]
    for code in (f"visitor-{n}" for n in range(50)):
        own = client.get_feature_variation_key(code, "f")
        visitor = client._store.get(code)
        assert visitor is not None
        visitor.extras().mapping = "someone-else"
        mapped = evaluate(parsed, visitor, code)[0]
        assert mapped is not None
        assert client.get_feature_variation_key(code, "f") == mapped.variation_key
        if mapped.variation_key != own:
            break
    else:
        pytest.fail("no code draws differently from the mapped one")
    client._close(timeout=0.1)


def test_remembered_decisions_do_not_keep_old_configurations_alive() -> None:
    """What an assignment remembers is a variation entry, not its rule: the rules of a replaced
    configuration (segments, compiled checks) are freed even while visitors keep assignments."""
    import gc
    import weakref

    targeted = segment(1, {"targetingType": "VISITOR_CODE", "visitorCode": "a", "matchType": "EXACT"})
    drawn = rule(10, exposition=1.0, experiment_id=7, entries=halves("v", 100), seg=targeted)
    doc = document(flag("f", [drawn]))
    client = create_client(doc)
    old_segment = client._cfg.flags["f"].rules[0].segment
    assert old_segment is not None
    check = weakref.ref(old_segment.check)
    assert client.get_feature_variation_key("a", "f") in ("v0", "v1")
    del old_segment
    client._install(parse_configuration(doc), None)
    gc.collect()
    assert check() is None
    assert client.get_feature_variation_key("a", "f") in ("v0", "v1")
    client._close(timeout=0.1)


# -- exposure draws remembered as missed (Visitor.missed) -------------------------------------------------
def counting_hashes(parsed: object, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bytes hashed by a flag's generated function, from now on."""
    hashed: list[bytes] = []
    namespace = parsed.decide.__globals__  # type: ignore[attr-defined]
    real = namespace["_sha"]
    monkeypatch.setitem(namespace, "_sha", lambda data: hashed.append(data) or real(data))
    return hashed


@pytest.mark.parametrize("kind", ["EXPERIMENTATION", "TARGETED_DELIVERY"])
def test_a_missed_draw_is_decided_again_without_hashing(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A visitor whose exposure draw misses a rule misses it again without hashing (a targeted
    delivery stops there; an experiment goes on to the next rule, drawn as usual)."""
    doc = document(
        flag(
            "f",
            [
                rule(10, kind, exposition=0.5, experiment_id=7, entries=halves("v", 100)),
                rule(11, exposition=1.0, experiment_id=8, entries=halves("w", 200)),
            ],
        )
    )
    parsed = parse_configuration(doc).flags["f"]
    hashed = counting_hashes(parsed, monkeypatch)
    missed = 0
    for n in range(40):
        code = f"visitor-{n}"
        visitor = record(CustomData(0, "x"), code=code)
        expected = evaluate(parsed, visitor, code)
        del hashed[:]
        assert parsed.decide(visitor, code) == expected
        first = len(hashed)
        if expected[1] is not None and expected[1].id == 10:  # entered: nothing missed
            assert visitor.missed == ()
            continue
        missed += 1
        assert len(visitor.missed) == 1
        del hashed[:]
        assert parsed.decide(visitor, code) == expected
        assert len(hashed) == first - 1  # all but the draw of the missed rule
    assert missed > 5


def test_a_missed_draw_is_drawn_again_with_a_mapping_identifier_or_another_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a visitor's own code missed says nothing of the mapped code, nor of the same rule in
    another configuration (here: everybody enters)."""
    before = document(flag("f", [rule(10, exposition=0.5, experiment_id=7, entries=halves("v", 100))]))
    after = document(flag("f", [rule(10, exposition=1.0, experiment_id=7, entries=halves("v", 100))]))
    parsed, other = parse_configuration(before).flags["f"], parse_configuration(after).flags["f"]
    mapped_differently = False
    for n in range(40):
        code = f"visitor-{n}"
        visitor = record(CustomData(0, "x"), code=code)
        if parsed.decide(visitor, code) != (None, None):
            continue
        assert other.decide(visitor, code) == evaluate(other, visitor, code) != (None, None)
        visitor.extras().mapping = f"user-{n}"
        hashed = counting_hashes(parsed, monkeypatch)
        expected = evaluate(parsed, visitor, code)
        assert parsed.decide(visitor, code) == expected
        assert hashed  # drawn with the mapped code
        mapped_differently |= expected != (None, None)
    assert mapped_differently


def test_a_visitor_remembers_a_bounded_number_of_missed_draws() -> None:
    rules = [rule(10 + r, exposition=0.0, experiment_id=r, entries=halves("v", 100 * r)) for r in range(20)]
    parsed = parse_configuration(document(flag("f", rules))).flags["f"]
    visitor = record(CustomData(0, "x"), code="a")
    for _ in range(2):
        assert parsed.decide(visitor, "a") == evaluate(parsed, visitor, "a") == (None, None)
        assert len(visitor.missed) == passes.MAX_MISSED


# -- the client's two decision methods (_client._decision) ------------------------------------------------
def test_get_feature_variation_key_decides_and_records_as_decide() -> None:
    """``get_feature_variation_key`` is the decision body itself (no call of ``_decide``): fed the
    same calls, it returns the key ``_decide`` returns, as the rule loop decides it, and leaves
    the same assignments, misses and schedule; first and repeat decisions, visitors with and
    without a record or a mapping identifier, before and after a tracking build."""
    doc = document(
        flag("f", [rule(10, exposition=0.5, experiment_id=7, entries=halves("v", 100))]),
        flag(
            "g",
            flag_id=2,
            rules=[
                rule(
                    20, "TARGETED_DELIVERY", exposition=0.5, experiment_id=8, entries=[entry("on", 300, 1.0)]
                ),
                rule(21, exposition=0.7, experiment_id=9, entries=halves("w", 400)),
            ],
        ),
        custom_data=[{"index": 0, "isMappingIdentifier": True}],
    )
    by_key, by_decide = create_client(doc), create_client(doc)
    calls = []
    for n in range(30):
        code = f"visitor-{n}"
        if n % 3:
            for client in (by_key, by_decide):
                client.add_data(code, CustomData(0, f"user-{n}") if n % 5 == 0 else CustomData(1, "x"))
        calls += [(code, key) for key in ("f", "g", "f", "g")]
    for _ in range(2):
        for code, key in calls:
            visitor = by_key._store.peek(code)
            expected = resolve_key(by_key._cfg.flags[key], *evaluate(by_key._cfg.flags[key], visitor, code))
            assert by_key.get_feature_variation_key(code, key) == by_decide._decide(code, key)[1] == expected
        for client in (by_key, by_decide):
            client._store.apply_exposures()  # a tracking build: a new generation
    recorded = 0
    for code, _ in calls:
        mine, theirs = by_key._store.peek(code), by_decide._store.peek(code)
        assert (mine is None) == (theirs is None)  # no record when no rule decided
        if mine is None or theirs is None:
            continue
        assert {e: a[:2] + a[3:] for e, a in (mine.assigned or {}).items()} == {
            e: a[:2] + a[3:] for e, a in (theirs.assigned or {}).items()
        }  # all but the time
        assert len(mine.missed) == len(theirs.missed)
        recorded += bool(mine.assigned)
    assert recorded > 10
    assert list(by_key._tracker._scheduled) == list(by_decide._tracker._scheduled)
    method = type(by_key).get_feature_variation_key
    assert (method.__name__, method.__qualname__) == (
        "get_feature_variation_key",
        "KameleoonClient.get_feature_variation_key",
    )
    assert method.__doc__ == "The key of the visitor's variation of the flag. Tracks the exposure."
    hints = typing.get_type_hints(method)
    assert (hints["visitor_code"], hints["feature_key"], hints["return"]) == (str, str, str)
    for client in (by_key, by_decide):
        client._close(timeout=0.1)


def test_the_enabled_flags_by_key_are_the_enabled_flags() -> None:
    """Decisions look flags up in ``enabled_by_key`` (no test of ``environment_enabled``): the
    same flags as ``enabled_flags``; a disabled or unknown key takes the slow path that raises."""
    doc = document(
        flag("on", [rule(1, experiment_id=1, entries=halves("v", 10))]), flag("off", enabled=False, flag_id=2)
    )
    config = parse_configuration(doc)
    assert (
        config.enabled_by_key
        == {flag.key: flag for flag in config.enabled_flags}
        == {"on": config.flags["on"]}
    )
