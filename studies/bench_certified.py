"""The certified allocator at scale: how often the proof closes, its CPU time and the largest gap.

Random instances at N = 10^4, 10^5, 10^6 (``--sizes``) of these families (``--families``):
``random`` (p ~ U(0.01, 0.95)), ``paper`` (the paper's shifted exponential, rates
U(0.01, 2), deadline 0.1 after the shift), ``classes-k`` for k = 2, 3, 5, 10 (k hardware
classes: thousands of identical workers, class shares from a flat Dirichlet),
``classes+noise`` (5 classes, 10% of the workers with a probability of their own) and
``rounded`` (p ~ U(0.01, 0.95) rounded to 2 decimals: 95 classes of about N/95); per
instance a budget B/N drawn from U(2.5, 10) (whole bits), a quantization model (``raw``
with buckets of 512, the design default; ``balanced``; ``tight``) and a dimension
10^4 .. 10^7.
``allocate_bits(method="certified")`` runs in this process (kernels warmed up),
timed by ``time.process_time`` (CPU seconds). Printed per size and family: the
share of instances proven optimal, the median and largest CPU time, the median
core size, and the largest remaining gap relative to the objective (0 when every
instance is proven). Beside each figure, its counterpart in the same run: the
paper's heuristic (``method="heuristic"``) on the same instances up to
``--heuristic-max`` workers (its CPU time and whether the certified objective is
at least its own), and the exact DP on ``--dp-check`` extra instances of each family at
N = 10^3 (the objective must be equal). Last, the whole ``design()`` (defaults, B = 7N) at
the largest N on one profile of each family: CPU seconds, median of ``--design-reps`` runs.
The authors' allocation code is not in this repository or in the project's seed documents
(only the paper's text is), so there is no run of it here.

    python studies/bench_certified.py [--sizes 10000,100000,1000000] [--instances 20]
        [--families random,paper,...] [--dp-check 10] [--design-reps 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

FAMILIES = {
    "random": ("uniform",),
    "paper": ("paper",),
    "classes-2": (2, 0.0),
    "classes-3": (3, 0.0),
    "classes-5": (5, 0.0),
    "classes-10": (10, 0.0),
    "classes+noise": (5, 0.1),
    "rounded": ("uniform", 2),
}
"""Family name: a `straggler_probs` family (and the decimals p is rounded to), or the
arguments of `class_probs` (classes, share of unique workers)."""
MODELS = [("raw", 512), ("balanced", None), ("tight", None)]


def instance(seed: int, n: int, family: str):
    from gcdesign import ClusterProfile
    from gcdesign.allocation.instances import class_probs, straggler_probs

    rng = np.random.default_rng([seed, n, list(FAMILIES).index(family)])
    kind = FAMILIES[family]
    if isinstance(kind[0], str):
        p = straggler_probs(rng, n, kind[0])
        p = p if len(kind) == 1 else np.round(p, kind[1])  # measured to a few decimals
    else:
        p = class_probs(rng, n, *kind)
    bits_per_worker = float(rng.uniform(2.5, 10.0))
    model, bucket = MODELS[int(rng.integers(len(MODELS)))]
    dim = int(10 ** rng.uniform(4, 7))
    budget = int(round(bits_per_worker * n))
    return ClusterProfile(p, dim=dim), budget, model, bucket


def run(prof, budget, model, bucket, method):
    from gcdesign import allocate_bits

    cpu = time.process_time()
    result = allocate_bits(prof, budget, method=method, quantization=model, bucket_size=bucket)
    return result, time.process_time() - cpu


def main(argv=None):
    from gcdesign.studies._common import write_csv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="studies/out", help="output directory (default studies/out)")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated N")
    parser.add_argument("--instances", type=int, default=20, help="instances per size and family")
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help=f"comma-separated, of: {', '.join(FAMILIES)}"
    )
    parser.add_argument("--heuristic-max", type=int, default=100_000, help="largest N the heuristic runs at")
    parser.add_argument(
        "--dp-check", type=int, default=10, help="instances at N = 1000 checked against the DP"
    )
    parser.add_argument(
        "--design-reps", type=int, default=3, help="design() runs per family at the largest N (0: none)"
    )
    args = parser.parse_args(argv)
    families = args.families.split(",")
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown family {unknown[0]!r}; choose from {', '.join(FAMILIES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # compile every kernel first: the exact multiplier (small N), the sampled one (N > 50,000,
    # with and without classes), the heuristic
    for n, family in [(3000, "paper"), (60_000, "paper"), (60_000, "classes+noise")]:
        run(*instance(0, n, family), "certified")
    run(*instance(0, 3000, "paper"), "heuristic")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; CPU seconds (process_time)")
    header = (
        f"{'N':>8} {'family':>13} {'proven':>8} {'cpu med':>8} {'cpu max':>8} {'core med':>9} "
        f"{'max rel gap':>11} | {'heur cpu med':>12} {'cert >= heur':>12}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for n in (int(float(s)) for s in args.sizes.split(",")):
        for family in families:
            results = []
            for seed in range(args.instances):
                prof, budget, model, bucket = instance(seed, n, family)
                cert, cpu = run(prof, budget, model, bucket, "certified")
                row = {
                    "N": n,
                    "family": family,
                    "seed": seed,
                    "budget": budget,
                    "model": model,
                    "dim": prof.dim,
                    "proven": cert.optimal is True,
                    "cpu_s": cpu,
                    "objective": cert.objective,
                    "rel_gap": (cert.gap or 0.0) / abs(cert.objective),
                    "core": int(cert.message.split("core of ")[1].split()[0])
                    if "core of" in cert.message
                    else 0,
                }
                if n <= args.heuristic_max:
                    heur, hcpu = run(prof, budget, model, bucket, "heuristic")
                    row["heuristic_cpu_s"] = hcpu
                    row["heuristic_objective"] = heur.objective
                    row["cert_ge_heur"] = cert.objective >= heur.objective * (1 - 1e-13)
                rows.append(row)
                results.append(row)
            proven = sum(r["proven"] for r in results)
            cpus = [r["cpu_s"] for r in results]
            heur = (
                f"{np.median([r['heuristic_cpu_s'] for r in results]):>12.3f} "
                f"{sum(r['cert_ge_heur'] for r in results):>7}/{len(results):<4}"
                if n <= args.heuristic_max
                else f"{'-':>12} {'-':>12}"
            )
            print(
                f"{n:>8} {family:>13} {proven:>4}/{len(results):<3} "
                f"{np.median(cpus):>8.3f} {max(cpus):>8.3f} "
                f"{np.median([r['core'] for r in results]):>9.0f} "
                f"{max(r['rel_gap'] for r in results):>11.2e} | {heur}",
                flush=True,
            )
    if args.dp_check:
        same = checked = 0
        for family in families:
            for seed in range(args.dp_check):
                prof, budget, model, bucket = instance(seed, 1000, family)
                cert, _ = run(prof, budget, model, bucket, "certified")
                exact, _ = run(prof, budget, model, bucket, "dp")
                same += abs(cert.objective - exact.objective) <= 1e-12 * abs(exact.objective)
                checked += 1
        print(f"\nN = 1000, exact DP vs certified: same objective on {same} of {checked} instances")
    if args.design_reps:
        from gcdesign import design

        n = max(int(float(s)) for s in args.sizes.split(","))
        print(f"\ndesign() at N = {n}, B = 7N, defaults (CPU seconds, median of {args.design_reps}):")
        for family in families:
            prof = instance(0, n, family)[0]
            times, optimal = [], []
            for _ in range(args.design_reps):
                cpu = time.process_time()
                made = design(prof, 7 * n)
                times.append(time.process_time() - cpu)
                optimal.append(made.allocation.optimal)
            print(f"{family:>13} {np.median(times):8.3f} s  (max {max(times):.3f}), proven: {optimal}")
    write_csv(out / "bench_certified.csv", rows)
    print(f"written: {out / 'bench_certified.csv'}")


if __name__ == "__main__":
    main()
