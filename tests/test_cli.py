import json
import subprocess
import sys

import numpy as np
import pytest

from gcdesign import load_design
from gcdesign.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_design_paper_example_writes_valid_file(tmp_path, capsys):
    out_file = tmp_path / "d.json"
    code, out, err = run(capsys, "design", "--example", "paper-n50", "-o", str(out_file))
    assert code == 0 and err == ""
    for label in (
        "workers N",
        "budget B",
        "kappa",
        "error bound",
        "load",
        "components",
        "bits histogram",
        "most reliable",
        "least reliable",
    ):
        assert label in out
    d = load_design(out_file)
    p = d.profile.straggler_probs
    np.testing.assert_allclose(((1 - p) * d.decoding) @ d.encoding, 1.0, atol=1e-9)
    assert d.nnz <= 50 + 50 - 1 and d.budget == 350


def test_design_json_and_show(tmp_path, capsys):
    out_file = tmp_path / "d.npz"
    code, out, _ = run(capsys, "design", "--example", "classes-n48", "--json", "-o", str(out_file))
    assert code == 0
    summary = json.loads(out)
    assert summary["components"] >= 3 and summary["workers"] == 48
    code, out, _ = run(capsys, "show", str(out_file), "--json")
    assert code == 0 and json.loads(out)["components"] == summary["components"]


def test_examples_and_profile(tmp_path, capsys):
    code, out, _ = run(capsys, "examples")
    assert code == 0 and "paper-n50" in out and "classes-n48" in out and "toy-n8" in out
    traces = tmp_path / "t.csv"
    traces.write_text("a,b,c\n1,2,3\n1,1,3\n2,1,3\n")
    prof_file = tmp_path / "p.json"
    code, out, _ = run(
        capsys, "profile", "--traces", str(traces), "--deadline", "1.5", "--dim", "100", "-o", str(prof_file)
    )
    assert code == 0 and "a" in out
    code, out, _ = run(capsys, "design", "--profile", str(prof_file), "--budget", "12", "--json")
    assert code == 0 and json.loads(out)["budget"] == 12


@pytest.mark.parametrize(
    "argv, message",
    [
        (["design", "--example", "nope", "-o", "{out}"], "Unknown example 'nope'"),
        (["design", "--example", "toy-n8", "--budget", "10", "-o", "{out}"], "`budget` = 10 is infeasible"),
        (["design", "--example", "toy-n8", "--budget", "1e9", "-o", "{out}"], "is infeasible"),
        (["design", "--example", "toy-n8", "--budget", "x", "-o", "{out}"], "`budget` must be a number"),
        (["design", "--example", "toy-n8", "--budget", "40.5", "-o", "{out}"], "must be an integer"),
        (["design", "--example", "toy-n8", "--allocator", "nope", "-o", "{out}"], "Unknown allocator 'nope'"),
        (["design", "--example", "toy-n8", "--construction", "nope", "-o", "{out}"], "Unknown construction"),
        (
            ["design", "--example", "toy-n8", "--quantization", "nope", "-o", "{out}"],
            "Unknown quantization model",
        ),
        (["design", "-o", "{out}"], "give exactly one of --example NAME and --profile FILE"),
        (["design", "--profile", "{bad_json}", "-o", "{out}"], "is not valid JSON"),
        (["design", "--profile", "{bad_probs}", "-o", "{out}"], r"`straggler_probs\[0\]` = 2.0"),
        (
            ["profile", "--traces", "{bad_csv}", "--deadline", "1", "--dim", "3", "-o", "{out}"],
            "is not a number",
        ),
        (["show", "{tampered}"], r"unbiasedness \(U\) fails"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    files = {
        "out": tmp_path / "out.json",
        "bad_json": tmp_path / "bad.json",
        "bad_probs": tmp_path / "probs.json",
        "bad_csv": tmp_path / "bad.csv",
        "tampered": tmp_path / "tampered.json",
    }
    files["bad_json"].write_text("{oops")
    files["bad_probs"].write_text(json.dumps({"straggler_probs": [2.0, 0.1], "dim": 3}))
    files["bad_csv"].write_text("a,b\n1,x\n")
    main(["design", "--example", "toy-n8", "-o", str(files["tampered"])])
    data = json.loads(files["tampered"].read_text())
    data["encoding"]["values"][0] += 0.01
    files["tampered"].write_text(json.dumps(data))
    capsys.readouterr()
    code, out, err = run(capsys, *[a.format(**files) for a in argv])
    assert code == 2
    assert err.startswith("gcdesign: error: ") and err.count("\n") == 1
    assert __import__("re").search(message, err)
    assert not files["out"].exists()


def test_module_entry_point_exit_code(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "gcdesign", "design", "--example", "toy-n8", "--budget", "3"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "infeasible" in res.stderr
    res = subprocess.run([sys.executable, "-m", "gcdesign", "frobnicate"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("gcdesign: error:")
