"""`gcdesign allocate`: one method, --compare, --json and the error lines."""

from __future__ import annotations

import json

import pytest

from gcdesign.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_allocate_one_method_json(capsys):
    code, out, _ = run(
        capsys, "allocate", "--example", "toy-n8", "--budget", "40", "--method", "dp", "--json"
    )
    assert code == 0
    record = json.loads(out)
    assert record["method"] == "dp" and record["optimal"] is True
    assert sum(record["bits"].values()) == 40
    assert sum(record["bits_histogram"].values()) == 8


def test_allocate_default_is_auto(capsys):
    # the example's 7 bits/worker: N R L = 50 x 250 x 31 work units, cheap enough for the exact DP
    code, out, _ = run(capsys, "allocate", "--example", "paper-n50")
    assert code == 0
    assert "method      dp" in out and "350 bits" in out and "optimal: yes" in out
    assert "auto chose dp" in out


def test_allocate_compare_table(capsys):
    code, out, _ = run(
        capsys, "allocate", "--example", "paper-n50", "--compare", "--json", "--quantization", "balanced"
    )
    assert code == 0
    rows = {r["method"]: r for r in json.loads(out)["rows"]}
    assert set(rows) == {
        "dp",
        "cpsat",
        "certified",
        "heuristic",
        "greedy",
        "relaxation",
        "equal",
        "topk-equal",
    }
    assert rows["dp"]["gap"] == 0.0
    assert all(r["gap"] >= -1e-12 for r in rows.values())
    assert rows["heuristic"]["gap"] <= 1e-9
    assert rows["certified"]["gap"] <= 1e-12 and rows["certified"]["optimal"] is True
    assert rows["equal"]["gap"] > 0.1  # equal bits are far from optimal in the paper's setting
    code, out, _ = run(capsys, "allocate", "--example", "toy-n8", "--budget", "30", "--compare")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[1].split() == ["method", "objective", "rel.", "gap", "time", "ms", "optimal"]
    assert len(lines) == 2 + 8


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--budget", "10"], "`budget` = 10 is infeasible for N = 8 workers"),
        (["--budget", "40", "--method", "simplex"], "Unknown allocator 'simplex'"),
        (["--budget", "40", "--b-min", "6", "--b-max", "4"], "`b_min` = 6 must not exceed `b_max` = 4"),
        (["--budget", "40.5"], "`budget` must be an integer number of bits"),
        (["--budget", "40", "--time-limit", "0"], "`time-limit` must be a number > 0"),
        (["--budget", "40", "--method", "dp", "--compare"], "either --method M or --compare"),
    ],
)
def test_allocate_errors_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, "allocate", "--example", "toy-n8", *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
