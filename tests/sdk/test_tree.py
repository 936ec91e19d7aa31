"""Condition trees: the grouping procedure of evaluation spec §3.1 and its evaluation (§3.2), in
the three compiled forms (inline expressions, plain calls, memoized)."""

from __future__ import annotations

import itertools
import random
import sys
from typing import Any

import pytest

from kameleoon._engine.tree import Inline, Leaf, Node, Tree, build_tree, compile_memo_tree, compile_tree

AND, OR = False, True
MISSING = "missing"


def leaf(i: int, include: bool = True, fact: int | None = None) -> Leaf:
    """Leaf ``i`` reads ``v[i]`` (``v`` is a tuple of booleans), as a call and inline."""

    def check(v: Any, c: str, e: Any) -> bool:
        return bool(v[i])

    return Leaf(check, include, Inline("v[$I]", I=i), fact)


def shape(tree: Tree) -> str:
    if tree is None:
        return "NONE"
    if isinstance(tree, Leaf):
        name = f"x{tree.inline.constants['I']}"  # type: ignore[union-attr]
        return name if tree.include else f"!{name}"
    assert isinstance(tree, Node)
    return f"({shape(tree.left)} {'|' if tree.is_or else '&'} {shape(tree.right)})"


FOUR_ITEM_SHAPES = {
    (AND, AND, AND): "((x0 & x1) & (x2 & x3))",
    (AND, AND, OR): "((x0 & x1) & (x2 | x3))",
    (AND, OR, AND): "((x0 & x1) | (x2 & x3))",
    (AND, OR, OR): "((x0 & x1) | (x2 | x3))",
    (OR, AND, AND): "(x0 | ((x1 & x2) & x3))",
    (OR, AND, OR): "(x0 | ((x1 & x2) | x3))",
    (OR, OR, AND): "(x0 | (x1 | (x2 & x3)))",
    (OR, OR, OR): "(x0 | (x1 | (x2 | x3)))",
}


@pytest.mark.parametrize("first_level", [True, False])
@pytest.mark.parametrize(("ops", "expected"), sorted(FOUR_ITEM_SHAPES.items()))
def test_four_item_shapes(ops: tuple[bool, ...], expected: str, first_level: bool) -> None:
    """The eight four-item operator shapes of the spec table, at both levels."""
    tree = build_tree([leaf(i) for i in range(4)], list(ops), first_level=first_level)
    assert shape(tree) == expected


def test_and_and_or_is_not_conventional_precedence() -> None:
    """AND, AND, OR groups as x0 & x1 & (x2 | x3), not (x0 & x1 & x2) | x3."""
    check = compile_tree(build_tree([leaf(i) for i in range(4)], [AND, AND, OR], first_level=False))
    assert check is not None
    assert check((False, True, True, True), "c", 0) is False  # conventional precedence would say True


@pytest.mark.parametrize(
    ("count", "ops", "expected"),
    [
        (0, [], "NONE"),
        (1, [], "x0"),
        (2, [AND], "(x0 & x1)"),
        (2, [OR], "(x0 | x1)"),
        (3, [AND, AND], "((x0 & x1) & x2)"),
        (3, [OR, AND], "(x0 | (x1 & x2))"),
        (3, [AND, OR], "((x0 & x1) | x2)"),
        (5, [AND, AND, AND, OR], "((x0 & x1) & ((x2 & x3) | x4))"),
    ],
)
def test_small_shapes(count: int, ops: list[bool], expected: str) -> None:
    """Shapes with fewer or more items follow the same procedure."""
    assert shape(build_tree([leaf(i) for i in range(count)], ops, first_level=False)) == expected


@pytest.mark.parametrize(
    ("count", "ops", "expected"),
    [
        (2, [], "x1"),  # a missing operator: the node is its right side only
        (3, [], "x2"),
        (3, [AND], "x2"),
        (3, [OR], "(x0 | x2)"),
        (4, [AND, OR], "((x0 & x1) | x3)"),
        (4, [OR], "(x0 | x3)"),
        (4, [OR, OR], "(x0 | (x1 | x3))"),
    ],
)
def test_missing_first_level_operators(count: int, ops: list[bool], expected: str) -> None:
    """At the first level an exhausted operator list means "missing": right side only."""
    assert shape(build_tree([leaf(i) for i in range(count)], ops, first_level=True)) == expected


def test_null_operator_means_right_side() -> None:
    """An explicit null operator behaves like a missing one."""
    assert shape(build_tree([leaf(0), leaf(1)], [None], first_level=False)) == "x1"
    assert shape(build_tree([leaf(0), leaf(1), leaf(2)], [AND, None], first_level=False)) == "x2"


@pytest.mark.parametrize(("count", "ops"), [(2, []), (3, [AND]), (3, [OR]), (4, [AND, AND])])
def test_short_second_level_operators_raise(count: int, ops: list[bool]) -> None:
    """Inside a group, too few operators is an error (a configuration error once parsed)."""
    with pytest.raises(ValueError):
        build_tree([leaf(i) for i in range(count)], ops, first_level=False)


def test_extra_operators_are_ignored() -> None:
    """Operators beyond those needed are not used."""
    assert shape(build_tree([leaf(0), leaf(1)], [OR, AND, AND], first_level=False)) == "(x0 | x1)"


# -- an independent evaluator of the spec's pseudo-code --------------------------------------
def spec_build(items: list[Any], ops: list[Any], first_level: bool) -> Any:
    """§3.1 transcribed: nodes are (op, left, right) tuples; leaves are ints."""
    items, ops = list(items), list(ops)

    def take() -> Any:
        if ops:
            return ops.pop(0)
        return MISSING if first_level else pytest.fail("short operators")

    def build() -> Any:
        if not items:
            return None
        left = items.pop(0)
        if not items:
            return left
        op = take()
        if op is True:
            return ("OR", left, build())
        pair = ("AND" if op is False else MISSING, left, items.pop(0))
        if not items:
            return pair
        op2 = take()
        return ("OR" if op2 is True else "AND" if op2 is False else MISSING, pair, build())

    return build()


def spec_eval(node: Any, values: tuple[bool, ...], include: tuple[bool, ...]) -> bool:
    """§3.2 transcribed."""
    if node is None:
        return True
    if isinstance(node, int):
        return values[node] if include[node] else not values[node]
    op, left, right = node
    outcome = spec_eval(left, values, include)
    if op == "OR" and outcome:
        return True
    if op == "AND" and not outcome:
        return False
    return spec_eval(right, values, include)


OPERATOR_LISTS = [list(ops) for n in range(4) for ops in itertools.product([AND, OR], repeat=n)]


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_compiled_forms_agree_with_the_spec(count: int) -> None:
    """All operator lists x truth assignments x inclusions: every compiled form equals the spec."""
    for ops in OPERATOR_LISTS:
        for first_level in (True, False):
            if not first_level and len(ops) < count - 1:
                continue
            for include in itertools.product([True, False], repeat=count):
                tree = build_tree([leaf(i, include[i], fact=i) for i in range(count)], ops, first_level)
                spec = spec_build(list(range(count)), ops, first_level)
                forms = [compile_tree(tree), compile_tree(tree, inline=False)]
                memo = compile_memo_tree(tree)
                for values in itertools.product([True, False], repeat=count):
                    expected = spec_eval(spec, values, include)
                    for form in forms:
                        assert form is not None
                        assert form(values, "c", 0) is expected, (ops, first_level, include, values)
                    assert memo is not None
                    assert memo(values, "c", 0, [None] * count) is expected


def test_empty_tree_compiles_to_none() -> None:
    """A tree that matches everybody compiles to None (no check to run)."""
    assert compile_tree(None) is None
    assert compile_tree(None, inline=False) is None
    assert compile_memo_tree(None) is None


def test_short_circuit_skips_the_right_side() -> None:
    """OR stops at a true left side and AND at a false one: the right side is not evaluated."""

    def boom(v: Any, c: str, e: Any) -> bool:
        raise AssertionError("evaluated")

    true_leaf = Leaf(lambda v, c, e: True, True)
    false_leaf = Leaf(lambda v, c, e: False, True)
    for inline in (True, False):
        either = compile_tree(build_tree([true_leaf, Leaf(boom, True)], [OR], False), inline=inline)
        both = compile_tree(build_tree([false_leaf, Leaf(boom, True)], [AND], False), inline=inline)
        assert either is not None and either(None, "c", 0) is True
        assert both is not None and both(None, "c", 0) is False


def test_the_cheaper_side_is_evaluated_first() -> None:
    """A condition written inline (cheap) is evaluated before one that needs a call, on either
    side of the operator: its outcome can spare the call."""

    def boom(v: Any, c: str, e: Any) -> bool:
        raise AssertionError("evaluated")

    def cheap(outcome: bool) -> Leaf:
        return Leaf(lambda v, c, e: outcome, True, Inline("True" if outcome else "False", cost=0))

    for expensive_first in (True, False):
        for operator, outcome in ((OR, True), (AND, False)):
            leaves = [Leaf(boom, True), cheap(outcome)]
            if not expensive_first:
                leaves.reverse()
            check = compile_tree(build_tree(leaves, [operator], False))
            assert check is not None and check(None, "c", 0) is outcome


def test_checks_receive_visitor_code_and_experiment() -> None:
    """Compiled checks are called with (visitor, code, experiment id)."""
    seen = []
    spy = Leaf(lambda v, c, e: seen.append((v, c, e)) or True, True)
    for check in (compile_tree(spy), compile_tree(spy, inline=False)):
        assert check is not None
        check("record", "code", 42)
    assert seen == [("record", "code", 42)] * 2


def test_memo_reads_and_fills_facts() -> None:
    """The memoized form stores raw outcomes and reuses them instead of calling the check."""
    calls = []

    def counted(v: Any, c: str, e: Any) -> bool:
        calls.append(1)
        return True

    excluded = Leaf(counted, include=False, fact=0)
    memo = compile_memo_tree(excluded)
    assert memo is not None
    facts: list[Any] = [None]
    assert memo(None, "c", 0, facts) is False  # not(True)
    assert facts == [True]  # the raw outcome, before isInclude
    assert memo(None, "c", 0, facts) is False
    assert len(calls) == 1
    assert memo(None, "c", 0, [False]) is True  # a remembered outcome is trusted


def test_unmemoizable_leaves_are_always_evaluated() -> None:
    """Leaves without a fact number are evaluated every time."""
    calls = []
    memo = compile_memo_tree(Leaf(lambda v, c, e: calls.append(1) or True, True, fact=None))
    assert memo is not None
    facts: list[Any] = []
    memo(None, "c", 0, facts)
    memo(None, "c", 0, facts)
    assert len(calls) == 2


def test_large_trees_fall_back_to_a_walk() -> None:
    """Trees with very many leaves (beyond the inline limit) still evaluate correctly."""
    count = 100
    leaves = [leaf(i, include=i % 3 != 0, fact=i) for i in range(count)]
    ops = [i % 4 == 0 for i in range(count - 1)]
    tree = build_tree(leaves, ops, first_level=False)
    spec = spec_build(list(range(count)), ops, first_level=False)
    include = tuple(i % 3 != 0 for i in range(count))
    forms = [compile_tree(tree), compile_tree(tree, inline=False)]
    memo = compile_memo_tree(tree)
    for seed in range(20):
        values = tuple(((i * 7 + seed * 13) % 5) < 2 for i in range(count))
        expected = spec_eval(spec, values, include)
        for form in forms:
            assert form is not None and form(values, "c", 0) is expected
        assert memo is not None and memo(values, "c", 0, [None] * count) is expected


@pytest.mark.parametrize("seed", range(4))
def test_groups_of_thousands_of_conditions_build_and_evaluate_as_the_spec(seed: int) -> None:
    """Neither building nor evaluating recurses: 5 000 conditions (past the interpreter's
    recursion limit) give the spec's tree and outcomes, whatever the operators."""
    rng = random.Random(seed)
    count = 5_000
    include = tuple(rng.random() < 0.8 for _ in range(count))
    ops: list[Any] = [rng.choice([AND, OR, OR, None]) for _ in range(count - 1)]
    first_level = seed % 2 == 0
    if not first_level:
        ops = [AND if op is None else op for op in ops]  # null operators only in the first level
    tree = build_tree([leaf(i, include[i], fact=i) for i in range(count)], ops, first_level)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(4 * count)  # for the recursive transcription of the spec only
    try:
        spec = spec_build(list(range(count)), ops, first_level)
        forms = [compile_tree(tree), compile_tree(tree, inline=False)]
        memo = compile_memo_tree(tree)
        for _ in range(20):
            truth = rng.random()
            values = tuple(rng.random() < truth for _ in range(count))
            expected = spec_eval(spec, values, include)
            for form in forms:
                assert form is not None and form(values, "c", 0) is expected
            assert memo is not None and memo(values, "c", 0, [None] * count) is expected
    finally:
        sys.setrecursionlimit(limit)
