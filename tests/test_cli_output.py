"""What the CLI prints: strict JSON, warnings after the output, words that say what is better."""

from __future__ import annotations

import json
import warnings

import pytest

import gcdesign.cli.design
from gcdesign.cli import main
from gcdesign.cli.output import jsonable


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity (Python's own loads accepts them)."""

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "toy.json"
    assert main(["design", "--example", "toy-n8", "-o", str(path)]) == 0
    return path


def test_every_json_output_is_strict_json(toy, tmp_path, capsys):
    traces = tmp_path / "t.csv"
    traces.write_text("a,b,c\n1,2,3\n1,1,3\n2,1,3\n")
    commands = [
        ["design", "--example", "toy-n8", "--json"],
        ["allocate", "--example", "toy-n8", "--budget", "30", "--json"],
        ["examples", "--json"],
        ["profile", "--traces", str(traces), "--deadline", "1.5", "--dim", "10", "--json"],
        ["show", str(toy), "--json"],
        ["evaluate", str(toy), "--trials", "50", "--dim", "5", "--compare", "sgc", "--json"],
        ["latency", "--workers", "10", "--rate", "1", "--stragglers", "0,3", "--trials", "20", "--json"],
    ]
    for argv in commands:
        code, out, _ = run(capsys, *argv)
        assert code == 0, argv
        assert strict_json(out), argv


def test_evaluate_json_writes_an_infinite_bias_bound_as_a_string(toy, capsys):
    # two Monte-Carlo rounds make one batch: no spread to bound the bias with, so the bound is inf
    code, out, err = run(capsys, "evaluate", str(toy), "--trials", "2", "--dim", "3", "--json")
    assert code == 0, err
    row = strict_json(out)["rows"][0]
    assert row["bias_bound"] == "inf" and float(row["bias_bound"]) == float("inf")
    assert row["biased"] is False and row["unbiased"] is True


def test_jsonable_non_finite_and_numpy():
    import numpy as np

    data = {"a": [np.float64("nan"), -np.inf], "b": np.array([[1, 2]]), "c": np.bool_(True), "d": None}
    assert jsonable(data) == {"a": ["nan", "-inf"], "b": [[1, 2]], "c": True, "d": None}
    assert jsonable({"x": 0.1, "y": 3}) == {"x": 0.1, "y": 3}


def test_a_runtime_warning_does_not_precede_the_error(tmp_path, capsys):
    # p = 0 with a tiny kappa overflows the utilities: numpy warns, then the design is refused
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"straggler_probs": [0.0, 0.0, 0.5], "dim": 1000}))
    code, out, err = run(
        capsys, "design", "--profile", str(profile), "--bits-per-worker", "4", "--quantization", "1e-300"
    )
    assert code == 2 and out == ""
    assert err.startswith("gcdesign: error: ") and err.count("\n") == 1, err
    assert "RuntimeWarning" not in err


def test_warnings_follow_a_successful_output_one_line_each(capsys, monkeypatch):
    real = gcdesign.cli.design.format_summary

    def noisy(summary):
        warnings.warn("first thing to know", UserWarning, stacklevel=1)
        warnings.warn("first thing to know", UserWarning, stacklevel=1)
        warnings.warn("overflow encountered in divide", RuntimeWarning, stacklevel=1)
        return real(summary)

    monkeypatch.setattr(gcdesign.cli.design, "format_summary", noisy)
    code, out, err = run(capsys, "design", "--example", "toy-n8")
    assert code == 0 and "workers N" in out
    assert err.splitlines() == [
        "gcdesign: warning: first thing to know",
        "gcdesign: warning: overflow encountered in divide",
    ]


def test_an_internal_error_exits_1_with_the_traceback_and_one_last_line(capsys, monkeypatch):
    def broken(summary):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(gcdesign.cli.design, "format_summary", broken)
    code, out, err = run(capsys, "design", "--example", "toy-n8")
    assert code == 1
    assert "Traceback" in err and err.splitlines()[-1] == "gcdesign: internal error: ZeroDivisionError: a bug"


def test_allocate_says_higher_is_better_and_optimal_yes_no_unknown(capsys):
    code, out, _ = run(capsys, "allocate", "--example", "toy-n8", "--budget", "30", "--compare")
    assert code == 0
    lines = out.splitlines()
    assert "higher is better" in lines[0]
    rows = {line.split()[0]: line.split()[-1] for line in lines[2:]}
    assert rows["dp"] == "yes" and rows["cpsat"] == "yes"
    assert set(rows.values()) <= {"yes", "no", "unknown"} and "None" not in out
    code, out, _ = run(capsys, "allocate", "--example", "toy-n8", "--budget", "30", "--method", "dp")
    assert "(higher is better; optimal: yes)" in out
    code, out, _ = run(capsys, "allocate", "--example", "toy-n8", "--budget", "30", "--method", "equal")
    assert "optimal: " in out and "optimal: None" not in out


def test_evaluate_marks_the_biased_schemes_and_explains_the_bias_columns(toy, capsys):
    argv = ["evaluate", str(toy), "--trials", "200", "--dim", "5", "--compare", "sgc,od,is-sgd"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[-1] == "biased"
    verdict = {line.split()[0]: line.split()[-1] for line in lines[2:6]}
    code, text, _ = run(capsys, *argv, "--json")
    exact = {r["scheme"]: r["unbiased"] for r in json.loads(text)["rows"]}
    assert exact["design"] and exact["sgc"] and not exact["od"] and not exact["is-sgd"]
    # the column is the exact verdict: od's bias is below the MC test's power here, not absent
    assert verdict == {"design": "no", "sgc": "no", "od": "yes", "is-sgd": "yes"}
    assert lines[6].startswith("bias: ") and "bias bound" in lines[6] and "biased:" in lines[6]


def test_a_newer_minor_version_warns_once_after_the_summary(tmp_path, capsys):
    path = tmp_path / "d.json"
    assert main(["design", "--example", "toy-n8", "-o", str(path)]) == 0
    data = json.loads(path.read_text())
    major = data["version"].split(".")[0]
    data["version"] = f"{major}.99"
    path.write_text(json.dumps(data))
    capsys.readouterr()
    code, out, err = run(capsys, "show", str(path))
    assert code == 0 and "workers N" in out
    assert err.splitlines() == [
        f"gcdesign: warning: design: format version {major}.99 is newer than {major}.0; "
        "unknown fields are ignored."
    ]


def test_the_summary_says_which_allocator_ran_and_whether_it_is_optimal(capsys):
    from gcdesign import design, load_example
    from gcdesign.cli.design import format_summary

    summary = design(load_example("toy-n8"), bits_per_worker=4, allocator="dp").summary()
    line = next(x for x in format_summary(summary).splitlines() if x.startswith("allocator"))
    assert line.split()[1] == "dp"
    summary["options"] = {**summary["options"], "allocator": "auto"}
    summary["allocation"] = {"method": "dp", "optimal": True}
    line = next(x for x in format_summary(summary).splitlines() if x.startswith("allocator"))
    assert line == "allocator       auto -> dp (optimal: yes)"
    summary["allocation"] = {"method": "auto", "optimal": None}
    line = next(x for x in format_summary(summary).splitlines() if x.startswith("allocator"))
    assert line == "allocator       auto (optimal: unknown)"


def test_a_closed_pipe_ends_quietly():
    """`gcdesign ... | head -1`: the reader leaves early; exit 0, nothing on stderr."""
    import subprocess
    import sys

    stragglers = ",".join(map(str, range(5000)))  # ~250 kB of table: more than a pipe holds
    argv = ["latency", "--workers", "10000", "--rate", "1", "--stragglers", stragglers]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcdesign", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout.readline().startswith(b"N = 10000 workers")
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and err == b""
