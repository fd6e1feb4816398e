"""Monte-Carlo estimator: numba kernel vs its numpy reference, 1 vs 2 threads, reproducibility.

Setting: the paper's profile (paper-n50, N = K = 50), our design at B = 350,
synthetic gradients of dimension d = 10^4, 10^4 trials.

* numba vs numpy: the same ``monte_carlo_error`` call with ``reference=False``
  and ``reference=True`` (end to end: arrivals, decoder weights and the
  quantize/decode/score kernel), and the kernel alone on the same weights.
* threads: the numba run in subprocesses with ``NUMBA_NUM_THREADS`` = 1 and 2
  (median over --repeats runs after a warm-up), and a hash of the per-trial
  errors and the bias vector to show the results are identical.
* processes: ``workers=2`` (a spawn pool of 2 processes, 1 numba thread each,
  started afresh by every call, so its start-up is counted) with the same digest.
* ``--bucket-size B``: the design and every run quantize in buckets of B.

    python studies/bench_montecarlo.py [--trials 10000] [--dim 10000] [--repeats 3] [--bucket-size B]
                                       [--out studies/out]

Timings on a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gcdesign import design, load_example
from gcdesign.evaluation import synthetic_gradients
from gcdesign.montecarlo import MC_CHUNK, kernel_arguments, monte_carlo_error, monte_carlo_problem

BUDGET = 350


def setup(dim: int, bucket_size: int | None = None):
    code = design(load_example("paper-n50"), BUDGET, bucket_size=bucket_size)
    grads = synthetic_gradients(code.partitions, dim, rng=1)
    return code, grads


def digest(result) -> str:
    h = hashlib.sha256()
    h.update(result.errors.tobytes())
    h.update(np.float64(result.bias).tobytes())
    return h.hexdigest()[:16]


def kernel_inputs(code, grads, trials: int, seed: int):
    """The kernel's arguments exactly as monte_carlo_error prepares them (one batch of every chunk)."""
    n_chunks = -(-trials // MC_CHUNK)
    keys = np.random.default_rng(seed).integers(0, 2**64, size=(n_chunks, 2), dtype=np.uint64)
    return kernel_arguments(monte_carlo_problem(code, grads), 0, keys, trials)


def child(args) -> None:
    """Run in a subprocess with NUMBA_NUM_THREADS set: time the numba path, print JSON."""
    import numba

    from gcdesign._mc_kernels import simulate_rounds

    code, grads = setup(args.dim, args.bucket_size)
    monte_carlo_error(code, grads, trials=64, rng=0)  # compile / load the cache
    times, kernel_times, kernel_cpu = [], [], []
    result = None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = monte_carlo_error(code, grads, trials=args.trials, rng=args.seed)
        times.append(time.perf_counter() - t0)
    inputs = kernel_inputs(code, grads, args.trials, args.seed)
    for _ in range(args.repeats):
        inputs[-2][:] = 0.0
        inputs[-1][:] = 0.0
        c0, t0 = time.process_time(), time.perf_counter()
        simulate_rounds(*inputs)
        kernel_times.append(time.perf_counter() - t0)
        kernel_cpu.append(time.process_time() - c0)
    print(
        json.dumps(
            {
                "threads": numba.get_num_threads(),
                "median_s": float(np.median(times)),
                "kernel_median_s": float(np.median(kernel_times)),
                "kernel_cpu_per_wall": float(np.median(np.array(kernel_cpu) / np.array(kernel_times))),
                "digest": digest(result),
                "mean": result.mean,
                "relative_error": result.relative_error,
                "bias": result.bias,
                "bias_bound": result.bias_bound,
            }
        )
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reference-trials", type=int, default=None, help="trials of the numpy run")
    parser.add_argument("--bucket-size", type=int, default=None, help="bucket length (default: one)")
    parser.add_argument("--out", default="studies/out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return
    beta = "one bucket" if args.bucket_size is None else f"buckets of {args.bucket_size}"
    print(f"N = 50, d = {args.dim}, {args.trials} trials, paper-n50 design at B = {BUDGET}, {beta}")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    runs = {}
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        cmd = [sys.executable, __file__, "--child", "--trials", str(args.trials), "--dim", str(args.dim)]
        cmd += ["--repeats", str(args.repeats), "--seed", str(args.seed)]
        if args.bucket_size is not None:
            cmd += ["--bucket-size", str(args.bucket_size)]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        runs[threads] = json.loads(out.strip().splitlines()[-1])
    # a spawn pool of 2 processes (1 numba thread each); every call starts its own pool
    code, grads = setup(args.dim, args.bucket_size)
    pool_times, pooled = [], None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        pooled = monte_carlo_error(code, grads, trials=args.trials, rng=args.seed, workers=2)
        pool_times.append(time.perf_counter() - t0)
    pool_time = float(np.median(pool_times))
    # the numpy reference (in this process, one run: it is slow)
    ref_trials = args.reference_trials or args.trials
    t0 = time.perf_counter()
    ref = monte_carlo_error(code, grads, trials=ref_trials, rng=args.seed, reference=True)
    ref_time = time.perf_counter() - t0
    from gcdesign._mc_kernels import simulate_rounds_reference

    inputs = kernel_inputs(code, grads, ref_trials, args.seed)
    t0 = time.perf_counter()
    simulate_rounds_reference(*inputs)
    ref_kernel = time.perf_counter() - t0
    scale = args.trials / ref_trials
    one, two = runs[1], runs[2]
    print()
    print(f"{'variant':<28} {'end-to-end s':>13} {'kernel s':>10} {'cpu/wall':>9}  digest / result")
    print(
        f"{'numpy reference':<28} {ref_time * scale:>13.3f} {ref_kernel * scale:>10.3f} {'':>9}  "
        f"rel. err {ref.relative_error:.6f}"
    )
    for t, r in runs.items():
        label = f"numba, NUMBA_NUM_THREADS={t}"
        print(
            f"{label:<28} {r['median_s']:>13.3f} {r['kernel_median_s']:>10.3f} "
            f"{r['kernel_cpu_per_wall']:>9.2f}  {r['digest']}"
        )
    print(f"{'workers=2 (spawn pool)':<28} {pool_time:>13.3f} {'':>10} {'':>9}  {digest(pooled)}")
    print()
    print(f"numba (2 threads) vs numpy, end to end : {ref_time * scale / two['median_s']:.1f}x")
    print(f"numba (2 threads) vs numpy, kernel     : {ref_kernel * scale / two['kernel_median_s']:.1f}x")
    print(f"numba (1 thread)  vs numpy, kernel     : {ref_kernel * scale / one['kernel_median_s']:.1f}x")
    print(f"2 threads vs 1 thread, end to end      : {one['median_s'] / two['median_s']:.2f}x")
    print(f"2 threads vs 1 thread, kernel          : {one['kernel_median_s'] / two['kernel_median_s']:.2f}x")
    same = one["digest"] == two["digest"]
    print(f"identical results for 1 and 2 threads  : {same} ({one['digest']})")
    print(
        f"spawn pool (2 processes) vs 1 thread   : {one['median_s'] / pool_time:.2f}x, identical results: "
        f"{digest(pooled) == one['digest']}"
    )
    if ref_trials == args.trials:
        print(
            f"numba vs numpy relative error          : {one['relative_error']:.12f} "
            f"vs {ref.relative_error:.12f}"
        )
    print(
        f"relative error {one['relative_error']:.5f}, bias {one['bias']:.4g} <= bound {one['bias_bound']:.4g}"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("(cpu/wall: cores the kernel actually got; below the thread count the machine was contended)")
    if ref_trials != args.trials:
        print(f"(numpy timed on {ref_trials} trials and scaled by {scale:g})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_montecarlo.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["variant", "trials", "dim", "end_to_end_s", "kernel_s", "digest"])
        w.writerow(["numpy", ref_trials, args.dim, ref_time, ref_kernel, ""])
        for t, r in runs.items():
            w.writerow(
                [
                    f"numba-{t}-threads",
                    args.trials,
                    args.dim,
                    r["median_s"],
                    r["kernel_median_s"],
                    r["digest"],
                ]
            )
        w.writerow(["workers-2-spawn", args.trials, args.dim, pool_time, "", digest(pooled)])
    print(f"wrote {out / 'bench_montecarlo.csv'}")


if __name__ == "__main__":  # the guard also keeps spawned pool processes from re-running main()
    main()
