"""Exception-free float helpers and thin scipy wrappers returning plain ``float``.

Python raises on ``x / 0.0``, on ``math.sqrt(-1)`` and on ``math.exp(1000)``; numpy warns
instead. The engine promises neither, so every division by a quantity that may be zero,
every square root and every exponential goes through these helpers, which follow IEEE
semantics (``inf``/``nan``) silently. Callers check ``is_finite`` before publishing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from scipy import stats as _st

__all__ = [
    "all_finite",
    "chi2_sf",
    "div",
    "exp",
    "norm_cdf",
    "norm_pdf",
    "norm_ppf",
    "norm_sf",
    "require_open_unit",
    "require_positive",
    "sqrt",
    "t_cdf",
    "t_ppf",
    "t_sf",
    "to_float",
]


def all_finite(values: Iterable[float]) -> bool:
    """Whether every value is a finite real number."""
    return all(math.isfinite(v) for v in values)


def to_float(value: object) -> float:
    """``float(value)``, or NaN when the value has no float form (never raises)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return math.nan


def div(a: float, b: float) -> float:
    """``a / b`` with IEEE results for ``b == 0`` (``+-inf``, or ``nan`` for ``0/0``)."""
    if b != 0.0:
        return a / b
    if a == 0.0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def sqrt(x: float) -> float:
    """Square root; ``nan`` for negative input instead of raising."""
    return math.sqrt(x) if x >= 0.0 else math.nan


def exp(x: float) -> float:
    """Exponential; ``inf`` on overflow instead of raising."""
    return math.exp(x) if x < 709.0 else math.inf


def _call(fn: Callable[..., Any], *args: float) -> float:
    with np.errstate(all="ignore"):
        return float(fn(*args))


def norm_cdf(z: float) -> float:
    """Standard normal CDF."""
    return _call(_st.norm.cdf, z)


def norm_sf(z: float) -> float:
    """Standard normal survival function, ``1 - cdf`` without cancellation."""
    return _call(_st.norm.sf, z)


def norm_pdf(z: float) -> float:
    """Standard normal density."""
    return _call(_st.norm.pdf, z)


def norm_ppf(q: float) -> float:
    """Standard normal quantile."""
    return _call(_st.norm.ppf, q)


def t_cdf(x: float, df: float) -> float:
    """Student t CDF with ``df`` degrees of freedom."""
    return _call(_st.t.cdf, x, df)


def t_sf(x: float, df: float) -> float:
    """Student t survival function."""
    return _call(_st.t.sf, x, df)


def t_ppf(q: float, df: float) -> float:
    """Student t quantile."""
    return _call(_st.t.ppf, q, df)


def chi2_sf(x: float, df: float) -> float:
    """Chi-square survival function (the goodness-of-fit p-value)."""
    return _call(_st.chi2.sf, x, df)


def require_open_unit(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``0 < value < 1`` (settings validation, not data)."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")


def require_positive(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is finite and strictly positive."""
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
