"""Coded training on a 2-process LocalCluster: round overhead beyond the deadline, time to a target loss.

Prints two tables (medians over the rounds; figures depend on the machine's load):

1. overhead beyond the deadline (decode + optimizer step + submitting the next
   round, from the deadline or the last arrival to the next round's start), and
   the start and return latencies of the tasks, at 4 and 8 logical workers;
2. seconds of wall clock until the loss of logistic regression on digits first
   reaches a target, coded (the joint design, deadline tau) against uncoded
   wait-for-all (is-sgd with the same bits, every message awaited) on the
   same cluster and the same emulated delays.

Run: ``PYTHONPATH=. python studies/bench_cluster.py [--rounds R] [--time-unit U]``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from gcdesign import ClusterProfile, design
from gcdesign import cluster as gcluster
from gcdesign.training import digits_problem, gd


def _profile(n: int, dim: int) -> ClusterProfile:
    return ClusterProfile(np.linspace(0.05, 0.6, n), dim=dim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--time-unit", type=float, default=0.05)
    parser.add_argument("--deadline", type=float, default=2.0)
    parser.add_argument("--shift", type=float, default=1.0)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    u, tau, t0 = args.time_unit, args.deadline, args.shift
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        print(f"2-process LocalCluster, u = {u:g} s, tau = {tau:g}, t0 = {t0:g}, {args.rounds} rounds")
        print()
        print("logical  overhead ms      start latency ms  return latency ms  late")
        print("workers  median    p95    median     p95     median     p95")
        coded_runs = {}
        for n in (4, 8):
            problem = digits_problem("logistic", partitions=n)
            code = design(_profile(n, problem.dim), bits_per_worker=6)
            hist = gcluster.train(
                problem,
                code,
                workers=client,
                deadline=tau,
                shift=t0,
                rounds=args.rounds,
                time_unit=u,
                optimizer=gd(0.5),
                rng=1,
            )
            coded_runs[n] = (problem, code, hist)
            over = 1e3 * hist.overhead
            start = 1e3 * hist.start_offsets[np.isfinite(hist.start_offsets)]
            ready = np.maximum(hist.delays * u, hist.start_offsets + hist.compute_times)
            back = 1e3 * (hist.round_times * u - ready)
            back = back[np.isfinite(back)]
            print(
                f"{n:7d}  {np.median(over):6.2f} {np.percentile(over, 95):6.2f}    "
                f"{np.median(start):6.1f} {np.percentile(start, 95):7.1f}     "
                f"{np.median(back):6.1f} {np.percentile(back, 95):7.1f}   "
                f"{1 - hist.on_time.mean():.3f}"
            )
        print()
        print("logical  target loss  coded s  uncoded s  speedup  coded rounds  uncoded rounds")
        for n, (problem, code, hist) in coded_runs.items():
            base = gcluster.train(
                problem,
                gcluster.uncoded_scheme(code),
                workers=client,
                deadline=math.inf,
                shift=t0,
                rates=gcluster.delay_rates(code.straggler_probs, deadline=tau, shift=t0),
                rounds=args.rounds,
                time_unit=u,
                optimizer=gd(0.5),
                rng=1,
            )
            target = float(max(hist.loss.min(), base.loss.min()))
            t_coded, t_base = gcluster.time_to_loss(hist, target), gcluster.time_to_loss(base, target)
            r_coded = int(np.flatnonzero(hist.loss <= target)[0])
            r_base = int(np.flatnonzero(base.loss <= target)[0])
            print(
                f"{n:7d}  {target:11.5f}  {t_coded:7.2f}  {t_base:9.2f}  {t_base / t_coded:6.2f}x"
                f"  {r_coded:12d}  {r_base:14d}"
            )


if __name__ == "__main__":
    main()
