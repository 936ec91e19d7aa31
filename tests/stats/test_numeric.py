"""Exception-free float helpers of ``_numeric``."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from kameleoon_server.stats import _numeric as num


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(1.0, 2.0, 0.5), (1.0, 0.0, math.inf), (-1.0, 0.0, -math.inf), (1.0, -0.0, -math.inf)],
)
def test_div_follows_ieee(a, b, expected):
    """Division by zero gives a signed infinity instead of raising."""
    assert num.div(a, b) == expected


def test_div_zero_by_zero_is_nan():
    """0 / 0 is NaN, not an exception."""
    assert math.isnan(num.div(0.0, 0.0))


def test_sqrt_and_exp_never_raise():
    """Negative square roots give NaN; overflowing exponentials give inf."""
    assert math.isnan(num.sqrt(-1.0))
    assert num.sqrt(4.0) == 2.0
    assert num.exp(1000.0) == math.inf
    assert num.exp(0.0) == 1.0


@settings(deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
def test_helpers_never_raise(a, b):
    """The helpers accept any floats."""
    num.div(a, b)
    num.sqrt(a)
    num.exp(a)
    num.norm_cdf(a)
    num.t_sf(a, abs(b) + 1.0)


def test_distribution_wrappers_match_scipy():
    """The wrappers return scipy's values as plain floats."""
    assert num.t_sf(2.0, 10.0) == pytest.approx(stats.t.sf(2.0, 10.0))
    assert num.t_ppf(0.975, 30.0) == pytest.approx(stats.t.ppf(0.975, 30.0))
    assert num.chi2_sf(3.0, 2.0) == pytest.approx(stats.chi2.sf(3.0, 2.0))
    assert type(num.norm_ppf(0.5)) is float


@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, math.nan])
def test_require_open_unit_rejects_outside_values(value):
    """Settings outside (0, 1) raise ValueError."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        num.require_open_unit("alpha", value)


@pytest.mark.parametrize("value", [0.0, -1.0, math.inf, math.nan])
def test_require_positive_rejects(value):
    """Non-positive or non-finite settings raise ValueError."""
    with pytest.raises(ValueError, match="finite positive"):
        num.require_positive("tuning", value)
