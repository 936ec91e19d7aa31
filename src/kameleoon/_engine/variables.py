"""Feature variables: their typed values (evaluation spec §1.6), computed once where possible.

A variable whose typed value is an immutable scalar gets its public :class:`Variable` built at
parse time and shared; a value that is a list or an object (most JSON variables) is decoded
again on every call, so callers never share a mutable object with the configuration.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from kameleoon.types import Variable

__all__ = ["InvalidJsonVariable", "VariableDef", "VariationDef", "make_variable", "make_variation"]

_SCALARS = (str, int, float, bool, type(None))
_RAW_TYPES = ("BOOLEAN", "NUMBER", "STRING")


class InvalidJsonVariable(ValueError):
    """A JSON variable whose value is not valid JSON."""


@dataclass(frozen=True, slots=True)
class VariableDef:
    """A variable as configured; ``shared`` is its public form when its value is immutable."""

    key: Any
    type: Any
    raw_value: Any
    shared: Variable | None = None
    invalid_json: bool = False

    def value(self) -> Any:
        """The typed value; raises :class:`InvalidJsonVariable` for unparsable JSON text."""
        if self.shared is not None:
            return self.shared.value
        if self.invalid_json:
            raise InvalidJsonVariable(f"variable {self.key!r} holds invalid JSON")
        if self.type == "JSON":
            return json.loads(self.raw_value)
        return copy.deepcopy(self.raw_value)

    def public(self) -> Variable:
        """The :class:`Variable` handed to callers."""
        return self.shared if self.shared is not None else Variable(self.key, self.type, self.value())


@dataclass(frozen=True, slots=True)
class VariationDef:
    """A variation: its variables in order, by key (first wins), and the shared public ones."""

    key: Any
    variables: tuple[VariableDef, ...]
    by_key: dict[Any, VariableDef] = field(default_factory=dict)
    shared_public: dict[Any, Variable] | None = None  # when every variable is shared


def make_variable(key: Any, kind: Any, raw: Any) -> VariableDef:
    if kind in _RAW_TYPES:
        typed, invalid = raw, False
    elif kind == "JSON" and isinstance(raw, str):
        try:
            typed, invalid = json.loads(raw), False
        except (ValueError, RecursionError):
            typed, invalid = None, True
    else:
        typed, invalid = None, False
    if invalid or not isinstance(typed, _SCALARS):
        return VariableDef(key, kind, raw, invalid_json=invalid)
    return VariableDef(key, kind, raw, shared=Variable(key, kind, typed))


def make_variation(key: Any, variables: tuple[VariableDef, ...]) -> VariationDef:
    by_key: dict[Any, VariableDef] = {}
    for variable in variables:
        by_key.setdefault(variable.key, variable)
    shared = None
    if all(v.shared is not None for v in variables):
        shared = {v.key: v.shared for v in variables if v.shared is not None}
    return VariationDef(key, variables, by_key, shared)
