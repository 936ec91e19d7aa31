"""Rule loops written out: functions generated from the configuration that decide exactly as
:func:`~kameleoon._engine.decide.evaluate` (property tests compare them on random inputs).

* :func:`compile_flag`: one flag, ``(visitor, code) -> (entry, rule)``, its segments inline (no
  call per rule or per segment); the hashed bytes are computed when a rule first needs them, and
  not at all when the visitor's assignments remember this rule's decision for them. It tests
  once whether there is a visitor record, and runs one of two bodies written for that case
  (conditions on the record without their ``v is not None`` guard, or false).
* :func:`compile_pass`: every enabled flag for one visitor (``get_active_features``), each
  condition's outcome kept in a local variable, so a condition shared by many segments is
  evaluated at most once per call.

A segment too large to be one expression is called through its own compiled check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from kameleoon._engine.conditions.base import hashable
from kameleoon._engine.decide import evaluate, hashed_code
from kameleoon._engine.hashing import sha256
from kameleoon._engine.model import TARGETED_DELIVERY, Configuration, Flag, Rule, VariationEntry
from kameleoon._engine.tree import render_inline
from kameleoon._visitors.record import Visitor

__all__ = ["DecideAll", "DecideFlag", "compile_flag", "compile_pass", "decide_all"]

Decision = tuple[VariationEntry | None, Rule | None]
DecideFlag = Callable[[Visitor | None, str], Decision]
# (visitor record or None, visitor code, the bytes that are hashed) -> one decision per flag
DecideAll = Callable[[Visitor | None, str, bytes], list[Decision]]

MAX_RULES = 3_000  # beyond this (about a second of compiling), flags are evaluated one by one
_NONE: Decision = (None, None)
_HASHED = [  # decide.hashed_code, written inline (one call fewer per decision)
    "x = v.extra if v is not None else None",
    "x = x.mapping if x is not None else None",
    "h = (c if x is None else x).encode('utf-8', 'surrogatepass')",
]
# The record ``v`` has no mapping identifier: its own code is hashed. Read again where a miss is
# noted, not kept from the hashing: a mapping identifier, once set, is never removed, so a record
# seen without one then was hashed by its own code.
_OWN_CODE = "((x := v.extra) is None or x.mapping is None)"
_HASHED_RECORD = [  # the same, for a record ``v`` (not None): one expression
    f"h = (c if {_OWN_CODE} else x.mapping).encode('utf-8', 'surrogatepass')",
]
_HASHED_NO_RECORD = ["h = c.encode('utf-8', 'surrogatepass')"]  # the same, for ``v`` None
_USES_E = re.compile(r"\be\b")  # a rendered condition reading the experiment id ``e``


def _remembered(
    name: str, rule: Rule, outcomes: list[tuple[str, Decision]], namespace: dict[str, Any]
) -> list[str]:
    """Lines returning the decision a visitor's assignment of the rule's experiment remembers
    (``Assignment[5]``, the variation entry it drew), when it was drawn by this very rule: entry
    objects belong to one rule of one configuration, and the digests depend only on the rule and
    the hashed code, so they need not be computed again. A mapping identifier, once set, changes
    the hashed code: a visitor with one always draws again. ``outcomes``: the rule's decisions,
    by the names they have in ``namespace``; only those that get recorded (with a variation id,
    under an experiment id that can be a key) can be remembered. Written for a record ``v``
    (not None); the assignment is looked up first (a visitor seldom has an ``extra`` part)."""
    recorded = [(named, e) for named, (e, _) in outcomes if e is not None and e.variation_id is not None]
    if rule.experiment_id is None or not recorded or not hashable(rule.experiment_id):
        return []
    namespace[f"{name}_e"] = rule.experiment_id
    lines = [f"if (a := v.assigned) is not None and (p := a.get({name}_e)) is not None and {_OWN_CODE}:"]
    remembered = "p[5]"  # subscripted in each test: fewer steps than a local, up to two tests
    if len(recorded) > 2:
        lines.append("    m = p[5]")
        remembered = "m"
    for named, entry in recorded:
        namespace[f"{named}_v"] = entry
        lines += [f"    if {remembered} is {named}_v:", f"        return {named}"]
    return lines


MAX_MISSED = 8  # rules whose draw a record remembers missing (the oldest are forgotten)


def _note_miss(name: str, indent: str) -> list[str]:
    """Lines remembering on the record ``v`` that the exposure draw of the rule (its marker
    ``{name}_m``, see :func:`_missed`) misses for the record's own code: deciding the rule
    again for it, it misses again without hashing. At most :data:`MAX_MISSED` rules are kept, the
    oldest forgotten. Written inline (no call): one tuple concatenation, ``{name}_mt`` being the
    1-tuple of the marker. Lock-free: a note lost to a concurrent one only costs a hash later."""
    noted = f"n + {name}_mt if len(n := v.missed) < {MAX_MISSED} else n[{1 - MAX_MISSED}:] + {name}_mt"
    return [f"{indent}elif {_OWN_CODE}:", f"{indent}    v.missed = {noted}"]


def _missed(name: str, namespace: dict[str, Any]) -> str:
    """The test that the record ``v`` remembers missing the rule's exposure draw (see
    :func:`_note_miss`), for its own code (a mapping identifier, once set, is hashed instead):
    written negated, as the condition for drawing."""
    marker = namespace[f"{name}_m"] = object()  # this rule's marker: rules of other configurations differ
    namespace[f"{name}_mt"] = (marker,)
    return f"{name}_m not in v.missed or not {_OWN_CODE}"


def decide_all(config: Configuration, visitor: Visitor | None, code: str) -> list[Decision]:
    """``evaluate(flag, visitor, code)`` for every enabled flag, in configuration order."""
    run = config.decide_all
    if run is not None:
        return run(visitor, code, hashed_code(visitor, code))  # type: ignore[no-any-return]
    facts: list[Any] = [None] * config.fact_count
    return [evaluate(flag, visitor, code, facts) for flag in config.enabled_flags]


def compile_flag(rules: Sequence[Rule]) -> DecideFlag:
    """The function deciding a flag of ``rules`` for one visitor: one test of ``v``, then the
    rule loop written for no record, or for a record (one function: no second call for a
    visitor without a record)."""
    namespace: dict[str, Any] = {"_sha": sha256, "_NONE": _NONE}
    body = ["    if v is None:", *_flag_body(rules, namespace, "        ", record=False)]
    body += _flag_body(rules, namespace, "    ", record=True)
    return _compile("decide_flag", "v, c", body, namespace)  # type: ignore[no-any-return]


def _flag_body(rules: Sequence[Rule], namespace: dict[str, Any], indent: str, record: bool) -> list[str]:
    """The rule loop of :func:`compile_flag`, for a record ``v`` (``record``) or for None. The
    hashed bytes ``h`` are computed by the first rule that draws, when it needs them: that rule
    computes them without testing ``h`` (nothing has set it), the later ones test it first."""
    drawing = [m for m, rule in enumerate(rules) if rule.exposure_limit is not None]
    body = [f"{indent}h = None"] if len(drawing) > 1 else []
    for m, rule in enumerate(rules):
        first = bool(drawing) and m == drawing[0]
        body += _rule_lines(f"r{m}", rule, namespace, indent, one=True, record=record, first_draw=first)
    body.append(f"{indent}return _NONE")
    return body


def compile_pass(flags: Sequence[Flag], fact_count: int) -> DecideAll | None:
    """The function deciding ``flags`` (``None`` for a configuration too large to be worth it)."""
    if sum(len(flag.rules) for flag in flags) > MAX_RULES:
        return None
    namespace: dict[str, Any] = {"_sha": sha256, "_NONE": _NONE}
    body = ["    out = []"] + [f"    f{n} = None" for n in range(fact_count)]
    for n, flag in enumerate(flags):
        body.append("    while True:")
        for m, rule in enumerate(flag.rules):
            body += _rule_lines(f"r{n}_{m}", rule, namespace, "        ", one=False)
        body += ["        out.append(_NONE)", "        break"]
    body.append("    return out")
    return _compile("decide_all", "v, c, h", body, namespace)  # type: ignore[no-any-return]


def _compile(name: str, arguments: str, body: list[str], namespace: dict[str, Any]) -> Any:
    source = "\n".join([f"def {name}({arguments}):", *body, ""])
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return namespace[name]


def _rule_lines(
    name: str,
    rule: Rule,
    namespace: dict[str, Any],
    indent: str,
    one: bool,
    record: bool | None = None,
    first_draw: bool = False,
) -> list[str]:
    """One rule, as ``evaluate`` runs it. ``one``: in a flag's own function (``return`` the
    decision; the hashed bytes computed on first use, without testing ``h`` in the first rule
    that draws, ``first_draw``); else in the all-flags pass (append the decision and ``break``
    out of the flag's ``while True:``; conditions memoized in locals). ``record``: whether ``v``
    is known to be a record (``True``) or None (``False``)."""

    def decide(value: str, at: str) -> list[str]:
        if one:
            return [f"{at}return {value}"]
        return [f"{at}out.append({value})", f"{at}break"]

    namespace[name] = rule
    lines: list[str] = []
    segment = rule.segment
    if segment is not None:
        namespace[f"{name}_e"] = rule.experiment_id
        tree = segment.tree
        condition = None
        if tree is not None:
            condition = render_inline(tree, namespace, memo_in_locals=not one, record=record)
        if condition is None:  # no tree kept, or too large to inline: its own compiled check
            namespace[f"{name}_check"] = segment.check
            condition = f"{name}_check(v, c, e)"
        if _USES_E.search(condition):  # most conditions do not read the experiment id
            lines.append(f"{indent}e = {name}_e")
        lines.append(f"{indent}if {condition}:")
        indent += "    "
    if rule.exposure_limit is not None:
        outcomes: list[tuple[str, Decision]]  # the rule's possible decisions, by name
        if rule.type is TARGETED_DELIVERY:
            outcomes = [(f"{name}_d", (rule.entries[0] if rule.entries else None, rule))]
        else:
            drawn = [(f"{name}_d{k}", e) for k, e in enumerate(rule.entries) if e.limit is not None]
            outcomes = [(named, (entry, rule)) for named, entry in drawn]
        namespace.update(outcomes)
        if one and record is not False:  # no record, no assignment
            remembered = _remembered(name, rule, outcomes, namespace)
            if remembered and record is None:
                remembered[0] = f"if v is not None and {remembered[0][3:]}"
            lines += [f"{indent}{text}" for text in remembered]
        draw = indent
        if one and record:  # a miss remembered: no draw
            lines.append(f"{indent}if {_missed(name, namespace)}:")
            draw += "    "
        if one:
            hashed = _HASHED if record is None else _HASHED_RECORD if record else _HASHED_NO_RECORD
            if first_draw:  # no rule before this one set ``h``
                lines += [f"{draw}{text}" for text in hashed]
            else:
                lines += [f"{draw}if h is None:", *(f"{draw}    {text}" for text in hashed)]
        namespace[f"{name}_s"], namespace[f"{name}_l"] = rule.rule_suffix, rule.exposure_limit
        lines.append(f"{draw}if _sha(h + {name}_s).digest() <= {name}_l:")
        inner = draw + "    "
        if rule.type is TARGETED_DELIVERY:
            lines += decide(f"{name}_d", inner)
        else:
            namespace[f"{name}_x"] = rule.experiment_suffix
            lines.append(f"{inner}d = _sha(h + {name}_x).digest()")
            for named, entry in drawn:
                namespace[f"{named}_l"] = entry.limit
                lines.append(f"{inner}if d <= {named}_l:")
                lines += decide(named, inner + "    ")
        if one and record:
            lines += _note_miss(name, draw)
    if rule.type is TARGETED_DELIVERY:  # not entered (segment passed, draw missed): stop here
        lines += decide("_NONE", indent)
    elif rule.exposure_limit is None:
        lines.append(f"{indent}pass")
    return lines
