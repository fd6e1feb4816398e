"""Storage vs decoding error of random sparse approximate gradient codes, measured.

N = K = 50 workers; every worker stores ``d`` random partitions (the
``random-sparse`` scheme: d ones per row) and the master decodes by least
squares over the arrived rows, ``a = argmin ||a^T B_T - 1^T||``. Each round
exactly ``s`` workers, chosen uniformly, straggle. The measured error is the
normalized residual ``||a^T B - 1^T||^2 / K`` (0 means the exact sum), averaged
over rounds and random codes. An exact gradient code reaches error 0 for any
``s`` stragglers only with storage ``s + 1`` per worker (docs/math.md, 10); the
fractional-repetition exact code (``(s + 1) | N``) is measured at that storage
as the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..profile import ClusterProfile
from ..training import seeds
from ._common import Progress, StudyResult, markdown_table, mean_ci, new_figure, save_figure, write_csv

N = 50
STRAGGLERS = (4, 9, 24)  # s + 1 divides N: the fractional-repetition exact code exists
COLORS = ("tab:blue", "tab:green", "tab:red")
TARGET_ERROR = 0.05


def _stragglers(n_stragglers: int, trials: int, gen) -> np.ndarray:
    """Every round's straggling workers (trials x s), drawn from `gen` round by round."""
    out = np.empty((trials, n_stragglers), dtype=np.int64)
    for t in range(trials):
        out[t] = gen.choice(N, size=n_stragglers, replace=False)
    return out


def _error(task) -> np.ndarray:
    """``(scheme, stragglers) -> `` the decoding error of every round (a task for ``workers``)."""
    scheme, stragglers = task
    enc = scheme.encoding.toarray()
    out = np.empty(len(stragglers))
    for t, late in enumerate(stragglers):
        arrived = np.ones(N, dtype=bool)
        arrived[late] = False
        a = scheme.decode_weights(arrived)
        out[t] = np.sum(np.square(a @ enc - 1.0)) / enc.shape[1]
    return out


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    from ..parallel import parallel_map
    from ..schemes import SCHEMES, make_scheme

    notes = []
    if "random-sparse" not in SCHEMES:
        return StudyResult("storage", summary="Scheme 'random-sparse' is not registered: study skipped.")
    storages = (1, 2, 3, 4, 6, 8, 12, 16, 25) if quick else tuple(range(1, 26))
    n_codes, trials = (2, 40) if quick else (10, 400)
    gen = np.random.default_rng(rng)
    code_seeds = seeds(gen, n_codes)
    # The rounds' stragglers are drawn here, from the one stream, in the order of the
    # serial loop; the decoding (the work) then runs as tasks mapped by `workers`.
    points, tasks = [], []  # a point: (s, storage, the exact-frc scheme or None, first task, task count)
    for s in STRAGGLERS:
        profile = ClusterProfile(np.full(N, s / N), dim=1)
        for d in storages:
            first = len(tasks)
            for seed in code_seeds:
                scheme = make_scheme("random-sparse", profile, 2 * N, rng=seed, replication=d)
                tasks.append((scheme, _stragglers(s, trials, gen)))
            points.append((s, d, None, first, n_codes))
        if "exact-frc" in SCHEMES:
            try:
                exact = make_scheme("exact-frc", profile, 2 * N, rng=0, stragglers=s)
            except Exception as exc:  # noqa: BLE001 - report, do not fail the study
                notes.append(f"exact-frc with s = {s}: {exc}")
            else:
                points.append((s, None, exact, len(tasks), 1))
                tasks.append((exact, _stragglers(s, trials, gen)))
    rows = []
    with Progress(len(tasks), "storage", enabled=progress) as bar:
        errors_of = parallel_map(_error, tasks, workers=workers, progress=bar.update)
    for s, d, exact, first, count in points:
        errors = np.concatenate(errors_of[first : first + count])
        mean, half = mean_ci(errors)
        rows.append(
            {
                "scheme": "random-sparse" if exact is None else "exact-frc",
                "straggler_fraction": s / N,
                "stragglers": s,
                "storage": d if exact is None else int(round(exact.encoding.nnz / N)),
                "error_mean": mean,
                "error_ci95": half,
                "error_max": float(errors.max()),
            }
        )
    fig, axes = new_figure(1, 1, width=7.5, height=4.8)
    ax = axes[0][0]
    for s, color in zip(STRAGGLERS, COLORS, strict=True):
        frac = s / N
        sel = [r for r in rows if r["straggler_fraction"] == frac and r["scheme"] == "random-sparse"]
        ax.plot(
            [r["storage"] for r in sel],
            [max(r["error_mean"], 1e-16) for r in sel],
            marker="o",
            markersize=4,
            color=color,
            label=f"random sparse, s = {s} of {N} straggle",
        )
        ex = [r for r in rows if r["straggler_fraction"] == frac and r["scheme"] == "exact-frc"]
        for r in ex:
            ax.axvline(r["storage"], color=color, linestyle=":", lw=1.2)
            ax.annotate(
                f"exact code, s = {r['stragglers']}",
                (r["storage"], 0.97),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=8,
                color=color,
                ha="right",
                va="top",
            )
    ax.set_yscale("log")
    ax.set_xlabel("storage per worker (partitions)")
    ax.set_ylabel("decoding error  ||a^T B - 1||^2 / K  (mean)")
    ax.set_title(f"N = K = {N}, least-squares decoding, s uniformly random stragglers per round")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    files = [write_csv(out / "storage.csv", rows), save_figure(fig, out / "storage.png")]
    table = markdown_table(
        ["s", "scheme", "storage", "mean error (95% CI)", "max error"],
        [
            [
                r["stragglers"],
                r["scheme"],
                r["storage"],
                f"{r['error_mean']:.3e} ± {r['error_ci95']:.1e}",
                f"{r['error_max']:.2e}",
            ]
            for r in rows
            if r["storage"] in (1, 2, 4, 8, 16, 25) or r["scheme"] != "random-sparse"
        ],
    )
    findings = []
    for s in STRAGGLERS:
        sel = [r for r in rows if r["stragglers"] == s and r["scheme"] == "random-sparse"]
        below = [r["storage"] for r in sel if r["error_mean"] <= TARGET_ERROR]
        reach = f"storage {below[0]}" if below else f"not within storage {sel[-1]['storage']}"
        findings.append(f"s = {s}: error {TARGET_ERROR:g} at {reach} (exact code: {s + 1})")
    summary = "\n".join(
        [
            f"{n_codes} random codes x {trials} rounds per point. Approximate codes trade storage for "
            "a nonzero decoding error; the exact code (dotted lines) reaches error 0 (up to rounding) "
            "only at storage s + 1. Measured, random sparse: " + "; ".join(findings) + ".",
            "",
            "![storage vs error](storage.png)",
            "",
            table,
        ]
    )
    return StudyResult("storage", files=files, summary=summary, notes=notes)


__all__ = [
    "COLORS",
    "N",
    "STRAGGLERS",
    "TARGET_ERROR",
    "run",
]
