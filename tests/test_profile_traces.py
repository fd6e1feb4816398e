"""Trace CSVs read with the right meaning: long format in any column order, wide with a round column."""

import numpy as np
import pytest

from gcdesign import ClusterProfile, InputError
from gcdesign.profile import read_traces_csv


def _csv(tmp_path, text):
    path = tmp_path / "times.csv"
    path.write_text(text)
    return path


LONG = [("a", 1, 0.5), ("a", 2, 2.0), ("b", 1, 1.5), ("b", 2, 0.2), ("b", 3, 3.0)]
EXPECTED = {"a": [0.5, 2.0], "b": [1.5, 0.2, 3.0]}


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (2, 1, 0)])
@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_long_format_in_any_column_order(tmp_path, order, case):
    header = ",".join(case(("worker", "round", "time")[i]) for i in order)
    lines = [",".join(str(row[i]) for i in order) for row in LONG[::-1]]  # rows in any order too
    names, columns = read_traces_csv(_csv(tmp_path, header + "\n" + "\n".join(lines) + "\n"))
    assert sorted(names) == ["a", "b"]
    for name, col in zip(names, columns, strict=True):
        assert col.tolist() == EXPECTED[name]  # sorted by round


def test_long_format_gives_the_same_profile_as_wide(tmp_path):
    long = _csv(tmp_path, "time,worker,round\n0.5,a,1\n2.0,a,2\n1.5,b,1\n0.2,b,2\n")
    prof_long = ClusterProfile.from_traces(long, deadline=1.0, dim=1)
    wide = tmp_path / "wide.csv"
    wide.write_text("round,a,b\n1,0.5,1.5\n2,2.0,0.2\n")
    prof_wide = ClusterProfile.from_traces(wide, deadline=1.0, dim=1)
    assert prof_long == prof_wide
    assert prof_wide.names == ("a", "b")  # the round column is not a worker
    np.testing.assert_allclose(prof_wide.straggler_probs, [0.5, 0.5])


def test_wide_round_column_anywhere_and_missing_values(tmp_path):
    names, columns = read_traces_csv(_csv(tmp_path, "a,Round,b\n0.5,1,\n,2,inf\nnan,3,0.1\n"))
    assert names == ["a", "b"]
    assert np.array_equal(columns[0], [0.5, np.nan, np.nan], equal_nan=True)
    assert np.array_equal(columns[1], [np.nan, np.inf, 0.1], equal_nan=True)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "worker,round,time\na,1,0.5\nb,1,0.7\na,1,0.9\n",
            r"worker 'a' round 1 appears twice, on lines 2 and 4",
        ),
        ("round,a,b\n1,0.5,0.5\n2,1,1\n1,2,2\n", r"round 1 appears twice, on lines 2 and 4"),
        (
            "worker,time\na,0.5\n",
            r"mixes the formats; the long format needs exactly the columns worker, round",
        ),
        ("worker,round,time,host\na,1,0.5,x\n", r"mixes the formats"),
        ("round,round,a\n1,1,0.5\n", r"more than one `round` column"),
        ("round\n1\n", r"names no worker column"),
        ("worker,round,time\na,one,0.5\n", r"line 2: round 'one' is not an integer"),
        ("worker,round,time\na,1.5,0.5\n", r"line 2: round '1.5' is not an integer"),
        ("worker,round,time\n,1,0.5\n", r"line 2: the worker name is empty"),
        ("worker,round,time\na,1,true\n", r"line 2, column 'time': 'true' is not a number"),
        ("worker,round,time\na,1,1_000\n", r"'1_000' is not a number"),
        ("worker,round,time\na,1,0x10\n", r"'0x10' is not a number"),
        ("worker,round,time\na,1,1e400\n", r"1e400 is too large for a float"),
        ("worker,round,time\na,1,-0.5\n", r"a round time must be >= 0, got -0.5"),
        ("a,b\n1,2,3\n", r"line 2: expected 2 fields like the header, got 3"),
        ("a,,b\n1,2,3\n", r"column 2 of the header has no worker name"),
        ("a\n", r"needs a header row and at least one row"),
        ("a\n" + "1" * 200_000 + "\n", r"line 2: not readable as CSV \(field larger than field limit"),
        ("a\n1\x00\n", r"'1\\x00' is not a number"),
    ],
)
def test_bad_traces(tmp_path, text, message):
    with pytest.raises(InputError, match=message) as exc:
        ClusterProfile.from_traces(_csv(tmp_path, text), deadline=1.0, dim=1)
    assert "\n" not in str(exc.value)


def test_in_memory_round_times(tmp_path):
    prof = ClusterProfile.from_traces({"a": [0.5, 2.0], "b": [1.5, np.nan]}, deadline=1.0, dim=1, smoothing=0)
    np.testing.assert_allclose(prof.straggler_probs, [0.5, 1.0])
    with pytest.raises(InputError, match=r"`round_times\['a'\]\[1\]` must be a real number, got 'x'"):
        ClusterProfile.from_traces({"a": [0.5, "x"]}, deadline=1.0, dim=1)
    with pytest.raises(InputError, match=r"`round_times\[1, 0\]` = -1.0 must be a number >= 0"):
        ClusterProfile.from_traces([[0.5], [-1.0]], deadline=1.0, dim=1)
    with pytest.raises(InputError, match=r"`deadline` must be a finite real number, got True"):
        ClusterProfile.from_traces([[0.5]], deadline=True, dim=1)


def test_shipped_example_traces_are_the_seeded_model():
    from gcdesign.profile import example_traces_path, make_example_traces

    path = example_traces_path()
    assert path.read_text() == make_example_traces()  # regenerated from its seed, byte for byte
    prof = ClusterProfile.from_traces(path, deadline=1.5, dim=10)
    # 200 rounds of 1 + Exp(mu): p = exp(-0.5 mu) within 3 binomial standard errors (smoothed)
    mu = np.array([4.0, 3.0, 3.0, 2.0, 2.0, 1.0, 0.5, 0.25])
    exact = np.exp(-0.5 * mu)
    se = np.sqrt(exact * (1 - exact) / 200) + 1 / 200
    assert np.all(np.abs(prof.straggler_probs - exact) <= 3 * se)


def test_examples_command_writes_the_traces(tmp_path, capsys):
    from gcdesign.cli import main
    from gcdesign.profile import example_traces_path

    target = tmp_path / "times.csv"
    assert main(["examples", "--traces", str(target)]) == 0
    assert target.read_text() == example_traces_path().read_text()
    assert main(["profile", "--traces", str(target), "--deadline", "1.5", "--dim", "10", "--json"]) == 0
    assert '"node-7"' in capsys.readouterr().out
