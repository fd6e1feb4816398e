"""Load-blind against load-aware designs when compute time follows the load, on the Dask runtime.

Worker i holding :math:`\\ell_i` partitions takes :math:`T_i = t_0 + c\\,\\ell_i +
\\mathrm{Exp}(\\mu_i)` (docs/math.md, section 16): its straggling probability
depends on the design. The *load-blind* design is made for the probabilities
measured at one partition per worker (an uncoded profile) and deployed as is;
the *load-aware* design is the fixed point :math:`p = p(\\ell(D(p)))`
(:func:`gcdesign.latency.load_aware_design`). Both run on a LocalCluster whose
emulated delays follow each design's loads. For every bit budget and
heterogeneity level: the fixed-point iteration (steps, convergence), the two
designs' error bounds under the probabilities their loads imply, and the
measured time to a target loss with confidence intervals over seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._common import (
    Progress,
    StudyResult,
    diff_ci,
    markdown_table,
    mean_ci,
    new_figure,
    save_figure,
    write_csv,
)

DEADLINE, SHIFT = 1.5, 1.0
PER_PARTITION = 0.06  # time units per held partition: 0.06 of the 0.5 slack
HETEROGENEITY = {"low": (1.5, 3.0), "high": (0.6, 6.0)}  # mu_i ~ evenly spread over this range
TARGET_AT = 0.6


def setting(quick: bool) -> dict:
    if quick:
        return {
            "workers": 8,
            "rounds": 16,
            "seeds": 2,
            "time_unit": 0.25,
            "budgets": (4,),
            "levels": ("high",),
            "max_iter": 25,
        }
    return {
        "workers": 12,
        "rounds": 80,
        "seeds": 3,
        "time_unit": 0.25,
        "budgets": (3, 5),
        "levels": ("low", "high"),
        "max_iter": 50,
    }


def latency_model(n: int, level: str):
    from ..latency import LoadLatency

    low, high = HETEROGENEITY[level]
    return LoadLatency(
        rates=tuple(np.linspace(low, high, n)), per_partition=(PER_PARTITION,) * n, shift=SHIFT
    )


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    from .. import design
    from ..cluster import time_to_loss, train
    from ..cluster.dask import dask_client
    from ..latency import design_loads, load_aware_design
    from ..profile import ClusterProfile
    from ..training import digits_problem, gd, seeds

    cfg = setting(quick)
    n, rounds = cfg["workers"], cfg["rounds"]
    problem = digits_problem("logistic", partitions=n, rng=0)
    run_seeds = seeds(rng, cfg["seeds"])
    from ..design import layout_error

    cases, iteration_rows = [], []
    for level in cfg["levels"]:
        model = latency_model(n, level)
        for bits in cfg["budgets"]:
            blind = design(
                ClusterProfile(model.straggler_probs(np.ones(n), DEADLINE), dim=problem.dim, partitions=n),
                bits_per_worker=bits,
            )
            aware = load_aware_design(
                model,
                deadline=DEADLINE,
                dim=problem.dim,
                partitions=n,
                bits_per_worker=bits,
                max_iter=cfg["max_iter"],
            )
            for k, step in enumerate(aware.iterations):
                iteration_rows.append(
                    {
                        "heterogeneity": level,
                        "bits_per_worker": bits,
                        "step": k,
                        "change": step["change"],
                        "bound": step["bound"],
                        "true_error": step["true_error"],
                        "damping": step["damping"],
                        "loads": " ".join(map(str, step["loads"])),
                    }
                )
            blind_true = model.straggler_probs(design_loads(blind), DEADLINE)
            cases.append(
                {
                    "level": level,
                    "bits": bits,
                    "model": model,
                    "blind": blind,
                    "aware": aware,
                    "blind_error": layout_error(blind, np.minimum(blind_true, 0.999999)),
                    "blind_true_p": blind_true,
                }
            )

    runs: dict = {}
    plans = [(c, arm, seed) for c in cases for arm in ("load-blind", "load-aware") for seed in run_seeds]
    with dask_client(2) as client:
        with Progress(len(plans), "load", enabled=progress) as bar:
            for case, arm, seed in plans:
                code = case["blind"] if arm == "load-blind" else case["aware"].design
                model = case["model"]
                hist = train(
                    problem,
                    code,
                    workers=client,
                    deadline=DEADLINE,
                    shift=SHIFT,
                    rates=np.asarray(model.rates),
                    load_cost=np.asarray(model.per_partition),
                    rounds=rounds,
                    time_unit=cfg["time_unit"],
                    optimizer=gd(0.5),
                    rng=seed,
                )
                runs.setdefault((case["level"], case["bits"], arm), []).append(hist)
                bar.update(1)

    rows = []
    for case in cases:
        key = (case["level"], case["bits"])
        aware_h, blind_h = runs[key + ("load-aware",)], runs[key + ("load-blind",)]
        target = float(np.median([h.loss[int(TARGET_AT * rounds)] for h in aware_h + blind_h]))
        reach = {
            arm: np.array([time_to_loss(h, target) for h in runs[key + (arm,)]])
            for arm in ("load-blind", "load-aware")
        }
        both = np.isfinite(reach["load-blind"]) & np.isfinite(reach["load-aware"])
        if both.sum() >= 2:
            gain = diff_ci(reach["load-blind"][both], reach["load-aware"][both])
        else:
            gain = (None, None)
        for arm, hists in (("load-blind", blind_h), ("load-aware", aware_h)):
            times = reach[arm]
            finite = times[np.isfinite(times)]
            mean, half = mean_ci(finite) if finite.size else (math.inf, 0.0)
            code = case["blind"] if arm == "load-blind" else case["aware"].design
            realized = float(np.mean([1 - h.on_time.mean() for h in hists]))
            rows.append(
                {
                    "heterogeneity": case["level"],
                    "bits_per_worker": case["bits"],
                    "design": arm,
                    "bound_under_own_loads": case["blind_error"]
                    if arm == "load-blind"
                    else case["aware"].design.bound,
                    "designed_mean_p": float(code.straggler_probs.mean()),
                    "realized_mean_p": realized,
                    "max_load": int(design_loads(code).max()),
                    "fixed_point_steps": len(case["aware"].iterations) if arm == "load-aware" else None,
                    "converged": case["aware"].converged if arm == "load-aware" else None,
                    "target_loss": target,
                    "time_to_target_mean": mean,
                    "time_to_target_ci95": half,
                    "reached": int(finite.size),
                    "runs": len(hists),
                    "final_loss_gap": float(np.mean([h.loss[-1] for h in hists]) - problem.optimal_loss),
                    "blind_minus_aware_s": gain[0] if arm == "load-aware" else None,
                    "blind_minus_aware_ci95": gain[1] if arm == "load-aware" else None,
                }
            )
    files = [write_csv(out / "load.csv", rows), write_csv(out / "load_iterations.csv", iteration_rows)]
    files.append(_figure(runs, cases, out / "load.png"))
    table = markdown_table(
        [
            "heterogeneity",
            "B/N",
            "design",
            "bound (own loads)",
            "mean p designed / realized",
            "fixed point",
            "time to target (s)",
            "blind - aware (s)",
            "final loss gap",
        ],
        [
            [
                r["heterogeneity"],
                r["bits_per_worker"],
                r["design"],
                f"{r['bound_under_own_loads']:.3f}",
                f"{r['designed_mean_p']:.3f} / {r['realized_mean_p']:.3f}",
                "-"
                if r["converged"] is None
                else f"{'yes' if r['converged'] else 'no'}, {r['fixed_point_steps']} steps",
                _ci(r["time_to_target_mean"], r["time_to_target_ci95"]) + f" ({r['reached']}/{r['runs']})",
                "-"
                if r["blind_minus_aware_s"] is None
                else _ci(r["blind_minus_aware_s"], r["blind_minus_aware_ci95"]),
                f"{r['final_loss_gap']:.5f}",
            ]
            for r in rows
        ],
    )
    summary = "\n".join(
        [
            f"N = {n} logical workers on 2 Dask processes, {rounds} rounds, deadline {DEADLINE:g}, "
            f"t0 = {SHIFT:g}, {PER_PARTITION:g} time units per held partition, time unit "
            f"{cfg['time_unit']:g} s, {len(run_seeds)} seed(s); logistic regression on digits, "
            "gradient descent 0.5. Target: the median loss of both designs at "
            f"{int(TARGET_AT * 100)} % of the rounds. Rates mu_i evenly spread over "
            + ", ".join(f"{k}: {HETEROGENEITY[k]}" for k in cfg["levels"])
            + ".",
            "",
            "![loss vs wall clock](load.png)",
            "",
            table,
        ]
    )
    return StudyResult("load", files=files, summary=summary, notes=[])


def _figure(runs, cases, path):
    """Training loss against measured wall clock, every seed, one panel per (heterogeneity, B/N)."""
    fig, axes = new_figure(len(cases), 1, width=4.2, height=3.4)
    colors = {"load-blind": "tab:red", "load-aware": "tab:blue"}
    for ax, case in zip(axes[0], cases, strict=True):
        for arm, color in colors.items():
            for k, h in enumerate(runs[(case["level"], case["bits"], arm)]):
                ax.plot(h.wall_time * h.time_unit, h.loss, color=color, lw=1.2, label=arm if k == 0 else None)
        ax.set_title(f"{case['level']} heterogeneity, B/N = {case['bits']}")
        ax.set_xlabel("wall clock (s)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("training loss")
    return save_figure(fig, path)


def _ci(mean: float, half: float) -> str:
    return "never" if not math.isfinite(mean) else f"{mean:.2f} ± {half:.2f}"


__all__ = ["HETEROGENEITY", "latency_model", "run", "setting"]
