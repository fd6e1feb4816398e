"""Loss and test accuracy vs round at B/N = 2, 3, 5, 7, every scheme and its EF variant (paper Fig. 2, 3, 3e).

The nonconvex setting of issue 11: a one-hidden-layer ReLU MLP on scikit-learn's
digits with d = 1e5 parameters (quick mode: d = 2e3), K = N = 50 partitions,
the paper's straggler profile (shifted exponential, t0 = 1, deadline 1.1,
mu_i ~ U(0.01, 2): mean p = 0.90), mini-batch SGD (8 samples per partition,
constant step 0.1), the package's default quantization model. Every baseline
also runs with error feedback (MATH.md 12, ``"<scheme>+ef"``); centralized SGD
is the reference. Every run (budget x scheme x seed) is one task with its own
seed (the seed draws the random codes too). The final table: mean training loss
and held-out accuracy over the last 10% of rounds, 95% Student-t intervals over
seeds, and for each competitor the Welch interval of (competitor - joint) with
the verdict. A run whose loss overflows (it stops) or ends above 10x its initial
loss counts as diverged, and a diverged run decides its verdict.
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
    band,
    diff_ci,
    diverged,
    final_accuracy,
    final_loss,
    markdown_table,
    mean_ci,
    mlp_setting,
    new_figure,
    run_schemes,
    save_figure,
    scheme_label,
    verdict,
    with_error_feedback,
    write_csv,
)

BUDGETS = (2, 3, 5, 7)  # bits per worker
LEARNING_RATE = 0.1
BATCH = 8


def settings(quick: bool) -> dict:
    if quick:
        return {"seeds": 2, "rounds": 15}
    return {"seeds": 3, "rounds": 60}


_CACHE: dict = {}


def compare(quick: bool, rng, progress: bool, *, label="runs", workers=None):
    """Run every scheme and EF variant at each of BUDGETS; returns (problem, {budget: {name: runs}}, notes).

    The runs are mapped by `workers` (see :func:`~gcdesign.studies._common.run_schemes`).
    The result is kept for the process, so the bits study reuses the convergence runs.
    """
    key = (quick, rng if isinstance(rng, int) else None)
    if key in _CACHE and key[1] is not None:
        return _CACHE[key]
    cfg = settings(quick)
    problem, n_workers = mlp_setting(quick)
    profile = paper_profile(n_workers, dim=problem.dim)
    ok, missing = available_schemes()
    notes = [f"scheme {m!r} is not registered in this installation: skipped." for m in missing]
    names = with_error_feedback(ok)
    run_seeds = seeds(rng, cfg["seeds"])
    results = {}
    with Progress(len(BUDGETS) * len(names) * len(run_seeds), label, enabled=progress) as bar:
        for bpw in BUDGETS:
            results[bpw] = run_schemes(
                problem,
                profile,
                bpw * n_workers,
                names,
                seeds=run_seeds,
                rounds=cfg["rounds"],
                optimizer=sgd(LEARNING_RATE, batch_size=BATCH),
                progress=bar,
                workers=workers,
            )
    _CACHE[key] = (problem, results, notes)
    return _CACHE[key]


def _stats(values) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    return mean_ci(finite) if finite.size else (float("inf"), float("nan"))


def final_table(results: dict, key: str = "bits_per_worker") -> list[dict]:
    """Final loss and accuracy per scheme and setting, with CIs and the comparison to joint.

    `results` is ``{setting: {name: [History, ...]}}`` (a budget, or another swept
    value named by `key`, the rows' first column).
    """
    rows = []
    for bpw, by_name in results.items():
        loss = {name: np.array([final_loss(h) for h in runs]) for name, runs in by_name.items()}
        acc = {name: np.array([final_accuracy(h) for h in runs]) for name, runs in by_name.items()}
        for name, runs in by_name.items():
            lm, lh = _stats(loss[name])
            am, ah = mean_ci(acc[name])
            row = {
                key: bpw,
                "scheme": name,
                "seeds": len(runs),
                "diverged": sum(diverged(h) for h in runs),
                "loss_mean": lm,
                "loss_ci95": lh,
                "accuracy_mean": am,
                "accuracy_ci95": ah,
                "loss_minus_joint": None,
                "loss_minus_joint_ci95": None,
                "accuracy_minus_joint": None,
                "accuracy_minus_joint_ci95": None,
                "verdict": "",
            }
            if name != "joint" and "joint" in loss:
                joint_diverged = any(diverged(h) for h in by_name["joint"])
                if not (row["diverged"] or joint_diverged):
                    d, h = diff_ci(loss[name], loss["joint"])
                else:  # a diverged run decides: its loss is no sample of a distribution worth a mean
                    d, h = (float("inf") if row["diverged"] else float("-inf")), float("nan")
                row["loss_minus_joint"], row["loss_minus_joint_ci95"] = d, h
                acc_diff = diff_ci(acc[name], acc["joint"])
                row["accuracy_minus_joint"], row["accuracy_minus_joint_ci95"] = acc_diff
                row["verdict"] = verdict(d, h)
            rows.append(row)
    return rows


def plot_curves(results: dict, path: Path, *, x: str = "round", title: str = "") -> Path:
    """Training loss against the round (or the bits delivered), one panel per budget."""
    budgets = list(results)
    cols = 2 if len(budgets) > 1 else 1
    rows = (len(budgets) + cols - 1) // cols
    fig, axes = new_figure(cols, rows, width=6.0, height=4.4)
    for i, bpw in enumerate(budgets):
        ax = axes[i // cols][i % cols]
        for name, runs in results[bpw].items():
            if x != "round" and name == "centralized":
                continue
            loss = np.array([np.minimum(h.loss, 1e3) for h in runs])
            if x == "round":
                xs = np.arange(loss.shape[1])
            else:
                xs = np.mean([h.total_bits for h in runs], axis=0)
                keep = xs > 0
                xs, loss = xs[keep], loss[:, keep]
            band(ax, xs, loss, name)
        ax.set_yscale("log")
        ax.set_ylim(top=LOSS_AXIS_TOP)
        if x != "round":
            ax.set_xscale("log")
            ax.set_xlabel("total bits delivered to the master (bits)")
        else:
            ax.set_xlabel("round (optimizer step)")
        ax.set_ylabel("training loss f(w) (cross-entropy + L2)")
        ax.set_title(f"B/N = {bpw} bits per worker")
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def _title(problem, cfg) -> str:
    return (
        f"MLP on digits (d = {problem.dim}), N = K = 50, mean p = 0.90, {cfg['seeds']} seeds; "
        "mean and 10-90% band; loss capped at 1e3 (diverged runs)"
    )


def fmt(mean, half, digits=4) -> str:
    """``mean ± half`` for tables; ``"diverged"`` for an infinite mean, powers of ten from 1e4 on."""
    if mean is None:
        return ""
    if not np.isfinite(mean):
        return "diverged"
    if abs(mean) >= 1e4:
        return f"{mean:.2e} ± {half:.1e}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    problem, results, notes = compare(quick, rng, progress, label="convergence", workers=workers)
    cfg = settings(quick)
    curve_rows = []
    stride = max(1, cfg["rounds"] // 200)
    for bpw, by_name in results.items():
        for name, runs in by_name.items():
            loss = np.array([h.loss for h in runs])
            acc = np.array([h.test_accuracy for h in runs])
            for t in range(0, loss.shape[1], stride):
                curve_rows.append(
                    {
                        "bits_per_worker": bpw,
                        "scheme": name,
                        "round": t,
                        "loss_mean": float(loss[:, t].mean()),
                        "loss_p10": float(np.percentile(loss[:, t], 10)),
                        "loss_p90": float(np.percentile(loss[:, t], 90)),
                        "accuracy_mean": float(np.nanmean(np.nan_to_num(acc[:, t], nan=0.0))),
                    }
                )
    files = [
        write_csv(out / "convergence.csv", curve_rows),
        plot_curves(results, out / "convergence.png", title=_title(problem, cfg)),
    ]
    table = final_table(results)
    files.append(write_csv(out / "convergence_final.csv", table))
    summary = [
        f"One-hidden-layer ReLU MLP on digits (n = {problem.n_samples} training, d = {problem.dim}), "
        "N = K = 50 workers with the paper's straggler profile (mean p = 0.90), mini-batch SGD "
        f"(8 samples per partition, step {LEARNING_RATE}), the default quantization model, "
        f"{cfg['rounds']} rounds, {cfg['seeds']} seeds. '+ EF': the scheme with error feedback.",
        "",
        "![loss vs round](convergence.png)",
        "",
        "Final training loss and held-out accuracy (mean of the last 10% of rounds), 95% CI over seeds; "
        "'minus joint' is the competitor's value minus the joint design's (loss: positive means joint "
        "better), Welch 95% interval; 'diverged' counts the runs whose loss overflowed or ended above "
        "10x its initial value (a diverged run decides the verdict: 'joint better (competitor diverged)').",
        "",
        markdown_table(
            [
                "B/N",
                "scheme",
                "final loss",
                "test accuracy",
                "diverged",
                "loss minus joint",
                "accuracy minus joint",
                "verdict",
            ],
            [
                [
                    r["bits_per_worker"],
                    scheme_label(r["scheme"]),
                    fmt(r["loss_mean"], r["loss_ci95"]),
                    fmt(r["accuracy_mean"], r["accuracy_ci95"], 3),
                    f"{r['diverged']}/{r['seeds']}",
                    fmt(r["loss_minus_joint"], r["loss_minus_joint_ci95"]),
                    fmt(r["accuracy_minus_joint"], r["accuracy_minus_joint_ci95"], 3),
                    r["verdict"],
                ]
                for r in table
            ],
        ),
    ]
    worse = [r for r in table if r["verdict"].startswith("joint worse")]
    if worse:
        summary += [
            "",
            "Where the joint design is NOT better: "
            + "; ".join(f"{scheme_label(r['scheme'])} at B/N = {r['bits_per_worker']}" for r in worse)
            + ".",
        ]
    return StudyResult("convergence", files=files, summary="\n".join(summary), notes=notes)


__all__ = [
    "BATCH",
    "BUDGETS",
    "LEARNING_RATE",
    "compare",
    "final_table",
    "fmt",
    "plot_curves",
    "run",
    "settings",
]
