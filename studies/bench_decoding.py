"""Per-round optimal (least-squares) decoding: the sparse solver vs the dense one (LAPACK lstsq).

Setting: N = K = 400 (and the sizes in --sizes), random 3-regular assignment
(every worker 3 partitions, every partition 3 workers), 20% of the workers
straggle each round (a random set of N/5). For every round both solvers of
``least_squares_weights`` (``solver="sparse"``, the default, and
``solver="dense"``) compute the minimum-norm ``argmin_a ||a^T B_T - 1^T||``;
the script reports median times, the speedup and the largest difference.

    python studies/bench_decoding.py [--rounds 30] [--sizes 400,1000] [--out studies/out]

Timings on a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from gcdesign.schemes.baselines import regular_assignment
from gcdesign.schemes.decoding import least_squares_weights
from gcdesign.studies._common import write_csv


def bench(n: int, degree: int, straggle: float, rounds: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    enc = regular_assignment(n, n, degree, rng=rng)
    fast_t, dense_t, diffs, residuals = [], [], [], []
    least_squares_weights(enc, np.ones(n, bool))  # warm-up (imports, caches)
    for _ in range(rounds):
        arrived = np.ones(n, bool)
        arrived[rng.choice(n, int(round(straggle * n)), replace=False)] = False
        t0 = time.perf_counter()
        fast = least_squares_weights(enc, arrived)
        t1 = time.perf_counter()
        dense = least_squares_weights(enc, arrived, solver="dense")
        t2 = time.perf_counter()
        fast_t.append(t1 - t0)
        dense_t.append(t2 - t1)
        diffs.append(float(np.max(np.abs(fast - dense))))
        residuals.append(float(np.linalg.norm(fast @ enc - 1.0)))
    fast_ms, dense_ms = 1e3 * np.median(fast_t), 1e3 * np.median(dense_t)
    return {
        "N": n,
        "degree": degree,
        "stragglers": int(round(straggle * n)),
        "rounds": rounds,
        "sparse_ms": fast_ms,
        "dense_ms": dense_ms,
        "speedup": dense_ms / fast_ms,
        "speedup_min_per_round": float(np.min(np.array(dense_t) / np.array(fast_t))),
        "max_abs_diff": max(diffs),
        "median_residual": float(np.median(residuals)),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--sizes", default="400,1000")
    parser.add_argument("--degree", type=int, default=3)
    parser.add_argument("--stragglers", type=float, default=0.2, help="fraction of workers straggling")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads for both decoders (default 1: fair on a busy machine)",
    )
    parser.add_argument("--out", default="studies/out")
    args = parser.parse_args(argv)
    print(
        f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, BLAS threads {args.blas_threads}"
    )
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        rows = [
            bench(int(n), args.degree, args.stragglers, args.rounds, args.seed + i)
            for i, n in enumerate(args.sizes.split(","))
        ]
    print(
        f"{'N':>6} {'deg':>4} {'s':>5} {'sparse ms':>10} {'dense ms':>9} {'speedup':>8} {'worst round':>11} "
        f"{'max |diff|':>11} {'residual':>9}"
    )
    for r in rows:
        print(
            f"{r['N']:>6} {r['degree']:>4} {r['stragglers']:>5} {r['sparse_ms']:>10.3f} "
            f"{r['dense_ms']:>9.2f} "
            f"{r['speedup']:>7.1f}x {r['speedup_min_per_round']:>10.1f}x {r['max_abs_diff']:>11.2e} "
            f"{r['median_residual']:>9.3f}"
        )
    print("(times are medians over the rounds; speedup = median dense / median sparse)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "bench_decoding.csv", rows)
    print(f"wrote {out / 'bench_decoding.csv'}")


if __name__ == "__main__":
    main()
