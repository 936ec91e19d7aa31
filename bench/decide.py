"""Decision speed and memory of the SDK, against the targets of the SDK core issue.

    python bench/decide.py [--visitors 10000] [--calls 20000] [--memory-visitors 100000]

Prints, for (a) a one-rule flag and (b) 50 flags x 3 rules with targeting trees over custom
data, browser and page URL: median and p99 microseconds per call of each decision method and
of a 7-item add_data, for 10k visitors holding typical data (3 custom data, browser, device,
page view, conversion), picked at random (then the first get_feature_variation_key of each of
10k other such visitors alone); bytes per visitor (RSS delta over 100k such visitors); and the time
and RSS of ``import kameleoon``. Each figure is followed by its target and the ratio.
Figures are measured on an offline client (no network): tracking bookkeeping is included,
sending is not.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

TARGETS_US = {
    ("a", "get_feature_variation_key"): 2.0,
    ("a", "is_feature_active"): 2.0,
    ("a", "get_feature_variable"): 2.0,
    ("b", "get_feature_variation_key"): 2.6,
    ("b", "is_feature_active"): 2.6,
    ("b", "get_feature_variable"): 2.6,
    ("b", "get_active_features"): 55.0,
}
REFERENCE_US = {  # the reference SDK 3.4.0 on this machine type, configuration (b)
    ("b", "get_feature_variation_key"): 26.0,
    ("b", "is_feature_active"): 25.0,
    ("b", "get_active_features"): 1100.0,
    ("b", "add_data"): 8.3,
}
TARGET_BYTES_PER_VISITOR = 750
TARGET_IMPORT_MB = 20.0

BROWSERS = ["CHROME", "FIREFOX", "SAFARI", "OPERA"]
URLS = [f"https://shop.example.com/{section}/{i}" for section in ("shop", "blog", "cart") for i in range(5)]


def _rule(rule_id: int, kind: str, segment: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": rule_id,
        "type": kind,
        "exposition": 0.8,
        "experimentId": rule_id * 10,
        "respoolTime": None,
        "variationByExposition": [
            {"variationKey": "off", "variationId": rule_id * 100 + 1, "exposition": 0.5},
            {"variationKey": "on", "variationId": rule_id * 100 + 2, "exposition": 0.5},
        ],
        "segment": segment,
    }


def _segment(segment_id: int, rng: random.Random) -> dict[str, Any]:
    conditions = [
        {"targetingType": "CUSTOM_DATUM", "customDataIndex": str(rng.randrange(3)),
         "valueMatchType": "EXACT", "value": rng.choice(["gold", "silver", "bronze"])},
        {"targetingType": "BROWSER", "browser": rng.choice(BROWSERS), "version": "100",
         "versionMatchType": "GREATER"},
        {"targetingType": "PAGE_URL", "url": rng.choice(["/shop", "/blog", "/cart"]),
         "matchType": "CONTAINS"},
    ]  # fmt: skip
    return {
        "id": segment_id,
        "conditionsData": {
            "firstLevelOrOperators": [True],
            "firstLevel": [
                {"orOperators": [False], "conditions": conditions[:2]},
                {"orOperators": [], "conditions": conditions[2:]},
            ],
        },
    }


def _flag(flag_id: int, rules: list[dict[str, Any]]) -> dict[str, Any]:
    variables = [
        {"key": "color", "type": "STRING", "value": "red"},
        {"key": "size", "type": "NUMBER", "value": 3},
    ]
    return {
        "id": flag_id,
        "featureKey": f"flag_{flag_id}",
        "defaultVariationKey": "off",
        "environmentEnabled": True,
        "variations": [{"key": "off", "variables": variables}, {"key": "on", "variables": variables}],
        "rules": rules,
    }


def configuration_a() -> dict[str, Any]:
    return {"featureFlags": [_flag(0, [_rule(1, "EXPERIMENTATION", None)])]}


def configuration_b() -> dict[str, Any]:
    rng = random.Random(7)
    flags = []
    for f in range(50):
        rules = [
            _rule(
                1000 + f * 3 + r,
                "TARGETED_DELIVERY" if r == 0 else "EXPERIMENTATION",
                _segment(5000 + f * 3 + r, rng),
            )
            for r in range(3)
        ]
        flags.append(_flag(f, rules))
    return {"featureFlags": flags}


def typical_data(rng: random.Random, kameleoon: Any) -> tuple[Any, ...]:
    d = kameleoon.data
    return (
        d.CustomData(0, rng.choice(["gold", "silver", "bronze"])),
        d.CustomData(1, "web"),
        d.CustomData(2, "fr"),
        d.Browser(d.BrowserType[rng.choice(BROWSERS)], float(rng.randrange(90, 130))),
        d.Device(d.DeviceType.DESKTOP),
        d.PageView(rng.choice(URLS), "Title"),
        d.Conversion(rng.randrange(1, 5), 10.0),
    )


def timed(fn: Callable[[str], Any], codes: list[str], calls: int, batch: int = 10) -> tuple[float, float]:
    """Median and p99 of per-call microseconds over batches of ``batch`` codes picked at random."""
    rng = random.Random(3)
    return timed_batches(fn, [[rng.choice(codes) for _ in range(batch)] for _ in range(calls // batch)])


def timed_once(fn: Callable[[str], Any], codes: list[str], batch: int = 10) -> tuple[float, float]:
    """Like :func:`timed`, each code called once (in a shuffled order)."""
    order = codes[:]
    random.Random(4).shuffle(order)
    return timed_batches(fn, [order[at : at + batch] for at in range(0, len(order) - batch + 1, batch)])


def timed_batches(fn: Callable[[str], Any], batches: list[list[str]]) -> tuple[float, float]:
    samples = []
    perf = time.perf_counter_ns
    for picked in batches:
        start = perf()
        for code in picked:
            fn(code)
        samples.append((perf() - start) / len(picked) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def bench_configuration(label: str, document: dict[str, Any], visitors: int, calls: int) -> None:
    import kameleoon
    from kameleoon.testing import create_client

    config = kameleoon.KameleoonClientConfig("bench", "bench", max_visitors=10 * visitors)
    client = create_client(document, config=config)
    rng = random.Random(11)
    codes = [f"{rng.getrandbits(64):016x}" for _ in range(visitors)]
    for code in codes:
        client.add_data(code, *typical_data(rng, kameleoon))
    flag = "flag_0"
    data = typical_data(rng, kameleoon)
    methods: dict[str, Callable[[str], Any]] = {
        "get_feature_variation_key": lambda code: client.get_feature_variation_key(code, flag),
        "is_feature_active": lambda code: client.is_feature_active(code, flag),
        "get_feature_variable": lambda code: client.get_feature_variable(code, flag, "color"),
        "get_active_features": client.get_active_features,
        "add_data": lambda code: client.add_data(code, *data),
    }
    print(f"\n({label}) {len(document['featureFlags'])} flag(s), {visitors} visitors with typical data")
    print(f"  {'method':<28}{'median µs':>11}{'p99 µs':>10}{'target':>9}{'ratio':>8}{'vs 3.4.0':>10}")
    for name, fn in methods.items():
        n = calls if name != "get_active_features" else max(calls // 20, 200)
        median, p99 = timed(fn, codes, n)
        target = TARGETS_US.get((label, name))
        reference = REFERENCE_US.get((label, name))
        target_text = f"{target:>9.1f}{median / target:>8.2f}" if target else f"{'-':>9}{'-':>8}"
        ref_text = f"{reference / median:>9.1f}x" if reference else f"{'-':>10}"
        print(f"  {name:<28}{median:>11.2f}{p99:>10.2f}{target_text}{ref_text}")
    # The rows above mix first and repeat decisions of each visitor, as random picks do. A
    # visitor's first decision costs more (nothing remembered yet, a new assignment recorded):
    fresh = [f"{rng.getrandbits(64):016x}" for _ in range(visitors)]
    for code in fresh:
        client.add_data(code, *typical_data(rng, kameleoon))
    median, p99 = timed_once(methods["get_feature_variation_key"], fresh)
    print(f"  {'  first of each visitor':<28}{median:>11.2f}{p99:>10.2f}{'-':>9}{'-':>8}{'-':>10}")
    client._close(timeout=0.1)


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def memory_child(visitors: int) -> None:
    import kameleoon
    from kameleoon.testing import create_client

    config = kameleoon.KameleoonClientConfig("bench", "bench", max_visitors=2 * visitors)
    client = create_client(configuration_b(), config=config)
    rng = random.Random(5)
    codes = [f"{rng.getrandbits(64):016x}" for _ in range(visitors)]
    gc.collect()
    before = rss_bytes()
    for code in codes:
        client.add_data(code, *typical_data(rng, kameleoon))
    gc.collect()
    after = rss_bytes()
    print((after - before) / visitors)


def import_child() -> None:
    start = time.perf_counter()
    import kameleoon  # noqa: F401

    elapsed = time.perf_counter() - start
    print(elapsed * 1000, rss_bytes() / 2**20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--memory-visitors", type=int, default=100_000)
    parser.add_argument("--child", choices=["memory", "import"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "memory":
        memory_child(args.memory_visitors)
        return
    if args.child == "import":
        import_child()
        return
    bench_configuration("a", configuration_a(), args.visitors, args.calls)
    bench_configuration("b", configuration_b(), args.visitors, args.calls)
    run = [sys.executable, __file__, "--memory-visitors", str(args.memory_visitors), "--child"]
    per_visitor = float(subprocess.run([*run, "memory"], capture_output=True, text=True, check=True).stdout)
    ratio = per_visitor / TARGET_BYTES_PER_VISITOR
    print(f"\nmemory: {per_visitor:.0f} bytes per visitor (RSS delta over {args.memory_visitors} visitors); "
          f"target {TARGET_BYTES_PER_VISITOR}, ratio {ratio:.2f}")  # fmt: skip
    imports = [subprocess.run([*run, "import"], capture_output=True, text=True, check=True).stdout.split()
               for _ in range(5)]  # fmt: skip
    ms = statistics.median(float(x[0]) for x in imports)
    mb = statistics.median(float(x[1]) for x in imports)
    print(f"import kameleoon: {ms:.1f} ms, {mb:.1f} MB RSS; target {TARGET_IMPORT_MB} MB, "
          f"ratio {mb / TARGET_IMPORT_MB:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
