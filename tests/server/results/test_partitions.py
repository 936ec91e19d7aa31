"""The results statement cut into visitor ranges, the other dimension form, and the SQLite plan."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kameleoon_server.results import sql
from kameleoon_server.results.dialect import SQLITE
from kameleoon_server.results.query import DAY_MS, Breakdown, MetricSpec, MetricValue, SumsAnswer, SumsQuery
from kameleoon_server.storage import SQLiteStorage

from ._data import EXP, SITE, T0, Events, random_experiment, reference, with_storage
from .test_sql import ALL, as_dict, assert_same

QUERIES = {
    "plain": SumsQuery(SITE, EXP, ALL),
    "cuped-capped": SumsQuery(
        SITE,
        EXP,
        (MetricSpec(42, "conversion"), MetricSpec(42, "revenue", cap=30.0), MetricSpec(43, "count", cap=1.0)),
        cuped_lookback_ms=7 * DAY_MS,
    ),
    "negative-cap": SumsQuery(
        SITE, EXP, (MetricSpec(42, "revenue", cap=-5.0), MetricSpec(43, "count", cap=-1.0))
    ),
    "date-range-device": SumsQuery(
        SITE, EXP, ALL[:3], from_ms=T0 + DAY_MS, to_ms=T0 + 7 * DAY_MS, breakdown=Breakdown.DEVICE
    ),
    "browser": SumsQuery(SITE, EXP, ALL[:2], breakdown=Breakdown.BROWSER, cuped_lookback_ms=DAY_MS),
    "custom-data": SumsQuery(SITE, EXP, ALL[3:], breakdown=Breakdown.CUSTOM_DATA, custom_data_index=2),
}


def _connect(tmp_path: Path, events: Events) -> sqlite3.Connection:
    async def nothing(storage: Any) -> None:
        return None

    with_storage(tmp_path / "r.db", events, nothing)
    return sqlite3.connect(tmp_path / "r.db")


@pytest.mark.parametrize("name", QUERIES)
@pytest.mark.parametrize("links", [True, False], ids=["links", "no-links"])
def test_partitions_add_up_to_the_single_statement(tmp_path: Path, name: str, links: bool) -> None:
    query = QUERIES[name]
    events = random_experiment(seed=5, visitors=600, links=links)
    conn = _connect(tmp_path, events)

    def execute(statement: str, params: Any) -> Any:
        return conn.execute(statement, params).fetchall()

    single = sql.experiment_sums(execute, query, SQLITE)
    expected = reference(query, events)
    assert_same(as_dict(single), expected)
    for partitions in (2, 3, 7):
        planned = sql.statements(execute, query, SQLITE, partitions, min_exposures=0)
        assert len(planned) == partitions
        got = sql.experiment_sums(execute, query, SQLITE, partitions, min_exposures=0)
        assert_same(as_dict(got), expected)
        assert {k: v["users"] for k, v in as_dict(got).items()} == {
            k: v["users"] for k, v in as_dict(single).items()
        }


def test_a_percentile_cap_or_a_small_experiment_takes_one_statement(tmp_path: Path) -> None:
    events = random_experiment(seed=6)
    conn = _connect(tmp_path, events)

    def execute(statement: str, params: Any) -> Any:
        return conn.execute(statement, params).fetchall()

    capped = SumsQuery(SITE, EXP, (MetricSpec(42, "revenue", cap_percentile=0.9),))
    assert not sql.partitionable(capped)
    assert len(sql.statements(execute, capped, SQLITE, 4, min_exposures=0)) == 1
    got = sql.experiment_sums(execute, capped, SQLITE, 4, min_exposures=0)
    assert got.caps["42:revenue"] is not None
    assert_same(as_dict(got), reference(capped, events))
    assert len(sql.statements(execute, QUERIES["plain"], SQLITE, 4)) == 1  # < MIN_PARTITION_EXPOSURES


def test_ranges_stay_disjoint_when_one_identity_has_most_exposures(tmp_path: Path) -> None:
    ev = Events()
    for i in range(30):
        ev.exposure("busy", 7001, T0 + i)
    ev.exposure("a", 7002, T0)
    ev.exposure("z", 7002, T0)
    ev.conversion("busy", 42, T0 + 40, 2.0)
    ev.conversion("z", 42, T0 + 1, 3.0)
    conn = _connect(tmp_path, ev)

    def execute(statement: str, params: Any) -> Any:
        return conn.execute(statement, params).fetchall()

    query = SumsQuery(SITE, EXP, (MetricSpec(42, "revenue"),))
    planned = sql.statements(execute, query, SQLITE, 4, min_exposures=0)
    assert [s.params.get("unit_low") for s in planned] == [None, "busy"]
    assert_same(
        as_dict(sql.experiment_sums(execute, query, SQLITE, 4, min_exposures=0)), reference(query, ev)
    )


@pytest.mark.parametrize("links", [True, False], ids=["links", "no-links"])
def test_the_storage_runs_partitions_in_parallel_threads(tmp_path: Path, links: bool) -> None:
    events = random_experiment(seed=8, visitors=500, links=links)
    query = QUERIES["date-range-device"]

    async def main() -> SumsAnswer:
        storage = SQLiteStorage(tmp_path / "p.db", results_partitions=3, results_min_exposures=0)
        await storage.open()
        try:
            await storage.ingest(events.rows(), events.links)  # type: ignore[arg-type]
            answers = await asyncio.gather(*(storage.experiment_sums(query) for _ in range(3)))
            assert answers[0] == answers[1] == answers[2]
            return answers[0]
        finally:
            await storage.close()

    assert_same(as_dict(asyncio.run(main())), reference(query, events))


@pytest.mark.parametrize("name", ["date-range-device", "browser", "custom-data"])
def test_the_joined_dimension_form_gives_the_same_sums_on_sqlite(tmp_path: Path, name: str) -> None:
    """PostgreSQL's form (``nested_loops=False``: dimensions joined from a CTE of the latest
    line per unit)."""
    query = QUERIES[name]
    events = random_experiment(seed=9, links=False)
    conn = _connect(tmp_path, events)
    joined = dataclasses.replace(SQLITE, nested_loops=False)

    def execute(statement: str, params: Any) -> Any:
        return conn.execute(statement, params).fetchall()

    assert "dims AS (" in sql.build_statement(query, joined, with_links=False).sql
    looked_up = query.breakdown is not Breakdown.CUSTOM_DATA  # custom data is joined on SQLite too
    assert ("dims AS (" in sql.build_statement(query, SQLITE, with_links=False).sql) != looked_up
    assert_same(
        as_dict(sql.experiment_sums(execute, query, joined, 2, min_exposures=0)), reference(query, events)
    )


def _plan(conn: sqlite3.Connection, statement: sql.Statement) -> str:
    return "\n".join(
        str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + statement.sql, statement.params)
    )


@pytest.mark.parametrize("breakdown", [Breakdown.DEVICE, Breakdown.OS, Breakdown.BROWSER])
def test_sqlite_reads_indexes_only_and_the_indexed_expressions_are_the_dialects(
    tmp_path: Path, breakdown: Breakdown
) -> None:
    conn = _connect(tmp_path, random_experiment(seed=3, links=False))
    query = SumsQuery(SITE, EXP, ALL, cuped_lookback_ms=DAY_MS, breakdown=breakdown, to_ms=T0 + DAY_MS)
    plan = _plan(conn, sql.build_statement(query, SQLITE, with_links=False, unit_range=("v1", "v5")))
    assert "COVERING INDEX events_exposures (site_id=? AND exp_id=? AND identity>? AND identity<?)" in plan
    assert "COVERING INDEX events_conversions (site_id=? AND goal_id=? AND time_ms>? AND time_ms<?)" in plan
    assert "COVERING INDEX events_exposures (site_id=? AND exp_id=? AND identity=? AND time_ms>?" in plan
    assert plan.count("INDEX events_static (site_id=? AND identity=?)") == 2  # exposed and hits
    # no scan of the events table (aliases e, x, s; "SCAN x" once: the exposed CTE)
    assert not re.search(r"^SCAN [es]$", plan, re.MULTILINE) and plan.count("SCAN x") == 1, plan

    (static,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events_static'").fetchone()
    flat = re.sub(r"\s+", " ", static).replace("( ", "(").replace(" )", ")")
    for param in ("deviceType", "browserIndex", "os"):
        assert f"({SQLITE.line_param('line', param)})" in flat


def test_the_async_runner_runs_partitions_concurrently(tmp_path: Path) -> None:
    events = random_experiment(seed=4)
    query = SumsQuery(SITE, EXP, tuple(MetricSpec(42, v) for v in MetricValue), breakdown=Breakdown.OS)
    conn = _connect(tmp_path, events)
    calls: list[str] = []

    async def execute(statement: str, params: Any) -> Any:
        calls.append(statement)
        await asyncio.sleep(0)
        return conn.execute(statement, params).fetchall()

    got = asyncio.run(sql.experiment_sums_async(execute, query, SQLITE, 3, min_exposures=0))
    assert sum(s.startswith("WITH") for s in calls) == 3
    assert_same(as_dict(got), reference(query, events))


def test_any_given_bounds_give_the_same_answer(tmp_path: Path) -> None:
    events = random_experiment(seed=12)
    conn = _connect(tmp_path, events)

    def execute(statement: str, params: Any) -> Any:
        return conn.execute(statement, params).fetchall()

    query = QUERIES["cuped-capped"]
    found = sql.statements(execute, query, SQLITE, 3, min_exposures=0)
    assert len(sql.bounds_of(found)) == 2
    for bounds in (sql.bounds_of(found), ["v3", "v1", "v3", "zz", ""], []):
        planned = sql.statements(execute, query, SQLITE, bounds=bounds)
        assert len(planned) == len(set(bounds)) + 1
        got = sql.parse_answers(query, planned, [execute(s.sql, s.params) for s in planned])
        assert_same(as_dict(got), reference(query, events))


def test_the_storage_reuses_the_bounds_of_an_experiment(tmp_path: Path) -> None:
    events = random_experiment(seed=13, visitors=300)

    async def main() -> None:
        storage = SQLiteStorage(tmp_path / "b.db", results_partitions=2, results_min_exposures=0)
        await storage.open()
        try:
            await storage.ingest(events.rows(), events.links)  # type: ignore[arg-type]
            for name in ("plain", "browser", "date-range-device"):
                got = await storage.experiment_sums(QUERIES[name])
                assert_same(as_dict(got), reference(QUERIES[name], events))
                assert list(storage._results_bounds) == [(SITE, EXP)]
        finally:
            await storage.close()

    asyncio.run(main())
