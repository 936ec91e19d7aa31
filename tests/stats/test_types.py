"""Input dataclasses and enums of ``_types``."""

import dataclasses
import math
from decimal import Decimal

import numpy as np
import pytest

from kameleoon_server.stats import (
    Alternative,
    CupedRatioSums,
    CupedSums,
    DifferenceType,
    ErrorCode,
    MeanSums,
    ProportionSums,
    RatioSums,
    welch_t_test,
)

INPUTS = [ProportionSums, MeanSums, RatioSums, CupedSums, CupedRatioSums]


@pytest.mark.parametrize("cls", INPUTS)
def test_inputs_are_frozen_slotted_dataclasses(cls):
    """Inputs cannot be mutated and carry no per-instance ``__dict__``."""
    params = cls.__dataclass_params__
    assert params.frozen
    assert "__slots__" in cls.__dict__


def test_inputs_reject_mutation():
    """Assigning to a field of a frozen input raises."""
    sums = MeanSums(n=3, sum=1.0, sum_squares=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sums.n = 4  # type: ignore[misc]


def test_enum_values_are_stable_wire_strings():
    """Enum values are the strings a results API will serialise."""
    assert DifferenceType.RELATIVE.value == "relative"
    assert DifferenceType.ABSOLUTE.value == "absolute"
    assert [a.value for a in Alternative] == ["two_sided", "greater", "less"]
    assert ErrorCode.ZERO_VARIANCE == "zero_variance"


def test_error_codes_are_unique():
    """Every error code has its own value."""
    values = [e.value for e in ErrorCode]
    assert len(values) == len(set(values))


def test_numbers_are_converted_to_float_on_construction():
    """int, Decimal (PostgreSQL SUM) and numpy scalars become plain floats."""
    sums = MeanSums(n=np.int64(3), sum=Decimal("1.5"), sum_squares=np.float32(2.25))
    assert sums == MeanSums(3.0, 1.5, 2.25)
    assert all(type(v) is float for v in (sums.n, sums.sum, sums.sum_squares))
    ratio = RatioSums(10, ProportionSums(10, 4), MeanSums(10, 12, 20), Decimal(5))
    assert type(ratio.sum_products) is float and type(ratio.n) is float


def test_unconvertible_numbers_become_nan_and_are_reported():
    """A value without a float form is stored as NaN; the tests flag NON_FINITE_INPUT."""
    sums = MeanSums(n=3, sum="abc", sum_squares=10**400)
    assert math.isnan(sums.sum) and math.isnan(sums.sum_squares)
    assert welch_t_test(sums, MeanSums(3, 1, 1)).error == ErrorCode.NON_FINITE_INPUT
