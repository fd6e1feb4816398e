"""Loss vs total transmitted bits (paper Fig. 3f).

The runs of the convergence study (the digits MLP at d = 1e5, the paper's
profile, B/N = 2, 3, 5, 7, every scheme and its EF variant, mini-batch SGD)
drawn against the cumulative number of bits the master received: each arrived
worker's message costs b_i bits per coordinate plus 32 bits per bucket norm; the
1-bit SGC baseline sends one bit per coordinate whatever the budget. The table
compares the training loss at a bit total every run of joint, OSGC and SGC
reached, with 95% intervals over seeds and the verdict against joint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import StudyResult, diff_ci, markdown_table, mean_ci, scheme_label, verdict, write_csv
from .convergence import _title, compare, fmt, plot_curves, settings

TARGETS = (1.0, 0.5)  # training-loss levels


def loss_at_bits(history, bits: float, fraction: float = 0.1) -> float | None:
    """Mean loss over the last `fraction` of the rounds before `bits` bits were delivered."""
    idx = int(np.searchsorted(history.total_bits, bits, side="right")) - 1
    if history.total_bits[-1] < bits or idx < 1:
        return None
    tail = max(1, int(round(fraction * idx)))
    return float(np.mean(history.loss[idx - tail + 1 : idx + 1]))


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    problem, results, notes = compare(quick, rng, progress, label="bits", workers=workers)
    rows = []
    for bpw, by_name in results.items():
        # a bit total every unbiased multi-bit scheme reached: compare losses there
        common = min(
            float(h.total_bits[-1])
            for name, runs in by_name.items()
            if name in ("joint", "osgc", "sgc")
            for h in runs
        )
        at = {name: [loss_at_bits(h, common) for h in runs] for name, runs in by_name.items()}
        for name, runs in by_name.items():
            if name == "centralized":
                continue
            loss = np.mean([np.minimum(h.loss, 1e300) for h in runs], axis=0)
            total = np.mean([h.total_bits for h in runs], axis=0)
            row = {
                "bits_per_worker": bpw,
                "scheme": name,
                "bits_per_round": float(total[-1] / (total.size - 1)),
                "total_bits": float(total[-1]),
                "final_loss": float(loss[-1]),
                "common_bits": common,
                "loss_at_common_bits": None,
                "loss_at_common_bits_ci95": None,
                "minus_joint": None,
                "minus_joint_ci95": None,
                "verdict": "",
            }
            for target in TARGETS:
                hit = np.flatnonzero(loss <= target)
                row[f"bits_to_{target:g}"] = float(total[hit[0]]) if hit.size else None
            values = at[name]
            if all(v is not None for v in values):
                values = np.array(values)
                if np.all(np.isfinite(values)):
                    row["loss_at_common_bits"], row["loss_at_common_bits_ci95"] = mean_ci(values)
                else:
                    row["loss_at_common_bits"] = float("inf")
                if name != "joint":
                    joint = np.array(at["joint"])
                    if np.all(np.isfinite(values)):
                        d, h = diff_ci(values, joint)
                    else:
                        d, h = float("inf"), float("nan")
                    row["minus_joint"], row["minus_joint_ci95"] = d, h
                    row["verdict"] = verdict(d, h)
            rows.append(row)
    cfg = settings(quick)
    files = [
        write_csv(out / "bits.csv", rows),
        plot_curves(results, out / "bits.png", x="bits", title=_title(problem, cfg)),
    ]
    table = markdown_table(
        ["B/N", "scheme", "bits per round"]
        + [f"bits to reach loss <= {t:g}" for t in TARGETS]
        + ["loss at the common bit total (95% CI)", "minus joint", "verdict"],
        [
            [r["bits_per_worker"], scheme_label(r["scheme"]), f"{r['bits_per_round']:.3g}"]
            + [
                "not reached" if r[f"bits_to_{t:g}"] is None else f"{r[f'bits_to_{t:g}']:.3g}"
                for t in TARGETS
            ]
            + [
                "-"
                if r["loss_at_common_bits"] is None
                else fmt(r["loss_at_common_bits"], r["loss_at_common_bits_ci95"]),
                fmt(r["minus_joint"], r["minus_joint_ci95"]),
                r["verdict"],
            ]
            for r in rows
        ],
    )
    summary = "\n".join(
        [
            f"Same runs as the convergence study ({cfg['rounds']} rounds, {cfg['seeds']} seeds, "
            f"d = {problem.dim}), plotted against the bits delivered to the master (mean over seeds). "
            "Schemes whose workers straggle more deliver fewer bits per round; the 1-bit baseline is "
            "cheap per round but noisy. The common bit total is the smallest total any run of joint, "
            "OSGC and SGC delivered by the end ('-': a scheme that delivered fewer bits in some run); "
            "the loss there is the mean over the last 10% of rounds before it.",
            "",
            "![loss vs bits](bits.png)",
            "",
            table,
        ]
    )
    return StudyResult("bits", files=files, summary=summary, notes=notes)


__all__ = [
    "TARGETS",
    "loss_at_bits",
    "run",
]
