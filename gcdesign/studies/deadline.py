"""The deadline trade-off: loss vs simulated wall-clock time for several deadlines.

Round times ``T_i = 1 + Exp(mu_i)``, ``mu_i ~ U(0.01, 2)`` (the paper's
model, N = 50). With deadline tau a worker arrives iff ``T_i <= tau``, so
``p_i = exp(-mu_i (tau - 1))``: a tight deadline gives short rounds and many
stragglers, a loose one few stragglers and long rounds. For every tau the
joint design (and SGC for comparison) is built for the implied profile and
trained with round times drawn from the model (:class:`RoundTimes`); a coded
round lasts ``min(tau, max_i T_i)``. Centralized SGD waits for every worker
(``max_i T_i``, dominated by the slowest rates). Logistic regression on
digits, B/N = 3, mini-batch SGD, the same wall-clock horizon for every
deadline.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..latency import RoundTimes
from ..profile import paper_rates
from ..training import (
    Centralized,
    available_schemes,
    digits_problem,
    seeds,
    sgd,
)
from ._common import (
    Progress,
    StudyResult,
    markdown_table,
    mean_ci,
    new_figure,
    save_figure,
    train_runs,
    write_csv,
)

N_WORKERS = 50
BITS_PER_WORKER = 3
COMPARE = ("joint", "sgc")


def _final(rows, row, horizon):
    same = (q for q in rows if q["scheme"] == row["scheme"] and q["deadline"] == row["deadline"])
    return next(q["gap_mean"] for q in same if q["time"] == horizon)


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    deadlines = (1.05, 1.1, 1.3, 1.6, 2.5) if quick else (1.02, 1.05, 1.1, 1.2, 1.3, 1.6, 2.0, 2.5, 3.5)
    n_seeds, horizon = (2, 300.0) if quick else (10, 1500.0)
    problem = digits_problem("logistic", partitions=N_WORKERS, rng=0)
    rates = paper_rates(N_WORKERS)
    names, missing = available_schemes(COMPARE)
    notes = [f"scheme {m!r} is not registered: skipped." for m in missing]
    run_seeds = seeds(rng, n_seeds)
    opt = sgd(0.3, batch_size=8)
    runs: dict = {}
    mean_p = {None: None}  # deadline -> mean straggling probability (None: centralized)
    rows = []
    keys, tasks = [], []  # one task per run, each with its own seed
    for tau in deadlines:
        times = RoundTimes(rates, deadline=tau, shift=1.0)
        profile = times.profile(dim=problem.dim)
        mean_p[tau] = float(times.straggler_probs.mean())
        options = {"rounds": int(math.ceil(horizon / tau)), "optimizer": opt, "stragglers": times}
        for name in names:
            for seed in run_seeds:  # the scheme is built in the task, from the run's seed
                keys.append((name, tau))
                tasks.append((problem, (name, profile, BITS_PER_WORKER * N_WORKERS), seed, options))
    times = RoundTimes(rates, deadline=deadlines[-1], shift=1.0)
    central = Centralized(times.profile(dim=problem.dim))
    for seed in run_seeds:  # centralized: waits for all; the deadline does not matter
        keys.append(("centralized", None))
        tasks.append((problem, central, seed, {"rounds": 60, "optimizer": opt, "stragglers": times}))
    with Progress(len(tasks), "deadline", enabled=progress) as bar:
        for key, hist in zip(keys, train_runs(tasks, workers=workers, progress=bar), strict=True):
            runs.setdefault(key, []).append(hist)

    def loss_at(hist, t: float) -> float:
        i = int(np.searchsorted(hist.wall_time, t, side="right")) - 1
        return float(hist.loss[max(i, 0)])

    checkpoints = (horizon / 10, horizon / 3, horizon)
    for (name, tau), hists in runs.items():
        for t in checkpoints:
            mean, half = mean_ci([loss_at(h, t) - problem.optimal_loss for h in hists])
            rows.append(
                {
                    "scheme": name,
                    "deadline": tau,
                    "mean_p": mean_p[tau],
                    "rounds_per_time_unit": float(hists[0].rounds / hists[0].wall_time[-1]),
                    "time": t,
                    "gap_mean": mean,
                    "gap_ci95": half,
                }
            )
    fig, axes = new_figure(len(names), 1, width=6.0, height=4.6)
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    for ax, name in zip(axes[0], names, strict=True):
        for i, tau in enumerate(deadlines):
            hists = runs[(name, tau)]
            # a coded round lasts min(tau, slowest time): tau in practice, as mu_i goes down to 0.01
            clock = hists[0].wall_time
            gap = np.mean([np.maximum(h.loss - problem.optimal_loss, 1e-8) for h in hists], axis=0)
            ax.plot(
                clock,
                gap,
                color=cmap(i / max(len(deadlines) - 1, 1)),
                label=f"tau = {tau:g} (mean p = {mean_p[tau]:.2f})",
            )
        c = runs[("centralized", None)]
        cg = np.mean([np.maximum(h.loss - problem.optimal_loss, 1e-8) for h in c], axis=0)
        cc = np.mean([h.wall_time for h in c], axis=0)
        keep = cc <= horizon
        ax.plot(cc[keep], cg[keep], color="black", lw=1.5, label="centralized (waits for all)")
        ax.set_yscale("log")
        ax.set_xlim(0, horizon)
        ax.set_xlabel("simulated wall-clock time (units of t0, the minimum round time)")
        ax.set_ylabel("training loss minus optimum  f(w) - f*")
        ax.set_title(f"{'joint design' if name == 'joint' else name.upper()}, B/N = {BITS_PER_WORKER}")
        ax.grid(True, alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=9)
    fig.suptitle(f"Deadline trade-off, logistic regression on digits, N = 50, mean over {n_seeds} seeds")
    files = [write_csv(out / "deadline.csv", rows), save_figure(fig, out / "deadline.png")]
    table = markdown_table(
        [
            "scheme",
            "deadline tau",
            "mean p",
            "rounds per time unit",
            f"gap at t = {horizon / 10:g}",
            f"gap at t = {horizon:g}",
        ],
        [
            [
                r["scheme"],
                "-" if r["deadline"] is None else f"{r['deadline']:g}",
                "-" if r["mean_p"] is None else f"{r['mean_p']:.3f}",
                f"{r['rounds_per_time_unit']:.3f}",
                f"{r['gap_mean']:.4f} ± {r['gap_ci95']:.4f}",
                f"{_final(rows, r, horizon):.4f}",
            ]
            for r in rows
            if r["time"] == horizon / 10
        ],
    )
    summary = "\n".join(
        [
            f"{n_seeds} seeds; every deadline runs for the same simulated time ({horizon:g} units). "
            "The best deadline balances the round rate against the straggling probability; "
            "the centralized reference pays the slowest worker every round.",
            "",
            "![loss vs wall-clock](deadline.png)",
            "",
            table,
        ]
    )
    return StudyResult("deadline", files=files, summary=summary, notes=notes)


__all__ = [
    "BITS_PER_WORKER",
    "COMPARE",
    "N_WORKERS",
    "run",
]
