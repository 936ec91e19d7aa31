"""The results query on a real storage (SQLite and PostgreSQL) against a visitor-by-visitor
Python reference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kameleoon_server.results import sql
from kameleoon_server.results.dialect import POSTGRESQL, SQLITE
from kameleoon_server.results.query import DAY_MS, Breakdown, MetricSpec, MetricValue, SumsAnswer, SumsQuery
from kameleoon_server.stats import ComponentType, MetricShape, StatisticType, required_columns
from kameleoon_server.storage import Storage

from ._data import EXP, SITE, T0, Events, random_experiment, reference, with_storage

ALL = tuple(MetricSpec(g, v) for g in (42, 43) for v in MetricValue)


NewStorage = Callable[..., Storage]


def answer(where: Path | NewStorage, events: Events, query: SumsQuery) -> SumsAnswer:
    """The storage's answer: SQLite in the folder ``where``, or a new storage of the back end
    under test (``new_storage``: SQLite and PostgreSQL, see conftest)."""

    async def body(storage: Any) -> SumsAnswer:
        result: SumsAnswer = await storage.experiment_sums(query)
        return result

    storage = where / "r.db" if isinstance(where, Path) else where(ingest_process=False)
    return with_storage(storage, events, body)


def as_dict(result: SumsAnswer) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in result.rows:
        key = (row.variation, row.excluded.value if row.excluded else None, row.dimension)
        assert key not in out
        out[key] = {"users": row.users} | {
            k: {c: v for c, v in cols.items() if c != "users"} for k, cols in row.metrics.items()
        }
    return out


def assert_same(got: dict[Any, Any], expected: dict[Any, Any]) -> None:
    assert set(got) == set(expected)
    for key, group in expected.items():
        assert got[key]["users"] == group["users"], key
        for metric, sums in group.items():
            if metric != "users":
                assert got[key][metric] == pytest.approx(dict(sums), rel=1e-9, abs=1e-9), (key, metric)


@pytest.mark.parametrize(
    "query",
    [
        SumsQuery(SITE, EXP, ALL),
        SumsQuery(SITE, EXP, ALL, cuped_lookback_ms=14 * DAY_MS),
        SumsQuery(SITE, EXP, ALL, from_ms=T0 + 2 * DAY_MS, to_ms=T0 + 8 * DAY_MS, attribution_ms=DAY_MS // 2),
        SumsQuery(
            SITE,
            EXP,
            (MetricSpec(42, "revenue", cap=30.0), MetricSpec(42, "count", cap=1.0)),
            cuped_lookback_ms=3 * DAY_MS,
        ),
        SumsQuery(
            SITE,
            EXP,
            (MetricSpec(42, "revenue", cap_percentile=0.9), MetricSpec(43, "count", cap_percentile=0.5)),
            cuped_lookback_ms=7 * DAY_MS,
        ),
        SumsQuery(SITE, EXP, ALL[:3], breakdown=Breakdown.CUSTOM_DATA, custom_data_index=2),
        SumsQuery(SITE, EXP, ALL[:3], breakdown=Breakdown.BROWSER, to_ms=T0 + 6 * DAY_MS),
        SumsQuery(SITE, EXP, ALL[:3], breakdown=Breakdown.DEVICE),
        SumsQuery(SITE, EXP, ALL[:3], breakdown=Breakdown.OS, cuped_lookback_ms=DAY_MS),
    ],
    ids=[
        "plain",
        "cuped",
        "date-range",
        "absolute-cap",
        "percentile-cap",
        "custom-data",
        "browser",
        "device",
        "os",
    ],
)
@pytest.mark.parametrize("links", [True, False], ids=["links", "no-links"])
def test_sums_equal_a_visitor_by_visitor_computation(
    new_storage: NewStorage, query: SumsQuery, links: bool
) -> None:
    events = random_experiment(seed=len(str(query)), links=links)
    assert_same(as_dict(answer(new_storage, events, query)), reference(query, events))


def test_first_exposure_attribution_window_bots_and_several_variations(new_storage: NewStorage) -> None:
    """A hand-checked case: every rule of what counts, one visitor each."""
    ev = Events()
    ev.exposure("a", 7001, T0)
    ev.exposure("a", 7001, T0 + 5 * DAY_MS)  # a later exposure does not move the window
    ev.conversion("a", 42, T0 - 1, 1.0)  # before exposure: not counted
    ev.conversion("a", 42, T0, 10.0)  # at exposure: counted
    ev.conversion("a", 42, T0 + 7 * DAY_MS - 1, 5.0)  # last millisecond of the window
    ev.conversion("a", 42, T0 + 7 * DAY_MS, 100.0)  # window over
    ev.conversion("a", 42, T0 + 1, 2.0, negative=True)  # a refund: subtracts, is not a conversion
    ev.exposure("b", 7002, T0)
    ev.conversion("b", 43, T0 + 1, 3.0)  # another goal
    ev.exposure("c", 7001, T0)
    ev.exposure("c", 7002, T0 + 1)  # several variations: excluded
    ev.exposure("d", 7002, T0, bot=1)  # a bot: excluded
    ev.conversion("b", 42, T0 + 2, 4.0, bot=1)  # a conversion flagged bot is ignored
    query = SumsQuery(
        SITE, EXP, (MetricSpec(42, "conversion"), MetricSpec(42, "revenue"), MetricSpec(42, "count"))
    )

    got = as_dict(answer(new_storage, ev, query))

    assert got[(7001, None, None)] == {
        "users": 1,
        "42:conversion": {"main_sum": 1.0},
        "42:revenue": {"main_sum": 13.0, "main_sum_squares": 169.0},
        "42:count": {"main_sum": 2.0, "main_sum_squares": 4.0},
    }
    assert got[(7002, None, None)]["42:conversion"] == {"main_sum": 0.0}
    assert got[(7001, "multiple", None)]["users"] == 1
    assert got[(7002, "bot", None)]["users"] == 1


def test_linked_identities_are_one_person_and_a_shared_nonce_counts_once(new_storage: NewStorage) -> None:
    ev = Events()
    ev.link("user-1", "anon-1")
    ev.exposure("anon-1", 7001, T0)
    ev.exposure("user-1", 7001, T0 + 10)
    ev.conversion("user-1", 42, T0 + 20, 9.0, nonce="SAME")
    ev.conversion("anon-1", 42, T0 + 20, 9.0, nonce="SAME")
    query = SumsQuery(SITE, EXP, (MetricSpec(42, "count"),))

    got = as_dict(answer(new_storage, ev, query))

    assert got == {(7001, None, None): {"users": 1, "42:count": {"main_sum": 1.0, "main_sum_squares": 1.0}}}


@pytest.mark.parametrize("cuped", [False, True])
@pytest.mark.parametrize("value", list(MetricValue))
def test_columns_are_the_ones_the_engine_reads(value: MetricValue, cuped: bool) -> None:
    query = SumsQuery(SITE, EXP, (MetricSpec(42, value),), cuped_lookback_ms=DAY_MS if cuped else None)
    statement = sql.build_statement(query, SQLITE, with_links=False)
    main = ComponentType.BINOMIAL if value is MetricValue.CONVERSION else ComponentType.COUNT
    shape = MetricShape(StatisticType.MEAN_CUPED if cuped else StatisticType.MEAN, main)
    assert ["users", *(c.split("__")[1] for c in statement.columns[4:])] == list(required_columns(shape))


@pytest.mark.parametrize("links", [True, False])
def test_the_postgresql_text_has_no_literal_percent_and_only_psycopg_placeholders(links: bool) -> None:
    query = SumsQuery(SITE, EXP, ALL, cuped_lookback_ms=DAY_MS, breakdown=Breakdown.DEVICE)
    statement = sql.build_statement(query, POSTGRESQL, with_links=links)
    bare = statement.sql
    for name in statement.params:
        bare = bare.replace(f"%({name})s", "")
    assert "%" not in bare and ":" not in bare.replace("::", "")


def test_the_async_runner_gives_the_same_answer(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    events = random_experiment(seed=2)
    query = SumsQuery(SITE, EXP, ALL, cuped_lookback_ms=DAY_MS, breakdown=Breakdown.OS)
    expected = answer(tmp_path, events, query)
    conn = sqlite3.connect(tmp_path / "r.db")

    async def execute(statement: str, params: Any) -> Any:
        return conn.execute(statement, params).fetchall()

    assert asyncio.run(sql.experiment_sums_async(execute, query, SQLITE)) == expected


@pytest.mark.parametrize("cap", [-1e200, 1.5e15, float("nan"), float("inf")])
def test_a_cap_beyond_the_revenue_bound_is_refused(cap: float) -> None:
    """Capped values must stay within ±1e15, as stored revenues do, or their squares could
    overflow (PostgreSQL fails the statement)."""
    with pytest.raises(ValueError, match="a cap must be a number from -1e\\+15 to 1e\\+15"):
        MetricSpec(42, "revenue", cap=cap)
    assert MetricSpec(42, "count", cap=-1e15).cap == -1e15
