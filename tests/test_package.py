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
    # ARCHITECTURE's public API, and no construction internals or old names
    assert {"QuantizationModel", "calibrate_quantization", "Scheme", "make_scheme", "design"} <= set(
        gcdesign.__all__
    )
    internal = {"resolve_kappa", "decompose", "group_workers", "hub_layout", "segment_layout"}
    assert not internal & set(gcdesign.__all__) and not any(hasattr(gcdesign, n) for n in internal)


def test_every_public_module_declares_all():
    import ast
    from pathlib import Path

    root = Path(gcdesign.__file__).parent
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if any(p.startswith("_") and p != "__init__" for p in parts) or parts[-1] == "__main__":
            continue  # private modules (and their packages) and the entry point
        tree = ast.parse(path.read_text())
        declared = [
            node.value
            for node in tree.body
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
        ]
        assert declared, f"{path.relative_to(root.parent)} has no __all__"
        module = importlib.import_module(".".join(p for p in parts if p != "__init__"))
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{module.__name__}.__all__ names {missing}, which it does not define"


def test_declared_dependencies_match_the_imports():
    import ast
    import re
    import tomllib
    from pathlib import Path

    root = Path(gcdesign.__file__).parent
    if not (root.parent / "pyproject.toml").exists():
        pytest.skip("installed without the source tree")
    meta = tomllib.loads((root.parent / "pyproject.toml").read_text())["project"]

    def names(requirements):
        return {re.split(r"[\[<>=!~ ;]", r)[0].lower() for r in requirements}

    core = names(meta["dependencies"])
    extras = {k: names(v) for k, v in meta["optional-dependencies"].items()}
    imported = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    distribution = {"sklearn": "scikit-learn", "distributed": "dask"}
    third_party = {distribution.get(m, m) for m in imported - set(sys.stdlib_module_names) - {"gcdesign"}}
    assert third_party <= core | set().union(*extras.values())  # every import is declared
    assert core <= third_party  # every core dependency is used
    assert "threadpoolctl" in core and "cvxpy" not in core and extras["check"] == {"cvxpy"}
    assert "gcdesign" in extras["test"]  # test pulls in the check and studies extras


def test_cross_check_without_cvxpy_says_what_to_install(monkeypatch):
    from gcdesign.structure import optimal_structure_cvxpy

    monkeypatch.setitem(sys.modules, "cvxpy", None)  # import cvxpy now raises ImportError
    with pytest.raises(ImportError, match=r"needs cvxpy: pip install 'gcdesign\[check\]'"):
        optimal_structure_cvxpy(gcdesign.ClusterProfile([0.1, 0.2], dim=3), 0.0)


def test_numba_caches_the_kernels_outside_the_installed_package(tmp_path):
    """A regular install must hold only what pip recorded: numba's cache files in
    site-packages/gcdesign/**/__pycache__ outlive `pip uninstall` and turn the folder into
    an empty namespace package (issue 20). The kernels cache in the user's cache folder,
    and a second process loads them from there."""
    import os
    import shutil
    from pathlib import Path

    package = tmp_path / "site" / "gcdesign"
    shutil.copytree(Path(gcdesign.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(package.parent), XDG_CACHE_HOME=str(tmp_path / "cache"))
    code = (
        "import numpy as np\n"
        "from gcdesign.allocation._kernels import dp_forward\n"
        "import gcdesign as gc\n"
        "gc.allocate_bits(gc.ClusterProfile([0.1, 0.3, 0.5], dim=10), budget=12, method='dp')\n"
        "print(dp_forward.stats.cache_hits.total(), dp_forward.stats.cache_misses.total())\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    written = [p for p in package.rglob("*") if p.is_file() and p.suffix in (".nbi", ".nbc")]
    assert written == []  # nothing in the package folder
    assert list((tmp_path / "cache" / "numba").rglob("_kernels.dp_forward-*.nbi"))
    hits, misses = map(int, runs[1].stdout.split())
    assert hits >= 1 and misses == 0  # the second process loaded the compiled kernel


def test_every_kernel_is_compiled_through_the_one_cache_home():
    """numba.njit used directly would cache into the installed package again (issue 20)."""
    import re
    from pathlib import Path

    root = Path(gcdesign.__file__).parent
    direct = [
        f"{path.relative_to(root)}:{i}"
        for path in root.rglob("*.py")
        if path.name != "_jit.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"numba\.(njit|jit)\b|from numba import .*\b(njit|jit)\b|cache=True", line)
    ]
    assert direct == []  # use gcdesign._jit.njit


CITING = {  # function -> the numbered result it implements, named in its References section
    "gcdesign.structure.optimal_structure": "Theorem 1",
    "gcdesign.structure.error_bound": "Lemma 1",
    "gcdesign.construction.segment_layout": "section III-A",
    "gcdesign.design.design": "Proposition 1",
    "gcdesign.allocation.allocate_bits": "Proposition 1",
    "gcdesign.allocation.dp.dp": "Lemma 3",
    "gcdesign.allocation.heuristic.heuristic": "Algorithm 1",
    "gcdesign.quantization.delta_tight": "Lemma 3.1",
    "gcdesign.quantization.resolve_quantization": "section V-B",
    "gcdesign.training.optimizers.second_moment_shrinkage": "Proposition 2",
    "gcdesign.latency.expected_kth_time": "Per-Round Tail Latency",
    "gcdesign.schemes.exact.cyclic_repetition_code": "Gradient Coding Tradeoff",
    "gcdesign.schemes.polynomial.coded_matmul": "Coded Matrix Multiplication",
    "gcdesign.schemes.baselines.random_sparse": "Random Sparse Encoding",
    "gcdesign.profile.ClusterProfile.from_latency_model": "section V-A",
}


@pytest.mark.parametrize("name", sorted(CITING))
def test_numbered_results_are_cited(name):
    module, _, attr = name.rpartition(".")
    try:
        obj = importlib.import_module(module)
    except ModuleNotFoundError:  # a method: module.Class.method
        module, _, cls = module.rpartition(".")
        obj = getattr(importlib.import_module(module), cls)
    doc = getattr(obj, attr).__doc__
    references = doc.split("References\n", 1)[1]
    assert CITING[name] in " ".join(references.split()), name


def test_a_kernels_cache_key_follows_the_kernels_it_calls(monkeypatch):
    # numba keys a cached kernel on its own bytecode; a kernel of _codec_kernels also runs
    # _rounding's routine, so the key carries a stamp of every kernel module's source
    import numpy as np

    from gcdesign import _jit
    from gcdesign._rounding import stochastic_level

    cache = stochastic_level._cache
    assert isinstance(cache, _jit._UserFunctionCache)
    codegen = stochastic_level.targetctx.codegen()
    sig = (np.float64, np.float64, np.float64)
    key = cache._index_key(sig, codegen)
    assert key[-1] == _jit.kernel_sources_stamp() and len(key[-1]) == 64
    monkeypatch.setattr(_jit, "_STAMP", ["another source"])
    assert cache._index_key(sig, codegen) != key  # an edit of any kernel module: another entry
