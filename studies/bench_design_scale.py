"""Scaling of the default allocator and of the whole design() to N = 10^5 workers.

The paper's straggler model (shifted exponential, rates U(0.01, 2), deadline
0.1 after the shift), MobileNetV3-Small dimension, balanced kappa (c = 1),
bits in [2, 32], B = 4N. For N in {50, 1000, 10^4, 10^5}:

- the heuristic with its default scan (``scan="auto"``: the paper's full scan
  up to N = 200, the windowed scan above), the full scan (``scan="full"``, up
  to --full-max workers) and the exact DP (up to --dp-max workers; its choice
  table needs N R bytes, 20 GB at N = 10^5, B = 4N): median solver time and
  the relative gap to the DP;
- ``design(profile, bits_per_worker=4)`` with the default allocator: median
  wall time of the whole pipeline (utility table, allocation, masses, layout,
  decoding) and its peak traced memory (tracemalloc, numpy allocations, one
  separate run).

Medians over --repeats runs (one run of the full scan and of the DP at
N >= 10^4); numba kernels are warmed up first.

    python studies/bench_design_scale.py [--out studies/out] [--repeats 5] [--sizes 50,1000,10000,100000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

from gcdesign import ClusterProfile, design
from gcdesign.allocation import allocate_table, allowed_levels, utility_table
from gcdesign.allocation._testing import straggler_probs
from gcdesign.profile import MOBILENET_V3_SMALL_PARAMS
from gcdesign.quantization import resolve_kappa
from gcdesign.studies._common import write_csv

BITS_PER_WORKER = 4


def paper_profile(n: int, seed: int = 0) -> ClusterProfile:
    p = straggler_probs(np.random.default_rng(seed), n, "paper")
    return ClusterProfile(p, dim=MOBILENET_V3_SMALL_PARAMS)


def table_of(profile: ClusterProfile, budget: int):
    p = profile.straggler_probs
    kappa = resolve_kappa("balanced", p, budget, profile.dim)
    levels = allowed_levels(2, 32)
    return utility_table(p, kappa, profile.dim, levels), levels


def median_solver(table, levels, budget, method, options, repeats):
    times, result = [], None
    for _ in range(repeats):
        result = allocate_table(table, levels, budget, method=method, options=options)
        times.append(result.wall_time)
    return float(np.median(times)), result


def median_design(profile, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        design(profile, bits_per_worker=BITS_PER_WORKER)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    design(profile, bits_per_worker=BITS_PER_WORKER)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(np.median(times)), peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="studies/out", help="output directory (default studies/out)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (default 5)")
    parser.add_argument("--sizes", default="50,1000,10000,100000", help="comma-separated N")
    parser.add_argument("--full-max", type=int, default=10000, help="largest N for the full scan")
    parser.add_argument("--dp-max", type=int, default=10000, help="largest N for the DP")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]

    small = paper_profile(8)  # warm-up: load every numba kernel
    table, levels = table_of(small, 32)
    for method, options in (("heuristic", {}), ("heuristic", {"scan": "windowed"}), ("dp", {})):
        allocate_table(table, levels, 32, method=method, options=options)
    design(small, bits_per_worker=BITS_PER_WORKER)

    header = (
        f"{'N':>7} {'B':>7} {'heuristic ms':>13} {'full scan ms':>13} {'dp ms':>9} {'gap to dp':>10} "
        f"{'design() ms':>12} {'design peak MiB':>16}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for n in sizes:
        budget = BITS_PER_WORKER * n
        profile = paper_profile(n)
        table, levels = table_of(profile, budget)
        big = n >= 10000
        reps = max(1, args.repeats if n < 100000 else min(args.repeats, 3))
        heur_s, heur = median_solver(table, levels, budget, "heuristic", {}, reps)
        full_s = dp_s = gap = float("nan")
        if n <= args.full_max:
            full = {"scan": "full"}
            full_s, _ = median_solver(table, levels, budget, "heuristic", full, 1 if big else reps)
        if n <= args.dp_max:
            dp_s, exact = median_solver(table, levels, budget, "dp", {}, 1 if big else reps)
            gap = (exact.objective - heur.objective) / abs(exact.objective)
        design_s, peak = median_design(profile, reps)
        row = {
            "N": n,
            "B": budget,
            "heuristic_s": heur_s,
            "heuristic_full_scan_s": full_s,
            "dp_s": dp_s,
            "rel_gap_to_dp": gap,
            "heuristic_message": heur.message,
            "design_s": design_s,
            "design_peak_bytes": peak,
            "repeats": reps,
        }
        rows.append(row)

        def ms(x):
            return "-" if np.isnan(x) else f"{1e3 * x:.3g}"

        print(
            f"{n:>7} {budget:>7} {ms(heur_s):>13} {ms(full_s):>13} {ms(dp_s):>9} "
            f"{'-' if np.isnan(gap) else f'{gap:.1e}':>10} {ms(design_s):>12} {peak / 2**20:>16.0f}",
            flush=True,
        )
    for row in rows:
        print(f"  N = {row['N']}: {row['heuristic_message']}")
    write_csv(out / "bench_design_scale.csv", rows)
    print(f"\nwritten: {out / 'bench_design_scale.csv'}")


if __name__ == "__main__":
    main()
