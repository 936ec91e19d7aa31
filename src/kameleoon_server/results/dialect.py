"""Everything in the results SQL that differs between database engines, and nothing else.

The statements of :mod:`kameleoon_server.results.sql` are written in the common subset of SQLite
(3.25+, for window functions) and PostgreSQL (12+): CTEs, ``CASE``, ``COALESCE``, ``LIKE``,
``ROW_NUMBER() OVER``, scalar subqueries, ``LIMIT``. Three things are not common, so a
:class:`Dialect` supplies them:

* how a bound parameter is written (``:name`` for sqlite3, ``%(name)s`` for psycopg);
* how one query-string parameter is cut out of a stored tracking line (SQLite: ``instr``/``substr``;
  PostgreSQL: ``strpos``/``split_part``, much faster than its regular expressions);
* whether a CTE can be marked ``AS MATERIALIZED`` (SQLite 3.35+, PostgreSQL 12+); without it
  the statement is the same, only slower;
* how to keep the planner from seeking an index by a condition (``opaque``: SQLite's no-op
  unary ``+``, which PostgreSQL has no use for and does not accept on text);
* how the engine joins (``nested_loops``): SQLite only has nested loops with index seeks, so a
  visitor's breakdown value is best read by a correlated subquery (one seek in an index ordered
  like the visitors); PostgreSQL hashes, so the same value is best joined from a grouped CTE.
  Both forms are plain SQL that either engine runs and that give the same answer.

The SQLite expressions of :meth:`Dialect.line_param` for ``deviceType``, ``browserIndex`` and
``os`` are also the expressions of an index (schema migration 3 in
``kameleoon_server.storage._schema``): SQLite reads an indexed expression from the index only
when the query spells it identically, so change them together (a test checks it).

The SQL never contains a literal ``%`` (``LIKE`` patterns are bound parameters), so psycopg's
placeholder syntax needs no escaping.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Final

__all__ = ["POSTGRESQL", "SQLITE", "Dialect"]

_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _check(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    placeholder: str
    """Format of a named parameter; ``{}`` is replaced by the name."""
    materialized: str = "MATERIALIZED "
    """Keyword put after ``AS`` of a CTE that must be computed once (empty if unsupported)."""
    nested_loops: bool = False
    """True when joins are index seeks per row (SQLite): per-visitor lookups become correlated
    subqueries instead of joins with a grouped CTE."""

    def param(self, name: str) -> str:
        """The placeholder of the bound parameter ``name``."""
        return self.placeholder.format(_check(name))

    def opaque(self, expression: str) -> str:
        """``expression`` unchanged in value, that SQLite may not use to seek an index or carry
        over to another column (its no-op unary ``+``); PostgreSQL plans by statistics."""
        return f"+{expression}" if self.nested_loops else expression

    def line_param(self, column: str, name: str) -> str:
        """SQL expression: the raw (still percent-encoded) value of query-string parameter
        ``name`` in the tracking line held by ``column``, or NULL when the line lacks it."""
        _check(name)
        if self.name == "postgresql":  # string functions: about 10 times faster than a regex
            cut = f"split_part(split_part('&' || {column}, '&{name}=', 2), '&', 1)"
            return f"CASE WHEN {self.has_line_param(column, name)} THEN {cut} END"
        padded = f"('&' || {column})"
        start = f"instr({padded}, '&{name}=')"
        rest = f"substr({padded}, {start} + {len(name) + 2})"
        return f"CASE WHEN {start} = 0 THEN NULL ELSE substr({rest}, 1, instr({rest} || '&', '&') - 1) END"

    def has_line_param(self, column: str, name: str) -> str:
        """SQL condition: the line in ``column`` has parameter ``name`` (``line_param`` is not
        NULL). SQLite spells it with ``line_param`` itself, the expression of its indexes."""
        if self.name == "postgresql":
            return f"strpos('&' || {column}, '&{_check(name)}=') > 0"
        return f"{self.line_param(column, name)} IS NOT NULL"


SQLITE: Final = Dialect(
    "sqlite", ":{}", "MATERIALIZED " if sqlite3.sqlite_version_info >= (3, 35) else "", nested_loops=True
)
POSTGRESQL: Final = Dialect("postgresql", "%({})s")
