"""Partitions a redesign copies: fresh layout vs the closest layouts, with runtimes.

For each size N (= K partitions) and scenario, a design for ``p ~ U(0.05, 0.5)``
(B/N = 4 bits per worker, the package's default pipeline) is re-optimized
after the probabilities change, and the new masses are laid out four ways,
each counted against the old layout (``|L_new minus L_old|``):

* ``fresh``: the re-optimized design's own layout (what a redesign without
  the search copies);
* ``rigid``: the search without column permutations (``relabel=False``: the
  old and fresh worker orders, offsets aligning one worker each);
* ``closest``: the default search (worker order, every offset class, the best
  column permutation by min-cost flow; at most ``max_solves`` = 32 solved);
* ``polish``: ``closest_layout``: the closest layout polished by a MILP on
  its pairs and the old ones (at most --polish-time seconds; not a segment
  layout, same masses and load guarantee);
* ``exact``: the same search run to the end (``max_solves=None``): the
  optimum over the candidate orders; at N <= 6 every cyclic order is a
  candidate, so it is the optimum over all segment layouts;
* ``milp``: the optimum over *every* layout with these masses and a segment
  layout's load (``closest_layout_milp``, HiGHS, at N <= --milp-max; a run
  stopped by --milp-time shows its best count, and the CSV its proven bound).

Scenarios: ``single`` (the most reliable worker slows to p = 0.7), ``group``
(the tenth of the workers with the highest p recover to p = 0.05), ``wander``
(every p times exp(N(0, 0.3)), clipped to [0.01, 0.95]), and ``chain``
(three wanders in a row, each redesign starting from the closest layout of
the one before, which is relabelled: the copies of the third are reported).
Prints means with 95 % Student-t half-widths over the draws, the mean lower
bound ``sum_i max(0, ceil(Y_i) - n_i)`` (no layout copies fewer), the median
runtime of each search, and the load average. Writes a CSV.

    python studies/bench_layout_movement.py [--sizes 6,50,1000] [--draws 8] [--exact-max 200] [--milp-max 50]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from gcdesign import ClusterProfile, design
from gcdesign.cluster.adaptive import fresh_design
from gcdesign.construction import (
    closest_layout_milp,
    closest_segment_layout,
    moved_partitions,
    segment_geometry,
)
from gcdesign.studies._common import mean_ci, write_csv

SCENARIOS = ("single", "group", "wander", "chain")


def changed(p, scenario, rng):
    q = p.copy()
    if scenario == "single":
        q[np.argmin(q)] = 0.7
    elif scenario == "group":
        q[np.argsort(q)[-max(1, q.size // 10) :]] = 0.05
    else:
        q = np.clip(q * np.exp(rng.normal(0, 0.3, q.size)), 0.01, 0.95)
    return q


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def one_redesign(code, q, exact: bool, milp_time: float | None, polish_time: float):
    """Copies of each layout of `q`'s design against `code`'s layout, and the seconds of each search."""
    fresh = fresh_design(code, q)
    old, k = code.encoding, code.partitions
    fresh_order, _ = segment_geometry(fresh.encoding)
    y = fresh.row_mass
    row = {"fresh": moved_partitions(old, fresh.encoding)}
    (_, rigid), row["rigid_s"] = timed(
        lambda: closest_segment_layout(y, k, old, orders=[fresh_order], relabel=False)
    )
    (lay, closest), row["closest_s"] = timed(lambda: closest_segment_layout(y, k, old, orders=[fresh_order]))
    row.update(rigid=rigid["moved"], closest=closest["moved"], lower_bound=closest["lower_bound"])
    row["closest_bound"] = closest["bound"]
    pairs = (old != 0).astype(np.int8) + (lay != 0).astype(np.int8)
    (polished, polish), row["polish_s"] = timed(
        lambda: closest_layout_milp(y, k, old, pairs=pairs, time_limit=polish_time)
    )
    row["polish"] = min(closest["moved"], polish["moved"] if polished is not None else closest["moved"])
    if exact:
        (_, best), row["exact_s"] = timed(
            lambda: closest_segment_layout(y, k, old, orders=[fresh_order], max_solves=None)
        )
        row["exact"] = best["moved"]
    if milp_time is not None:
        (_, milp), row["milp_s"] = timed(lambda: closest_layout_milp(y, k, old, time_limit=milp_time))
        row.update(milp=milp["moved"], milp_bound=milp["bound"], milp_optimal=milp["optimal"])
    assert closest["moved"] == moved_partitions(old, lay) <= row["fresh"]
    assert np.allclose(lay.sum(axis=1), y) and np.allclose(lay.sum(axis=0), 1.0)
    return row, fresh, lay


def run(n, scenario, draws, exact, milp_time, polish_time, rng):
    rows = []
    for draw in range(draws):
        p = rng.uniform(0.05, 0.5, n)
        code = design(ClusterProfile(p, dim=1000), bits_per_worker=4)
        if scenario != "chain":
            row, _, _ = one_redesign(code, changed(p, scenario, rng), exact, milp_time, polish_time)
        else:
            from gcdesign.cluster.adaptive import closest_redesign

            for _ in range(2):  # two redesigns on the closest layout first
                p = changed(p, "wander", rng)
                code, _, _ = closest_redesign(code, fresh_design(code, p))
            row, _, _ = one_redesign(code, changed(p, "wander", rng), exact, milp_time, polish_time)
        rows.append({"n": n, "scenario": scenario, "draw": draw, **row})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="6,50,1000")
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--exact-max", type=int, default=200, help="largest N searched to the end")
    parser.add_argument("--milp-max", type=int, default=50, help="largest N solved by the MILP")
    parser.add_argument("--milp-time", type=float, default=30.0, help="seconds per MILP")
    parser.add_argument("--polish-time", type=float, default=10.0, help="seconds per polish")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", default="studies/out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []
    print(f"load average {os.getloadavg()[0]:.2f}; means and 95 % half-widths over {args.draws} draws")
    head = (
        f"{'N':>5} {'scenario':>8} {'fresh':>13} {'rigid':>13} {'closest':>13} {'polish':>13} "
        f"{'exact':>13} {'milp':>13} {'opt':>3} {'lower bd':>8} {'rigid s':>8} {'closest s':>9} "
        f"{'polish s':>8} {'exact s':>8} {'milp s':>7}"
    )
    print(head)
    for n in (int(s) for s in args.sizes.split(",")):
        for scenario in args.scenarios.split(","):
            milp_time = args.milp_time if n <= args.milp_max else None
            got = run(n, scenario, args.draws, n <= args.exact_max, milp_time, args.polish_time, rng)
            rows += got

            def cell(key, got=got):
                if key not in got[0]:
                    return f"{'-':>13}"
                mean, half = mean_ci([r[key] for r in got])
                return f"{mean:>6.1f} ± {half:<4.1f}"

            def secs(key, got=got):
                return f"{np.median([r[key] for r in got]):.3f}" if key in got[0] else "-"

            optimal = sum(bool(r.get("milp_optimal")) for r in got)
            lower = np.mean([r["lower_bound"] for r in got])
            print(
                f"{n:>5} {scenario:>8} {cell('fresh')} {cell('rigid')} {cell('closest')} {cell('polish')} "
                f"{cell('exact')} {cell('milp')} {optimal:>3} {lower:>8.1f} {secs('rigid_s'):>8} "
                f"{secs('closest_s'):>9} {secs('polish_s'):>8} {secs('exact_s'):>8} {secs('milp_s'):>7}",
                flush=True,
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keys = sorted({key for r in rows for key in r})
    write_csv(out / "bench_layout_movement.csv", [{key: r.get(key, "") for key in keys} for r in rows])
    print(f"load average {os.getloadavg()[0]:.2f}; CSV in {out / 'bench_layout_movement.csv'}")


if __name__ == "__main__":
    main()
