"""Bit allocators side by side: time, objective and gap to the exact optimum.

Part 1 (table): the paper's straggler model (shifted exponential, t0 = 1,
deadline 1.1, rates U(0.01, 2)), MobileNetV3-Small dimension, balanced kappa
(c = 1), bits in [2, 32], N in {20, 50, 200, 1000, 10000}, B / N in {3, 4, 7}.
For every method: median wall time over --repeats runs (numba kernels are
warmed up first, so compilation is not counted), objective F and the relative
gap (F_dp - F) / F_dp to the exact DP. ``heuristic`` runs its default scan
(``scan="auto"``: the paper's full scan up to N = 200, the windowed scan
above; the default allocator ``auto`` runs it beyond N R L = 2e6 work units,
the DP below); ``heuristic-full`` forces the full scan (``scan="full"``), i.e. the
heuristic before the windowed scan existed. CP-SAT runs only up to N = 200 (its
one-hot model has N x 31 booleans; 10 s time limit). Also the peak memory of
the DP at N = 10^4, B = 4N (tracemalloc sees numpy's allocations).

Part 2 (gap check): 500 random instances with N in [5, 100]
(gcdesign.allocation.instances.random_instance: four straggler families,
dim 10^3..10^7, balanced or raw kappa, b_max in {8, 16, 32}, B / N in
[2, 12], 20% with the idle level); heuristic vs DP, with the default
refinement (local search from both starts) and the paper's (from the better
start only). Reports the share with gap <= 1e-9 and the worst instance.

Part 3 (windowed vs full scan): --scan-instances random instances with N in
[200, 2000] (same generator, seed 2027); the default heuristic (windowed scan
there) against the paper's full scan (``scan="full"``): share with the same
value (relative difference <= 1e-12), the worst difference and the total times.

    python studies/bench_allocators.py [--out studies/out] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import tracemalloc
from pathlib import Path

import numpy as np

from gcdesign.allocation import ALLOCATORS, allocate_table, allowed_levels, utility_table
from gcdesign.allocation.instances import random_instance, straggler_probs
from gcdesign.profile import MOBILENET_V3_SMALL_PARAMS
from gcdesign.quantization import resolve_quantization
from gcdesign.studies._common import write_csv

SIZES = (20, 50, 200, 1000, 10000)
PER_WORKER = (3, 4, 7)
METHODS = ("dp", "heuristic", "heuristic-full", "cpsat", "greedy", "relaxation", "topk-equal", "equal")
CPSAT_MAX_N = 200
OPTIONS = {"cpsat": {"time_limit": 10.0}, "heuristic-full": {"scan": "full"}}
# labels that run a registered solver with other options
VARIANTS = {"heuristic-full": "heuristic"}


def paper_table(n: int, budget: int, seed: int = 0):
    p = straggler_probs(np.random.default_rng(seed), n, "paper")
    model = resolve_quantization("balanced", p, budget, MOBILENET_V3_SMALL_PARAMS)
    levels = allowed_levels(2, 32)
    return utility_table(p, model, MOBILENET_V3_SMALL_PARAMS, levels), levels


def warm_up():
    table, levels = paper_table(4, 12)
    for m in METHODS:
        allocate_table(table, levels, 12, method=VARIANTS.get(m, m), options=OPTIONS.get(m))
    allocate_table(table, levels, 12, method="heuristic", options={"scan": "windowed"})


def timed(table, levels, budget, method, repeats):
    times, result = [], None
    for _ in range(repeats):
        result = allocate_table(
            table, levels, budget, method=VARIANTS.get(method, method), options=OPTIONS.get(method)
        )
        times.append(result.wall_time)
    return float(np.median(times)), result


def part_table(sizes, repeats, notes):
    rows = []
    header = (
        f"{'N':>6} {'B/N':>4} {'method':<14} {'median ms':>11} {'objective':>18} {'rel. gap':>10}  optimal"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        for x in PER_WORKER:
            budget = x * n
            table, levels = paper_table(n, budget)
            reps = repeats if n <= 1000 else 1
            exact = None
            for m in METHODS:
                if VARIANTS.get(m, m) not in ALLOCATORS:
                    continue
                if m == "cpsat" and n > CPSAT_MAX_N:
                    notes.add(f"cpsat skipped above N = {CPSAT_MAX_N} (one-hot model, 10 s limit)")
                    continue
                seconds, res = timed(table, levels, budget, m, reps)
                if m == "dp":
                    exact = res.objective
                gap = (exact - res.objective) / abs(exact)
                rows.append(
                    {
                        "N": n,
                        "B_per_N": x,
                        "B": budget,
                        "method": m,
                        "median_s": seconds,
                        "repeats": reps,
                        "objective": res.objective,
                        "rel_gap": gap,
                        "optimal": res.optimal,
                    }
                )
                print(
                    f"{n:>6} {x:>4} {m:<14} {1e3 * seconds:>11.3f} {res.objective:>18.10g} {gap:>10.2e}  "
                    f"{res.optimal}",
                    flush=True,
                )
    return rows


def dp_memory(n: int = 10000, per_worker: int = 4) -> float:
    budget = per_worker * n
    table, levels = paper_table(n, budget)
    tracemalloc.start()
    allocate_table(table, levels, budget, method="dp")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def part_gap(count: int, seed: int = 2026):
    rng = np.random.default_rng(seed)
    records = []
    for i in range(count):
        inst = random_instance(rng)
        exact = allocate_table(inst.table, inst.levels, inst.budget, method="dp").objective
        rec = {"instance": i, **inst.description}
        for label, refine in (("both", "both"), ("paper", "better")):
            res = allocate_table(
                inst.table, inst.levels, inst.budget, method="heuristic", options={"refine": refine}
            )
            rec[f"gap_{label}"] = (exact - res.objective) / abs(exact)
            rec[f"ms_{label}"] = 1e3 * res.wall_time
        records.append(rec)
    return records


def part_scan(count: int, seed: int = 2027):
    rng = np.random.default_rng(seed)
    records = []
    for i in range(count):
        inst = random_instance(rng, n_range=(200, 2000))
        args = (inst.table, inst.levels, inst.budget)
        full = allocate_table(*args, method="heuristic", options={"scan": "full"})
        fast = allocate_table(*args, method="heuristic")
        records.append(
            {
                "instance": i,
                **inst.description,
                "rel_diff": (full.objective - fast.objective) / abs(full.objective),
                "ms_full": 1e3 * full.wall_time,
                "ms_windowed": 1e3 * fast.wall_time,
            }
        )
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="studies/out", help="output directory (default studies/out)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per (N, B, method) up to N = 1000")
    parser.add_argument("--instances", type=int, default=500, help="random instances of the gap check")
    parser.add_argument("--scan-instances", type=int, default=100, help="instances of the scan check")
    parser.add_argument("--quick", action="store_true", help="N up to 1000, 100 gap and 20 scan instances")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = SIZES[:-1] if args.quick else SIZES
    count = min(args.instances, 100) if args.quick else args.instances
    scan_count = min(args.scan_instances, 20) if args.quick else args.scan_instances

    warm_up()
    notes: set[str] = set()
    rows = part_table(sizes, args.repeats, notes)
    write_csv(out / "bench_allocators.csv", rows)
    for note in sorted(notes):
        print(f"note: {note}")

    def pick(n, x, m):
        return next((r for r in rows if r["N"] == n and r["B_per_N"] == x and r["method"] == m), None)

    summary = {}
    print("\ntargets (median wall time):")
    targets = (
        (1000, 4, "dp", 1.0),
        (10000, 4, "dp", 60.0),
        (50, 7, "heuristic", 0.010),
        (10000, 4, "heuristic", 1.0),
    )
    for n, x, m, target in targets:
        r = pick(n, x, m)
        if r is not None:
            ok = "ok" if r["median_s"] <= target else "MISSED"
            print(f"  {m:<9} N = {n:>5}, B = {x}N: {r['median_s']:.4g} s (target {target:g} s) {ok}")
            summary[f"{m}_N{n}_B{x}N_s"] = r["median_s"]
    if 10000 in sizes:
        peak = dp_memory()
        summary["dp_peak_bytes_N10000_B4N"] = peak
        print(f"  dp peak memory at N = 10^4, B = 4N: {peak / 2**20:.1f} MiB (target < 2048 MiB)")

    print(f"\nheuristic vs DP on {count} random instances, N in [5, 100]:")
    records = part_gap(count)
    write_csv(out / "bench_allocators_gap.csv", records)
    for label, name in (
        ("both", "default (local search from both starts)"),
        ("paper", "paper (better start)"),
    ):
        gaps = np.array([r[f"gap_{label}"] for r in records])
        worst = records[int(np.argmax(gaps))]
        share = float(np.mean(gaps <= 1e-9))
        times = np.array([r[f"ms_{label}"] for r in records])
        print(
            f"  {name}: gap <= 1e-9 on {100 * share:.1f}%, median gap {np.median(gaps):.2e}, "
            f"worst {gaps.max():.3e}, median time {np.median(times):.3f} ms"
        )
        print(
            f"    worst instance: {json.dumps({k: v for k, v in worst.items() if not k.startswith('ms_')})}"
        )
        summary[f"gap_{label}_share_le_1e-9"] = share
        summary[f"gap_{label}_worst"] = float(gaps.max())
        summary[f"gap_{label}_worst_instance"] = worst["instance"]
    print(f"\nwindowed vs full scan on {scan_count} random instances, N in [200, 2000]:")
    scans = part_scan(scan_count)
    write_csv(out / "bench_allocators_scan.csv", scans)
    diff = np.array([r["rel_diff"] for r in scans])
    worst = scans[int(np.argmax(diff))]
    same = float(np.mean(np.abs(diff) <= 1e-12))
    t_full = sum(r["ms_full"] for r in scans) / 1e3
    t_fast = sum(r["ms_windowed"] for r in scans) / 1e3
    print(
        f"  same value on {100 * same:.1f}%, largest loss of the windowed scan {diff.max():.2e} "
        f"(instance {worst['instance']}: N = {worst['n']}, B = {worst['budget']}), "
        f"total time full {t_full:.2f} s, windowed {t_fast:.2f} s"
    )
    summary["scan_same_share"] = same
    summary["scan_worst_loss"] = float(diff.max())
    (out / "bench_allocators_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"\nwritten: {out / 'bench_allocators.csv'}, {out / 'bench_allocators_gap.csv'}, "
        f"{out / 'bench_allocators_scan.csv'}, {out / 'bench_allocators_summary.json'}"
    )


if __name__ == "__main__":
    main()
