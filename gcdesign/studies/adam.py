"""Adam with and without two-track decoding (paper Sec. V-E, Fig. 2c/2f).

The joint design decodes the first moment with the unbiased ``a`` and, with
two-track decoding, the second moment with ``a' = a lambda S / (1 + lambda S)``
(docs/math.md, section 7); without it both moments use ``a``. Baselines run
plain Adam. Logistic regression on digits, the paper's profile, B/N = 3 and
7, mini-batch gradients (8 samples per partition), two learning rates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..design import design
from ..profile import paper_profile
from ..training import Centralized, adam, available_schemes, digits_problem, seeds, train, training_scheme
from ._common import (
    Progress,
    StudyResult,
    band,
    final_loss,
    markdown_table,
    mean_ci,
    new_figure,
    save_figure,
    write_csv,
)

N_WORKERS = 50
BUDGETS = (3, 7)
LEARNING_RATES = (0.01, 0.03)
LAMBDAS = (0.1, 1.0, 10.0)
BASELINES = ("osgc", "sgc", "bgc")
COLORS = {"off": ("tab:orange", "-"), 0.1: ("tab:red", "-"), 1.0: ("darkred", "--"), 10.0: ("salmon", ":")}


def _variants(profile, budget, baselines, run_seeds):
    """``{seed: [(label, scheme, two_track, lam), ...]}``; the design and the reference are shared."""
    code = design(profile, budget)
    fixed = [("centralized Adam", Centralized(profile), False, 1.0), ("joint, one-track", code, False, 1.0)]
    fixed += [(f"joint, two-track lambda={lam:g}", code, True, lam) for lam in LAMBDAS]
    out = {}
    for seed in run_seeds:  # the baselines' random codes follow the seed
        out[seed] = fixed + [
            (f"{name}, one-track", training_scheme(name, profile, budget, rng=seed), False, 1.0)
            for name in baselines
        ]
    return out


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True) -> StudyResult:
    n_seeds, steps = (2, 300) if quick else (10, 1500)
    problem = digits_problem("logistic", partitions=N_WORKERS, rng=0)
    profile = paper_profile(N_WORKERS, dim=problem.dim)
    ok, missing = available_schemes(BASELINES)
    notes = [f"scheme {m!r} is not registered in this installation: skipped." for m in missing]
    run_seeds = seeds(rng, n_seeds)
    n_variants = 2 + len(LAMBDAS) + len(ok)
    runs: dict = {}
    with Progress(len(BUDGETS) * len(LEARNING_RATES) * n_variants * n_seeds, "adam", enabled=progress) as bar:
        for bpw in BUDGETS:
            variants = _variants(profile, bpw * N_WORKERS, ok, run_seeds)
            for lr in LEARNING_RATES:
                for seed in run_seeds:
                    for label, scheme, two_track, lam in variants[seed]:
                        opt = adam(lr, two_track=two_track, lam=lam, batch_size=8)
                        hist = train(problem, scheme, steps=steps, optimizer=opt, rng=seed)
                        runs.setdefault((bpw, lr, label), []).append(hist)
                        bar.update()
    rows = []
    for (bpw, lr, label), hists in runs.items():
        central = np.array([final_loss(h) for h in runs[(bpw, lr, "centralized Adam")]])
        gap = np.array([final_loss(h) for h in hists]) - central
        mean, half = mean_ci(gap)
        rows.append(
            {
                "bits_per_worker": bpw,
                "lr": lr,
                "variant": label,
                "shrinkage": hists[0].shrinkage,
                "gap_mean": mean,
                "gap_ci95": half,
            }
        )
    fig, axes = new_figure(len(BUDGETS), len(LEARNING_RATES), width=6.0, height=4.2)
    for i, lr in enumerate(LEARNING_RATES):
        for j, bpw in enumerate(BUDGETS):
            ax = axes[i][j]
            for (b, r, label), hists in runs.items():
                if b != bpw or r != lr:
                    continue
                gap = np.array([np.maximum(h.loss - problem.optimal_loss, 1e-8) for h in hists])
                name = "centralized" if label.startswith("centralized") else label.split(",")[0]
                if label.startswith("joint"):
                    lam = float(label.split("=")[1]) if "two-track" in label else "off"
                    color, line = COLORS[lam]
                    ax.plot(
                        np.arange(gap.shape[1]), gap.mean(axis=0), color=color, ls=line, lw=2.0, label=label
                    )
                else:
                    band(ax, np.arange(gap.shape[1]), gap, name)
                    ax.lines[-1].set_label(label)
            ax.set_yscale("log")
            ax.set_xlabel("round (optimizer step)")
            ax.set_ylabel("training loss minus optimum  f(w) - f*")
            ax.set_title(f"Adam lr = {lr:g}, B/N = {bpw}")
            ax.grid(True, alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=9)
    fig.suptitle(f"Two-track decoding, logistic regression on digits, N = 50, mean over {n_seeds} seeds")
    files = [write_csv(out / "adam.csv", rows), save_figure(fig, out / "adam.png")]
    table = markdown_table(
        ["B/N", "lr", "variant", "c = a'/a", "gap to centralized Adam (95% CI)"],
        [
            [
                r["bits_per_worker"],
                r["lr"],
                r["variant"],
                f"{r['shrinkage']:.3f}",
                f"{r['gap_mean']:.4f} ± {r['gap_ci95']:.4f}",
            ]
            for r in rows
            if r["variant"] != "centralized Adam"
        ],
    )
    summary = "\n".join(
        [
            f"{n_seeds} seeds, {steps} rounds per run. The shrinkage c scales the second-moment estimate "
            "by c^2, which acts like a larger step size: it helps when the step is small and can hurt "
            "when it is already large (compare the two learning rates).",
            "",
            "![Adam two-track](adam.png)",
            "",
            table,
        ]
    )
    return StudyResult("adam", files=files, summary=summary, notes=notes)
