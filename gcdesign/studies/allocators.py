"""Objective vs budget for every bit allocator, and solver time (paper Fig. 1).

The paper's profile (shifted exponential, t0 = 1, deadline 1.1,
mu_i ~ U(0.01, 2)) at N = 50 and N = 100 workers, model dimension of
MobileNetV3-Small, balanced kappa (c = 1). For each budget B, every
registered allocator maximizes F(b) = sum_i u_i(b_i) (docs/math.md,
section 6); the DP is exact, so its value is the reference. Solver times are
the allocators' own wall times after one warm-up call (numba compilation is
not counted).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..allocation import ALLOCATORS, allocate_bits
from ..profile import MOBILENET_V3_SMALL_PARAMS, paper_profile
from ._common import Progress, StudyResult, markdown_table, new_figure, save_figure, write_csv

SIZES = (50, 100)
MARKERS = {
    "dp": ("black", "o", "-"),
    "heuristic": ("tab:red", "x", "-"),
    "cpsat": ("tab:green", "+", "--"),
    "greedy": ("tab:purple", "s", "-."),
    "relaxation": ("tab:blue", "^", ":"),
    "topk-equal": ("tab:orange", "v", "--"),
    "equal": ("tab:gray", "d", ":"),
}
LABELS = {
    "dp": "exact DP",
    "heuristic": "heuristic (Alg. 1)",
    "cpsat": "CP-SAT",
    "greedy": "greedy",
    "relaxation": "continuous relaxation",
    "topk-equal": "top-k equal",
    "equal": "equal bits",
}


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    del workers  # serial: the solvers' wall times are measured one at a time
    per_worker = np.round(np.arange(2.2, 8.01, 0.8 if quick else 0.2), 2)
    methods = [m for m in MARKERS if m in ALLOCATORS] + [m for m in ALLOCATORS if m not in MARKERS]
    notes = [f"allocator {m!r} is not registered: skipped." for m in MARKERS if m not in ALLOCATORS]
    options = {"cpsat": {"time_limit": 10.0}}
    rows = []
    with Progress(len(SIZES) * len(per_worker) * len(methods), "allocators", enabled=progress) as bar:
        for n in SIZES:
            profile = paper_profile(n, dim=MOBILENET_V3_SMALL_PARAMS)
            for m in methods:  # warm-up (numba compilation, OR-Tools import)
                allocate_bits(profile, 3 * n, method=m, options=options.get(m))
            for x in per_worker:
                budget = int(round(x * n))
                found = {}
                for m in methods:
                    res = allocate_bits(profile, budget, method=m, options=options.get(m))
                    found[m] = res
                    bar.update()
                ref = found["dp"].objective if "dp" in found else max(r.objective for r in found.values())
                for m, res in found.items():
                    rows.append(
                        {
                            "workers": n,
                            "budget": budget,
                            "bits_per_worker": budget / n,
                            "method": m,
                            "objective": res.objective,
                            "relative_gap_to_dp": (ref - res.objective) / ref,
                            "optimal": res.optimal,
                            "wall_time": res.wall_time,
                        }
                    )
    fig, axes = new_figure(len(SIZES), 2, width=5.6, height=3.9)
    for col, n in enumerate(SIZES):
        for m in methods:
            sel = [r for r in rows if r["workers"] == n and r["method"] == m]
            color, marker, line = MARKERS.get(m, (None, ".", "-"))
            x = [r["bits_per_worker"] for r in sel]
            kw = {
                "color": color,
                "marker": marker,
                "linestyle": line,
                "markersize": 5,
                "label": LABELS.get(m, m),
            }
            axes[0][col].plot(x, [r["objective"] for r in sel], **kw)
            axes[1][col].plot(x, [max(r["wall_time"], 1e-6) for r in sel], **kw)
        axes[0][col].set_title(f"N = {n} workers")
        axes[0][col].set_ylabel("objective F(b) = sum_i u_i(b_i)")
        axes[1][col].set_ylabel("solver time (s)")
        axes[1][col].set_yscale("log")
        for ax in axes[:, col]:
            ax.set_xlabel("budget B / N (bits per worker)")
            ax.grid(True, alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=9)
    fig.suptitle("Bit allocation on the paper's profile (mean p = 0.90), balanced kappa")
    files = [write_csv(out / "allocators.csv", rows), save_figure(fig, out / "allocators.png")]
    table_rows = []
    for n in SIZES:
        for m in methods:
            sel = [r for r in rows if r["workers"] == n and r["method"] == m]
            gaps = np.array([r["relative_gap_to_dp"] for r in sel])
            secs = np.array([r["wall_time"] for r in sel])
            table_rows.append(
                [
                    n,
                    LABELS.get(m, m),
                    f"{gaps.max():.2e}",
                    int(np.sum(gaps > 1e-12)),
                    f"{np.median(secs):.2e}",
                ]
            )
    summary = "\n".join(
        [
            f"{len(per_worker)} budgets per size, B/N from {per_worker[0]:g} to {per_worker[-1]:g}.",
            "",
            "![objective and time vs budget](allocators.png)",
            "",
            markdown_table(
                ["N", "allocator", "worst relative gap to DP", "budgets below DP", "median time (s)"],
                table_rows,
            ),
        ]
    )
    return StudyResult("allocators", files=files, summary=summary, notes=notes)


__all__ = [
    "LABELS",
    "MARKERS",
    "SIZES",
    "run",
]
