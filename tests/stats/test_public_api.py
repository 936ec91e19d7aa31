"""The package surface (``kameleoon_server.stats.__init__``) and its documentation."""

import ast
import dataclasses
import inspect
import re
import textwrap
import types
from decimal import Decimal
from pathlib import Path

import pytest

import kameleoon_server.stats as stats

RESULTS = [
    stats.ArmSummary,
    stats.BayesianResult,
    stats.BetaBinomialResult,
    stats.EffectMoments,
    stats.FrequentistResult,
    stats.MetricResult,
    stats.SrmResult,
    stats.VariationResult,
]
DATACLASSES = [
    getattr(stats, name)
    for name in stats.__all__
    if isinstance(getattr(stats, name), type) and dataclasses.is_dataclass(getattr(stats, name))
]


def test_all_lists_exactly_the_public_names():
    """``__all__`` has no duplicates and matches the public, non-module names."""
    public = {
        name
        for name, value in vars(stats).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert len(stats.__all__) == len(set(stats.__all__))
    assert set(stats.__all__) == public


def test_implementation_modules_are_private():
    """Every submodule is private; users import from the package only."""
    modules = [name for name, v in vars(stats).items() if isinstance(v, types.ModuleType)]
    assert modules and all(name.startswith("_") for name in modules)


@pytest.mark.parametrize("cls", DATACLASSES, ids=lambda c: c.__name__)
def test_value_types_are_frozen_and_slotted(cls):
    """Inputs, settings and results are immutable values with ``__slots__``."""
    assert cls.__dataclass_params__.frozen
    assert "__slots__" in cls.__dict__


def _field_docs(cls: type) -> dict[str, str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, following in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr):
            docs[node.target.id] = following.value.value
    return docs


@pytest.mark.parametrize("cls", DATACLASSES, ids=lambda c: c.__name__)
def test_every_field_has_a_docstring(cls):
    """Each field of a public dataclass is documented right below its declaration."""
    docs = _field_docs(cls)
    assert {f.name for f in dataclasses.fields(cls)} <= set(docs), cls.__name__


@pytest.mark.parametrize("cls", RESULTS, ids=lambda c: c.__name__)
def test_every_result_field_states_its_unit(cls):
    """Result fields say their unit (relative fraction, metric units, probability...)."""
    for name, doc in _field_docs(cls).items():
        assert "Unit:" in doc, f"{cls.__name__}.{name}"


def test_public_functions_have_docstrings():
    """Every public function documents its behaviour."""
    for name in stats.__all__:
        value = getattr(stats, name)
        if inspect.isfunction(value) or isinstance(value, type):
            assert value.__doc__, name


DOCS = Path(__file__).resolve().parents[2] / "docs" / "stats.md"


def test_every_public_name_is_documented():
    """docs/stats.md mentions each name of ``__all__``."""
    text = DOCS.read_text(encoding="utf-8")
    assert [name for name in stats.__all__ if name not in text] == []


def test_documentation_examples_run():
    """The Python examples of docs/stats.md execute without error."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), {})


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (stats.gaussian_risk, (0.1, 0.05)),
        (stats.msprt_p_value, (0.2, 0.05, 0.01)),
        (stats.running_p_values, ([0.5, 0.2],)),
        (stats.sequential_rho, (0.05, 5000)),
        (stats.sequential_halfwidth, (0.1, 6000, 0.05, 0.03)),
        (stats.sequential_p_value, (0.3, 0.1, 6000, 0.03)),
        (stats.srm_p_value, ([1000, 1100], [0.5, 0.5])),
        (stats.holm_bonferroni, ([0.01, 0.04],)),
        (stats.adjusted_ci, (0.2, 0.04)),
    ],
)
def test_numeric_helpers_accept_decimals(fn, args):
    """Database numbers (Decimal) give exactly the float results."""

    def to_decimal(value):
        if isinstance(value, list):
            return [to_decimal(v) for v in value]
        return Decimal(str(value))

    assert fn(*map(to_decimal, args)) == fn(*args)
