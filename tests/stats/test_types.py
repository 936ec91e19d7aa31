"""Input dataclasses and enums of ``_types``."""

import dataclasses

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
