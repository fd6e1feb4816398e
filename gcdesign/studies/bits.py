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

from ._common import LABELS, StudyResult, markdown_table, write_csv
from .convergence import compare, plot_curves, settings

TARGET_GAP = 0.05


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True) -> StudyResult:
    problem, results, notes = compare(quick, rng, progress, label="bits")
    rows = []
    for bpw, by_name in results.items():
        for name, runs in by_name.items():
            if name == "centralized":
                continue
            gap = np.mean([h.loss - problem.optimal_loss for h in runs], axis=0)
            total = np.mean([h.total_bits for h in runs], axis=0)
            hit = np.flatnonzero(gap <= TARGET_GAP)
            rows.append(
                {
                    "bits_per_worker": bpw,
                    "scheme": name,
                    "bits_per_round": float(total[-1] / (total.size - 1)),
                    "total_bits": float(total[-1]),
                    "final_gap": float(gap[-1]),
                    "rounds_to_target": int(hit[0]) if hit.size else None,
                    "bits_to_target": float(total[hit[0]]) if hit.size else None,
                }
            )
    files = [write_csv(out / "bits.csv", rows), plot_curves(results, problem, out / "bits.png", x="bits")]
    cfg = settings(quick)
    table = markdown_table(
        ["B/N", "scheme", "bits per round", f"bits to reach f - f* <= {TARGET_GAP}", "final f - f*"],
        [
            [
                r["bits_per_worker"],
                LABELS.get(r["scheme"], r["scheme"]),
                f"{r['bits_per_round']:.3g}",
                "not reached" if r["bits_to_target"] is None else f"{r['bits_to_target']:.3g}",
                f"{r['final_gap']:.4f}",
            ]
            for r in rows
        ],
    )
    summary = "\n".join(
        [
            f"Same runs as the convergence study ({cfg['steps']} rounds, {cfg['seeds']} seeds), "
            "plotted against the bits delivered to the master (mean over seeds). Schemes whose "
            "workers straggle more deliver fewer bits per round; the 1-bit baseline is cheap per "
            "round but noisy.",
            "",
            "![loss vs bits](bits.png)",
            "",
            table,
        ]
    )
    return StudyResult("bits", files=files, summary=summary, notes=notes)
