import doctest
import importlib
import subprocess
import sys

import pytest

import gcdesign

HEAVY = ("numba", "cvxpy", "ortools", "matplotlib", "networkx", "sklearn", "dask")


def test_import_is_light():
    code = f"import sys, gcdesign; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_api_is_exported():
    for name in gcdesign.__all__:
        assert hasattr(gcdesign, name), name


@pytest.mark.parametrize(
    "module",
    ["gcdesign.profile", "gcdesign.structure", "gcdesign.construction", "gcdesign.design"],
)
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
