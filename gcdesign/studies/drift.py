"""Designs that follow a drifting cluster, on the Dask runtime: static vs adaptive vs oracle.

``run(..., backend="torch")`` runs the same plan on the torch backend (gloo; each run
spawns its 2 host ranks, which receive every redesign as a control message).

N logical workers on a LocalCluster, emulated delays ``t0 + Exp(mu_i(r))`` whose
rates change during the run (docs/math.md, sections 14 and 16):

* ``stationary``: nothing changes (the false redesigns);
* ``slowdown``: the most reliable worker (the largest mass) slows 5x (its rate / 5)
  a third of the way through;
* ``recovery``: the slowest quarter starts 5x slow (the initial profile says so) and
  recovers a third of the way through;
* ``wander``: every log-rate follows a Gaussian random walk (0.8 standard deviation
  over the run).

Three designs for each: ``static`` (the design for the initial profile, never
changed), ``adaptive`` (``train(..., adapt=True)``: online estimate, drift test,
redesign on the closest layout) and ``oracle`` (the design for the true profile at
every change, every 10 rounds under ``wander``, on the closest layout). A digits MLP
(held-out accuracy), gradient descent; the same seed gives the three arms the
same delays. Time to target: seconds of measured wall clock until the loss first
reaches the loss the oracle reaches (median over seeds) at 60 % of the rounds.
The false redesigns: the stationary adaptive runs and (full run) one long
stationary run on the same cluster count the drift test's alarms per tested
round against its promise, with an exact interval; a pure simulation of the
test on Bernoulli lateness (many rounds) measures the same rate.
"""

from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path

import numpy as np

from ._common import (
    Progress,
    StudyResult,
    diff_ci,
    markdown_table,
    mean_ci,
    new_figure,
    save_figure,
    write_csv,
)

SCENARIOS = ("stationary", "slowdown", "recovery", "wander")
ARMS = ("static", "adaptive", "oracle")
DEADLINE, SHIFT = 1.5, 1.0
SLOW = 5.0
WANDER_SD = 0.8
ORACLE_EVERY = 10
TARGET_AT = 0.6
COLORS = {"static": "tab:red", "adaptive": "tab:blue", "oracle": "black"}


def setting(quick: bool) -> dict:
    """Sizes of the run (quick: the slowdown only, under a minute on two loaded cores; its false
    alarms are the simulation's).

    ``window`` is the drift test's window and calibration (the test is silent for
    ``2 window - 1`` rounds after the start and after every alarm); ``long_rounds`` the
    rounds of the long stationary run that counts false alarms (0: none).

    The time unit stays at 0.25 s in both: on a loaded 2-core machine a task's round
    trip reaches 50-150 ms, and the emulated lateness is the profile's only while
    ``u (tau - t0)`` stays well above it (measured: u = 0.1 s doubled every p).
    """
    if quick:
        return {
            "workers": 8,
            "rounds": 20,
            "seeds": 1,
            "time_unit": 0.25,
            "hidden": 16,
            "bits": 4,
            "window": 6,
            "scenarios": ("slowdown",),
            "long_rounds": 0,
            "sim_rounds": 20_000,
        }
    return {
        "workers": 12,
        "rounds": 90,
        "seeds": 3,
        "time_unit": 0.25,
        "hidden": 32,
        "bits": 4,
        "window": 20,
        "scenarios": SCENARIOS,
        "long_rounds": 600,
        "sim_rounds": 200_000,
    }


def initial_probs(n: int) -> np.ndarray:
    """The initial profile: p spread evenly over [0.05, 0.5]."""
    return np.linspace(0.05, 0.5, n)


def rate_schedule(scenario: str, p0: np.ndarray, rounds: int, rng) -> np.ndarray:
    """The true rates (rounds, N) of `scenario` and the profile the run starts from."""
    slack = DEADLINE - SHIFT
    base = -np.log(p0) / slack
    rates = np.tile(base, (rounds, 1))
    change = rounds // 3
    if scenario == "slowdown":
        rates[change:, int(np.argmin(p0))] /= SLOW
    elif scenario == "recovery":
        group = np.argsort(p0)[-max(1, p0.size // 4) :]
        rates[:change, group] /= SLOW
    elif scenario == "wander":
        steps = np.random.default_rng(rng).normal(0.0, WANDER_SD / math.sqrt(rounds), (rounds, p0.size))
        steps[0] = 0.0
        rates = base * np.exp(np.cumsum(steps, axis=0))
    return rates


def probs_of(rates: np.ndarray) -> np.ndarray:
    return np.exp(-rates * (DEADLINE - SHIFT))


def oracle_schedule(code, scenario: str, rates: np.ndarray):
    """The oracle: the design for the true profile at each change, each on the closest layout."""
    from ..cluster.adaptive import Schedule, closest_redesign, fresh_design

    rounds = rates.shape[0]
    if scenario == "wander":
        switch = list(range(ORACLE_EVERY, rounds, ORACLE_EVERY))
    else:
        switch = [r for r in range(1, rounds) if not np.array_equal(rates[r], rates[r - 1])]
    designs, fresh = {}, {}
    current = code
    for r in switch:
        fresh[r] = fresh_design(current, probs_of(rates[r]))
        current = closest_redesign(current, fresh[r])[0]
        designs[r] = current
    return Schedule(code, designs, fresh=fresh)


def _partition_gradients(problem, theta, parts):
    return problem.partition_gradients(theta)[np.asarray(parts)]


def train_run(grads, problem, code, rates, *, workers, time_unit, rng, adapt, backend="dask", accuracy=None):
    """One run of the study's setting: `problem` by gradient descent (step 0.5) under the true rates
    `rates` (rounds, N), at the study's deadline and shift; the cluster history."""
    from ..cluster import train
    from ..training import gd

    return train(
        grads,
        code,
        x0=problem.initial_point(),
        loss=problem.loss,
        accuracy=accuracy,
        workers=workers,
        backend=backend,
        deadline=DEADLINE,
        shift=SHIFT,
        rates=rates,
        rounds=rates.shape[0],
        time_unit=time_unit,
        optimizer=gd(0.5),
        rng=rng,
        adapt=adapt,
    )


@contextlib.contextmanager
def _workers(backend: str):
    """`workers=` of the runs: one 2-process Dask cluster for all, or 2 torch host ranks per run."""
    if backend == "torch":
        yield 2
        return
    from ..cluster.dask import dask_client

    with dask_client(2) as client:
        yield client


def run(
    out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None, backend: str = "dask"
) -> StudyResult:
    from .. import design
    from .._validate import choice
    from ..cluster import time_to_loss
    from ..cluster.adaptive import Adapter, AdaptOptions, false_alarm_rate, rate_interval
    from ..profile import ClusterProfile
    from ..training import digits_mlp_problem, seeds

    choice("backend", backend, ("dask", "torch"))
    cfg = setting(quick)
    n, rounds = cfg["workers"], cfg["rounds"]
    problem = digits_mlp_problem(hidden=[cfg["hidden"]], partitions=n, rng=0)
    p0 = initial_probs(n)
    options = AdaptOptions(window=cfg["window"])
    scenarios = cfg["scenarios"]
    run_seeds = seeds(rng, cfg["seeds"])

    grads = functools.partial(_partition_gradients, problem)  # picklable: torch spawns its hosts

    runs: dict = {}
    tested: dict = {}  # (scenario, "adaptive") -> rounds the drift test tested, per run
    arms = [(s, a) for s in scenarios for a in ARMS if not (s == "stationary" and a == "oracle")]
    plans = [(s, a, seed) for s, a in arms for seed in run_seeds]
    with _workers(backend) as client:
        with Progress(len(plans), "drift", enabled=progress) as bar:
            for scenario, arm, seed in plans:
                rates = rate_schedule(scenario, p0, rounds, rng=seed)
                start_p = probs_of(rates[0])
                profile = ClusterProfile(start_p, dim=problem.dim, partitions=n)
                code = design(profile, bits_per_worker=cfg["bits"])
                adapt = None
                if arm == "adaptive":
                    adapt = Adapter(code, options)
                elif arm == "oracle":
                    adapt = oracle_schedule(code, scenario, rates)
                hist = train_run(
                    grads,
                    problem,
                    code,
                    rates,
                    workers=client,
                    backend=backend,
                    time_unit=cfg["time_unit"],
                    rng=seed,
                    adapt=adapt,
                    accuracy=problem.test_accuracy,
                )
                runs.setdefault((scenario, arm), []).append(hist)
                if arm == "adaptive":
                    tested.setdefault(scenario, []).append(adapt.tested)
                bar.update(1)
            long_run = None
            if cfg["long_rounds"]:  # the false alarms of the drift test on a long stationary run
                rates = rate_schedule("stationary", p0, cfg["long_rounds"], rng=0)
                code = design(ClusterProfile(p0, dim=problem.dim, partitions=n), bits_per_worker=cfg["bits"])
                adapter = Adapter(code, options)
                hist = train_run(
                    grads,
                    problem,
                    code,
                    rates,
                    workers=client,
                    backend=backend,
                    time_unit=cfg["time_unit"],
                    rng=run_seeds[0] + 1,
                    adapt=adapter,
                )
                long_run = (hist, adapter)

    rows, moves = [], []
    for scenario in scenarios:
        ref_arm = "static" if scenario == "stationary" else "oracle"
        reference = runs[(scenario, ref_arm)]
        target = float(np.median([h.loss[int(TARGET_AT * rounds)] for h in reference]))
        times = {}
        for arm in ARMS:
            if (scenario, arm) not in runs:
                continue
            hists = runs[(scenario, arm)]
            reach = np.array([time_to_loss(h, target) for h in hists])
            times[arm] = reach
            finite = reach[np.isfinite(reach)]
            mean, half = mean_ci(finite) if finite.size else (math.inf, 0.0)
            redesigns = [a for h in hists for a in h.adaptation if a["action"] == "redesign"]
            rows.append(
                {
                    "scenario": scenario,
                    "arm": arm,
                    "target_loss": target,
                    "time_to_target_mean": mean,
                    "time_to_target_ci95": half,
                    "reached": int(finite.size),
                    "runs": len(hists),
                    "final_loss": float(np.mean([h.loss[-1] for h in hists])),
                    "final_accuracy": float(np.mean([h.test_accuracy[-1] for h in hists])),
                    "redesigns_per_run": len(redesigns) / len(hists),
                    "alarms_per_run": sum(
                        1 for h in hists for a in h.adaptation if a.get("cause", "alarm") == "alarm"
                    )
                    / len(hists),
                    "changes_per_run": sum(len(h.adaptation) for h in hists) / len(hists),
                    "moved_mean": float(np.mean([a["moved"] for a in redesigns])) if redesigns else 0.0,
                    "moved_fresh_mean": float(np.mean([a["moved_fresh"] for a in redesigns]))
                    if redesigns
                    else 0.0,
                    "moved_transport_mean": float(np.mean([a["moved_transport"] for a in redesigns]))
                    if redesigns
                    else 0.0,
                }
            )
            moves += [
                {"scenario": scenario, "arm": arm, **{k: a[k] for k in ("round", "moved", "moved_fresh")}}
                for a in redesigns
            ]
        if "oracle" in times and scenario != "stationary":
            a, o = times["adaptive"], times["oracle"]
            ok = np.isfinite(a) & np.isfinite(o)
            if not ok.any():  # no seed where both reached the target: no gap (left empty)
                continue
            gap = diff_ci(a[ok], o[ok]) if ok.sum() >= 2 else ((a[ok] - o[ok]).mean(), 0.0)
            for row in rows:
                if row["scenario"] == scenario and row["arm"] == "adaptive":
                    row["gap_to_oracle"], row["gap_to_oracle_ci95"] = float(gap[0]), float(gap[1])
    for row in rows:
        row.setdefault("gap_to_oracle", None)
        row.setdefault("gap_to_oracle_ci95", None)

    # the drift test alone on a simulated stationary cluster: measured against the promise
    alarm = false_alarm_rate(p0, rounds=cfg["sim_rounds"], options=options, rng=rng)
    # on the Dask cluster: the stationary adaptive runs, then the long run
    stationary = list(
        zip(runs.get(("stationary", "adaptive"), []), tested.get("stationary", []), strict=True)
    )
    if long_run is not None:
        stationary.append((long_run[0], long_run[1].tested))
    false_rows = []
    for label, pairs in (
        ("study runs", stationary[: len(run_seeds)]),
        ("long run", stationary[len(run_seeds) :]),
    ):
        if not pairs:
            continue
        changes = [a for h, _ in pairs for a in h.adaptation]
        alarms = sum(1 for a in changes if a.get("cause", "alarm") == "alarm")
        trials = sum(t for _, t in pairs)
        low, high = rate_interval(alarms, trials)
        false_rows.append(
            {
                "runs": label,
                "rounds": sum(h.rounds for h, _ in pairs),
                "tested_rounds": trials,
                "alarms": alarms,
                "redesigns": sum(1 for a in changes if a["action"] == "redesign"),
                "alarm_rate": alarms / trials if trials else math.nan,
                "alarm_rate_low": low,
                "alarm_rate_high": high,
                "promised": options.false_alarm,
                "realized_p_mean": float(np.mean([(~h.on_time).mean() for h, _ in pairs])),
                "declared_p_mean": float(p0.mean()),
            }
        )

    files = [write_csv(out / "drift.csv", rows)]
    if false_rows:
        files.append(write_csv(out / "drift_false_alarms.csv", false_rows))
    if moves:
        files.append(write_csv(out / "drift_moves.csv", moves))
    files.append(_figure(runs, scenarios, out / "drift.png"))
    table = markdown_table(
        [
            "scenario",
            "design",
            "time to target (s)",
            "reached",
            "final loss",
            "final accuracy",
            "redesigns / run",
            "moved / redesign (fresh)",
            "gap to oracle (s)",
        ],
        [
            [
                r["scenario"],
                r["arm"],
                _ci(r["time_to_target_mean"], r["time_to_target_ci95"]),
                f"{r['reached']}/{r['runs']}",
                f"{r['final_loss']:.4f}",
                f"{r['final_accuracy']:.3f}",
                f"{r['redesigns_per_run']:.2f}",
                f"{r['moved_mean']:.1f} ({r['moved_fresh_mean']:.1f})" if r["redesigns_per_run"] else "-",
                "-"
                if r["gap_to_oracle"] is None
                else _ci(r["gap_to_oracle"], r["gap_to_oracle_ci95"] or 0.0),
            ]
            for r in rows
        ],
    )
    summary = "\n".join(
        [
            f"N = {n} logical workers on 2 {_PLACES[backend]}, {rounds} rounds, deadline {DEADLINE:g}, "
            f"t0 = {SHIFT:g}, time unit {cfg['time_unit']:g} s, B/N = {cfg['bits']}, "
            f"{len(run_seeds)} seed(s); a digits MLP (d = {problem.dim}), gradient descent 0.5. "
            f"Adaptive: forgetting {options.forgetting:g}, window {options.window}, "
            f"false alarm {options.false_alarm:g} per round, threshold {options.threshold:g}.",
            "",
            "![loss and accuracy vs wall clock](drift.png)",
            "",
            table,
            "",
            f"Drift test alone on a simulated stationary cluster ({alarm['trials']:,} tested rounds, "
            f"the initial profile): {alarm['alarms']} alarms, {alarm['rate']:.4f} per tested round "
            f"(95 % interval {alarm['low']:.4f} to {alarm['high']:.4f}) against the promised "
            f"<= {alarm['promised']:g} (exact attained size {alarm['size']:.4f}).",
        ]
    )
    if false_rows:
        summary += f"\n\nFalse alarms on the stationary cluster ({_PLACES[backend]}):\n\n" + markdown_table(
            [
                "runs",
                "rounds",
                "tested",
                "alarms",
                "redesigns",
                "alarms / tested round (95 %)",
                "mean p realized",
            ],
            [
                [
                    f["runs"],
                    f["rounds"],
                    f["tested_rounds"],
                    f["alarms"],
                    f["redesigns"],
                    f"{f['alarm_rate']:.4f} ({f['alarm_rate_low']:.4f} to {f['alarm_rate_high']:.4f})",
                    f"{f['realized_p_mean']:.3f} (declared {f['declared_p_mean']:.3f})",
                ]
                for f in false_rows
            ],
        )
    return StudyResult("drift", files=files, summary=summary, notes=[])


_PLACES = {"dask": "Dask processes", "torch": "torch host ranks (gloo)"}


def _ci(mean: float, half: float) -> str:
    return "never" if not math.isfinite(mean) else f"{mean:.2f} ± {half:.2f}"


def _figure(runs, scenarios, path):
    fig, axes = new_figure(len(scenarios), 2, width=4.2, height=3.4)
    for col, scenario in enumerate(scenarios):
        for arm in ARMS:
            hists = runs.get((scenario, arm))
            if not hists:
                continue
            for k, h in enumerate(hists):
                clock = h.wall_time * h.time_unit
                label = arm if k == 0 else None
                axes[0][col].plot(clock, h.loss, color=COLORS[arm], lw=1.2, alpha=0.8, label=label)
                axes[1][col].plot(clock, h.test_accuracy, color=COLORS[arm], lw=1.2, alpha=0.8)
        axes[0][col].set_title(scenario)
        axes[0][col].set_yscale("log")
        axes[0][col].legend(fontsize=8)
        axes[1][col].set_xlabel("wall clock (s)")
    axes[0][0].set_ylabel("training loss")
    axes[1][0].set_ylabel("held-out accuracy")
    return save_figure(fig, path)


__all__ = [
    "ARMS",
    "SCENARIOS",
    "initial_probs",
    "oracle_schedule",
    "probs_of",
    "rate_schedule",
    "run",
    "setting",
    "train_run",
]
