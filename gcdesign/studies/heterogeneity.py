"""Sweep of the upper bound of the straggling parameters (paper Fig. 3d).

The digits MLP of the convergence study (d = 1e5, quick: 2e3), every scheme and
the EF variant of every baseline. Rates ``mu_i ~ U(0.01, mu_max)`` (same seed, rescaled draws), shifted
exponential round times (t0 = 1) against the deadline 1.1, so
``p_i = exp(-0.1 mu_i)``: a larger ``mu_max`` makes the cluster more
heterogeneous *and* lowers the mean straggling probability. B/N = 3,
mini-batch SGD; the final loss gap to centralized SGD per scheme, mean and 95%
CI over seeds (a diverged run: inf).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..profile import paper_profile
from ..training import available_schemes, seeds, sgd
from ._common import (
    Progress,
    StudyResult,
    final_loss,
    markdown_table,
    mean_ci,
    mlp_setting,
    new_figure,
    run_schemes,
    save_figure,
    scheme_label,
    style,
    with_error_feedback,
    write_csv,
)

BITS_PER_WORKER = 3
N_WORKERS = 50


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    highs = (1.0, 2.0, 5.0, 10.0) if quick else (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
    n_seeds, steps = (2, 10) if quick else (3, 60)
    problem, _ = mlp_setting(quick)
    ok, missing = available_schemes()
    notes = [f"scheme {m!r} is not registered in this installation: skipped." for m in missing]
    ok = with_error_feedback(ok)
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
                optimizer=sgd(0.1, batch_size=8),
                progress=bar,
                workers=workers,
            )
            central = np.array([final_loss(h) for h in res["centralized"]])
            for name, runs in res.items():
                final = np.array([final_loss(h) for h in runs])
                mean, half = mean_ci(final - central)
                sub_mean, sub_half = mean_ci(final)
                rows.append(
                    {
                        "mu_max": high,
                        "mean_p": float(profile.straggler_probs.mean()),
                        "min_p": float(profile.straggler_probs.min()),
                        "scheme": name,
                        "gap_mean": mean,
                        "gap_ci95": half,
                        "final_loss_mean": sub_mean,
                        "final_loss_ci95": sub_half,
                    }
                )
    fig, axes = new_figure(1, 1, width=7.5, height=4.8)
    ax = axes[0][0]
    for name in ok:
        sel = [r for r in rows if r["scheme"] == name]
        x = [r["mu_max"] for r in sel]
        y = [r["final_loss_mean"] for r in sel]
        # 95% CIs need a few seeds; with two (quick mode) they are too wide to draw usefully
        err = [r["final_loss_ci95"] for r in sel] if n_seeds >= 3 else None
        kw = style(name)
        ax.errorbar(x, y, yerr=err, marker="o", markersize=4, capsize=2, **kw)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("upper bound mu_max of the straggling parameters  (mu_i ~ U(0.01, mu_max))")
    ax.set_ylabel("final training loss f(w) (cross-entropy + L2)")
    ax.set_title(f"MLP on digits (d = {problem.dim}), N = 50, B/N = {BITS_PER_WORKER}, {steps} rounds")
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside right center", fontsize=8)
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
            f"{n_seeds} seeds, {steps} rounds of mini-batch SGD (step 0.1, 8 samples per partition) per "
            "point. Larger mu_max: more heterogeneous, fewer stragglers on average.",
            "",
            "![final gap vs mu_max](heterogeneity.png)",
            "",
            table,
        ]
    )
    return StudyResult("heterogeneity", files=files, summary=summary, notes=notes)
