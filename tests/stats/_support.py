"""Shared helpers for the stats tests: reference comparison and hypothesis strategies."""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass

import numpy as np
from hypothesis import strategies as st

from kameleoon_server.stats import (
    CupedRatioSums,
    CupedSums,
    MeanSums,
    ProportionSums,
    RatioSums,
)

# --- comparison with published reference values -------------------------------------------


def assert_ref(actual: float, expected: str) -> None:
    """``actual`` matches a published value to 1e-5 relative, or to its printed precision.

    The spec's tables print most values rounded to 5 decimals (upstream compares at 5
    decimals), so a value printed as ``-0.02`` only promises ``|x + 0.02| <= 5e-6``.
    """
    value = float(expected)
    if math.isinf(value):
        assert actual == value, (actual, expected)
        return
    decimals = len(expected.split(".")[1]) if "." in expected and "e" not in expected else 0
    tolerance = max(1e-5 * abs(value), 0.5 * 10.0**-decimals if decimals else 0.0)
    assert math.isclose(actual, value, rel_tol=0.0, abs_tol=tolerance), (actual, expected)


def assert_rel(actual: float, expected: float, rel: float = 1e-5) -> None:
    """``actual`` equals ``expected`` to ``rel`` relative tolerance (inf must match exactly)."""
    if math.isinf(expected):
        assert actual == expected
    else:
        assert math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-12), (actual, expected)


def numbers_in(obj: object) -> list[float]:
    """Every float inside a (nested) result dataclass or tuple."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return [x for f in fields(obj) for x in numbers_in(getattr(obj, f.name))]
    if isinstance(obj, (tuple, list)):
        return [x for item in obj for x in numbers_in(item)]
    if isinstance(obj, float) and not isinstance(obj, bool):
        return [obj]
    return []


def assert_no_nan(obj: object) -> None:
    """No NaN anywhere in a result (infinite interval bounds are allowed)."""
    assert not any(math.isnan(x) for x in numbers_in(obj)), obj


# --- sums from raw unit-level data ---------------------------------------------------------


def mean_sums(x: np.ndarray) -> MeanSums:
    return MeanSums(n=float(len(x)), sum=float(x.sum()), sum_squares=float((x * x).sum()))


def proportion_sums(x: np.ndarray) -> ProportionSums:
    return ProportionSums(n=float(len(x)), sum=float(x.sum()))


def ratio_sums(m: np.ndarray, d: np.ndarray) -> RatioSums:
    return RatioSums(float(len(m)), mean_sums(m), mean_sums(d), float((m * d).sum()))


def cuped_sums(y: np.ndarray, x: np.ndarray) -> CupedSums:
    return CupedSums(float(len(y)), mean_sums(y), mean_sums(x), float((y * x).sum()))


def cuped_ratio_sums(m: np.ndarray, d: np.ndarray, mp: np.ndarray, dp: np.ndarray) -> CupedRatioSums:
    return CupedRatioSums(
        n=float(len(m)),
        numerator=mean_sums(m),
        denominator=mean_sums(d),
        numerator_pre=mean_sums(mp),
        denominator_pre=mean_sums(dp),
        sum_num_den=float((m * d).sum()),
        sum_num_num_pre=float((m * mp).sum()),
        sum_num_den_pre=float((m * dp).sum()),
        sum_num_pre_den=float((mp * d).sum()),
        sum_num_pre_den_pre=float((mp * dp).sum()),
        sum_den_den_pre=float((d * dp).sum()),
    )


def revenue_like(rng: np.random.Generator, n: int, lift: float = 0.0) -> np.ndarray:
    """Skewed non-negative per-unit values with many zeros."""
    buys = rng.random(n) < 0.3 * (1.0 + lift)
    return np.where(buys, rng.lognormal(1.0, 0.8, n), 0.0)


# --- hypothesis strategies -----------------------------------------------------------------

any_float = st.floats(allow_nan=True, allow_infinity=True)
"""Any float, NaN and infinities included."""
wild = st.one_of(
    any_float,
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(min_value=-3, max_value=10).map(float),
    st.sampled_from([0.0, 1.0, 2.0, -0.0, 1e-300, 1e300, 5e-324, -1e300]),
)
"""Floats biased towards degenerate values: 0, 1, 2, tiny, huge, NaN, inf."""


def _component(num: st.SearchStrategy[float]) -> st.SearchStrategy[ProportionSums | MeanSums]:
    return st.one_of(st.builds(ProportionSums, num, num), st.builds(MeanSums, num, num, num))


def arm_pairs(num: st.SearchStrategy[float] = wild) -> st.SearchStrategy[tuple[object, object]]:
    """Pairs of arms of one shape, with arbitrary (often inconsistent) numbers."""

    def pair(kind: int) -> st.SearchStrategy[tuple[object, object]]:
        comp = _component(num)
        prop = st.builds(ProportionSums, num, num)
        mean = st.builds(MeanSums, num, num, num)
        ratio = st.builds(RatioSums, num, mean, mean, num)
        cuped = st.one_of(
            st.builds(CupedSums, num, prop, prop, num), st.builds(CupedSums, num, mean, mean, num)
        )
        cuped_ratio = st.builds(CupedRatioSums, num, mean, mean, mean, mean, num, num, num, num, num, num)
        arm = [prop, mean, ratio, cuped, cuped_ratio, comp][kind]
        return st.tuples(arm, arm)

    return st.integers(0, 5).flatmap(pair)


@st.composite
def realistic_pairs(draw: st.DrawFn) -> tuple[object, object]:
    """Consistent sums computed from simulated unit data, for every metric shape."""
    seed = draw(st.integers(0, 2**32 - 1))
    n_a, n_b = draw(st.integers(2, 400)), draw(st.integers(2, 400))
    kind = draw(st.sampled_from(["proportion", "mean", "ratio", "cuped", "cuped_ratio"]))
    rng = np.random.default_rng(seed)

    def arm(n: int) -> object:
        if kind == "proportion":
            return proportion_sums((rng.random(n) < rng.uniform(0.05, 0.95)).astype(float))
        y, x = revenue_like(rng, n), revenue_like(rng, n)
        d = rng.integers(1, 5, n).astype(float)
        if kind == "mean":
            return mean_sums(y)
        if kind == "ratio":
            return ratio_sums(y, d)
        if kind == "cuped":
            return cuped_sums(y + 0.5 * x, x)
        return cuped_ratio_sums(y + 0.5 * x, d, x, rng.integers(1, 5, n).astype(float))

    return arm(n_a), arm(n_b)
