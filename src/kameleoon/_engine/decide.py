"""Rule evaluation and variation resolution (evaluation spec §2)."""

from __future__ import annotations

from typing import Any

from kameleoon._engine.hashing import sha256
from kameleoon._engine.model import (
    EXPERIMENTATION,
    TARGETED_DELIVERY,
    Flag,
    Rule,
    VariationEntry,
)
from kameleoon._visitors.record import Visitor

__all__ = ["OFF", "evaluate", "hashed_code", "resolve_key"]

OFF = "off"


def evaluate(
    flag: Flag, visitor: Visitor | None, code: str, facts: list[Any] | None = None, _sha: Any = sha256
) -> tuple[VariationEntry | None, Rule | None]:
    """Runs the flag's rules in order for ``code``; returns the chosen entry and its rule.

    ``visitor`` is the record of ``code`` (``None`` if there is none): targeting reads it, and
    its mapping identifier, when set, is the code that is hashed.

    ``bucket(text) <= threshold`` is decided by comparing the SHA-256 digest with the
    threshold's precomputed limit (:func:`kameleoon._engine.hashing.limit_for`): the same
    answers as the doubles, without converting the digest to a number.

    ``facts``: a list of ``Configuration.fact_count`` slots (``None`` at first) shared by the
    evaluations of one pass over many flags for the same visitor, so that a condition used
    by several segments is evaluated once.
    """
    hashed: bytes | None = None
    for rule in flag.rules:
        segment = rule.segment
        if segment is not None:
            if facts is None:
                if not segment.check(visitor, code, rule.experiment_id):
                    continue
            elif not segment.memo_check(visitor, code, rule.experiment_id, facts):
                continue
        if hashed is None:
            hashed = hashed_code(visitor, code)
        limit = rule.exposure_limit
        if limit is not None and _sha(hashed + rule.rule_suffix).digest() <= limit:
            if rule.type is TARGETED_DELIVERY:
                return (rule.entries[0] if rule.entries else None), rule
            draw = _sha(hashed + rule.experiment_suffix).digest()
            for entry in rule.entries:
                if entry.limit is not None and draw <= entry.limit:
                    return entry, rule
        elif rule.type is TARGETED_DELIVERY:
            break
    return None, None


def hashed_code(visitor: Visitor | None, code: str) -> bytes:
    """The bytes that bucketing hashes: the visitor's mapping identifier when it has one (a
    linked code decides as its anonymous visitor, spec §4.4), else its code."""
    extra = visitor.extra if visitor is not None else None
    mapping = extra.mapping if extra is not None else None
    return (code if mapping is None else mapping).encode("utf-8", "surrogatepass")


def resolve_key(flag: Flag, entry: VariationEntry | None, rule: Rule | None) -> Any:
    """The variation key served: the entry's, else the flag's default variation."""
    if entry is not None:
        return entry.variation_key
    if rule is not None and rule.type is EXPERIMENTATION:
        return OFF
    return flag.default_variation_key
