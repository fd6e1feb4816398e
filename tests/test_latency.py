import json
import math

import numpy as np
import pytest
from scipy.special import digamma

from gcdesign import InputError
from gcdesign.cli import main
from gcdesign.latency import (
    expected_kth_time,
    harmonic_difference,
    kth_time_variance,
    latency_table,
    simulate_kth_time,
    speedup,
)


def test_textbook_example():
    # N = 100 workers, Exp(1) round times (MATH section 9); the book truncates to 3 decimals
    assert expected_kth_time(100, 100, rate=1.0) == pytest.approx(5.187, abs=1e-3)
    assert expected_kth_time(100, 80, rate=1.0) == pytest.approx(1.589, abs=1e-3)
    assert expected_kth_time(100, 50, rate=1.0) == pytest.approx(0.688, abs=1e-3)
    assert speedup(100, 20, rate=1.0) == pytest.approx(3.26, abs=5e-3)
    assert speedup(100, 50, rate=1.0) == pytest.approx(7.54, abs=5e-3)
    assert expected_kth_time(100, 80, rate=1.0) == pytest.approx(
        5.187377517639621 - 3.597739657143682, rel=1e-15
    )
    assert speedup(100, 0, rate=1.0) == 1.0


def _direct(n, m):
    return float(np.sum(1.0 / np.arange(m + 1, n + 1, dtype=np.float64)[::-1]))


@pytest.mark.parametrize(
    ("n", "m"),
    [(0, 0), (1, 0), (100, 0), (100, 20), (100, 50), (63, 0), (64, 0), (65, 0), (130, 65), (200, 64),
     (1000, 63), (5000, 2500), (10**5, 10), (10**5, 10**5 - 65), (3 * 10**5, 10**5)],
)  # fmt: skip
def test_harmonic_difference_matches_direct_sum(n, m):
    expected = _direct(n, m)
    assert harmonic_difference(n, m) == pytest.approx(expected, rel=2e-14, abs=0)


def test_harmonic_difference_is_stable_for_huge_n():
    n = 10**12
    # a naive difference of digamma values loses most digits here
    for k in (1, 64, 65, 10**5):
        got = harmonic_difference(n, n - k)
        assert got == pytest.approx(_direct(n, n - k), rel=1e-13)
    naive = digamma(n + 1) - digamma(n - 10**5 + 1)
    assert abs(naive - _direct(n, n - 10**5)) > 1e-12 * _direct(n, n - 10**5)  # why the stable form exists
    # large m, large k: log1p form against scipy in the well-conditioned regime
    assert harmonic_difference(10**9, 10**6) == pytest.approx(
        digamma(10**9 + 1) - digamma(10**6 + 1), rel=1e-14
    )


def test_shift_and_load():
    base = harmonic_difference(20, 5)
    assert expected_kth_time(20, 15, rate=2.0, shift=1.5, load=3.0) == pytest.approx(3.0 * (1.5 + base / 2.0))
    assert kth_time_variance(20, 15, rate=2.0, load=3.0) == pytest.approx(
        (3.0 / 2.0) ** 2 * sum(1.0 / i**2 for i in range(6, 21))
    )


def test_load_aware_speedup():
    # N = 2, s = 1: uncoded waits for the max of two Exp(1) (1.5); coded the min at load 2 (2 * 0.5)
    assert speedup(2, 1, rate=1.0, load_aware=True) == pytest.approx(1.5)
    # at N = 100 the load s + 1 outweighs the shorter wait in this model
    assert speedup(100, 20, rate=1.0, load_aware=True) == pytest.approx(
        5.187377517639621 / (21 * 1.5896378604959387)
    )
    assert speedup(100, 20, rate=1.0, load_aware=True) < 1.0


@pytest.mark.parametrize(
    ("n", "k", "rate", "shift", "load", "seed"),
    [(100, 100, 1.0, 0.0, 1.0, 0), (100, 80, 1.0, 0.0, 1.0, 1), (100, 50, 1.0, 0.0, 1.0, 2),
     (30, 25, 0.5, 1.0, 1.0, 3), (30, 10, 2.0, 0.5, 4.0, 4), (7, 1, 3.0, 0.0, 2.0, 5)],
)  # fmt: skip
def test_simulation_within_three_standard_errors(n, k, rate, shift, load, seed):
    exact = expected_kth_time(n, k, rate=rate, shift=shift, load=load)
    sim = simulate_kth_time(n, k, rate=rate, shift=shift, load=load, trials=20_000, rng=seed)
    assert abs(sim.mean - exact) < 3 * sim.standard_error
    # the standard error agrees with the exact variance
    assert sim.standard_error == pytest.approx(
        math.sqrt(kth_time_variance(n, k, rate=rate, load=load) / 20_000), rel=0.1
    )


def test_stderr_is_the_deprecated_name_of_standard_error():
    sim = simulate_kth_time(10, 8, rate=1.0, trials=100, rng=0)
    with pytest.warns(DeprecationWarning, match="use SimulatedTime.standard_error"):
        assert sim.stderr == sim.standard_error > 0


def test_simulation_is_reproducible():
    a = simulate_kth_time(50, 40, rate=1.0, trials=500, rng=11)
    b = simulate_kth_time(50, 40, rate=1.0, trials=500, rng=np.random.default_rng(11))
    assert a == b


def test_latency_table():
    rows = latency_table(100, [0, 20, 50], rate=1.0, trials=2000, rng=0)
    assert [r["stragglers"] for r in rows] == [0, 20, 50]
    assert [r["wait_for"] for r in rows] == [100, 80, 50]
    assert [round(r["speedup"], 2) for r in rows] == [1.0, 3.26, 7.54]
    for r in rows:
        assert abs(r["simulated_time"] - r["expected_time"]) < 4 * r["simulated_standard_error"]
    loaded = latency_table(10, 3, rate=1.0, load_aware=True)
    assert loaded[0]["load"] == 4.0 and "simulated_time" not in loaded[0]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: expected_kth_time(10, 11, rate=1.0),
            r"`k` must be an integer in \[1, N\] = \[1, 10\], got 11",
        ),
        (lambda: expected_kth_time(10, 0, rate=1.0), "`k` must be an integer >= 1"),
        (lambda: expected_kth_time(10, 5, rate=0.0), "`rate` must be a finite number > 0, got 0.0"),
        (lambda: expected_kth_time(10, 5, rate=float("nan")), "`rate` must be a finite number"),
        (lambda: expected_kth_time(10, 5, rate=1.0, shift=-1.0), "`shift` must be a finite number >= 0"),
        (lambda: expected_kth_time(10, 5, rate=1.0, load=0), "`load` must be a finite number > 0"),
        (lambda: speedup(10, 10, rate=1.0), r"`stragglers` must be an integer in \[0, N - 1\] = \[0, 9\]"),
        (lambda: harmonic_difference(3, 5), r"`m` must be an integer in \[0, n\] = \[0, 3\]"),
        (lambda: simulate_kth_time(10, 5, rate=1.0, trials=1), "`trials` must be an integer >= 2"),
        (lambda: latency_table(10, [], rate=1.0), "at least one tolerance"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(InputError, match=match):
        call()


# ---------------------------------------------------------------------- CLI
def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_latency_table(capsys):
    code, out, err = run(capsys, "latency", "--workers", "100", "--rate", "1", "--stragglers", "0,20,50")
    assert code == 0 and err == ""
    assert "expected time 5.1874" in out
    lines = out.strip().splitlines()
    assert lines[-2].split() == ["20", "80", "1", "1.5896", "3.26x"]
    assert lines[-1].split() == ["50", "50", "1", "0.6882", "7.54x"]


def test_cli_latency_json_load_aware_and_simulation(capsys):
    code, out, _ = run(
        capsys, "latency", "--workers", "20", "--rate", "2", "--stragglers", "3", "--shift", "0.5",
        "--load-aware", "--trials", "4000", "--rng", "1", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    row = data["rows"][0]
    assert data["load_aware"] is True and row["load"] == 4.0
    assert row["expected_time"] == pytest.approx(expected_kth_time(20, 17, rate=2.0, shift=0.5, load=4.0))
    assert data["uncoded_time"] == pytest.approx(expected_kth_time(20, 20, rate=2.0, shift=0.5))
    assert abs(row["simulated_time"] - row["expected_time"]) < 4 * row["simulated_standard_error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--workers", "ten", "--rate", "1", "--stragglers", "1"],
            "`workers` must be an integer >= 1, got 'ten'",
        ),
        (["--workers", "0", "--rate", "1", "--stragglers", "0"], "`workers` must be an integer >= 1, got 0"),
        (
            ["--workers", "10", "--rate", "0", "--stragglers", "1"],
            "`rate` must be a finite number > 0, got '0'",
        ),
        (["--workers", "10", "--rate", "fast", "--stragglers", "1"], "`rate` must be a number, got 'fast'"),
        (
            ["--workers", "10", "--rate", "1", "--stragglers", "1,x"],
            "`stragglers` must be integers in [0, N - 1]",
        ),
        (["--workers", "10", "--rate", "1", "--stragglers", "10"], "[0, 9] separated by commas, got '10'"),
        (
            ["--workers", "10", "--rate", "1", "--stragglers", "1", "--shift", "-2"],
            "`shift` must be a finite",
        ),
        (["--workers", "10", "--rate", "1", "--stragglers", "1", "--trials", "1"], "`trials` must be 0 or"),
        (
            ["--workers", "10", "--rate", "1", "--stragglers", "1", "--rng", "-3"],
            "`rng` must be an integer seed",
        ),
    ],
)
def test_cli_latency_bad_input(capsys, args, message):
    code, out, err = run(capsys, "latency", *args)
    assert code == 2 and out == ""
    assert err.startswith("gcdesign: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
