"""Tests of the studies (gcdesign/studies/): small runs in quick mode, CSV content, CLI."""

import csv
import io
import math

import numpy as np
import pytest

from gcdesign import ClusterProfile
from gcdesign.cli import main
from gcdesign.studies import STUDIES, run_study
from gcdesign.studies._common import (
    Progress,
    diff_ci,
    final_loss,
    mean_ci,
    run_schemes,
    scheme_label,
    style,
    verdict,
    with_error_feedback,
)
from gcdesign.studies.convergence import final_table
from gcdesign.training import sgd, synthetic_problem

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_latency_study_writes_sane_files(tmp_path):
    pytest.importorskip("matplotlib")
    result = run_study("latency", tmp_path, quick=True, progress=False)
    names = {p.name for p in result.files}
    assert {"latency.csv", "latency.png", "latency.md"} <= names
    assert (tmp_path / "latency.png").read_bytes()[:8] == PNG_MAGIC
    rows = _rows(tmp_path / "latency.csv")
    expo = {int(r["stragglers"]): r for r in rows if r["model"] == "exponential"}
    assert len(expo) == 100
    # the textbook worked example (N = 100, mu = 1)
    assert float(expo[0]["expected_time"]) == pytest.approx(5.187, abs=1e-3)
    assert float(expo[20]["speedup"]) == pytest.approx(3.26, abs=5e-3)
    assert float(expo[50]["speedup"]) == pytest.approx(7.54, abs=5e-3)
    times = [float(expo[s]["expected_time"]) for s in range(100)]
    assert all(a > b for a, b in zip(times, times[1:], strict=False))
    for r in rows:  # Monte Carlo agrees with the closed form
        if r["simulated_time"]:
            se = float(r["simulated_standard_error"])
            z = abs(float(r["simulated_time"]) - float(r["expected_time"])) / se
            assert z < 4.5
    md = (tmp_path / "latency.md").read_text()
    assert "![round time and speedup](latency.png)" in md and "run time" in md


def test_final_table_verdicts_on_a_small_comparison():
    prob = synthetic_problem("logistic", partitions=6, n_samples=120, n_features=4, rng=0)
    profile = ClusterProfile([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dim=prob.dim)
    runs = run_schemes(
        prob,
        profile,
        18,
        ["centralized", "joint"],
        seeds=[1, 2, 3],
        rounds=60,
        optimizer=sgd(0.5, batch_size=4),
    )
    assert [h.rounds for h in runs["joint"]] == [60, 60, 60]
    table = final_table({3: runs})
    by_name = {r["scheme"]: r for r in table}
    central = np.array([final_loss(h) for h in runs["centralized"]])
    joint = np.array([final_loss(h) for h in runs["joint"]])
    assert by_name["joint"]["loss_mean"] == pytest.approx(np.mean(joint))
    assert by_name["centralized"]["loss_minus_joint"] == pytest.approx(np.mean(central - joint))
    d, h = by_name["centralized"]["loss_minus_joint"], by_name["centralized"]["loss_minus_joint_ci95"]
    expected = "joint better" if d - h > 0 else ("joint worse" if d + h < 0 else "tied")
    assert by_name["centralized"]["verdict"] == expected and by_name["joint"]["verdict"] == ""


def test_error_feedback_names_run_with_error_feedback_and_map_like_workers_agree():
    prob = synthetic_problem("logistic", partitions=6, n_samples=120, n_features=4, rng=0)
    profile = ClusterProfile([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dim=prob.dim)
    kwargs = {"seeds": [1, 2], "rounds": 20, "optimizer": sgd(0.5, batch_size=4)}
    names = with_error_feedback(["centralized", "joint", "osgc"])
    assert names == ["centralized", "joint", "osgc", "osgc+ef"]
    serial = run_schemes(prob, profile, 18, names, **kwargs)
    mapped = run_schemes(prob, profile, 18, names, workers=lambda fn, xs: list(map(fn, xs)), **kwargs)
    assert [h.error_feedback for h in serial["osgc+ef"]] == [True, True]
    assert not any(h.error_feedback for h in serial["osgc"])
    for name in names:
        for a, b in zip(serial[name], mapped[name], strict=True):
            assert np.array_equal(a.loss, b.loss)
    # EF changes the run (same seed, same code): the residual is carried
    assert not np.array_equal(serial["osgc"][0].loss, serial["osgc+ef"][0].loss)
    assert scheme_label("osgc+ef") == scheme_label("osgc") + " + EF"
    assert style("osgc+ef")["linestyle"] == ":"


def test_verdict_reads_the_interval():
    assert verdict(0.5, 0.1) == "joint better"
    assert verdict(-0.5, 0.1) == "joint worse"
    assert verdict(0.05, 0.1) == "tied"
    assert verdict(0.5, 0.1, lower_is_better=False) == "joint worse"
    assert verdict(float("inf"), float("nan")).startswith("joint better")


def test_a_run_diverged_when_its_loss_overflowed_or_blew_up_tenfold():
    from types import SimpleNamespace

    from gcdesign.studies._common import diverged
    from gcdesign.studies.convergence import fmt

    def run(*loss):
        return SimpleNamespace(loss=np.array(loss, dtype=float), rounds=len(loss) - 1)

    assert not diverged(run(2.3, 1.0, 0.5, 0.4))
    assert not diverged(run(2.3, 5.0, 20.0, 22.9))  # unstable, but below 10x the start
    assert diverged(run(2.3, 50.0, 4e5, 3e7))  # EF baselines at d = 1e5: finite, huge
    assert diverged(run(2.3, 1e300, math.inf, math.inf))  # overflowed: the harness stopped
    assert fmt(3.1e7, 2.5e7) == "3.10e+07 ± 2.5e+07" and fmt(0.41234, 0.05) == "0.4123 ± 0.0500"
    assert fmt(math.inf, math.nan) == "diverged" and fmt(None, None) == ""


def test_final_table_lets_a_diverged_run_decide_the_verdict():
    from types import SimpleNamespace

    def run(*loss):
        return SimpleNamespace(loss=np.array(loss, dtype=float), rounds=len(loss) - 1, test_accuracy=None)

    results = {3: {"joint": [run(2.3, 0.5), run(2.3, 0.6)], "osgc+ef": [run(2.3, 1e20), run(2.3, 0.7)]}}
    rows = {r["scheme"]: r for r in final_table(results)}
    assert rows["osgc+ef"]["diverged"] == 1 and rows["osgc+ef"]["loss_minus_joint"] == math.inf
    assert rows["osgc+ef"]["verdict"] == "joint better (competitor diverged)"


def test_adam_study_pairs_two_track_with_one_track_by_seed():
    """Two-track decoding changes only the second moment's decoder: the same seed draws the same
    arrivals and bits, so the study's paired interval compares like with like."""
    from gcdesign import design
    from gcdesign.studies.adam import _paired, _two_track_verdict
    from gcdesign.training import adam, train

    prob = synthetic_problem("logistic", partitions=6, n_samples=120, n_features=4, rng=0)
    code = design(ClusterProfile([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dim=prob.dim), 18)
    one, two = (
        train(prob, code, rounds=15, optimizer=adam(0.05, two_track=t, lam=0.1, batch_size=4), rng=3)
        for t in (False, True)
    )
    assert np.array_equal(one.arrived, two.arrived) and np.array_equal(one.bits, two.bits)
    assert not np.array_equal(one.loss, two.loss)
    d, h = _paired([1.0, 1.2, 1.1], [1.5, 1.6, 1.55])  # per-seed differences -0.5, -0.4, -0.45
    assert d == pytest.approx(-0.45) and h == pytest.approx(4.302653 * 0.05 / math.sqrt(3), rel=1e-5)
    assert _two_track_verdict(d, h) == "two-track better"
    assert _two_track_verdict(0.01, 0.1) == "tied" and _two_track_verdict(0.5, 0.1) == "two-track worse"
    assert _paired([math.inf, 1.0], [1.0, 1.0])[0] == math.inf


@pytest.mark.slow
def test_quick_study_csv_is_bitwise_equal_with_one_and_two_workers(tmp_path):
    pytest.importorskip("sklearn")
    one, two = tmp_path / "one", tmp_path / "two"
    run_study("quantization_training", one, quick=True, progress=False, workers=1)
    run_study("quantization_training", two, quick=True, progress=False, workers=2)
    name = "quantization_training.csv"
    assert (one / name).read_bytes() == (two / name).read_bytes()


def test_labels_and_styles_come_from_the_registration():
    from gcdesign.schemes import SCHEMES, training_schemes

    assert scheme_label("exact-frc") == SCHEMES["exact-frc"].label == "exact GC (FRC)"
    joint = {"color": "tab:red", "linestyle": "-", "linewidth": 2.2, "label": "joint design (ours)"}
    assert style("joint") == joint
    assert style("od") == {"color": "tab:pink", "linestyle": ":", "linewidth": 1.4, "label": "OD"}
    assert style("centralized")["color"] == "black" and scheme_label("centralized") == "centralized SGD"
    plain = {"color": None, "linestyle": "-", "linewidth": 1.4, "label": "unregistered"}
    assert style("unregistered") == plain
    # every scheme the training studies plot has its own label and a colour
    for name in training_schemes():
        assert scheme_label(name) != name and style(name)["color"] is not None, name


def test_studies_use_the_paper_profile_of_the_example():
    from gcdesign import load_example
    from gcdesign.profile import paper_profile, paper_rates

    example = load_example("paper-n50")
    assert paper_profile() == example
    studied = paper_profile(50, dim=65)
    np.testing.assert_array_equal(studied.straggler_probs, example.straggler_probs)
    np.testing.assert_array_equal(paper_rates(50), np.random.default_rng(2026).uniform(0.01, 2.0, 50))
    assert paper_profile(10, dim=3, high=4.0).straggler_probs.mean() < example.straggler_probs.mean()


def test_confidence_intervals_match_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 12), rng.normal(0.0, 2.0, 9)
    mean, half = mean_ci(a)
    lo, hi = stats.t.interval(0.95, a.size - 1, loc=a.mean(), scale=stats.sem(a))
    assert (mean - half, mean + half) == pytest.approx((lo, hi))
    d, h = diff_ci(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (d - h, d + h) == pytest.approx((ci.low, ci.high))
    assert mean_ci([2.0]) == (2.0, 0.0)


def test_progress_bar_only_on_a_terminal():
    plain = io.StringIO()
    with Progress(3, "x", stream=plain) as bar:
        bar.update()
    assert plain.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    with Progress(2, "demo", stream=tty) as bar:
        bar.update(2)
    assert "demo" in tty.getvalue() and "2/2" in tty.getvalue()
    off = Tty()
    with Progress(2, "demo", stream=off, enabled=False) as bar:
        bar.update()
    assert off.getvalue() == ""


def test_cli_study(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["study", "nope"]) == 2
    assert "Unknown study" in capsys.readouterr().err
    out = tmp_path / "lat"
    assert main(["study", "latency", "--quick", "--out", str(out), "--no-progress"]) == 0
    assert (out / "latency.csv").exists() and (out / "latency.png").exists()
    assert "latency.md" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_quick(tmp_path, name):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    result = run_study(name, tmp_path, quick=True, progress=False)
    pngs = list(tmp_path.glob("*.png"))
    assert (pngs or name == "quantization_training") and all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)
    csvs = list(tmp_path.glob("*.csv"))
    assert csvs and all(len(_rows(p)) > 0 for p in csvs)
    for p in csvs:
        for row in _rows(p):
            for key, value in row.items():
                text = (
                    "scheme",
                    "method",
                    "model",
                    "variant",
                    "verdict",
                    "optimal",
                    "gradients",
                    "choice",
                    "best_other",
                    "scenario",
                    "arm",
                    "design",
                    "heterogeneity",
                    "loads",
                    "converged",
                    "method",
                )
                if value and key not in text:
                    # a diverged training run has an infinite loss; nothing is NaN but its interval
                    assert not math.isnan(float(value)) or key.endswith("ci95"), (p.name, key, value)
    assert (tmp_path / f"{name}.md").exists()
    if name == "allocators":
        rows = _rows(tmp_path / "allocators.csv")
        assert all(float(r["relative_gap_to_dp"]) >= -1e-12 for r in rows)
    if name == "convergence":
        rows = _rows(tmp_path / "convergence_final.csv")
        assert {r["scheme"] for r in rows} >= {"centralized", "joint"}
    assert result.wall_time > 0
    with pytest.warns(DeprecationWarning, match="use StudyResult.wall_time"):
        assert result.seconds == result.wall_time
