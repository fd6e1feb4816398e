"""Conditioning of exact gradient codes and accuracy of polynomial-coded matrix multiplication.

Part 1: worst-case condition number of the responder submatrix B_F over all
responder sets of size N - s (exhaustive), for the random cyclic construction
of Tandon et al. (median and range over --seeds draws), the best of 20 random
draws, our Fourier construction, and fractional repetition where (s+1) | N;
plus the relative error of the decoded gradient sum on the worst set.

Part 2: construction time of the default (Fourier) cyclic code, median of
--repeats builds with the per-process cache cleared, for N in {10, 20, 50, 100,
200, 500} and s in {1, 4, N/4, N/2}, with its worst-case condition number
(exhaustive when C(N, s) <= 20,000, else sampled: 2,000 sets up to N = 100, 200
beyond, windows and spread sets included).

Part 3: relative error of A^T B decoded by a polynomial code on the worst
responder set (and a random one), for the Chebyshev and monomial bases, versus
N and m n.

    python studies/bench_exact_codes.py [--seeds 5] [--repeats 3] [--out studies/out]
        [--skip-conditioning] [--skip-timing] [--skip-polynomial]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from gcdesign.schemes.conditioning import condition_report
from gcdesign.schemes.exact import (
    clear_code_cache,
    cyclic_repetition_code,
    exact_decoding,
    fractional_repetition_code,
)
from gcdesign.schemes.polynomial import coded_matmul, polynomial_code, worst_case_condition
from gcdesign.studies._common import write_csv


def sum_error(code, stragglers, worst_stragglers, rng, dim=1000):
    """Relative error of the decoded gradient sum on the given straggler set (float64)."""
    n = code.shape[0]
    grads = rng.standard_normal((n, dim))
    messages = code.toarray() @ grads
    arrived = np.ones(n, dtype=bool)
    arrived[list(worst_stragglers)] = False
    a = exact_decoding(code, arrived, stragglers=stragglers, tol=1e-3)
    total = grads.sum(axis=0)
    return float(np.linalg.norm(a @ messages - total) / np.linalg.norm(total))


def part_exact(args, out: Path):
    rng = np.random.default_rng(0)
    rows = []
    print("worst-case condition number of B_F over every responder set of size N - s (exhaustive)")
    header = (
        f"{'N':>3} {'s':>2} {'sets':>5} | {'random median':>13} {'random range':>19} | "
        f"{'best of 20':>10} | {'fourier':>9} {'ratio':>7} {'build s':>7} | {'frc':>5} | "
        f"{'sum err rand':>12} {'sum err four':>12}"
    )
    print(header)
    for n in (10, 15, 20):
        for s in (1, 2, 3, 4):
            randoms = []
            rand_err = []
            for seed in range(args.seeds):
                code = cyclic_repetition_code(n, s, construction="random", rng=seed)
                rep = condition_report(code, s)
                randoms.append(rep.worst)
                rand_err.append(sum_error(code, s, rep.worst_stragglers, rng))
            best = condition_report(cyclic_repetition_code(n, s, construction="best-random", rng=1), s)
            t0 = time.perf_counter()
            ours_code = cyclic_repetition_code(n, s)
            build = time.perf_counter() - t0
            ours = condition_report(ours_code, s)
            assert ours.exhaustive
            ours_err = sum_error(ours_code, s, ours.worst_stragglers, rng)
            frc = condition_report(fractional_repetition_code(n, s), s).worst if n % (s + 1) == 0 else None
            med = float(np.median(randoms))
            row = {
                "N": n,
                "s": s,
                "sets": ours.sets,
                "random_median": med,
                "random_min": min(randoms),
                "random_max": max(randoms),
                "best_of_20": best.worst,
                "fourier": ours.worst,
                "ratio_random_median_over_fourier": med / ours.worst,
                "fourier_build_s": build,
                "frc": frc,
                "sum_error_random_median": float(np.median(rand_err)),
                "sum_error_fourier": ours_err,
            }
            rows.append(row)
            print(
                f"{n:>3} {s:>2} {ours.sets:>5} | {med:>13.3g} {min(randoms):>9.2g}..{max(randoms):<8.2g} | "
                f"{best.worst:>10.3g} | {ours.worst:>9.3g} {med / ours.worst:>6.0f}x {build:>7.2f} | "
                f"{'-' if frc is None else f'{frc:.3g}':>5} | {np.median(rand_err):>12.2e} {ours_err:>12.2e}"
            )
    write_csv(out / "bench_exact_codes_conditioning.csv", rows)


TIMING_N = (10, 20, 50, 100, 200, 500)


def part_timing(args, out: Path):
    rows = []
    print()
    print(f"construction time of cyclic_repetition_code(N, s) (median of {args.repeats}, cache cleared)")
    print(
        f"{'N':>3} {'s':>3} | {'build s':>8} {'min':>7} {'max':>7} | "
        f"{'worst cond':>10} {'sets':>6} {'how':>10}"
    )
    for n in TIMING_N:
        for s in sorted({1, 4, n // 4, n // 2}):
            if not 1 <= s < n:
                continue
            times = []
            for _ in range(args.repeats):
                clear_code_cache()
                t0 = time.perf_counter()
                code = cyclic_repetition_code(n, s)
                times.append(time.perf_counter() - t0)
            max_sets = 20_000 if n <= 20 else 2000 if n <= 100 else 200
            rep = condition_report(code, s, max_sets=max_sets, rng=0)
            row = {
                "N": n,
                "s": s,
                "build_s_median": float(np.median(times)),
                "build_s_min": min(times),
                "build_s_max": max(times),
                "worst_cond": rep.worst,
                "sets": rep.sets,
                "exhaustive": rep.exhaustive,
            }
            rows.append(row)
            how = "exhaustive" if rep.exhaustive else "sampled"
            print(
                f"{n:>3} {s:>3} | {row['build_s_median']:>8.3f} {min(times):>7.3f} {max(times):>7.3f} | "
                f"{rep.worst:>10.3g} {rep.sets:>6} {how:>10}",
                flush=True,
            )
    write_csv(out / "bench_exact_codes_timing.csv", rows)


def part_polynomial(args, out: Path):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((200, 60))
    B = rng.standard_normal((200, 60))
    rows = []
    print()
    print("polynomial-coded A^T B (A, B: 200 x 60): relative error on the worst responder set")
    print("(exhaustive when C(N, mn) <= 5000, else contiguous runs of points + a sample; and a random set)")
    print(
        f"{'N':>3} {'m':>2} {'n':>2} {'mn':>3} | {'cheb cond':>9} {'cheb err':>9} {'random-set err':>14} | "
        f"{'mono cond':>9} {'mono err':>9} | {'equi cond':>9} {'equi err':>9}"
    )
    for m, n in ((2, 2), (2, 3), (3, 3), (3, 4), (4, 4), (4, 5)):
        for extra in (0, 2, 5, 10):
            big_n = m * n + extra
            row = {"N": big_n, "m": m, "n": n, "mn": m * n}
            for label, kw in (
                ("cheb", {}),
                ("mono", {"basis": "monomial"}),
                ("equi", {"points": "equispaced"}),
            ):
                code = polynomial_code(big_n, m, n, **kw)
                worst, worst_set, exhaustive = worst_case_condition(code, max_sets=5000, rng=0)
                res = coded_matmul(A, B, n_workers=big_n, m=m, n=n, responders=worst_set, **kw)
                row[f"{label}_cond"] = worst
                row[f"{label}_err"] = res.relative_error
                row["exhaustive"] = exhaustive
                if label == "cheb":
                    pick = rng.choice(big_n, size=m * n, replace=False)
                    row["cheb_random_set_err"] = coded_matmul(
                        A, B, n_workers=big_n, m=m, n=n, responders=pick
                    ).relative_error
            rows.append(row)
            print(
                f"{big_n:>3} {m:>2} {n:>2} {m * n:>3} | {row['cheb_cond']:>9.2e} {row['cheb_err']:>9.1e} "
                f"{row['cheb_random_set_err']:>14.1e} | {row['mono_cond']:>9.2e} {row['mono_err']:>9.1e} | "
                f"{row['equi_cond']:>9.2e} {row['equi_err']:>9.1e}"
            )
    write_csv(out / "bench_exact_codes_polynomial.csv", rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="random draws per (N, s) (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="builds per (N, s) for the timing (default 3)")
    parser.add_argument("--out", default="studies/out")
    parser.add_argument("--skip-conditioning", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-polynomial", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.skip_conditioning:
        part_exact(args, out)
    if not args.skip_timing:
        part_timing(args, out)
    if not args.skip_polynomial:
        part_polynomial(args, out)


if __name__ == "__main__":
    main()
