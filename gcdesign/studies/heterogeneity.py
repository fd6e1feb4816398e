"""Sweep of the upper bound of the straggling parameters (paper Fig. 3d).

The digits MLP of the convergence study (d = 1e5, quick: 2e3), every scheme and
the EF variant of every baseline. Rates ``mu_i ~ U(0.01, mu_max)`` (same seed, rescaled draws), shifted
exponential round times (t0 = 1) against the deadline 1.1, so
``p_i = exp(-0.1 mu_i)``: a larger ``mu_max`` makes the cluster more
heterogeneous *and* lowers the mean straggling probability. B/N = 3,
mini-batch SGD; per scheme the final loss and held-out accuracy, the gap to
centralized SGD (paired by seed) and, against the joint design, the Welch
interval of the difference with a verdict (the convergence study's
``final_table``); a diverged run counts as inf.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..profile import paper_profile
from ..training import available_schemes, seeds, sgd
from ._common import (
    LOSS_AXIS_TOP,
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
from .convergence import final_table, fmt

BITS_PER_WORKER = 3
N_WORKERS = 50


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    highs = (1.0, 2.0, 5.0, 10.0) if quick else (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
    n_seeds, rounds = (2, 10) if quick else (3, 60)
    problem, _ = mlp_setting(quick)
    ok, missing = available_schemes()
    notes = [f"scheme {m!r} is not registered in this installation: skipped." for m in missing]
    ok = with_error_feedback(ok)
    run_seeds = seeds(rng, n_seeds)
    results, profiles = {}, {}
    with Progress(len(highs) * len(ok) * n_seeds, "heterogeneity", enabled=progress) as bar:
        for high in highs:
            profiles[high] = paper_profile(N_WORKERS, dim=problem.dim, high=high)
            results[high] = run_schemes(
                problem,
                profiles[high],
                BITS_PER_WORKER * N_WORKERS,
                ok,
                seeds=run_seeds,
                rounds=rounds,
                optimizer=sgd(0.1, batch_size=8),
                progress=bar,
                workers=workers,
            )
    rows = []
    for row in final_table(results, key="mu_max"):
        high, name = row["mu_max"], row["scheme"]
        probs = profiles[high].straggler_probs
        central = np.array([final_loss(h) for h in results[high]["centralized"]])
        final = np.array([final_loss(h) for h in results[high][name]])
        gap = mean_ci(final - central) if np.all(np.isfinite(final)) else (float("inf"), float("nan"))
        rows.append(
            {"mu_max": high, "mean_p": float(probs.mean()), "min_p": float(probs.min())}
            | {k: v for k, v in row.items() if k != "mu_max"}
            | {"gap_mean": gap[0], "gap_ci95": gap[1]}
        )
    title = f"MLP on digits (d = {problem.dim}), N = 50, B/N = {BITS_PER_WORKER}, {rounds} rounds"
    fig = _figure(rows, ok, title, n_seeds)
    files = [write_csv(out / "heterogeneity.csv", rows), save_figure(fig, out / "heterogeneity.png")]
    table = markdown_table(
        [
            "mu_max",
            "mean p",
            "scheme",
            "final loss",
            "test accuracy",
            "diverged",
            "gap to centralized",
            "loss minus joint",
            "verdict",
        ],
        [
            [
                f"{r['mu_max']:g}",
                f"{r['mean_p']:.3f}",
                scheme_label(r["scheme"]),
                fmt(r["loss_mean"], r["loss_ci95"]),
                fmt(r["accuracy_mean"], r["accuracy_ci95"], 3),
                f"{r['diverged']}/{r['seeds']}",
                fmt(r["gap_mean"], r["gap_ci95"]),
                fmt(r["loss_minus_joint"], r["loss_minus_joint_ci95"]),
                r["verdict"],
            ]
            for r in rows
            if r["scheme"] != "centralized"
        ],
    )
    summary = "\n".join(
        [
            f"{n_seeds} seeds, {rounds} rounds of mini-batch SGD (step 0.1, 8 samples per partition) per "
            "point. Larger mu_max: more heterogeneous, fewer stragglers on average. Final loss and "
            "accuracy: mean of the last 10% of rounds, 95% CI over seeds; gap: paired by seed with "
            "centralized SGD; 'minus joint': Welch 95% interval of (competitor - joint), positive "
            "when joint is better.",
            "",
            "![final gap vs mu_max](heterogeneity.png)",
            "",
            table,
        ]
    )
    return StudyResult("heterogeneity", files=files, summary=summary, notes=notes)


def _figure(rows, names, title: str, n_seeds: int):
    """Final loss vs ``mu_max`` per scheme; a diverged point sits at ``LOSS_AXIS_TOP``, without error bar."""
    fig, axes = new_figure(1, 1, width=7.5, height=4.8)
    ax = axes[0][0]
    for name in names:
        sel = [r for r in rows if r["scheme"] == name]
        x = [r["mu_max"] for r in sel]
        y = [min(r["loss_mean"], LOSS_AXIS_TOP) for r in sel]
        # 95% CIs need a few seeds; with two (quick mode) they are too wide to draw usefully
        trained = [r["diverged"] == 0 and r["loss_mean"] < LOSS_AXIS_TOP for r in sel]
        err = [r["loss_ci95"] if good else 0.0 for r, good in zip(sel, trained, strict=True)]
        err = err if n_seeds >= 3 else None
        ax.errorbar(x, y, yerr=err, marker="o", markersize=4, capsize=2, **style(name))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(top=LOSS_AXIS_TOP * 1.5)
    ax.set_xlabel("upper bound mu_max of the straggling parameters  (mu_i ~ U(0.01, mu_max))")
    ax.set_ylabel(f"final training loss f(w) (diverged: drawn at {LOSS_AXIS_TOP:g})")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside right center", fontsize=8)
    return fig


__all__ = [
    "BITS_PER_WORKER",
    "N_WORKERS",
    "run",
]
