"""Holm and Benjamini-Hochberg corrections (``_corrections``)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kameleoon_server.stats import (
    Alternative,
    Correction,
    ErrorCode,
    FrequentistResult,
    FrequentistSettings,
    MeanSums,
    adjust_p_values,
    adjusted_ci,
    benjamini_hochberg,
    correct_results,
    holm_bonferroni,
    welch_t_test,
)
from kameleoon_server.stats._numeric import norm_ppf

from ._support import assert_ref

p_lists = st.lists(st.floats(0, 1), max_size=40)


def test_reference_holm():
    """stats.md section 4: Holm in input order."""
    got = holm_bonferroni([0.01, 0.04, 0.03, 0.005, 0.55, 0.6])
    for g, e in zip(got, ["0.05", "0.12", "0.12", "0.03", "1", "1"], strict=True):
        assert_ref(g, e)


def test_reference_benjamini_hochberg():
    """stats.md section 4: Benjamini-Hochberg in input order."""
    got = benjamini_hochberg([0.898, 0.138, 0.007, 0.964, 0.538, 0.006, 0.138])
    expected = ["0.964", "0.2415", "0.0245", "0.964", "0.7532", "0.0245", "0.2415"]
    for g, e in zip(got, expected, strict=True):
        assert_ref(g, e)


@settings(deadline=None)
@given(p_lists, st.sampled_from([Correction.HOLM, Correction.BENJAMINI_HOCHBERG]))
def test_adjusted_values_are_valid_and_not_below_raw(ps, method):
    """Adjusted p-values are probabilities and never smaller than the raw ones."""
    adjusted = adjust_p_values(ps, method)
    assert len(adjusted) == len(ps)
    for raw, adj in zip(ps, adjusted, strict=True):
        assert raw <= adj <= 1.0


@settings(deadline=None)
@given(p_lists, st.sampled_from([Correction.HOLM, Correction.BENJAMINI_HOCHBERG]))
def test_corrections_preserve_the_order_of_p_values(ps, method):
    """A smaller raw p-value never gets a larger adjusted one (monotone)."""
    adjusted = adjust_p_values(ps, method)
    for i in range(len(ps)):
        for j in range(len(ps)):
            if ps[i] < ps[j]:
                assert adjusted[i] <= adjusted[j]


@settings(deadline=None)
@given(p_lists)
def test_holm_is_at_least_as_strict_as_bh(ps):
    """Holm (family-wise) adjusts at least as much as BH (false discovery rate)."""
    for h, b in zip(holm_bonferroni(ps), benjamini_hochberg(ps), strict=True):
        assert h >= b - 1e-15


def test_single_p_value_is_unchanged():
    """A family of one needs no correction."""
    assert holm_bonferroni([0.03]) == (0.03,)
    assert benjamini_hochberg([0.03]) == (0.03,)
    assert holm_bonferroni([]) == ()


def test_invalid_p_values_are_cleaned():
    """NaN counts as 1; values outside [0, 1] are clipped."""
    assert adjust_p_values([math.nan, -0.5, 2.0], Correction.NONE) == (1.0, 0.0, 1.0)
    assert holm_bonferroni([math.nan, 0.01]) == (1.0, 0.02)


def test_adjusted_ci_back_solves_the_standard_error():
    """SE_adj = |lift| / z(1 - p/2); interval lift +- z(1 - alpha/2) SE_adj."""
    lower, upper = adjusted_ci(0.2, 0.04)
    se = 0.2 / norm_ppf(1 - 0.02)
    assert lower == pytest.approx(0.2 - 1.959963984540054 * se)
    assert upper == pytest.approx(0.2 + 1.959963984540054 * se)


def test_adjusted_ci_excludes_zero_exactly_when_significant():
    """The interval touches 0 when the adjusted p-value equals alpha."""
    assert adjusted_ci(0.2, 0.05)[0] == pytest.approx(0.0, abs=1e-12)
    assert adjusted_ci(0.2, 0.01)[0] > 0 > adjusted_ci(0.2, 0.2)[0]


def test_adjusted_ci_one_sided_and_degenerate():
    """One-sided intervals keep their infinite side; p = 1 or zero lift is uninformative."""
    lower, upper = adjusted_ci(0.2, 0.05, alternative=Alternative.GREATER)
    assert upper == math.inf and lower == pytest.approx(0.0, abs=1e-12)
    assert adjusted_ci(-0.2, 0.05, alternative=Alternative.LESS) == (-math.inf, pytest.approx(0.0, abs=1e-12))
    assert adjusted_ci(0.2, 1.0) == (-math.inf, math.inf)
    assert adjusted_ci(0.0, 0.5) == (-math.inf, math.inf)
    assert adjusted_ci(0.2, 0.0) == (0.2, 0.2)


def test_correct_results_adjusts_family_and_skips_errors():
    """Errored results stay unchanged and are not counted in the family."""
    b = MeanSums(3461, 2422.7, 134698.29)
    good = welch_t_test(MeanSums(3407, 1396.87, 52377.9767), b)
    other = welch_t_test(MeanSums(3000, 1396.87, 52377.9767), b)
    bad = welch_t_test(MeanSums(1, 1, 1), b)
    out = correct_results([good, bad, other], Correction.HOLM)
    assert out[1] == bad and bad.error == ErrorCode.TOO_FEW_UNITS
    expected = holm_bonferroni([good.p_value, other.p_value])
    assert (out[0].p_value, out[2].p_value) == expected
    assert out[0].ci_lower < good.ci_lower
    assert correct_results([good], Correction.NONE) == (good,)


def test_correct_results_returns_frozen_results():
    """Corrected results are new FrequentistResult values with the same effect."""
    r = welch_t_test(MeanSums(100, 50, 60), MeanSums(100, 60, 80), FrequentistSettings())
    out, _ = correct_results([r, r], Correction.BENJAMINI_HOCHBERG)
    assert isinstance(out, FrequentistResult) and out.effect == r.effect


def test_methods_accept_string_values():
    """``"holm"`` works like ``Correction.HOLM``; unknown names raise ValueError."""
    assert adjust_p_values([0.01, 0.02], "holm") == holm_bonferroni([0.01, 0.02])
    assert adjusted_ci(0.2, 0.05, alternative="greater")[1] == math.inf
    with pytest.raises(ValueError, match="bonferoni"):
        adjust_p_values([0.01], "bonferoni")
