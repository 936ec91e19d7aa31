"""All flags at once: one generated function deciding every enabled flag for one visitor.

``get_active_features`` evaluates every flag for the same visitor. Instead of calling
:func:`~kameleoon._engine.decide.evaluate` once per flag (and each segment's function once per
rule), the configuration compiles into one function whose body is the rule loop of every flag
written out, each segment inline, and each condition's outcome kept in a local variable, so a
condition shared by many segments is evaluated once per call. It returns exactly what
``evaluate`` returns for each flag (tests compare the two).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kameleoon._engine.decide import evaluate
from kameleoon._engine.hashing import sha256
from kameleoon._engine.model import TARGETED_DELIVERY, Configuration, Flag, Rule, VariationEntry
from kameleoon._engine.tree import render_with_locals
from kameleoon._visitors.record import Visitor

__all__ = ["DecideAll", "compile_pass", "decide_all"]

Decision = tuple[VariationEntry | None, Rule | None]
# (visitor record or None, visitor code, the bytes that are hashed) -> one decision per flag
DecideAll = Callable[[Visitor | None, str, bytes], list[Decision]]

MAX_RULES = 3_000  # beyond this (about a second of compiling), flags are evaluated one by one
_NONE: Decision = (None, None)


def decide_all(config: Configuration, visitor: Visitor | None, code: str) -> list[Decision]:
    """``evaluate(flag, visitor, code)`` for every enabled flag, in configuration order."""
    extra = visitor.extra if visitor is not None else None
    mapping = extra.mapping if extra is not None else None
    run = config.decide_all
    if run is not None:
        hashed = (code if mapping is None else mapping).encode("utf-8", "surrogatepass")
        return run(visitor, code, hashed)  # type: ignore[no-any-return]
    facts: list[Any] = [None] * config.fact_count
    return [evaluate(flag, visitor, code, facts) for flag in config.enabled_flags]


def compile_pass(flags: Sequence[Flag], fact_count: int) -> DecideAll | None:
    """The function deciding ``flags`` (``None`` for a configuration too large to be worth it)."""
    if sum(len(flag.rules) for flag in flags) > MAX_RULES:
        return None
    namespace: dict[str, Any] = {"_sha": sha256, "_NONE": _NONE}
    body = [f"    f{n} = None" for n in range(fact_count)]
    for n, flag in enumerate(flags):
        body += ["    while True:"]
        for m, rule in enumerate(flag.rules):
            body += _rule_lines(f"r{n}_{m}", rule, namespace)
        body += ["        out.append(_NONE)", "        break"]
    source = "\n".join(["def decide_all(v, c, h):", "    out = []", *body, "    return out", ""])
    exec(compile(source, "<decide_all>", "exec"), namespace)
    return namespace["decide_all"]  # type: ignore[no-any-return]


def _rule_lines(name: str, rule: Rule, namespace: dict[str, Any]) -> list[str]:
    """One rule of a flag's ``while True:`` block: ``out.append(...); break`` when it decides,
    nothing when the loop goes on to the next rule (the logic of ``evaluate``)."""
    namespace[name] = rule
    lines, indent = [], "        "
    segment = rule.segment
    if segment is not None:
        namespace[f"{name}_e"] = rule.experiment_id
        condition = render_with_locals(segment.tree, namespace) if segment.tree is not None else None
        if condition is None:  # no tree kept, or too large to inline: its own compiled check
            namespace[f"{name}_check"] = segment.check
            condition = f"{name}_check(v, c, e)"
        lines += [f"{indent}e = {name}_e", f"{indent}if {condition}:"]
        indent += "    "
    decided: list[str] = []
    if rule.exposure_limit is not None:
        namespace[f"{name}_s"], namespace[f"{name}_l"] = rule.rule_suffix, rule.exposure_limit
        lines.append(f"{indent}if _sha(h + {name}_s).digest() <= {name}_l:")
        inner = indent + "    "
        if rule.type is TARGETED_DELIVERY:
            namespace[f"{name}_v"] = rule.entries[0] if rule.entries else None
            decided = [f"{inner}out.append(({name}_v, {name}))", f"{inner}break"]
        else:
            namespace[f"{name}_x"] = rule.experiment_suffix
            decided = [f"{inner}d = _sha(h + {name}_x).digest()"]
            for k, entry in enumerate(rule.entries):
                if entry.limit is not None:
                    namespace[f"{name}_v{k}"], namespace[f"{name}_l{k}"] = entry, entry.limit
                    decided += [f"{inner}if d <= {name}_l{k}:"]
                    decided += [f"{inner}    out.append(({name}_v{k}, {name}))", f"{inner}    break"]
        lines += decided
        if rule.type is TARGETED_DELIVERY:
            lines += [f"{indent}out.append(_NONE)", f"{indent}break"]
    elif rule.type is TARGETED_DELIVERY:
        lines += [f"{indent}out.append(_NONE)", f"{indent}break"]
    else:
        lines.append(f"{indent}pass")
    return lines
