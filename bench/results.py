"""Time to compute experiment results on SQLite: 1 M exposures and 300 k conversions.

Generates a three-variation experiment straight into a fresh SQLite storage (through
``Storage.ingest``, the same path the server uses; generation time printed separately), then
times the results computation (``Storage.experiment_sums`` + the statistics engine) for the
plain analysis and for variants (CUPED, percentile capping, a device breakdown). Prints wall
and CPU time (the machine may be shared: CPU time is the steadier figure, and a wall time below
it means the partitions ran in parallel), the load average and the ratio to the target; never
fails on speed.

Usage: python bench/results.py [--visitors 1000000] [--conversions 300000] [--keep DIR]
       [--partitions N] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

from kameleoon_server.results.assemble import ResultsRequest, compute_results
from kameleoon_server.results.experiment import ExperimentInfo, VariationInfo
from kameleoon_server.results.query import DAY_MS, Breakdown
from kameleoon_server.storage import SQLiteStorage

TARGET_SECONDS = 2.0
SITE, EXPERIMENT, GOAL = 1, 5001, 42
VARIATIONS = (7001, 7002, 7003)
DEVICES = ("DESKTOP", "PHONE", "TABLET")
START_MS = 1_700_000_000_000
CHUNK = 50_000


def _event(identity: str, nonce: int, etype: int, time_ms: int, **fields: object) -> tuple[object, ...]:
    return (
        SITE,
        identity,
        0,
        f"{nonce:016X}",
        etype,
        time_ms,
        fields.get("exp"),
        fields.get("var"),
        fields.get("goal"),
        fields.get("revenue"),
        fields.get("negative"),
        None,
        0,
        str(fields.get("line", "")),
    )


def generate(visitors: int, conversions: int, devices: bool, seed: int = 1) -> list[tuple[object, ...]]:
    """Exposure, conversion (and device) rows: variation 7002 converts 10 % more often."""
    rng = random.Random(seed)
    rows: list[tuple[object, ...]] = []
    rate = conversions / visitors
    nonce = 0
    for i in range(visitors):
        code = f"v{i:07d}"
        var = VARIATIONS[i % 3]
        t = START_MS + rng.randrange(14 * DAY_MS)
        nonce += 1
        line = f"eventType=experiment&id={EXPERIMENT}&variationId={var}&visitorCode={code}"
        rows.append(_event(code, nonce, 2, t, exp=EXPERIMENT, var=var, line=line))
        if devices:
            nonce += 1
            device = DEVICES[rng.randrange(3)]
            rows.append(_event(code, nonce, 6, t, line=f"eventType=staticData&deviceType={device}"))
        lift = 1.1 if var == 7002 else 1.0
        while rng.random() < rate * lift / (1 + rate):
            nonce += 1
            when = t + rng.randrange(-3 * DAY_MS, 7 * DAY_MS)
            revenue = round(rng.expovariate(1 / 40), 2)
            line = f"eventType=conversion&goalId={GOAL}&revenue={revenue}&negative=false"
            rows.append(_event(code, nonce, 3, when, goal=GOAL, revenue=revenue, negative=0, line=line))
    return rows


async def fill(storage: SQLiteStorage, rows: list[tuple[object, ...]]) -> None:
    for start in range(0, len(rows), CHUNK):
        await storage.ingest(rows[start : start + CHUNK], [])  # type: ignore[arg-type]


def experiment() -> ExperimentInfo:
    keys = ("control", "lift", "same")
    return ExperimentInfo(
        id=EXPERIMENT,
        flag_key="bench",
        rule_id=1,
        environment="production",
        variations=tuple(VariationInfo(v, k, 1 / 3) for v, k in zip(VARIATIONS, keys, strict=True)),
        goals={GOAL: "purchase"},
    )


async def timed(storage: SQLiteStorage, label: str, request: ResultsRequest) -> None:
    start, cpu = time.perf_counter(), time.process_time()
    document = await compute_results(storage, SITE, "bench", experiment(), request)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    lift = next(m for m in document.metrics if m.metric == "conversion").variations[1].comparison
    assert lift is not None
    print(
        f"{label:<34} {elapsed:6.2f} s ({elapsed / TARGET_SECONDS:4.2f} x target), CPU {cpu:5.2f} s"
        f"  visitors={document.population.analyzed_visitors}  lift p={lift.p_value:.2g}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=300_000)
    parser.add_argument("--keep", type=Path, help="database directory to reuse/keep")
    parser.add_argument("--partitions", type=int, help="visitor ranges run in parallel (default: cores)")
    parser.add_argument("--repeat", type=int, default=1, help="time every analysis this many times")
    args = parser.parse_args()
    directory = args.keep or Path(tempfile.mkdtemp(prefix="kameleoon-bench-results-"))
    path = directory / "results.db"
    fresh = not path.exists()
    storage = SQLiteStorage(path, results_partitions=args.partitions)
    await storage.open()
    try:
        if fresh:
            start = time.perf_counter()
            rows = generate(args.visitors, args.conversions, devices=True)
            made = time.perf_counter() - start
            await fill(storage, rows)
            total = time.perf_counter() - start
            counts = {c.etype: c.events for c in await storage.event_counts(SITE)}
            print(
                f"generated {counts.get(2, 0):,} exposures, {counts.get(3, 0):,} conversions,"
                f" {counts.get(6, 0):,} device lines: {made:.1f} s in Python + {total - made:.1f} s"
                " ingest into SQLite"
            )
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"SQLite, {storage.results_partitions} partition(s) in parallel; load average {load}")
        base = ResultsRequest(goal_ids=(GOAL,))
        for _ in range(args.repeat):
            await timed(storage, "conversion + revenue (default)", base)
            await timed(storage, "  + CUPED (14-day lookback)", base.replace(cuped=True))
            await timed(storage, "  + revenue capped at 99th pct", base.replace(cap_percentile=0.99))
            await timed(storage, "  + breakdown by device", base.replace(breakdown=Breakdown.DEVICE))
    finally:
        await storage.close()
    print(f"target: results in < {TARGET_SECONDS:.0f} s for the default analysis; database: {path}")


if __name__ == "__main__":
    asyncio.run(main())
