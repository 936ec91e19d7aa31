"""The results query: stored events -> per-variation (x dimension) sufficient statistics.

One statement answers a :class:`SumsQuery` (plus a one-row probe for identity links). It is
built from CTEs that any back end can run; :mod:`.dialect` holds the engine differences.

``exposed``  one row per unit: smallest and largest variation id, bot flag (and, with links,
             first exposure time)
``conv``     the goals' conversions from the CUPED lookback start to ``to_ms`` (bots left out),
             each with its unit's first exposure and labels (variations, bot flag)
``hits``     per exposed unit with conversions: labels and values of every goal (post and pre
             exposure)
``dims``     the unit's latest value of the breakdown attribute (optional; a joined CTE, or,
             for static data without links on a nested-loops dialect, a correlated lookup
             that is a ``dimension`` column of ``exposed`` and ``hits``)
``xunits``   every exposed unit's labels (variation, exclusion reason, dimension)
``hunits``   the same for the units of ``hits``, with their values
``cap<i>``   the percentile cap of metric i (optional; only units with conversions can have a
             value above 0)
``counts``   ``GROUP BY`` labels over every exposed unit: the number of visitors
``sums``     ``GROUP BY`` labels over the units with conversions: the sums
final        both added up per label; the units without conversions have the value 0 (capped:
             ``min(0, cap)``), so they only add to the counts

Splitting the visitors (``counts``, one small record per visitor) from the sums (only the
visitors with conversions, a fraction of them) keeps the work per visitor small; the per
visitor values are never joined to the whole exposed population.

A *unit* is a person: identities linked by mapping (``visitor_links``: user id -> visitor
code) are merged under the user id, and a nonce stored under both identities counts once.

Units are independent, so the statement can also be run over disjoint ranges of unit ids
(``unit_range``) and the sums added up: :func:`statements` cuts the experiment's exposures into
``partitions`` ranges of about equal size (not with a percentile cap, which needs every unit at
once). :func:`experiment_sums` (or :func:`experiment_sums_async`) runs it all through any
``execute(sql, params) -> rows`` callable, so a back end only supplies a connection and its
:class:`Dialect`; a back end with several connections can run the partitions in parallel
(:func:`statements` then :func:`parse_answers`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from kameleoon_server._wire import MAX_REVENUE
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
    "MIN_PARTITION_EXPOSURES",
    "AsyncExecute",
    "Execute",
    "Statement",
    "UnitRange",
    "bounds_of",
    "build_statement",
    "decode_dimension",
    "experiment_sums",
    "experiment_sums_async",
    "links_probe",
    "parse_answer",
    "parse_answers",
    "partitionable",
    "statements",
    "statements_async",
]

Execute = Callable[[str, Mapping[str, Any]], Sequence[Sequence[Any]]]
"""Runs one statement with named parameters and returns all its rows."""
AsyncExecute = Callable[[str, Mapping[str, Any]], Awaitable[Sequence[Sequence[Any]]]]
"""The same, as a coroutine."""
UnitRange = tuple[str | None, str | None]
"""Units whose id is ``>= low`` and ``< high`` (None: unbounded)."""

ET_EXPERIMENT: Final = 2
ET_CONVERSION: Final = 3
ET_CUSTOM_DATA: Final = 4
ET_STATIC_DATA: Final = 6
BROWSERS: Final = ("CHROME", "INTERNET_EXPLORER", "FIREFOX", "SAFARI", "OPERA", "OTHER")
MIN_PARTITION_EXPOSURES: Final = 50_000
"""Experiments with fewer exposures are computed by one statement (splitting costs more)."""
_STATIC_PARAM: Final = {Breakdown.BROWSER: "browserIndex", Breakdown.DEVICE: "deviceType", Breakdown.OS: "os"}
_UNIT_COLUMN: Final = {MetricValue.CONVERSION: "cv", MetricValue.REVENUE: "rv", MetricValue.COUNT: "ct"}
_LABELS: Final = ("variation", "excluded", "dimension", "users")
_NO_RANGE: Final[UnitRange] = (None, None)


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
    def __init__(self, query: SumsQuery, dialect: Dialect, with_links: bool, unit_range: UnitRange) -> None:
        self.q, self.d, self.links, self.range = query, dialect, with_links, unit_range
        self.params: dict[str, Any] = {"site": query.site_id}
        # Static data is indexed per visitor (schema migration 3); custom data is indexed by
        # time only (a per-visitor index would slow its ingest), so it is joined.
        self.lookup_dims = dialect.nested_loops and not with_links and query.breakdown in _STATIC_PARAM

    def p(self, name: str, value: Any) -> str:
        self.params[name] = value
        return self.d.param(name)

    # -- units of identity ------------------------------------------------------------------
    def unit(self, alias: str = "e") -> str:
        """The unit of event row ``alias``."""
        return f"COALESCE(l.person, {alias}.identity)" if self.links else f"{alias}.identity"

    def join(self, alias: str = "e") -> str:
        return f"LEFT JOIN links l ON l.visitor_code = {alias}.identity" if self.links else ""

    def links_cte(self) -> list[str]:
        if not self.links:
            return []
        return [
            "links AS (SELECT visitor_code, MIN(user_id) AS person FROM visitor_links"
            f" WHERE site_id = {self.d.param('site')} GROUP BY visitor_code)"
        ]

    def in_range(self, unit: str, seek: bool = False) -> str:
        """Conditions keeping the units of this statement's range (empty: every unit). Only
        with ``seek`` may SQLite use them to seek an index: elsewhere a range of identities
        would lure it from the right index (by time) to the one by identity of every event."""
        low, high = self.range
        if not seek:
            unit = self.d.opaque(unit)
        out = ""
        if low is not None:
            out += f" AND {unit} >= {self.p('unit_low', low)}"
        if high is not None:
            out += f" AND {unit} < {self.p('unit_high', high)}"
        return out

    # -- CTEs -------------------------------------------------------------------------------
    def exposures(self, alias: str) -> str:
        """Conditions selecting the experiment's exposures in the date range (row ``alias``)."""
        d = self.d
        return (
            f"{alias}.site_id = {d.param('site')} AND {alias}.etype = {ET_EXPERIMENT}"
            f" AND {alias}.exp_id = {self.p('exp', self.q.experiment_id)}"
            f" AND {alias}.time_ms >= {self.p('from_ms', self.q.from_ms)}"
            f" AND {alias}.time_ms < {self.p('to_ms', self.q.to_ms)}"
        )

    def exposed(self) -> str:
        # Without links the conversions read their unit's first exposure themselves (``conv``).
        first = "MIN(e.time_ms) AS first_ms, " if self.links else ""
        return (
            f"exposed AS (SELECT {self.unit()} AS unit, {first}"
            "MIN(e.var_id) AS var_min, MAX(e.var_id) AS var_max, MAX(e.bot) AS bot"
            f"{self.dim_lookup('e.identity')}"
            f" FROM events e {self.join()} WHERE {self.exposures('e')}{self.in_range(self.unit(), seek=True)}"
            f" GROUP BY {self.unit()})"
        )

    def conv(self) -> list[str]:
        """The conversions that can count, each with its unit's first exposure (``first_ms``)
        and labels (``var_min``, ``var_max``, ``bot``)."""
        q = self.q
        goals = ", ".join(self.p(f"g{i}", goal) for i, goal in enumerate(q.goal_ids))
        start = q.from_ms - (q.cuped_lookback_ms or 0)
        where = (
            f"e.site_id = {self.d.param('site')} AND e.etype = {ET_CONVERSION} AND e.goal_id IN ({goals})"
            f" AND e.bot = 0 AND e.time_ms >= {self.p('conv_from', start)}"
            f" AND e.time_ms < {self.d.param('to_ms')}{self.in_range(self.unit())}"
        )
        revenue = self.revenue()
        if not self.links:
            # Each conversion joined with its identity's exposures (an index seek each),
            # grouped back to one row per conversion. CROSS JOIN: SQLite keeps the conversions
            # as the outer loop (PostgreSQL treats it as an inner join); ``opaque`` stops SQLite
            # from carrying a unit range over to ``x`` and seeking the range, not the identity.
            return [
                "conv AS (SELECT e.identity AS unit, e.goal_id AS goal_id, e.time_ms AS time_ms,"
                f" {revenue} AS revenue, e.negative AS negative, MIN(x.time_ms) AS first_ms,"
                " MIN(x.var_id) AS var_min, MAX(x.var_id) AS var_max, MAX(x.bot) AS bot"
                " FROM events e CROSS JOIN events x"
                f" WHERE {where} AND {self.exposures('x')}"
                f" AND x.identity = {self.d.opaque('e.identity')}"
                " GROUP BY e.id, e.identity, e.goal_id, e.time_ms, e.revenue, e.negative)"
            ]
        # A nonce stored under both linked identities is one conversion of the person; the first
        # exposure of a person comes from ``exposed`` (a join), since it spans identities.
        return [
            f"conv_person AS (SELECT {self.unit()} AS unit, e.goal_id AS goal_id,"
            f" MIN(e.time_ms) AS time_ms, MAX({revenue}) AS revenue, MAX(e.negative) AS negative"
            f" FROM events e {self.join()} WHERE {where}"
            f" GROUP BY {self.unit()}, e.goal_id, e.nonce)",
            "conv AS (SELECT c.unit AS unit, c.goal_id AS goal_id, c.time_ms AS time_ms,"
            " c.revenue AS revenue, c.negative AS negative, x.first_ms AS first_ms,"
            " x.var_min AS var_min, x.var_max AS var_max, x.bot AS bot"
            " FROM conv_person c JOIN exposed x ON x.unit = c.unit)",
        ]

    def revenue(self) -> str:
        """The signed revenue of conversion row ``e``; NULL (unknown) beyond ``MAX_REVENUE``, as
        ingest stores it: a row stored otherwise (before the bound, by hand) can neither overflow
        a square (an error in PostgreSQL, infinity in SQLite) nor weigh on the results."""
        bound = self.p("max_revenue", MAX_REVENUE)
        return (
            f"CASE WHEN ABS(e.revenue) <= {bound}"
            " THEN (CASE WHEN e.negative = 1 THEN -e.revenue ELSE e.revenue END) END"
        )

    # -- breakdown dimension ----------------------------------------------------------------
    def dim_source(self) -> tuple[int, str, str]:
        """(event type, SQL condition on row ``s`` besides the unit and time, line parameter)."""
        q = self.q
        if q.breakdown is Breakdown.CUSTOM_DATA:
            return ET_CUSTOM_DATA, f"s.cd_index = {self.p('cd_index', q.custom_data_index)}", "valuesCountMap"
        param = _STATIC_PARAM[q.breakdown]
        return ET_STATIC_DATA, self.d.has_line_param("s.line", param), param

    def dims(self) -> list[str]:
        """The joined form of the dimension: the latest matching line of every unit."""
        if self.q.breakdown is Breakdown.NONE or self.lookup_dims:
            return []
        etype, match, param = self.dim_source()
        unit = self.unit("s")
        where = (
            f"FROM events s {self.join('s')} WHERE s.site_id = {self.d.param('site')} AND s.etype = {etype}"
            f" AND {match} AND s.time_ms < {self.d.param('to_ms')}{self.in_range(unit)}"
        )
        if not self.d.nested_loops:  # one pass: a window over each unit's lines, newest first
            newest = f"ROW_NUMBER() OVER (PARTITION BY {unit} ORDER BY s.id DESC)"
            lines = f"SELECT {unit} AS unit, s.line AS line, {newest} AS rn {where}"
            value = self.d.line_param("t.line", param)
            return [f"dims AS (SELECT t.unit AS unit, {value} AS value FROM ({lines}) t WHERE t.rn = 1)"]
        last = f"dim_last AS (SELECT {unit} AS unit, MAX(s.id) AS id {where} GROUP BY {unit})"
        value = self.d.line_param("e.line", param)
        # One row per unit already; the GROUP BY makes SQLite index the result for the join.
        dims = (
            f"dims AS (SELECT d.unit AS unit, MAX({value}) AS value"
            " FROM dim_last d JOIN events e ON e.id = d.id GROUP BY d.unit)"
        )
        return [last, dims]

    def dim_lookup(self, unit: str) -> str:
        """With ``lookup_dims``, the ``dimension`` column of a CTE grouped by ``unit``: a seek
        per unit in an index ordered by (site, identity, id), the latest line first. (A column
        of the grouped CTE, so that it is computed once per unit.)"""
        if self.q.breakdown is Breakdown.NONE or not self.lookup_dims:
            return ""
        etype, match, param = self.dim_source()
        return (
            f", (SELECT {self.d.line_param('s.line', param)} FROM events s"
            f" WHERE s.site_id = {self.d.param('site')} AND s.etype = {etype} AND s.identity = {unit}"
            f" AND {match} AND s.time_ms < {self.d.param('to_ms')} ORDER BY s.id DESC LIMIT 1) AS dimension"
        )

    def dimension(self, alias: str) -> tuple[str, str]:
        """(join, value): the dimension of the unit of row ``alias`` (of exposed or hits)."""
        if self.q.breakdown is Breakdown.NONE:
            return "", "CAST(NULL AS TEXT)"
        if self.lookup_dims:
            return "", f"{alias}.dimension"
        return f" LEFT JOIN dims dm_{alias} ON dm_{alias}.unit = {alias}.unit", f"dm_{alias}.value"

    # -- visitor values ---------------------------------------------------------------------
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
        """Labels and values of the exposed units that have conversions."""
        return (
            "hits AS (SELECT c.unit AS unit, MIN(c.var_min) AS var_min, MAX(c.var_max) AS var_max,"
            f" MAX(c.bot) AS bot{self.dim_lookup('c.unit')}, {', '.join(self.hit_values())}"
            " FROM conv c GROUP BY c.unit)"
        )

    def value_names(self) -> list[str]:
        prefixes = ("", "p") if self.q.cuped_lookback_ms is not None else ("",)
        return list(dict.fromkeys(self.column(m, prefix) for m in self.q.metrics for prefix in prefixes))

    def labels(self, alias: str) -> tuple[str, str]:
        """(join, label columns) of the units of row ``alias`` (exposed or hits)."""
        excluded = (
            f"CASE WHEN {alias}.bot = 1 THEN '{Excluded.BOT.value}'"
            f" WHEN {alias}.var_min <> {alias}.var_max THEN '{Excluded.MULTIPLE.value}' ELSE NULL END"
        )
        join, dimension = self.dimension(alias)
        return join, f"{alias}.var_min AS variation, {excluded} AS excluded, {dimension} AS dimension"

    def units(self) -> list[str]:
        """``xunits`` (every exposed unit) and ``hunits`` (those with conversions, with values)."""
        xjoin, xlabels = self.labels("x")
        hjoin, hlabels = self.labels("h")
        values = ", ".join(f"h.{name} AS {name}" for name in self.value_names())
        return [
            f"xunits AS (SELECT {xlabels} FROM exposed x{xjoin})",
            f"hunits AS (SELECT {hlabels}, {values} FROM hits h{hjoin})",
        ]

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
                f" COUNT(*) OVER () AS n FROM hunits WHERE excluded IS NULL AND {column} > 0) t"
                f" WHERE rn - 1 <= {q} * (n - 1) ORDER BY rn DESC LIMIT 1)"
            )
        return out

    # -- aggregates -------------------------------------------------------------------------
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

    def metric_columns(self, mi: int, m: MetricSpec) -> list[tuple[str, str, str]]:
        """(engine column, sum over the units with conversions, what each unit without any
        adds) of metric ``mi``; the last is empty when it is 0 (uncapped values)."""
        y = self.capped(mi, m, self.column(m))
        zero = self.capped(mi, m, "0") if m.cap is not None or m.cap_percentile is not None else ""
        zero_square = f"({zero}) * ({zero})" if zero else ""
        squares = m.value is not MetricValue.CONVERSION
        out = [("main_sum", f"SUM({y})", zero)]
        if squares:
            out.append(("main_sum_squares", f"SUM(({y}) * ({y}))", zero_square))
        if self.q.cuped_lookback_ms is not None:
            x = self.capped(mi, m, self.column(m, "p"))
            out.append(("covariate_sum", f"SUM({x})", zero))
            if squares:
                out.append(("covariate_sum_squares", f"SUM(({x}) * ({x}))", zero_square))
            out.append(("main_covariate_sum_product", f"SUM(({y}) * ({x}))", zero_square))
        return out

    def build(self) -> Statement:
        ctes = [*self.links_cte(), self.exposed(), *self.conv(), self.hits(), *self.dims(), *self.units()]
        ctes += self.cap_ctes()
        columns = list(_LABELS)
        names, sums, finals = [], [], ["variation", "excluded", "dimension", "SUM(users)"]
        without = "(SUM(users) - SUM(hit_users))"
        for mi, m in enumerate(self.q.metrics):
            for name, expr, zero in self.metric_columns(mi, m):
                columns.append(f"{mi}__{name}")
                names.append(f"m{mi}_{name}")
                sums.append(f"{expr} AS m{mi}_{name}")
                finals.append(f"SUM(m{mi}_{name})" + (f" + {without} * ({zero})" if zero else ""))
            if m.cap_percentile is not None:
                columns.append(f"{mi}__cap")
                finals.append(f"(SELECT v FROM cap{mi})")
        labels = "variation, excluded, dimension"
        ctes += [
            f"counts AS (SELECT {labels}, COUNT(*) AS users FROM xunits GROUP BY {labels})",
            f"sums AS (SELECT {labels}, COUNT(*) AS hit_users, {', '.join(sums)}"
            f" FROM hunits GROUP BY {labels})",
            f"both_ AS (SELECT {labels}, users, 0 AS hit_users, {', '.join(f'0 AS {n}' for n in names)}"
            f" FROM counts UNION ALL SELECT {labels}, 0, hit_users, {', '.join(names)} FROM sums)",
        ]
        sql = "WITH " + ",\n".join(ctes) + "\nSELECT " + ", ".join(finals) + f" FROM both_ GROUP BY {labels}"
        return Statement(sql, self.params, tuple(columns))


def build_statement(
    query: SumsQuery, dialect: Dialect, with_links: bool, unit_range: UnitRange = _NO_RANGE
) -> Statement:
    """The results statement for ``query`` in ``dialect``, over the units of ``unit_range``."""
    if not query.metrics:
        raise ValueError("at least one metric is needed")
    return _Builder(query, dialect, with_links, unit_range).build()


def partitionable(query: SumsQuery) -> bool:
    """Whether the sums of ``query`` can be added up over disjoint unit ranges: not with a
    percentile cap, which is taken over every unit at once."""
    return all(m.cap_percentile is None for m in query.metrics)


_Request = tuple[str, Mapping[str, Any]]
_Plan = Generator[_Request, Sequence[Sequence[Any]], tuple[Statement, ...]]


def _plan(
    query: SumsQuery, dialect: Dialect, partitions: int, min_exposures: int, bounds: Sequence[str] | None
) -> _Plan:
    """Asks the database (one request per ``yield``) what it needs to build the statements."""
    with_links = bool((yield links_probe(dialect), {"site": query.site_id}))
    ranges: list[UnitRange] = [_NO_RANGE]
    if bounds is not None and partitionable(query):
        given = sorted(set(bounds))
        ranges = list(zip([None, *given], [*given, None], strict=True))
    elif partitions > 1 and partitionable(query):
        d = dialect
        params = {"site": query.site_id, "exp": query.experiment_id, "from_ms": query.from_ms}
        params["to_ms"] = query.to_ms
        where = (
            f"FROM events e WHERE e.site_id = {d.param('site')} AND e.etype = {ET_EXPERIMENT}"
            f" AND e.exp_id = {d.param('exp')} AND e.time_ms >= {d.param('from_ms')}"
            f" AND e.time_ms < {d.param('to_ms')}"
        )
        exposures = int((yield f"SELECT COUNT(*) {where}", params)[0][0])
        if exposures >= max(min_exposures, partitions):
            # Identities at equal steps of the exposures (in the index's identity order); with
            # links the units are persons, so the ranges are only about equal.
            found: list[str] = []
            for i in range(1, partitions):
                skip = {**params, "skip": exposures * i // partitions}
                rows = yield (
                    f"SELECT e.identity {where} ORDER BY e.identity LIMIT 1 OFFSET {d.param('skip')}",
                    skip,
                )
                if rows and (not found or rows[0][0] > found[-1]):
                    found.append(str(rows[0][0]))
            lows: list[str | None] = [None, *found]
            highs: list[str | None] = [*found, None]
            ranges = list(zip(lows, highs, strict=True))
    return tuple(build_statement(query, dialect, with_links, r) for r in ranges)


def statements(
    execute: Execute,
    query: SumsQuery,
    dialect: Dialect,
    partitions: int = 1,
    min_exposures: int = MIN_PARTITION_EXPOSURES,
    bounds: Sequence[str] | None = None,
) -> tuple[Statement, ...]:
    """The statements answering ``query``: one, or up to ``partitions`` over disjoint unit
    ranges (when the query is :func:`partitionable` and the experiment has at least
    ``min_exposures`` exposures). Their rows together make the answer (:func:`parse_answers`).

    ``bounds``: the unit ids where ranges start, known from an earlier call (:func:`bounds_of`),
    instead of finding them (a count and a seek per bound). Any strings give the right answer;
    the ones found split the exposures evenly."""
    plan = _plan(query, dialect, partitions, min_exposures, bounds)
    try:
        request = next(plan)
        while True:
            request = plan.send(execute(*request))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def statements_async(
    execute: AsyncExecute,
    query: SumsQuery,
    dialect: Dialect,
    partitions: int = 1,
    min_exposures: int = MIN_PARTITION_EXPOSURES,
    bounds: Sequence[str] | None = None,
) -> tuple[Statement, ...]:
    """:func:`statements` for an asynchronous driver."""
    plan = _plan(query, dialect, partitions, min_exposures, bounds)
    try:
        request = next(plan)
        while True:
            request = plan.send(await execute(*request))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def decode_dimension(breakdown: Breakdown, raw: str | None) -> str | None:
    """The label of a stored raw breakdown value (percent-encoded, as cut from the line)."""
    if raw is None:
        return None
    text = unquote(raw)
    if breakdown is Breakdown.BROWSER:
        known = text.isascii() and text.isdigit() and int(text) < len(BROWSERS)  # not "²"
        return BROWSERS[int(text)] if known else text
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


def bounds_of(statements: Sequence[Statement]) -> list[str]:
    """The unit ids where the ranges of ``statements`` start (for :func:`statements`)."""
    return [str(s.params["unit_high"]) for s in statements if "unit_high" in s.params]


def parse_answer(query: SumsQuery, statement: Statement, rows: Sequence[Sequence[Any]]) -> SumsAnswer:
    """The answer made of the rows of ``statement``."""
    return parse_answers(query, (statement,), (rows,))


def parse_answers(
    query: SumsQuery, statements: Sequence[Statement], results: Sequence[Sequence[Sequence[Any]]]
) -> SumsAnswer:
    """The answer made of the rows of every statement of :func:`statements` (the sums of
    disjoint unit ranges add up)."""
    parsed = [
        _parse_row(query, statement.columns, row)
        for statement, rows in zip(statements, results, strict=True)
        for row in rows
    ]
    caps = _caps(query, statements[0].columns, results[0]) if len(statements) == 1 else {}
    return SumsAnswer(_merge(parsed), caps)


def experiment_sums(
    execute: Execute,
    query: SumsQuery,
    dialect: Dialect,
    partitions: int = 1,
    min_exposures: int = MIN_PARTITION_EXPOSURES,
) -> SumsAnswer:
    """Runs the results query through ``execute`` (a connection of ``dialect``), as one
    statement or, one after the other, as ``partitions`` statements (see :func:`statements`)."""
    planned = statements(execute, query, dialect, partitions, min_exposures)
    return parse_answers(query, planned, [execute(s.sql, s.params) for s in planned])


async def experiment_sums_async(
    execute: AsyncExecute,
    query: SumsQuery,
    dialect: Dialect,
    partitions: int = 1,
    min_exposures: int = MIN_PARTITION_EXPOSURES,
) -> SumsAnswer:
    """:func:`experiment_sums` for an asynchronous driver (e.g. a psycopg connection pool); the
    partitions run concurrently (in parallel when ``execute`` takes a connection per call)."""
    planned = await statements_async(execute, query, dialect, partitions, min_exposures)
    results = await asyncio.gather(*(execute(s.sql, s.params) for s in planned))
    return parse_answers(query, planned, results)
