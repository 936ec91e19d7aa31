"""Events for results tests, and a plain-Python reference of what the results SQL computes."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kameleoon_server.results.query import Breakdown, MetricValue, SumsQuery
from kameleoon_server.storage import SQLiteStorage, Storage

SITE, EXP = 1, 5001
DAY = 24 * 3600 * 1000
T0 = 1_700_000_000_000
BROWSERS = ("CHROME", "INTERNET_EXPLORER", "FIREFOX", "SAFARI", "OPERA", "OTHER")


@dataclass
class Event:
    identity: str
    etype: int
    time_ms: int
    nonce: str
    exp_id: int | None = None
    var_id: int | None = None
    goal_id: int | None = None
    revenue: float | None = None
    negative: int | None = None
    cd_index: int | None = None
    bot: int = 0
    line: str = ""
    site_id: int = SITE

    def row(self) -> tuple[Any, ...]:
        return (
            self.site_id,
            self.identity,
            0,
            self.nonce,
            self.etype,
            self.time_ms,
            self.exp_id,
            self.var_id,
            self.goal_id,
            self.revenue,
            self.negative,
            self.cd_index,
            self.bot,
            f"nonce={self.nonce}&eventType=x&{self.line}&visitorCode={self.identity}".replace("&&", "&"),
        )


@dataclass
class Events:
    """A builder: every call adds one event with a fresh nonce (or the one given)."""

    events: list[Event] = field(default_factory=list)
    links: list[tuple[int, str, str, int]] = field(default_factory=list)
    _n: int = 0

    def _nonce(self, nonce: str | None) -> str:
        self._n += 1
        return nonce or f"{self._n:016X}"

    def exposure(self, who: str, var: int, t: int, bot: int = 0, exp: int = EXP, site: int = SITE) -> None:
        line = f"id={exp}&variationId={var}"
        self.events.append(Event(who, 2, t, self._nonce(None), exp, var, bot=bot, line=line, site_id=site))

    def conversion(
        self,
        who: str,
        goal: int,
        t: int,
        revenue: float = 0.0,
        negative: bool = False,
        bot: int = 0,
        nonce: str | None = None,
    ) -> None:
        line = f"goalId={goal}&revenue={revenue}&negative={'true' if negative else 'false'}"
        self.events.append(
            Event(who, 3, t, self._nonce(nonce), None, None, goal, revenue, int(negative), bot=bot, line=line)
        )

    def custom(self, who: str, index: int, values: list[str], t: int) -> None:
        encoded = quote(json.dumps(dict.fromkeys(values, 1), separators=(",", ":")), safe="")
        line = f"index={index}&valuesCountMap={encoded}&overwrite=true"
        self.events.append(Event(who, 4, t, self._nonce(None), cd_index=index, line=line))

    def static(
        self, who: str, t: int, device: str | None = None, browser: int | None = None, os: str | None = None
    ) -> None:
        if device is not None:
            self.events.append(Event(who, 6, t, self._nonce(None), line=f"deviceType={device}"))
        if browser is not None:
            self.events.append(
                Event(who, 6, t, self._nonce(None), line=f"browserIndex={browser}&browserVersion=1")
            )
        if os is not None:
            self.events.append(Event(who, 6, t, self._nonce(None), line=f"os={os}&osIndex=3"))

    def link(self, user: str, visitor: str) -> None:
        self.links.append((SITE, user, visitor, T0))

    def rows(self) -> list[tuple[Any, ...]]:
        return [e.row() for e in self.events]


def with_storage(where: Path | Storage, events: Events, body: Callable[[Storage], Awaitable[Any]]) -> Any:
    """Runs ``body`` on a storage holding ``events`` (``where``: a SQLite path or a new storage)."""

    async def main() -> Any:
        storage = SQLiteStorage(where) if isinstance(where, Path) else where
        await storage.open()
        try:
            await storage.ingest(events.rows(), events.links)  # type: ignore[arg-type]
            return await body(storage)
        finally:
            await storage.close()

    return asyncio.run(main())


# -- the reference: the same definitions, computed visitor by visitor ------------------------


def _dimension(query: SumsQuery, events: Events, unit_of: Callable[[str], str]) -> dict[str, str | None]:
    if query.breakdown is Breakdown.NONE:
        return {}
    latest: dict[str, Event] = {}
    for e in events.events:  # insertion order = id order
        if e.site_id != SITE or e.time_ms >= query.to_ms:
            continue
        if query.breakdown is Breakdown.CUSTOM_DATA:
            ok = e.etype == 4 and e.cd_index == query.custom_data_index
        else:
            key = {"browser": "browserIndex=", "device": "deviceType=", "os": "&os="}[query.breakdown.value]
            ok = e.etype == 6 and key in e.row()[13]
        if ok:
            latest[unit_of(e.identity)] = e
    out: dict[str, str | None] = {}
    for unit, e in latest.items():
        params = dict(p.split("=", 1) for p in e.line.split("&"))
        if query.breakdown is Breakdown.CUSTOM_DATA:
            from urllib.parse import unquote

            out[unit] = ", ".join(json.loads(unquote(params["valuesCountMap"])))
        elif query.breakdown is Breakdown.BROWSER:
            out[unit] = BROWSERS[int(params["browserIndex"])]
        else:
            out[unit] = params["deviceType" if query.breakdown is Breakdown.DEVICE else "os"]
    return out


def _unit_values(query: SumsQuery, convs: list[Event], first: int) -> dict[tuple[int, str, bool], float]:
    """(goal, kind, pre) -> the visitor's value."""
    values: dict[tuple[int, str, bool], float] = defaultdict(float)
    back = query.cuped_lookback_ms
    for c in convs:
        if c.time_ms >= query.to_ms:
            continue
        post = first <= c.time_ms < first + query.attribution_ms
        pre = back is not None and first - back <= c.time_ms < first
        if not (post or pre):
            continue
        assert c.goal_id is not None and c.revenue is not None
        values[(c.goal_id, "revenue", pre)] += -c.revenue if c.negative else c.revenue
        if not c.negative:
            values[(c.goal_id, "count", pre)] += 1
            values[(c.goal_id, "conversion", pre)] = 1
    return values


def reference(query: SumsQuery, events: Events) -> dict[tuple[int, str | None, str | None], dict[str, Any]]:
    """(variation, excluded, dimension) -> {"users": n, metric key: {column: sum}} computed unit by unit."""
    person: dict[str, str] = {}
    for _, user, visitor, _ in events.links:
        person[visitor] = min(person.get(visitor, user), user)

    def unit_of(identity: str) -> str:
        return person.get(identity, identity)

    exposures: dict[str, list[Event]] = defaultdict(list)
    convs: dict[str, dict[tuple[int, str], Event]] = defaultdict(dict)
    for e in events.events:
        if e.site_id != SITE:
            continue
        if e.etype == 2 and e.exp_id == query.experiment_id and query.from_ms <= e.time_ms < query.to_ms:
            exposures[unit_of(e.identity)].append(e)
        if e.etype == 3 and e.goal_id in query.goal_ids and not e.bot:
            convs[unit_of(e.identity)].setdefault((e.goal_id, e.nonce), e)  # a nonce counts once per person
    dims = _dimension(query, events, unit_of)
    units = {}
    for unit, seen in exposures.items():
        first = min(e.time_ms for e in seen)
        variations = {e.var_id for e in seen}
        excluded = "bot" if any(e.bot for e in seen) else "multiple" if len(variations) > 1 else None
        values = _unit_values(query, list(convs[unit].values()), first)
        units[unit] = (min(variations), excluded, dims.get(unit), values)
    caps = _percentile_caps(query, units)
    return _sums(query, units, caps)


def _percentile_caps(query: SumsQuery, units: dict[str, Any]) -> dict[str, float]:
    caps = {}
    for m in query.metrics:
        if m.cap_percentile is None:
            continue
        values = sorted(
            v
            for (_, excluded, _, vals) in units.values()
            if excluded is None and (v := vals.get((m.goal_id, m.value.value, False), 0.0)) > 0
        )
        if values:
            caps[m.key] = values[math.floor(m.cap_percentile * (len(values) - 1))]
    return caps


def _sums(query: SumsQuery, units: dict[str, Any], caps: dict[str, float]) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for variation, excluded, dimension, values in units.values():
        group = out.setdefault((variation, excluded, dimension), {"users": 0})
        group["users"] += 1
        for m in query.metrics:
            cap = m.cap if m.cap is not None else caps.get(m.key)
            y = values.get((m.goal_id, m.value.value, False), 0.0)
            x = values.get((m.goal_id, m.value.value, True), 0.0)
            if cap is not None:
                y, x = min(y, cap), min(x, cap)
            sums = group.setdefault(m.key, defaultdict(float))
            sums["main_sum"] += y
            if m.value is not MetricValue.CONVERSION:
                sums["main_sum_squares"] += y * y
            if query.cuped_lookback_ms is not None:
                sums["covariate_sum"] += x
                if m.value is not MetricValue.CONVERSION:
                    sums["covariate_sum_squares"] += x * x
                sums["main_covariate_sum_product"] += y * x
    return out


def random_experiment(seed: int, visitors: int = 400, links: bool = True) -> Events:
    """Visitors in three variations with conversions before, inside and after the window,
    negative revenue, bots, several-variation visitors, linked identities, and attributes."""
    rng = random.Random(seed)
    ev = Events()
    for i in range(visitors):
        who = f"v{i}"
        t = T0 + rng.randrange(10 * DAY)
        var = rng.choice((7001, 7002, 7003))
        bot = int(rng.random() < 0.03)
        ev.exposure(who, var, t, bot=bot)
        if rng.random() < 0.3:
            ev.exposure(who, var if rng.random() < 0.8 else 7002, t + rng.randrange(-DAY, 3 * DAY), bot=bot)
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            goal = rng.choice((42, 42, 43))
            when = t + rng.randrange(-20 * DAY, 12 * DAY)
            ev.conversion(who, goal, when, round(rng.uniform(0, 90), 2), negative=rng.random() < 0.1, bot=bot)
        if rng.random() < 0.7:
            ev.static(
                who,
                t - 1,
                device=rng.choice(("DESKTOP", "PHONE")),
                browser=rng.randrange(6),
                os=rng.choice(("LINUX", "MAC", "WINDOWS")),
            )
        if rng.random() < 0.6:
            ev.custom(who, 2, [rng.choice(("gold", "silver", "a b&c=ü"))], t)
            if rng.random() < 0.3:
                ev.custom(who, 2, ["late", "x"], t + DAY)
        if links and rng.random() < 0.1:  # the same person under a user id
            user = f"user{i % 7}"
            ev.link(user, who)
            ev.exposure(user, var, t + 5)
            ev.conversion(user, 42, t + 10, 5.0)
            ev.conversion(who, 42, t + 10, 5.0, nonce=ev.events[-1].nonce)  # same nonce, both identities
    ev.exposure("elsewhere", 7001, T0, exp=9999)
    ev.exposure("v0", 7001, T0, site=2)
    return ev
