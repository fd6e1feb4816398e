"""Loss vs total transmitted bits (paper Fig. 3f).

The runs of the convergence study (logistic regression on digits, the
paper's profile, B/N = 3 and 7, mini-batch SGD) drawn against the cumulative
number of bits the master received: each arrived worker's message costs
32 bits (the norm) plus b_i bits per coordinate; the 1-bit SGC baseline sends
d + 32 bits per message whatever the budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import StudyResult, markdown_table, mean_ci, scheme_label, write_csv
from .convergence import compare, plot_curves, settings

TARGETS = (0.05, 0.01)


def loss_at_bits(history, bits: float, fraction: float = 0.1) -> float | None:
    """Mean loss over the last `fraction` of the rounds before `bits` bits were delivered."""
    idx = int(np.searchsorted(history.total_bits, bits, side="right")) - 1
    if history.total_bits[-1] < bits or idx < 1:
        return None
    tail = max(1, int(round(fraction * idx)))
    return float(np.mean(history.loss[idx - tail + 1 : idx + 1]))


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True) -> StudyResult:
    problem, results, notes = compare(quick, rng, progress, label="bits")
    rows = []
    for bpw, by_name in results.items():
        # a bit total every unbiased multi-bit scheme reached: compare losses there
        common = min(
            float(h.total_bits[-1])
            for name, runs in by_name.items()
            if name in ("joint", "osgc", "sgc")
            for h in runs
        )
        for name, runs in by_name.items():
            if name == "centralized":
                continue
            gap = np.mean([h.loss - problem.optimal_loss for h in runs], axis=0)
            total = np.mean([h.total_bits for h in runs], axis=0)
            row = {
                "bits_per_worker": bpw,
                "scheme": name,
                "bits_per_round": float(total[-1] / (total.size - 1)),
                "total_bits": float(total[-1]),
                "final_gap": float(gap[-1]),
                "common_bits": common,
                "gap_at_common_bits": None,
                "gap_at_common_bits_ci95": None,
            }
            for target in TARGETS:
                hit = np.flatnonzero(gap <= target)
                row[f"bits_to_{target:g}"] = float(total[hit[0]]) if hit.size else None
            at = [loss_at_bits(h, common) for h in runs]
            if all(v is not None for v in at):
                row["gap_at_common_bits"], row["gap_at_common_bits_ci95"] = mean_ci(
                    np.array(at) - problem.optimal_loss
                )
            rows.append(row)
    files = [write_csv(out / "bits.csv", rows), plot_curves(results, problem, out / "bits.png", x="bits")]
    cfg = settings(quick)
    table = markdown_table(
        ["B/N", "scheme", "bits per round"]
        + [f"bits to reach f - f* <= {t:g}" for t in TARGETS]
        + ["f - f* at the common bit total (95% CI)"],
        [
            [r["bits_per_worker"], scheme_label(r["scheme"]), f"{r['bits_per_round']:.3g}"]
            + [
                "not reached" if r[f"bits_to_{t:g}"] is None else f"{r[f'bits_to_{t:g}']:.3g}"
                for t in TARGETS
            ]
            + [
                "-"
                if r["gap_at_common_bits"] is None
                else f"{r['gap_at_common_bits']:.4f} ± {r['gap_at_common_bits_ci95']:.4f}"
            ]
            for r in rows
        ],
    )
    summary = "\n".join(
        [
            f"Same runs as the convergence study ({cfg['steps']} rounds, {cfg['seeds']} seeds), "
            "plotted against the bits delivered to the master (mean over seeds). Schemes whose "
            "workers straggle more deliver fewer bits per round; the 1-bit baseline is cheap per "
            "round but noisy. The common bit total is the smallest total any run of joint, OSGC and SGC "
            "delivered by the end ('-': a scheme that delivered fewer bits in some run); "
            "the loss there is the mean over the last 10% of rounds before it.",
            "",
            "![loss vs bits](bits.png)",
            "",
            table,
        ]
    )
    return StudyResult("bits", files=files, summary=summary, notes=notes)
