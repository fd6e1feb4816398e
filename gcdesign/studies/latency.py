"""Expected round time and speedup vs tolerated stragglers (textbook, docs/math.md section 9).

N i.i.d. workers with exponential round times Exp(mu): the uncoded master
waits for all N, a code tolerating s stragglers for the fastest N - s,
expected time ``(H_N - H_s) / mu``. The load-aware curve charges an exact
gradient code its computation load s + 1 (every worker computes s + 1
partitions and is that much slower). A shifted exponential (t0 = 1) shows how
a deterministic part of the round time eats the gain. Monte-Carlo points
check the closed form.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import Progress, StudyResult, markdown_table, new_figure, save_figure, write_csv


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True) -> StudyResult:
    from ..latency import expected_kth_time, simulate_kth_time

    n, rate = 100, 1.0
    trials = 2000 if quick else 50_000
    tolerances = np.arange(0, n)
    checks = (0, 10, 20, 50, 80)
    variants = [
        ("exponential", 0.0, False),
        ("exponential, load s+1", 0.0, True),
        ("shifted exp. t0=1", 1.0, False),
    ]
    rows = []
    gen = np.random.default_rng(rng)
    with Progress(len(variants) * len(checks), "latency", enabled=progress) as bar:
        for label, shift, load_aware in variants:
            uncoded = expected_kth_time(n, n, rate=rate, shift=shift)
            for s in tolerances:
                load = float(s + 1) if load_aware else 1.0
                t = expected_kth_time(n, n - int(s), rate=rate, shift=shift, load=load)
                row = {
                    "model": label,
                    "stragglers": int(s),
                    "wait_for": n - int(s),
                    "load": load,
                    "expected_time": t,
                    "speedup": uncoded / t,
                    "simulated_time": None,
                    "simulated_stderr": None,
                }
                if s in checks:
                    sim = simulate_kth_time(
                        n, n - int(s), rate=rate, shift=shift, load=load, trials=trials, rng=gen
                    )
                    row["simulated_time"], row["simulated_stderr"] = sim.mean, sim.stderr
                    bar.update()
                rows.append(row)
    fig, axes = new_figure(2, 1, width=5.8, height=4.2)
    colors = ["tab:blue", "tab:red", "tab:green"]
    for (label, _, _), color in zip(variants, colors, strict=True):
        sel = [r for r in rows if r["model"] == label]
        s = [r["stragglers"] for r in sel]
        axes[0][0].plot(s, [r["expected_time"] for r in sel], color=color, label=f"{label} (closed form)")
        axes[0][1].plot(s, [r["speedup"] for r in sel], color=color, label=label)
        pts = [r for r in sel if r["simulated_time"] is not None]
        axes[0][0].errorbar(
            [r["stragglers"] for r in pts],
            [r["simulated_time"] for r in pts],
            yerr=[3 * r["simulated_stderr"] for r in pts],
            fmt="o",
            color=color,
            markersize=4,
            label=f"{label} (simulated, ±3 se)",
        )
    axes[0][0].set_yscale("log")
    axes[0][0].set_ylabel("expected round time (units of 1/mu)")
    axes[0][1].set_ylabel("speedup over uncoded (wait for all N)")
    axes[0][1].axhline(1.0, color="black", lw=0.8)
    axes[0][1].set_yscale("log")
    for ax in axes[0]:
        ax.set_xlabel("tolerated stragglers s (master waits for N - s)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"N = {n} workers, rate mu = {rate:g}")
    files = [write_csv(out / "latency.csv", rows), save_figure(fig, out / "latency.png")]
    table = markdown_table(
        ["model", "s", "E[time]", "speedup", "simulated (± se)"],
        [
            [
                r["model"],
                r["stragglers"],
                f"{r['expected_time']:.4f}",
                f"{r['speedup']:.2f}x",
                f"{r['simulated_time']:.4f} ± {r['simulated_stderr']:.4f}",
            ]
            for r in rows
            if r["simulated_time"] is not None
        ],
    )
    summary = "\n".join(
        [
            f"Closed form for every s, Monte Carlo ({trials} rounds) at s in {list(checks)}. "
            "Without the load penalty, tolerating stragglers pays off steeply (3.26x at s = 20, 7.54x "
            "at s = 50); with an exact code's load s + 1 the gain vanishes quickly and turns into a loss, "
            "which is why approximate codes with load about 2 matter. A shift t0 caps the speedup.",
            "",
            "![round time and speedup](latency.png)",
            "",
            table,
        ]
    )
    return StudyResult("latency", files=files, summary=summary)
