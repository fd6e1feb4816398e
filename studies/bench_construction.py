"""Time of the closed-form structure + segment construction for N = K = 10^3 ... 10^6.

Prints a table of median times (over --repeats runs), the time per worker and
the growth ratio between consecutive sizes (10x more workers should cost about
10x: linear). Also writes a CSV to --out.

    python studies/bench_construction.py [--repeats 5] [--out studies/out]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from gcdesign import ClusterProfile, delta_raw, optimal_structure
from gcdesign.construction import segment_layout
from gcdesign.studies._common import write_csv


def run_once(profile, delta):
    t0 = time.perf_counter()
    s = optimal_structure(profile, delta)
    t1 = time.perf_counter()
    alpha = segment_layout(s.row_mass, profile.partitions)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, alpha


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--out", default="studies/out")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    print(
        f"{'N = K':>9} {'structure ms':>13} {'segment ms':>11} {'total ms':>9} {'ns/worker':>10} "
        f"{'x prev':>7} {'nnz/(N+K-1)':>12}"
    )
    prev = None
    for n in (int(s) for s in args.sizes.split(",")):
        p = rng.uniform(0.01, 0.99, n)
        profile = ClusterProfile(p, dim=1_000_000)
        delta = 0.01 * delta_raw(rng.integers(2, 9, n), 1_000_000) / 1e6
        times = []
        for _ in range(args.repeats):
            ts, tc, alpha = run_once(profile, delta)
            times.append((ts, tc))
        ts, tc = np.median(np.array(times), axis=0)
        col = np.asarray(alpha.sum(axis=0)).ravel()
        assert np.max(np.abs(col - 1)) < 1e-9 and alpha.nnz <= 2 * n - 1
        total = ts + tc
        ratio = "" if prev is None else f"{total / prev:.1f}"
        prev = total
        rows.append({"n": n, "structure_s": ts, "segment_s": tc, "total_s": total, "nnz": alpha.nnz})
        print(
            f"{n:>9} {1e3 * ts:>13.2f} {1e3 * tc:>11.2f} {1e3 * total:>9.2f} {1e9 * total / n:>10.1f} "
            f"{ratio:>7} {alpha.nnz / (2 * n - 1):>12.4f}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "bench_construction.csv", rows)
    print(f"(medians of {args.repeats} runs; CSV in {out / 'bench_construction.csv'})")


if __name__ == "__main__":
    main()
