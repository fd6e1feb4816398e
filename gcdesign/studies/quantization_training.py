"""Training consequence of the quantization model (issue 10): default vs "balanced" vs OSGC.

The joint design under the package's default quantization model
(``design.DEFAULT_QUANTIZATION`` with buckets of ``DEFAULT_BUCKET_SIZE``), the
joint design under the paper's "balanced" scaling of kappa (one bucket, as in the
paper), and OSGC, which ignores quantization, trained on the convergence study's
setting (the digits MLP at d = 1e5, quick: 2e3; N = K = 50, the paper's profile,
mini-batch SGD) at B/N = 3 and 7. Final training loss and held-out accuracy
(mean of the last 10% of rounds) with 95% intervals over seeds, and the Welch
interval of (competitor - default) with the verdict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..design import DEFAULT_BUCKET_SIZE, DEFAULT_QUANTIZATION, design
from ..profile import paper_profile
from ..training import seeds, sgd, training_scheme
from ._common import (
    Progress,
    StudyResult,
    diff_ci,
    diverged,
    final_accuracy,
    final_loss,
    markdown_table,
    mean_ci,
    mlp_setting,
    train_runs,
    verdict,
    write_csv,
)
from .convergence import BATCH, LEARNING_RATE, fmt, settings

BUDGETS = (3, 7)
VARIANTS = ("joint, default model", "joint, balanced", "OSGC")


def _schemes(profile, budget, seed):
    return {
        VARIANTS[0]: design(profile, budget),
        VARIANTS[1]: design(profile, budget, quantization="balanced", bucket_size=None),
        VARIANTS[2]: training_scheme("osgc", profile, budget, rng=seed),
    }


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    cfg = settings(quick)
    problem, n_workers = mlp_setting(quick)
    profile = paper_profile(n_workers, dim=problem.dim)
    run_seeds = seeds(rng, cfg["seeds"])
    options = {"rounds": cfg["rounds"], "optimizer": sgd(LEARNING_RATE, batch_size=BATCH)}
    keys, tasks = [], []
    for bpw in BUDGETS:
        for seed in run_seeds:
            for label, scheme in _schemes(profile, bpw * n_workers, seed).items():
                keys.append((bpw, label))
                tasks.append((problem, scheme, seed, options))
    runs: dict = {}
    with Progress(len(tasks), "quantization-training", enabled=progress) as bar:
        for key, hist in zip(keys, train_runs(tasks, workers=workers, progress=bar), strict=True):
            runs.setdefault(key, []).append(hist)
    rows = []
    for (bpw, label), hists in runs.items():
        loss = np.array([final_loss(h) for h in hists])
        acc = np.array([final_accuracy(h) for h in hists])
        base_loss = np.array([final_loss(h) for h in runs[(bpw, VARIANTS[0])]])
        base_acc = np.array([final_accuracy(h) for h in runs[(bpw, VARIANTS[0])]])
        row = {
            "bits_per_worker": bpw,
            "variant": label,
            "seeds": len(hists),
            "diverged": sum(diverged(h) for h in hists),
        }
        row["loss_mean"], row["loss_ci95"] = mean_ci(loss)
        row["accuracy_mean"], row["accuracy_ci95"] = mean_ci(acc)
        row["loss_minus_default"] = row["loss_minus_default_ci95"] = None
        row["accuracy_minus_default"] = row["accuracy_minus_default_ci95"] = None
        row["verdict"] = ""
        if label != VARIANTS[0]:
            row["loss_minus_default"], row["loss_minus_default_ci95"] = diff_ci(loss, base_loss)
            row["accuracy_minus_default"], row["accuracy_minus_default_ci95"] = diff_ci(acc, base_acc)
            row["verdict"] = verdict(row["loss_minus_default"], row["loss_minus_default_ci95"]).replace(
                "joint", "default"
            )
        rows.append(row)
    files = [write_csv(out / "quantization_training.csv", rows)]
    table = markdown_table(
        [
            "B/N",
            "variant",
            "final loss",
            "test accuracy",
            "loss minus default",
            "accuracy minus default",
            "verdict (loss)",
        ],
        [
            [
                r["bits_per_worker"],
                r["variant"],
                fmt(r["loss_mean"], r["loss_ci95"]),
                fmt(r["accuracy_mean"], r["accuracy_ci95"], 3),
                fmt(r["loss_minus_default"], r["loss_minus_default_ci95"]),
                fmt(r["accuracy_minus_default"], r["accuracy_minus_default_ci95"], 3),
                r["verdict"],
            ]
            for r in rows
        ],
    )
    summary = "\n".join(
        [
            f"MLP on digits (d = {problem.dim}), N = K = 50, the paper's profile, SGD (step "
            f"{LEARNING_RATE}, {BATCH} samples per partition), {cfg['rounds']} rounds, {cfg['seeds']} seeds. "
            f"Default model: {DEFAULT_QUANTIZATION!r} with buckets of {DEFAULT_BUCKET_SIZE}; balanced: the "
            "paper's kappa scaling, one bucket.",
            "",
            table,
        ]
    )
    return StudyResult("quantization_training", files=files, summary=summary)


__all__ = [
    "BUDGETS",
    "VARIANTS",
    "run",
]
