"""The results query: stored events -> per-variation (x dimension) sufficient statistics.

One statement answers a :class:`SumsQuery` (plus a one-row probe for identity links). It is
built from CTEs that any back end can run; :mod:`.dialect` holds the two engine differences.

``exposed``  one row per unit: first exposure time, smallest and largest variation id, bot flag
``conv``     the goals' conversions from the CUPED lookback start to ``to_ms`` (bots left out),
             each with its unit's first exposure
``dims``     the unit's latest value of the breakdown attribute (optional)
``hits``     per exposed unit with conversions: its values of every goal (post and pre exposure)
``units``    one row per exposed unit: labels and values (0 for units without conversions)
``cap<i>``   the percentile cap of metric i (optional)
final        ``GROUP BY variation, excluded, dimension`` with the engine's column names

A *unit* is a person: identities linked by mapping (``visitor_links``: user id -> visitor
code) are merged under the user id, and a nonce stored under both identities counts once.

:func:`experiment_sums` (or :func:`experiment_sums_async`) runs it through any
``execute(sql, params) -> rows`` callable, so a back end only supplies a connection and its
:class:`Dialect`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from kameleoon_server.results.dialect import Dialect
from kameleoon_server.results.query import (
    Breakdown,
    Excluded,
    MetricSpec,
    MetricValue,
    SumsAnswer,
    SumsQuery,
    SumsRow,
)

__all__ = [
    "AsyncExecute",
    "Execute",
    "Statement",
    "build_statement",
    "decode_dimension",
    "experiment_sums",
    "experiment_sums_async",
    "links_probe",
    "parse_answer",
]

Execute = Callable[[str, Mapping[str, Any]], Sequence[Sequence[Any]]]
"""Runs one statement with named parameters and returns all its rows."""
AsyncExecute = Callable[[str, Mapping[str, Any]], Awaitable[Sequence[Sequence[Any]]]]
"""The same, as a coroutine."""

ET_EXPERIMENT: Final = 2
ET_CONVERSION: Final = 3
ET_CUSTOM_DATA: Final = 4
ET_STATIC_DATA: Final = 6
BROWSERS: Final = ("CHROME", "INTERNET_EXPLORER", "FIREFOX", "SAFARI", "OPERA", "OTHER")
_STATIC_PARAM: Final = {Breakdown.BROWSER: "browserIndex", Breakdown.DEVICE: "deviceType", Breakdown.OS: "os"}
_UNIT_COLUMN: Final = {MetricValue.CONVERSION: "cv", MetricValue.REVENUE: "rv", MetricValue.COUNT: "ct"}
_LABELS: Final = ("variation", "excluded", "dimension", "users")


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: dict[str, Any]
    columns: tuple[str, ...]
    """Names of the result columns, in order: labels, then ``<metric index>__<engine column>``."""


def links_probe(dialect: Dialect) -> str:
    """One row when the site has identity links (then units need the mapping join)."""
    return f"SELECT 1 FROM visitor_links WHERE site_id = {dialect.param('site')} LIMIT 1"


class _Builder:
    def __init__(self, query: SumsQuery, dialect: Dialect, with_links: bool) -> None:
        self.q, self.d, self.links = query, dialect, with_links
        self.params: dict[str, Any] = {"site": query.site_id}

    def p(self, name: str, value: Any) -> str:
        self.params[name] = value
        return self.d.param(name)

    # -- units of identity ------------------------------------------------------------------
    def unit(self) -> str:
        return "COALESCE(l.person, e.identity)" if self.links else "e.identity"

    def join(self) -> str:
        return "LEFT JOIN links l ON l.visitor_code = e.identity" if self.links else ""

    def links_cte(self) -> list[str]:
        if not self.links:
            return []
        return [
            "links AS (SELECT visitor_code, MIN(user_id) AS person FROM visitor_links"
            f" WHERE site_id = {self.d.param('site')} GROUP BY visitor_code)"
        ]

    # -- CTEs -------------------------------------------------------------------------------
    def exposed(self) -> str:
        q = self.q
        return (
            f"exposed AS (SELECT {self.unit()} AS unit, MIN(e.time_ms) AS first_ms,"
            " MIN(e.var_id) AS var_min, MAX(e.var_id) AS var_max, MAX(e.bot) AS bot"
            f" FROM events e {self.join()}"
            f" WHERE e.site_id = {self.d.param('site')} AND e.etype = {ET_EXPERIMENT}"
            f" AND e.exp_id = {self.p('exp', q.experiment_id)}"
            f" AND e.time_ms >= {self.p('from_ms', q.from_ms)} AND e.time_ms < {self.p('to_ms', q.to_ms)}"
            f" GROUP BY {self.unit()})"
        )

    def first_exposure(self) -> str:
        """Correlated lookup of an identity's first exposure (an index seek per conversion)."""
        d = self.d
        return (
            f"(SELECT MIN(x.time_ms) FROM events x WHERE x.site_id = {d.param('site')}"
            f" AND x.etype = {ET_EXPERIMENT} AND x.exp_id = {d.param('exp')} AND x.identity = e.identity"
            f" AND x.time_ms >= {d.param('from_ms')} AND x.time_ms < {d.param('to_ms')})"
        )

    def conv(self) -> str:
        """The conversions that can count, each with its unit's first exposure (``first_ms``)."""
        q = self.q
        goals = ", ".join(self.p(f"g{i}", goal) for i, goal in enumerate(q.goal_ids))
        start = q.from_ms - (q.cuped_lookback_ms or 0)
        where = (
            f"e.site_id = {self.d.param('site')} AND e.etype = {ET_CONVERSION} AND e.goal_id IN ({goals})"
            f" AND e.bot = 0 AND e.time_ms >= {self.p('conv_from', start)}"
            f" AND e.time_ms < {self.d.param('to_ms')}"
        )
        revenue = "CASE WHEN e.negative = 1 THEN -e.revenue ELSE e.revenue END"
        if not self.links:
            return (
                f"conv AS {self.d.materialized}(SELECT e.identity AS unit, e.goal_id AS goal_id,"
                " e.time_ms AS time_ms,"
                f" {revenue} AS revenue, e.negative AS negative, {self.first_exposure()} AS first_ms"
                f" FROM events e WHERE {where})"
            )
        # A nonce stored under both linked identities is one conversion of the person; the first
        # exposure of a person comes from ``exposed`` (a join), since it spans identities.
        return (
            f"conv_person AS (SELECT {self.unit()} AS unit, e.goal_id AS goal_id,"
            f" MIN(e.time_ms) AS time_ms, MAX({revenue}) AS revenue, MAX(e.negative) AS negative"
            f" FROM events e {self.join()} WHERE {where}"
            f" GROUP BY {self.unit()}, e.goal_id, e.nonce),\n"
            "conv AS (SELECT c.unit AS unit, c.goal_id AS goal_id, c.time_ms AS time_ms,"
            " c.revenue AS revenue, c.negative AS negative, x.first_ms AS first_ms"
            " FROM conv_person c JOIN exposed x ON x.unit = c.unit)"
        )

    def dims(self) -> list[str]:
        q = self.q
        if q.breakdown is Breakdown.NONE:
            return []
        if q.breakdown is Breakdown.CUSTOM_DATA:
            etype, param = ET_CUSTOM_DATA, "valuesCountMap"
            match = f"e.cd_index = {self.p('cd_index', q.custom_data_index)}"
        else:
            etype, param = ET_STATIC_DATA, _STATIC_PARAM[q.breakdown]
            match = f"e.line LIKE {self.p('dim_like', f'%&{param}=%')}"
        last = (
            f"dim_last AS (SELECT {self.unit()} AS unit, MAX(e.id) AS id FROM events e {self.join()}"
            f" WHERE e.site_id = {self.d.param('site')} AND e.etype = {etype} AND {match}"
            f" AND e.time_ms < {self.d.param('to_ms')} GROUP BY {self.unit()})"
        )
        value = self.d.line_param("e.line", param)
        # One row per unit already; the GROUP BY makes SQLite index the result for the join.
        dims = (
            f"dims AS (SELECT d.unit AS unit, MAX({value}) AS value"
            " FROM dim_last d JOIN events e ON e.id = d.id GROUP BY d.unit)"
        )
        return [last, dims]

    def hit_values(self) -> list[str]:
        """Aggregates of ``hits``: per goal, the post (and pre) value kinds some metric needs."""
        window = self.p("window", self.q.attribution_ms)
        post = f"c.time_ms >= c.first_ms AND c.time_ms < c.first_ms + {window}"
        periods = [("", post)]
        if self.q.cuped_lookback_ms is not None:
            back = self.p("lookback", self.q.cuped_lookback_ms)
            periods.append(("p", f"c.time_ms < c.first_ms AND c.time_ms >= c.first_ms - {back}"))
        out = []
        for gi, goal in enumerate(self.q.goal_ids):
            kinds = {m.value for m in self.q.metrics if m.goal_id == goal}
            for prefix, period in periods:
                cond = f"c.goal_id = {self.d.param(f'g{gi}')} AND {period}"
                if MetricValue.CONVERSION in kinds:
                    out.append(
                        f"MAX(CASE WHEN {cond} AND c.negative = 0 THEN 1 ELSE 0 END) AS {prefix}cv{gi}"
                    )
                if MetricValue.COUNT in kinds:
                    out.append(
                        f"SUM(CASE WHEN {cond} AND c.negative = 0 THEN 1 ELSE 0 END) AS {prefix}ct{gi}"
                    )
                if MetricValue.REVENUE in kinds:
                    out.append(f"SUM(CASE WHEN {cond} THEN c.revenue ELSE 0 END) AS {prefix}rv{gi}")
        return out

    def hits(self) -> str:
        """Visitor values of the exposed units that have conversions (driven by ``conv``)."""
        return (
            f"hits AS (SELECT c.unit AS unit, {', '.join(self.hit_values())}"
            " FROM conv c WHERE c.first_ms IS NOT NULL GROUP BY c.unit)"
        )

    def value_columns(self) -> list[str]:
        prefixes = ("", "p") if self.q.cuped_lookback_ms is not None else ("",)
        names = dict.fromkeys(self.column(m, prefix) for m in self.q.metrics for prefix in prefixes)
        return [f"COALESCE(h.{name}, 0) AS {name}" for name in names]

    def units(self) -> str:
        """Every exposed unit with its labels and values (0 without conversions)."""
        has_dims = self.q.breakdown is not Breakdown.NONE
        dimension = "dm.value" if has_dims else "CAST(NULL AS TEXT)"
        excluded = (
            f"CASE WHEN x.bot = 1 THEN '{Excluded.BOT.value}'"
            f" WHEN x.var_min <> x.var_max THEN '{Excluded.MULTIPLE.value}' ELSE NULL END"
        )
        return (
            f"units AS (SELECT x.unit AS unit, x.var_min AS variation, {excluded} AS excluded,"
            f" {dimension} AS dimension, {', '.join(self.value_columns())}"
            " FROM exposed x LEFT JOIN hits h ON h.unit = x.unit"
            + (" LEFT JOIN dims dm ON dm.unit = x.unit" if has_dims else "")
            + ")"
        )

    def cap_ctes(self) -> list[str]:
        out = []
        for mi, m in enumerate(self.q.metrics):
            if m.cap_percentile is None:
                continue
            column = self.column(m)
            q = self.p(f"q{mi}", float(m.cap_percentile))
            out.append(
                f"cap{mi} AS (SELECT v FROM (SELECT {column} AS v,"
                f" ROW_NUMBER() OVER (ORDER BY {column}) AS rn,"
                f" COUNT(*) OVER () AS n FROM units WHERE excluded IS NULL AND {column} > 0) t"
                f" WHERE rn - 1 <= {q} * (n - 1) ORDER BY rn DESC LIMIT 1)"
            )
        return out

    # -- final aggregate --------------------------------------------------------------------
    def column(self, m: MetricSpec, prefix: str = "") -> str:
        return f"{prefix}{_UNIT_COLUMN[m.value]}{self.q.goal_ids.index(m.goal_id)}"

    def capped(self, mi: int, m: MetricSpec, column: str) -> str:
        if m.cap is not None:
            cap = self.p(f"cap{mi}", float(m.cap))
        elif m.cap_percentile is not None:
            cap = f"(SELECT v FROM cap{mi})"
        else:
            return column
        return f"CASE WHEN {column} > {cap} THEN {cap} ELSE {column} END"

    def metric_columns(self, mi: int, m: MetricSpec) -> list[tuple[str, str]]:
        """(engine column, SQL expression) pairs of metric ``mi``."""
        y = self.capped(mi, m, self.column(m))
        squares = m.value is not MetricValue.CONVERSION
        out = [("main_sum", f"SUM({y})")]
        if squares:
            out.append(("main_sum_squares", f"SUM(({y}) * ({y}))"))
        if self.q.cuped_lookback_ms is not None:
            x = self.capped(mi, m, self.column(m, "p"))
            out.append(("covariate_sum", f"SUM({x})"))
            if squares:
                out.append(("covariate_sum_squares", f"SUM(({x}) * ({x}))"))
            out.append(("main_covariate_sum_product", f"SUM(({y}) * ({x}))"))
        if m.cap_percentile is not None:
            out.append(("cap", f"(SELECT v FROM cap{mi})"))
        return out

    def build(self) -> Statement:
        ctes = [*self.links_cte(), self.exposed(), self.conv(), *self.dims(), self.hits(), self.units()]
        ctes += self.cap_ctes()
        columns = list(_LABELS)
        selects = ["variation", "excluded", "dimension", "COUNT(*)"]
        for mi, m in enumerate(self.q.metrics):
            for name, expr in self.metric_columns(mi, m):
                columns.append(f"{mi}__{name}")
                selects.append(expr)
        sql = (
            "WITH "
            + ",\n".join(ctes)
            + "\nSELECT "
            + ", ".join(selects)
            + " FROM units GROUP BY variation, excluded, dimension"
        )
        return Statement(sql, self.params, tuple(columns))


def build_statement(query: SumsQuery, dialect: Dialect, with_links: bool) -> Statement:
    """The results statement for ``query`` in ``dialect``."""
    if not query.metrics:
        raise ValueError("at least one metric is needed")
    return _Builder(query, dialect, with_links).build()


def decode_dimension(breakdown: Breakdown, raw: str | None) -> str | None:
    """The label of a stored raw breakdown value (percent-encoded, as cut from the line)."""
    if raw is None:
        return None
    text = unquote(raw)
    if breakdown is Breakdown.BROWSER:
        return BROWSERS[int(text)] if text.isdigit() and int(text) < len(BROWSERS) else text
    if breakdown is Breakdown.CUSTOM_DATA:
        try:
            values = json.loads(text)
        except ValueError:
            return text
        return ", ".join(str(v) for v in values) if isinstance(values, dict) else text
    return text


def _parse_row(query: SumsQuery, columns: Sequence[str], row: Sequence[Any]) -> SumsRow:
    values = dict(zip(columns, row, strict=True))
    users = int(values["users"])
    metrics: dict[str, dict[str, float]] = {m.key: {"users": float(users)} for m in query.metrics}
    for column in columns[len(_LABELS) :]:
        index, _, name = column.partition("__")
        value = values[column]
        if name != "cap":
            metrics[query.metrics[int(index)].key][name] = 0.0 if value is None else float(value)
    excluded = values["excluded"]
    return SumsRow(
        variation=int(values["variation"]),
        excluded=None if excluded is None else Excluded(excluded),
        dimension=decode_dimension(query.breakdown, values["dimension"]),
        users=users,
        metrics=metrics,
    )


def _merge(rows: list[SumsRow]) -> tuple[SumsRow, ...]:
    """Adds up rows whose labels became equal once decoded (sums are additive)."""
    merged: dict[tuple[int, Excluded | None, str | None], SumsRow] = {}
    for row in rows:
        key = (row.variation, row.excluded, row.dimension)
        seen = merged.get(key)
        if seen is None:
            merged[key] = row
            continue
        metrics = {k: {c: v + row.metrics[k][c] for c, v in cols.items()} for k, cols in seen.metrics.items()}
        merged[key] = SumsRow(row.variation, row.excluded, row.dimension, seen.users + row.users, metrics)
    return tuple(merged.values())


def _caps(query: SumsQuery, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, float | None]:
    caps: dict[str, float | None] = {}
    for position, column in enumerate(columns):
        index, _, name = column.partition("__")
        if name == "cap":
            found = rows[0][position] if rows else None
            caps[query.metrics[int(index)].key] = None if found is None else float(found)
    return caps


def parse_answer(query: SumsQuery, statement: Statement, rows: Sequence[Sequence[Any]]) -> SumsAnswer:
    """The answer made of the rows of ``statement``."""
    parsed = [_parse_row(query, statement.columns, row) for row in rows]
    return SumsAnswer(_merge(parsed), _caps(query, statement.columns, rows))


def experiment_sums(execute: Execute, query: SumsQuery, dialect: Dialect) -> SumsAnswer:
    """Runs the results query through ``execute`` (a connection of ``dialect``)."""
    with_links = bool(execute(links_probe(dialect), {"site": query.site_id}))
    statement = build_statement(query, dialect, with_links)
    return parse_answer(query, statement, execute(statement.sql, statement.params))


async def experiment_sums_async(execute: AsyncExecute, query: SumsQuery, dialect: Dialect) -> SumsAnswer:
    """:func:`experiment_sums` for an asynchronous driver (e.g. a psycopg connection pool)."""
    with_links = bool(await execute(links_probe(dialect), {"site": query.site_id}))
    statement = build_statement(query, dialect, with_links)
    return parse_answer(query, statement, await execute(statement.sql, statement.params))
