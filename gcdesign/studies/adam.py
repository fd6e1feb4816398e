"""Adam with and without two-track decoding (paper Sec. V-E, Fig. 2c/2f).

The joint design decodes the first moment with the unbiased ``a`` and, with
two-track decoding, the second moment with ``a' = a lambda S / (1 + lambda S)``
(docs/math.md, section 7); without it both moments use ``a``. Baselines run
plain Adam, with and without error feedback. The digits MLP of the convergence
study (d = 1e5, quick: 2e3), the paper's profile, B/N = 2, 3, 5 and 7, mini-batch
gradients (8 samples per partition), two learning rates.

Two-track and one-track runs of a seed draw the same arrivals, mini-batches and
quantization (the second moment's decoder consumes no randomness), so their
comparison is paired: the 95% Student-t interval of the per-seed differences of
the final loss, with a verdict (two-track better, tied or worse).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..design import design
from ..profile import paper_profile
from ..training import EF_SUFFIX, Centralized, adam, available_schemes, seeds, training_scheme
from ._common import (
    LOSS_AXIS_TOP,
    Progress,
    StudyResult,
    band,
    diverged,
    final_accuracy,
    final_loss,
    markdown_table,
    mean_ci,
    mlp_setting,
    new_figure,
    save_figure,
    scheme_label,
    train_runs,
    write_csv,
)
from .convergence import fmt

N_WORKERS = 50
BUDGETS = (2, 3, 5, 7)
LEARNING_RATES = (0.001, 0.003)
LAMBDAS = (0.1, 1.0, 10.0)
BASELINES = ("osgc", "sgc", "bgc")
COLORS = {"off": ("tab:orange", "-"), 0.1: ("tab:red", "-"), 1.0: ("darkred", "--"), 10.0: ("salmon", ":")}


def _variants(profile, budget, baselines, run_seeds):
    """``{seed: [(label, scheme, two_track, lam, error_feedback), ...]}``; the design is shared."""
    code = design(profile, budget)
    fixed = [
        ("centralized Adam", Centralized(profile), False, 1.0, False),
        (ONE_TRACK, code, False, 1.0, False),
    ]
    fixed += [(f"joint, two-track lambda={lam:g}", code, True, lam, False) for lam in LAMBDAS]
    out = {}
    for seed in run_seeds:  # the baselines' random codes follow the seed
        base = [(name, training_scheme(name, profile, budget, rng=seed)) for name in baselines]
        out[seed] = fixed + [(scheme_label(n), c, False, 1.0, False) for n, c in base]
        out[seed] += [(scheme_label(n + EF_SUFFIX), c, False, 1.0, True) for n, c in base]
    return out


ONE_TRACK = "joint, one-track"


def _paired(a, b) -> tuple[float, float]:
    """Mean of the per-seed differences ``a - b`` and its 95% half-width (inf where a run diverged)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return (float("inf") if not np.all(np.isfinite(a)) else float("-inf")), float("nan")
    return mean_ci(a - b)


def _two_track_verdict(d: float, h: float) -> str:
    if not np.isfinite(d):
        return "two-track worse (diverged)" if d > 0 else "two-track better (one-track diverged)"
    return "two-track better" if d + h < 0 else ("two-track worse" if d - h > 0 else "tied")


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    n_seeds, rounds = (2, 8) if quick else (3, 60)
    problem, _ = mlp_setting(quick)
    profile = paper_profile(N_WORKERS, dim=problem.dim)
    ok, missing = available_schemes(BASELINES)
    notes = [f"scheme {m!r} is not registered in this installation: skipped." for m in missing]
    run_seeds = seeds(rng, n_seeds)
    n_variants = 2 + len(LAMBDAS) + 2 * len(ok)
    runs: dict = {}
    keys, tasks = [], []  # one task per run, each with its own seed
    for bpw in BUDGETS:
        variants = _variants(profile, bpw * N_WORKERS, ok, run_seeds)
        for lr in LEARNING_RATES:
            for seed in run_seeds:
                for label, scheme, two_track, lam, feedback in variants[seed]:
                    opt = adam(lr, two_track=two_track, lam=lam, batch_size=8)
                    keys.append((bpw, lr, label))
                    options = {"rounds": rounds, "optimizer": opt, "error_feedback": feedback}
                    tasks.append((problem, scheme, seed, options))
    with Progress(len(BUDGETS) * len(LEARNING_RATES) * n_variants * n_seeds, "adam", enabled=progress) as bar:
        for key, hist in zip(keys, train_runs(tasks, workers=workers, progress=bar), strict=True):
            runs.setdefault(key, []).append(hist)
    rows = []
    for (bpw, lr, label), hists in runs.items():
        loss = np.array([final_loss(h) for h in hists])
        finite = loss[np.isfinite(loss)]
        central = np.array([final_loss(h) for h in runs[(bpw, lr, "centralized Adam")]])
        one = np.array([final_loss(h) for h in runs[(bpw, lr, ONE_TRACK)]])
        row = {
            "bits_per_worker": bpw,
            "lr": lr,
            "variant": label,
            "seeds": len(hists),
            "diverged": sum(diverged(h) for h in hists),
            "shrinkage": hists[0].shrinkage,
            "loss_mean": mean_ci(finite)[0] if finite.size else float("inf"),
            "loss_ci95": mean_ci(finite)[1] if finite.size else float("nan"),
            "accuracy_mean": mean_ci([final_accuracy(h) for h in hists])[0],
            "accuracy_ci95": mean_ci([final_accuracy(h) for h in hists])[1],
            "gap_mean": None,
            "gap_ci95": None,
            "minus_one_track": None,
            "minus_one_track_ci95": None,
            "verdict": "",
        }
        if label != "centralized Adam":
            row["gap_mean"], row["gap_ci95"] = _paired(loss, central)
        if label.startswith("joint, two-track"):
            d, h = _paired(loss, one)
            row["minus_one_track"], row["minus_one_track_ci95"] = d, h
            row["verdict"] = _two_track_verdict(d, h)
        rows.append(row)
    style_of = {"centralized Adam": "centralized"} | {scheme_label(n): n for n in ok}
    style_of |= {scheme_label(n + EF_SUFFIX): n + EF_SUFFIX for n in ok}
    fig, axes = new_figure(len(BUDGETS), len(LEARNING_RATES), width=4.8, height=4.0)
    for i, lr in enumerate(LEARNING_RATES):
        for j, bpw in enumerate(BUDGETS):
            ax = axes[i][j]
            for (b, r, label), hists in runs.items():
                if b != bpw or r != lr:
                    continue
                gap = np.array([np.minimum(h.loss, 1e3) for h in hists])
                if label.startswith("joint"):
                    lam = float(label.split("=")[1]) if "two-track" in label else "off"
                    color, line = COLORS[lam]
                    ax.plot(
                        np.arange(gap.shape[1]), gap.mean(axis=0), color=color, ls=line, lw=2.0, label=label
                    )
                else:
                    band(ax, np.arange(gap.shape[1]), gap, style_of[label])
                    ax.lines[-1].set_label(label)
            ax.set_yscale("log")
            ax.set_ylim(top=LOSS_AXIS_TOP)
            ax.set_xlabel("round (optimizer step)")
            ax.set_ylabel("training loss f(w) (cross-entropy + L2)")
            ax.set_title(f"Adam lr = {lr:g}, B/N = {bpw}")
            ax.grid(True, alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=9)
    fig.suptitle(f"Two-track decoding, MLP on digits (d = {problem.dim}), N = 50, mean over {n_seeds} seeds")
    files = [write_csv(out / "adam.csv", rows), save_figure(fig, out / "adam.png")]
    table = markdown_table(
        [
            "B/N",
            "lr",
            "variant",
            "c = a'/a",
            "final loss",
            "test accuracy",
            "diverged",
            "gap to centralized Adam",
            "two-track minus one-track",
            "verdict",
        ],
        [
            [
                r["bits_per_worker"],
                r["lr"],
                r["variant"],
                f"{r['shrinkage']:.3f}",
                fmt(r["loss_mean"], r["loss_ci95"]),
                fmt(r["accuracy_mean"], r["accuracy_ci95"], 3),
                f"{r['diverged']}/{r['seeds']}",
                fmt(r["gap_mean"], r["gap_ci95"]),
                fmt(r["minus_one_track"], r["minus_one_track_ci95"]),
                r["verdict"],
            ]
            for r in rows
        ],
    )
    summary = "\n".join(
        [
            f"{n_seeds} seeds, {rounds} rounds per run. Final loss and accuracy: mean of the last 10% "
            "of rounds, 95% CI over seeds. Gaps and the two-track comparison are paired by seed "
            "(the same arrivals, mini-batches and quantization): 95% Student-t intervals of the "
            "per-seed differences. The shrinkage c scales the second-moment estimate by c^2, "
            "which acts like a larger step size.",
            "",
            "![Adam two-track](adam.png)",
            "",
            table,
        ]
    )
    return StudyResult("adam", files=files, summary=summary, notes=notes)


__all__ = [
    "BASELINES",
    "BUDGETS",
    "COLORS",
    "LAMBDAS",
    "LEARNING_RATES",
    "N_WORKERS",
    "ONE_TRACK",
    "run",
]
