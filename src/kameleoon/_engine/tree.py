"""Builds a segment's condition tree exactly as the reference does (evaluation spec §3.1), and
compiles it into one Python function.

The same right-leaning procedure serves both levels (groups, and conditions inside a group):
it is *not* AND-before-OR precedence. ``true`` is OR, ``false`` is AND; an operator that is
missing (first level only) or ``null`` makes its node evaluate to its right side only.

The finished tree is rendered as a single boolean expression and compiled once, so evaluating
a segment costs one call per condition rather than one per tree node. Conditions are pure and
never raise, so the two sides of an ``and``/``or`` may be evaluated in either order: the
cheaper side (:attr:`Inline.cost`) is written first, and short-circuits the other more often.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import Any, Union

from kameleoon._engine.model import Check

__all__ = [
    "Inline",
    "Leaf",
    "MemoCheck",
    "Node",
    "build_tree",
    "compile_memo_tree",
    "compile_tree",
    "lazy_memo_tree",
    "lazy_tree",
    "render_inline",
]

# A compiled segment reading and filling a per-pass list of condition outcomes.
MemoCheck = Callable[[Any, str, Any, list[Any]], bool]

MISSING = object()  # an exhausted first-level operator list


class Inline:
    """A condition written as one Python expression over ``v`` (the visitor record or None),
    ``c`` (the visitor code) and ``e`` (the experiment id); ``$name`` stands for the constant
    ``constants[name]`` (or, written ``$name :=``, a local name of the expression, assigned
    before it is read on every path: conditions share their local names). ``cost``
    ranks how much evaluating it costs (0: a constant; 1: one field of the record; more: each
    further object it reads, or a search).

    ``on_record``: the expression reads the record and is written for a ``v`` that is not
    None; without a record the condition is false. The guard ``v is not None`` is added where
    the record may be missing, and left out of functions that test ``v`` once up front."""

    __slots__ = ("constants", "cost", "expression", "on_record")

    def __init__(self, expression: str, cost: int = 3, *, on_record: bool = False, **constants: Any) -> None:
        self.expression = expression
        self.cost = cost
        self.on_record = on_record
        self.constants = constants


class Leaf:
    """A condition: its raw check, whether it includes (``isInclude``) or excludes, and the
    same check written inline when it is simple enough (see :class:`Inline`)."""

    __slots__ = ("check", "fact", "include", "inline")

    def __init__(
        self, check: Check, include: bool, inline: Inline | None = None, fact: int | None = None
    ) -> None:
        self.check = check
        self.include = include
        self.inline = inline
        self.fact = fact  # memo slot number (None: not memoizable)


Tree = Union[Leaf, "Node", None]  # None: matches everybody


class Node:
    __slots__ = ("is_or", "left", "right")

    def __init__(self, is_or: bool, left: Tree, right: Tree) -> None:
        self.is_or = is_or
        self.left = left
        self.right = right


class _ShortOperators(ValueError):
    """Too few operators between the conditions of a group."""


def _node(operator: Any, left: Tree, right: Tree) -> Tree:
    if operator is MISSING or operator is None:
        return right  # the left side is evaluated for nothing: its outcome is ignored
    return Node(bool(operator), left, right)


def build_tree(items: list[Tree], operators: list[Any], first_level: bool) -> Tree:
    """The tree of ``items`` joined by ``operators`` (spec §3.1).

    The reference builds it recursively, right side last; here the same steps run in a loop
    (a group of thousands of conditions must not exhaust the interpreter's stack), recording
    each node still waiting for its right side, then the nodes are closed from the last.

    Raises ``ValueError`` when a second-level operator list is too short.
    """
    queue, ops = deque(items), deque(operators)
    if not queue:
        return None

    def take_operator() -> Any:
        if ops:
            return ops.popleft()
        if first_level:
            return MISSING
        raise _ShortOperators("a group has fewer operators than its conditions need")

    waiting: list[tuple[Any, Tree]] = []  # (operator, left side) of nodes awaiting their right
    while True:
        left = queue.popleft()
        if not queue:
            tree = left
            break
        operator = take_operator()
        if operator is not MISSING and operator is not None and operator:  # OR: the rest is its right
            waiting.append((operator, left))
            continue
        pair = _node(operator, left, queue.popleft())
        if not queue:
            tree = pair
            break
        waiting.append((take_operator(), pair))
    for operator, left in reversed(waiting):
        tree = _node(operator, left, tree)
    return tree


_MAX_INLINE_LEAVES = 64  # beyond this, a walk of the tree avoids deep expressions


def compile_tree(tree: Tree, inline: bool = True) -> Check | None:
    """One function evaluating ``tree`` (``None`` when the tree matches everybody).

    ``inline=False`` calls every condition's own check instead of its inline expression (the
    two are equivalent; tests compare them).
    """
    if tree is None:
        return None
    namespace: dict[str, Any] = {}
    expression = _expression(tree, namespace, inline, memo=False)
    if expression is None:
        return _walker(tree)
    source = f"def segment(v, c, e):\n    return {expression}\n"
    exec(compile(source, "<segment>", "exec"), namespace)
    return namespace["segment"]  # type: ignore[no-any-return]


def compile_memo_tree(tree: Tree) -> MemoCheck | None:
    """Like :func:`compile_tree`, for a function ``(v, c, e, facts)`` that reads and fills
    ``facts`` (a list, one slot per fact number, ``None`` = not evaluated yet): evaluating many
    segments for one visitor evaluates each distinct condition once."""
    if tree is None:
        return None
    namespace: dict[str, Any] = {"_remember": _remember}
    expression = _expression(tree, namespace, inline=True, memo=True)
    if expression is None:
        check = _walker(tree)
        return lambda v, c, e, f: check(v, c, e)
    source = f"def segment(v, c, e, f):\n    return {expression}\n"
    exec(compile(source, "<segment>", "exec"), namespace)
    return namespace["segment"]  # type: ignore[no-any-return]


def lazy_tree(tree: Leaf | Node) -> Check:
    """:func:`compile_tree`, compiled on first use: decisions normally run the generated
    functions of :mod:`kameleoon._engine.passes`, where segments are inline."""
    return _on_first_use(lambda: compile_tree(tree) or _always)


def lazy_memo_tree(tree: Leaf | Node) -> MemoCheck:
    """:func:`compile_memo_tree`, compiled on first use (see :func:`lazy_tree`)."""
    return _on_first_use(lambda: compile_memo_tree(tree) or _always)


def _on_first_use(build: Callable[[], Callable[..., bool]]) -> Callable[..., bool]:
    """A function that builds its implementation with ``build()`` when first called."""
    built: list[Callable[..., bool]] = []

    def call(*args: Any) -> bool:
        if not built:
            built.append(build())
        return built[0](*args)

    return call


def render_inline(
    tree: Tree, namespace: dict[str, Any], memo_in_locals: bool, record: bool | None = None
) -> str | None:
    """``tree`` as one expression over ``v``, ``c`` and ``e`` (as :func:`compile_tree` writes
    it), its constants added to ``namespace`` (names unique in it); ``None`` when it is too
    large for one. ``memo_in_locals``: each condition's outcome is kept in a local variable
    ``f<fact number>`` (``None`` = not evaluated yet) of the function it is compiled into.
    ``record``: what the function knows of ``v`` (``True``: a record, ``False``: None,
    ``None``: either): conditions on the record (:attr:`Inline.on_record`) are written
    without their ``v is not None`` guard, or as ``False``."""
    memo = "locals" if memo_in_locals else False
    return _expression(tree, namespace, inline=True, memo=memo, record=record)


def _expression(
    tree: Tree, namespace: dict[str, Any], inline: bool, memo: bool | str, record: bool | None = None
) -> str | None:
    """:func:`_render`'s expression, or ``None`` when the tree is too large for one (more than
    :data:`_MAX_INLINE_LEAVES` leaves, or names added to ``namespace``): it is then walked."""
    if _leaf_count(tree) > _MAX_INLINE_LEAVES:
        return None
    before = len(namespace)
    expression = _render(tree, namespace, inline, memo, record)
    return expression if len(namespace) - before <= _MAX_INLINE_LEAVES else None


def _remember(facts: list[Any], slot: int, outcome: bool) -> bool:
    facts[slot] = outcome
    return outcome


def _render(
    tree: Tree, namespace: dict[str, Any], inline: bool, memo: bool | str, record: bool | None
) -> str:
    if tree is None:
        return "True"
    if isinstance(tree, Leaf):
        prefix = f"k{len(namespace)}"
        if inline and tree.inline is not None:
            text = _expand(tree.inline, prefix, namespace, record)
        else:
            namespace[prefix] = tree.check
            text = f"{prefix}(v, c, e)"
        if memo == "locals" and tree.fact is not None:
            known = f"f{tree.fact}"
            text = f"({known} if {known} is not None else ({known} := {text}))"
        elif memo and tree.fact is not None:
            slot, known = tree.fact, f"{prefix}_m"
            text = f"({known} if ({known} := f[{slot}]) is not None else _remember(f, {slot}, {text}))"
        return text if tree.include else f"(not {text})"
    joiner = " or " if tree.is_or else " and "
    first, second = tree.left, tree.right
    if _cost(second) < _cost(first):  # conditions are pure and total: the cheaper side first
        first, second = second, first
    left = _render(first, namespace, inline, memo, record)
    right = _render(second, namespace, inline, memo, record)
    return f"({left}{joiner}{right})"


_CALL_COST = 8  # a condition without an inline form: a call to its check


def _cost(tree: Tree) -> int:
    """How much evaluating ``tree`` in full costs (see :class:`Inline`)."""
    if tree is None:
        return 0
    if isinstance(tree, Leaf):
        return tree.inline.cost if tree.inline is not None else _CALL_COST
    return _cost(tree.left) + _cost(tree.right)


def _expand(inline: Inline, prefix: str, namespace: dict[str, Any], record: bool | None) -> str:
    namespace[prefix] = None  # reserves the prefix
    if inline.on_record and record is False:
        return "False"  # no record: a condition on it is false (its constants are not needed)
    for name, value in inline.constants.items():
        namespace[f"{prefix}_{name}"] = value
    constants = inline.constants

    def rename(match: re.Match[str]) -> str:
        # A constant gets a name of its own; a local is shared by every condition (each assigns
        # it before reading it): the function compiled has fewer locals to set up and clear.
        named = match.group(1)
        return f"{prefix}_{named}" if named in constants else f"w_{named}"

    expression = _DOLLAR.sub(rename, inline.expression)
    if inline.on_record and record is None:
        return f"(v is not None and ({expression}))"
    return f"({expression})"


_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _always(*arguments: Any) -> bool:
    """Matches everybody (a check, or a memoized check)."""
    return True


def _leaf_count(tree: Tree) -> int:
    count, pending = 0, [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, Node):
            pending += (node.left, node.right)
        elif node is not None:
            count += 1
    return count


def _walker(tree: Tree) -> Check:
    """A check walking ``tree`` at every call, without recursion (any depth): for trees too
    large to be one expression."""
    return lambda v, c, e: _walk(tree, v, c, e)


def _walk(tree: Tree, v: Any, c: str, e: Any) -> bool:
    """``tree``'s outcome: left side first, each side only when it can change the outcome."""
    above: list[Node] = []  # nodes whose left side is being evaluated
    node = tree
    while True:
        while isinstance(node, Node):
            above.append(node)
            node = node.left
        if node is None:
            outcome = True
        else:
            outcome = bool(node.check(v, c, e))
            outcome = outcome if node.include else not outcome
        while above:
            parent = above.pop()
            if outcome is not parent.is_or:  # AND after True, OR after False: the right decides
                node = parent.right
                break
        else:
            return outcome
