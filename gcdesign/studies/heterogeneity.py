"""Sweep of the upper bound of the straggling parameters (paper Fig. 3d).

Rates ``mu_i ~ U(0.01, mu_max)`` (same seed, rescaled draws), shifted
exponential round times (t0 = 1) against the deadline 1.1, so
``p_i = exp(-0.1 mu_i)``: a larger ``mu_max`` makes the cluster more
heterogeneous *and* lowers the mean straggling probability. Logistic
regression on digits, B/N = 3, mini-batch SGD; the final loss gap to
centralized SGD per scheme, mean and 95% CI over seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..profile import paper_profile
from ..training import available_schemes, digits_problem, seeds, sgd
from ._common import (
    Progress,
    StudyResult,
    final_loss,
    markdown_table,
    mean_ci,
    new_figure,
    run_schemes,
    save_figure,
    scheme_label,
    style,
    write_csv,
)

BITS_PER_WORKER = 3
N_WORKERS = 50


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True) -> StudyResult:
    highs = (1.0, 2.0, 5.0, 10.0) if quick else (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
    n_seeds, steps = (2, 300) if quick else (10, 1500)
    problem = digits_problem("logistic", partitions=N_WORKERS, rng=0)
    ok, missing = available_schemes()
    notes = [f"scheme {m!r} is not registered in this installation: skipped." for m in missing]
    run_seeds = seeds(rng, n_seeds)
    rows = []
    with Progress(len(highs) * len(ok) * n_seeds, "heterogeneity", enabled=progress) as bar:
        for high in highs:
            profile = paper_profile(N_WORKERS, dim=problem.dim, high=high)
            res = run_schemes(
                problem,
                profile,
                BITS_PER_WORKER * N_WORKERS,
                ok,
                seeds=run_seeds,
                steps=steps,
                optimizer=sgd(0.3, batch_size=8),
                progress=bar,
            )
            central = np.array([final_loss(h) for h in res["centralized"]])
            for name, runs in res.items():
                final = np.array([final_loss(h) for h in runs])
                mean, half = mean_ci(final - central)
                sub_mean, sub_half = mean_ci(final - problem.optimal_loss)
                rows.append(
                    {
                        "mu_max": high,
                        "mean_p": float(profile.straggler_probs.mean()),
                        "min_p": float(profile.straggler_probs.min()),
                        "scheme": name,
                        "gap_mean": mean,
                        "gap_ci95": half,
                        "suboptimality_mean": sub_mean,
                        "suboptimality_ci95": sub_half,
                    }
                )
    fig, axes = new_figure(1, 1, width=7.5, height=4.8)
    ax = axes[0][0]
    for name in ok:
        sel = [r for r in rows if r["scheme"] == name]
        x = [r["mu_max"] for r in sel]
        y = [r["suboptimality_mean"] for r in sel]
        # 95% CIs need a few seeds; with two (quick mode) they are too wide to draw usefully
        err = [r["suboptimality_ci95"] for r in sel] if n_seeds >= 3 else None
        kw = style(name)
        ax.errorbar(x, y, yerr=err, marker="o", markersize=4, capsize=2, **kw)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("upper bound mu_max of the straggling parameters  (mu_i ~ U(0.01, mu_max))")
    ax.set_ylabel("final loss minus optimum  f(w) - f*")
    ax.set_title(f"Logistic regression on digits, N = 50, B/N = {BITS_PER_WORKER}, {steps} rounds")
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside right center", fontsize=9)
    files = [write_csv(out / "heterogeneity.csv", rows), save_figure(fig, out / "heterogeneity.png")]
    table = markdown_table(
        ["mu_max", "mean p", "scheme", "gap to centralized (95% CI)"],
        [
            [
                f"{r['mu_max']:g}",
                f"{r['mean_p']:.3f}",
                scheme_label(r["scheme"]),
                f"{r['gap_mean']:.4f} ± {r['gap_ci95']:.4f}",
            ]
            for r in rows
            if r["scheme"] != "centralized"
        ],
    )
    summary = "\n".join(
        [
            f"{n_seeds} seeds, {steps} rounds of mini-batch SGD (step 0.3, 8 samples per partition) per "
            "point. Larger mu_max: more heterogeneous, fewer stragglers on average.",
            "",
            "![final gap vs mu_max](heterogeneity.png)",
            "",
            table,
        ]
    )
    return StudyResult("heterogeneity", files=files, summary=summary, notes=notes)
