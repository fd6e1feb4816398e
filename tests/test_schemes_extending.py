"""docs/extending.md: its worked examples (an allocator, a scheme, a study, a quantizer) run as written."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from gcdesign import InputError
from gcdesign.allocation import ALLOCATOR_OPTIONS, ALLOCATORS, register_allocator
from gcdesign.schemes import SCHEMES

DOC = Path(__file__).resolve().parent.parent / "docs" / "extending.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def registries():
    """Whatever the examples register is unregistered afterwards (they may run again)."""
    before = set(SCHEMES), set(ALLOCATORS)
    yield
    for name in set(SCHEMES) - before[0]:
        del SCHEMES[name]
    for name in set(ALLOCATORS) - before[1]:
        del ALLOCATORS[name]
        ALLOCATOR_OPTIONS.pop(name, None)


def test_the_page_has_the_four_examples():
    allocator, scheme, study, quantizer = _blocks()
    assert 'register_allocator("reliable-first"' in allocator
    assert 'register_scheme(\n    "reweighted"' in scheme
    assert "def run(out: Path" in study
    assert "TERNARY = Quantizer(" in quantizer


def test_allocator_example(registries, capsys):
    namespace: dict = {}
    exec(compile(_blocks()[0], f"{DOC}:allocator", "exec"), namespace)
    mine, best = namespace["mine"], namespace["best"]
    assert mine.method == "reliable-first" and mine.optimal is None
    assert mine.bits.tolist() == [18, 2, 2, 2, 2, 2, 2, 2]  # what the page says it prints
    assert "[18  2  2  2  2  2  2  2]" in capsys.readouterr().out
    assert mine.objective < best.objective  # a valid, poor allocator: strictly worse than the DP
    assert namespace["code"].bits.tolist() == mine.bits.tolist()
    with pytest.raises(InputError, match="`name` = 'reliable-first': an allocator of that name"):
        register_allocator("reliable-first", namespace["reliable_first"])
    with pytest.raises(InputError, match="needs consecutive bit levels"):
        allocate = namespace["allocate_bits"]
        allocate(namespace["profile"], 32, method="reliable-first", options={"allow_idle": True})


def test_scheme_example(registries):
    from gcdesign.schemes import register_scheme, training_schemes
    from gcdesign.studies._common import scheme_label, style

    namespace: dict = {}
    exec(compile(_blocks()[1], f"{DOC}:scheme", "exec"), namespace)
    scheme, exact = namespace["scheme"], namespace["exact"]
    # unbiased: sum_i (1 - p_i) a_i B_ij = 1 for every partition
    column = ((1 - scheme.straggler_probs) * scheme.decoding) @ scheme.encoding
    np.testing.assert_allclose(column, 1.0, rtol=1e-12)
    assert exact.unbiased and exact.bias_sq == pytest.approx(0.0, abs=1e-12)
    assert scheme_label("reweighted") == "uncoded, reweighted"
    assert style("reweighted")["color"] == "tab:orange"
    assert SCHEMES["reweighted"].description.startswith("Uncoded, every arrived message")
    assert training_schemes()[-1] == "reweighted"  # the registration is all the training studies need
    with pytest.raises(InputError, match="`name` = 'reweighted': a scheme of that name"):
        register_scheme("reweighted", namespace["reweighted"], label="again")
    with pytest.raises(InputError, match="takes no option 'colour'"):
        namespace["make_scheme"]("reweighted", namespace["profile"], 32, colour="red")


def test_study_example(tmp_path):
    pytest.importorskip("matplotlib")
    namespace: dict = {}
    exec(compile(_blocks()[2], f"{DOC}:study", "exec"), namespace)
    result = namespace["run"](tmp_path, quick=True, rng=0, progress=False)
    assert {p.name for p in result.files} == {"errors.csv", "errors.png"}
    with open(tmp_path / "errors.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and "joint design (ours)" in result.summary
    for budget in ("3", "7"):  # the property docs/extending.md suggests testing
        errors = {r["scheme"]: float(r["relative_error"]) for r in rows if r["bits_per_worker"] == budget}
        assert errors["joint"] == min(errors.values()) and all(np.isfinite(list(errors.values())))


def test_quantizer_example(capsys):
    from gcdesign.quantization import QUANTIZER, QUANTIZERS

    namespace: dict = {}
    exec(compile(_blocks()[3], f"{DOC}:quantizer", "exec"), namespace)
    assert capsys.readouterr().out == "3 2 0.98\n"  # what the page says it prints
    ternary = namespace["TERNARY"]
    assert ternary.code == len(QUANTIZERS) and ternary.name not in QUANTIZER  # a new row, not yet shipped
    out, x = namespace["out"], namespace["x"]
    top = np.abs(x).max(axis=1, keepdims=True)
    assert np.all((out == 0) | (np.abs(out) == top))  # ternary: 0 or +-max |x_k|
    assert not out[2].any()
