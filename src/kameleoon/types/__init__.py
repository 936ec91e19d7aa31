"""Public result and option types."""

from kameleoon.types._types import RemoteVisitorDataFilter, Variable, Variation

__all__ = ["RemoteVisitorDataFilter", "Variable", "Variation"]
