"""Loss vs round at a low and a high budget, every scheme (paper Fig. 2 and 3).

Logistic regression (L2, rho = 1e-3) on scikit-learn's digits (digit >= 5),
K = N = 50 partitions, the paper's straggler profile (shifted exponential,
t0 = 1, deadline 1.1, mu_i ~ U(0.01, 2): mean p = 0.90), mini-batch SGD (8
samples per partition, constant step 0.3), B/N = 3 and 7. Every scheme runs
once per seed (the seed draws the random codes too). The final-loss table
(mean loss over the last 10% of rounds, minus centralized SGD's on the same
seed) carries 95% Student-t confidence intervals, and a Welch interval for
each baseline's gap minus the joint design's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..profile import paper_profile
from ..training import available_schemes, digits_problem, seeds, sgd
from ._common import (
    Progress,
    StudyResult,
    band,
    diff_ci,
    final_loss,
    markdown_table,
    mean_ci,
    new_figure,
    run_schemes,
    save_figure,
    scheme_label,
    write_csv,
)

BUDGETS = (3, 7)  # bits per worker
N_WORKERS = 50


def settings(quick: bool) -> dict:
    if quick:
        return {"seeds": 3, "steps": 400}
    return {"seeds": 12, "steps": 2000}


def compare(quick: bool, rng, progress: bool, *, label="runs"):
    """Run every available scheme at each of BUDGETS; returns (problem, {budget: {name: runs}}, notes)."""
    cfg = settings(quick)
    problem = digits_problem("logistic", partitions=N_WORKERS, rng=0)
    profile = paper_profile(N_WORKERS, dim=problem.dim)
    ok, missing = available_schemes()
    notes = [f"scheme {m!r} is not registered in this installation: skipped." for m in missing]
    run_seeds = seeds(rng, cfg["seeds"])
    results = {}
    with Progress(len(BUDGETS) * len(ok) * len(run_seeds), label, enabled=progress) as bar:
        for bpw in BUDGETS:
            results[bpw] = run_schemes(
                problem,
                profile,
                bpw * N_WORKERS,
                ok,
                seeds=run_seeds,
                steps=cfg["steps"],
                optimizer=sgd(0.3, batch_size=8),
                progress=bar,
            )
    return problem, results, notes


def final_table(results: dict) -> list[dict]:
    """Final loss gap to centralized per scheme and budget, with CIs and the comparison to joint."""
    rows = []
    for bpw, by_name in results.items():
        central = np.array([final_loss(h) for h in by_name["centralized"]])
        gaps = {name: np.array([final_loss(h) for h in runs]) - central for name, runs in by_name.items()}
        for name, gap in gaps.items():
            mean, half = mean_ci(gap)
            row = {
                "bits_per_worker": bpw,
                "scheme": name,
                "seeds": gap.size,
                "gap_mean": mean,
                "gap_ci95": half,
                "minus_joint_mean": None,
                "minus_joint_ci95": None,
                "verdict": "",
            }
            if name not in ("joint", "centralized") and "joint" in gaps:
                d, h = diff_ci(gap, gaps["joint"])
                row["minus_joint_mean"], row["minus_joint_ci95"] = d, h
                row["verdict"] = (
                    "joint better"
                    if d - h > 0
                    else ("joint worse" if d + h < 0 else "no significant difference")
                )
            rows.append(row)
    return rows


def plot_curves(results: dict, problem, path: Path, *, x: str = "round") -> Path:
    budgets = list(results)
    fig, axes = new_figure(len(budgets), 1, width=6.2, height=4.6)
    for ax, bpw in zip(axes[0], budgets, strict=True):
        for name, runs in results[bpw].items():
            gap = np.array([np.maximum(h.loss - problem.optimal_loss, 1e-8) for h in runs])
            if x == "round":
                xs = np.arange(gap.shape[1])
            else:
                if name == "centralized":
                    continue
                xs = np.mean([h.total_bits for h in runs], axis=0)
                keep = xs > 0
                xs, gap = xs[keep], gap[:, keep]
            band(ax, xs, gap, name)
        ax.set_yscale("log")
        if x != "round":
            ax.set_xscale("log")
            ax.set_xlabel("total bits delivered to the master (bits)")
        else:
            ax.set_xlabel("round (optimizer step)")
        ax.set_ylabel("training loss minus optimum  f(w) - f*")
        ax.set_title(f"B/N = {bpw} bits per worker")
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=9)
    fig.suptitle("Logistic regression on digits, N = K = 50, mean p = 0.90; mean and 10-90% band over seeds")
    return save_figure(fig, path)


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True) -> StudyResult:
    problem, results, notes = compare(quick, rng, progress, label="convergence")
    cfg = settings(quick)
    curve_rows = []
    stride = max(1, cfg["steps"] // 200)
    for bpw, by_name in results.items():
        for name, runs in by_name.items():
            gap = np.array([h.loss - problem.optimal_loss for h in runs])
            for t in range(0, gap.shape[1], stride):
                curve_rows.append(
                    {
                        "bits_per_worker": bpw,
                        "scheme": name,
                        "round": t,
                        "gap_mean": float(gap[:, t].mean()),
                        "gap_p10": float(np.percentile(gap[:, t], 10)),
                        "gap_p90": float(np.percentile(gap[:, t], 90)),
                    }
                )
    files = [
        write_csv(out / "convergence.csv", curve_rows),
        plot_curves(results, problem, out / "convergence.png"),
    ]
    table = final_table(results)
    files.append(write_csv(out / "convergence_final.csv", table))
    summary = [
        f"Logistic regression on digits (n = {problem.n_samples}, d = {problem.dim}), "
        "N = K = 50 workers with "
        f"the paper's straggler profile (mean p = 0.90), mini-batch SGD (8 samples per partition, step 0.3), "
        f"{cfg['steps']} rounds, {len(next(iter(results.values()))['centralized'])} seeds.",
        "",
        "![loss vs round](convergence.png)",
        "",
        "Final loss gap to centralized SGD (mean of the last 10% of rounds, same seed), 95% CI; "
        "'minus joint' is the baseline's gap minus the joint design's (positive: joint better).",
        "",
        markdown_table(
            ["B/N", "scheme", "gap to centralized", "minus joint", "verdict"],
            [
                [
                    r["bits_per_worker"],
                    scheme_label(r["scheme"]),
                    f"{r['gap_mean']:.5f} ± {r['gap_ci95']:.5f}",
                    ""
                    if r["minus_joint_mean"] is None
                    else f"{r['minus_joint_mean']:+.5f} ± {r['minus_joint_ci95']:.5f}",
                    r["verdict"],
                ]
                for r in table
                if r["scheme"] != "centralized"
            ],
        ),
    ]
    worse = [r for r in table if r["verdict"] == "joint worse"]
    if worse:
        summary += [
            "",
            "Where the joint design is NOT better: "
            + "; ".join(f"{r['scheme']} at B/N = {r['bits_per_worker']}" for r in worse)
            + ".",
        ]
    return StudyResult("convergence", files=files, summary="\n".join(summary), notes=notes)
