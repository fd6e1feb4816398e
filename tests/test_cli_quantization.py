"""The quantization-model options of the CLI and the ranking of `evaluate --compare`."""

import json

import numpy as np
import pytest

from gcdesign import load_design
from gcdesign.cli import main


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_quantization_flag_old_name_and_bucket_size(tmp_path, capsys):
    out_file = tmp_path / "d.json"
    code, out, _ = _run(
        [
            "design",
            "--example",
            "toy-n8",
            "--quantization",
            "tight",
            "--bucket-size",
            "16",
            "-o",
            str(out_file),
        ],
        capsys,
    )
    assert code == 0 and "quantization    tight, bucket size 16" in out
    d = load_design(out_file)
    assert (d.quantization.kind, d.bucket_size) == ("tight", 16)
    code, out, err = _run(
        ["design", "--example", "toy-n8", "--kappa", "raw", "--bucket-size", "none", "--json"],
        capsys,  # --kappa: the old name, for one release
    )
    summary = json.loads(out)
    assert code == 0 and summary["quantization"] == "raw" and summary["bucket_size"] is None
    deprecated = "--kappa is deprecated and will be removed in the next release; use --quantization."
    assert err == f"gcdesign: warning: {deprecated}\n"
    code, out, err = _run(
        ["design", "--example", "toy-n8", "--kappa", "raw", "--quantization", "raw"], capsys
    )
    assert code == 2 and err == "gcdesign: error: give --quantization only; --kappa is its deprecated name.\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bucket-size", "0"], "`bucket-size` must be an integer in [1, 10^9] or 'none', got 0."),
        (["--bucket-size", "abc"], "`bucket-size` must be an integer in [1, 10^9] or 'none'"),
        (["--bucket-size", "1e10"], "`bucket-size` must be an integer in [1, 10^9] or 'none', got '1e10'."),
        (["--quantization", "calibrated"], "--quantization calibrated needs --samples FILE.npy"),
        (["--quantization", "-1"], "`quantization`"),
        (["--quantization", "fudge"], "Unknown quantization model 'fudge'"),
    ],
)
def test_bad_quantization_options_exit_2(argv, message, capsys):
    code, out, err = _run(["design", "--example", "toy-n8", *argv], capsys)
    assert code == 2 and message in err and err.count("\n") == 1


def test_calibrated_from_samples(tmp_path, capsys):
    samples = tmp_path / "s.npy"
    np.save(samples, np.random.default_rng(0).normal(size=(4, 1000)))
    out_file = tmp_path / "c.npz"
    code, out, _ = _run(
        [
            "design",
            "--example",
            "toy-n8",
            "--quantization",
            "calibrated",
            "--samples",
            str(samples),
            "-o",
            str(out_file),
        ],
        capsys,
    )
    assert code == 0 and "calibrated (4 samples, d = 1000)" in out
    assert load_design(out_file).quantization.kind == "calibrated"
    np.save(samples, np.ones((4, 7)))
    code, _, err = _run(
        ["design", "--example", "toy-n8", "--quantization", "calibrated", "--samples", str(samples)], capsys
    )
    assert code == 2 and "d = 1000" in err


def test_evaluate_compare_ranks_and_names_biased_schemes(tmp_path, capsys):
    out_file = tmp_path / "d.json"
    assert main(["design", "--example", "paper-n50", "-o", str(out_file)]) == 0
    capsys.readouterr()
    code, out, _ = _run(
        ["evaluate", str(out_file), "--compare", "osgc,sgc,expander", "--trials", "200"], capsys
    )
    assert code == 0
    assert "lowest error among the unbiased schemes: design" in out
    ranking = next(line for line in out.splitlines() if line.startswith("lowest error"))
    assert "but biased" in ranking and "expander" in ranking
    errors = [float(line.split()[1]) for line in out.splitlines()[2:6]]
    assert errors == sorted(errors)
