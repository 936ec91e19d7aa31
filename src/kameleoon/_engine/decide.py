"""Rule evaluation and variation resolution (evaluation spec §2)."""

from __future__ import annotations

import json
from typing import Any

from kameleoon._engine.hashing import bucket_bytes
from kameleoon._engine.model import (
    EXPERIMENTATION,
    TARGETED_DELIVERY,
    Flag,
    Rule,
    VariableDef,
    VariationEntry,
)
from kameleoon._visitors.record import Visitor

__all__ = ["OFF", "InvalidJsonVariable", "evaluate", "resolve_key", "typed_value"]

OFF = "off"


def evaluate(flag: Flag, visitor: Visitor | None, code: str) -> tuple[VariationEntry | None, Rule | None]:
    """Runs the flag's rules in order for ``code``; returns the chosen entry and its rule.

    ``visitor`` is the record of ``code`` (``None`` if there is none): targeting reads it, and
    its mapping identifier, when set, is the code that is hashed.
    """
    hashed: bytes | None = None
    for rule in flag.rules:
        segment = rule.segment
        if segment is not None and not segment.check(visitor, code, rule.experiment_id):
            continue
        if hashed is None:
            extra = visitor.extra if visitor is not None else None
            mapping = extra.mapping if extra is not None else None
            hashed = (code if mapping is None else mapping).encode("utf-8", "surrogatepass")
        if bucket_bytes(hashed + rule.rule_suffix) <= rule.exposition:
            if rule.type is TARGETED_DELIVERY:
                return (rule.entries[0] if rule.entries else None), rule
            draw = bucket_bytes(hashed + rule.experiment_suffix)
            for entry in rule.entries:
                if entry.cumulative >= draw:
                    return entry, rule
        elif rule.type is TARGETED_DELIVERY:
            break
    return None, None


def resolve_key(flag: Flag, entry: VariationEntry | None, rule: Rule | None) -> Any:
    """The variation key served: the entry's, else the flag's default variation."""
    if entry is not None:
        return entry.variation_key
    if rule is not None and rule.type is EXPERIMENTATION:
        return OFF
    return flag.default_variation_key


class InvalidJsonVariable(ValueError):
    """A JSON variable whose value is not valid JSON."""


def typed_value(variable: VariableDef) -> Any:
    """The value returned to callers for a variable, per its type (spec §1.6).

    Raises :class:`InvalidJsonVariable` for a JSON variable holding unparsable text.
    """
    kind, raw = variable.type, variable.raw_value
    if kind in ("BOOLEAN", "NUMBER", "STRING"):
        return raw
    if kind == "JSON":
        if not isinstance(raw, str):
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as e:
            raise InvalidJsonVariable(f"variable {variable.key!r} holds invalid JSON") from e
    return None
