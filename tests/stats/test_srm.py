"""Sample-ratio-mismatch check (``_srm``)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from kameleoon_server.stats import srm_check, srm_p_value

from ._support import assert_ref


@pytest.mark.parametrize(
    ("counts", "weights", "expected"),
    [
        ([5000, 5000], [0.5, 0.5], "1.0"),
        ([4900, 5100], None, "0.0455003"),
        ([1000, 1100, 900], [1 / 3] * 3, "4.54e-5"),
        ([1000, 1200], [0.5, 0.5], "0.000020079"),
    ],
)
def test_reference_values(counts, weights, expected):
    """stats.md section 4 (and the upstream helper test): chi-square p-values."""
    if "e" in expected:
        assert srm_p_value(counts, weights) == pytest.approx(float(expected), rel=1e-3)
    else:
        assert_ref(srm_p_value(counts, weights), expected)


def test_matches_scipy_chisquare_with_unequal_split():
    """Same statistic as scipy.stats.chisquare against the configured split."""
    counts, weights = [2100, 7000, 900], [0.2, 0.7, 0.1]
    ref = stats.chisquare(counts, [w * sum(counts) for w in weights])
    r = srm_check(counts, weights)
    assert r.chi_square == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)
    assert r.degrees_of_freedom == 2


def test_mismatch_flag_needs_low_p_and_enough_units():
    """Flagged only when p < 0.001 and each variation has at least 8 units."""
    assert srm_check([1000, 1200]).mismatch
    assert not srm_check([4900, 5100]).mismatch
    small = srm_check([0, 7, 40])
    assert small.p_value < 0.001 and not small.enough_data and not small.mismatch
    assert not srm_check([1000, 1200], threshold=1e-6).mismatch


def test_zero_weight_variations_are_skipped():
    """A variation with weight 0 adds nothing to the statistic and needs no units."""
    r = srm_check([500, 500, 0], [0.5, 0.5, 0.0])
    assert r.chi_square == 0.0 and r.p_value == 1.0 and r.enough_data


@pytest.mark.parametrize(
    ("counts", "weights"),
    [([1, math.nan], None), ([-1, 5], None), ([10, 10], [0.5]), ([10, 10], [0.0, 0.0])],
)
def test_invalid_input_gives_the_default(counts, weights):
    """Unusable input: p = 1, no mismatch, ``valid`` False."""
    r = srm_check(counts, weights)
    assert (r.p_value, r.mismatch, r.valid) == (1.0, False, False)


def test_no_units_or_one_variation_gives_p_one():
    """Nothing to compare: p = 1."""
    assert srm_p_value([0, 0]) == 1.0
    assert srm_p_value([10]) == 1.0


@settings(deadline=None)
@given(st.lists(st.floats(allow_nan=True), max_size=6), st.lists(st.floats(allow_nan=True), max_size=6))
def test_any_input_gives_a_probability(counts, weights):
    """Never raises; p-value always in [0, 1]."""
    r = srm_check(counts, weights)
    assert 0.0 <= r.p_value <= 1.0
    assert not (r.mismatch and not r.valid)
