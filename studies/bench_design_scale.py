"""design() at scale: wall time, CPU time and peak memory at N = 10^4, 10^5, 10^6, before and after.

The paper's straggler model (shifted exponential, rates U(0.01, 2), deadline
0.1 after the shift), MobileNetV3-Small dimension, balanced kappa (c = 1), bits
in [2, 32], B = 7N (``--bits-per-worker``), the default allocator. Every run is
a fresh subprocess: it imports gcdesign, warms the numba kernels up on a small
design, then times one ``design(profile, bits_per_worker=7)`` and reads the
process's peak resident set size (``resource.getrusage``: everything the
process ever held, the ~250-330 MB of imported libraries included) and, in a
separate run, the peak traced by ``tracemalloc`` (numpy's allocations only, not
the arrays the numba kernels allocate). Medians over --repeats runs.

``--before DIR`` runs the same measurement on another source tree (e.g. the
main branch: ``git archive main | tar -x -C /tmp/before``) and checks that both
give the same bits.

    python studies/bench_design_scale.py [--sizes 10000,100000,1000000] [--repeats 3] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import hashlib, json, resource, sys, time, tracemalloc
import numpy as np
from gcdesign import ClusterProfile, design
from gcdesign.allocation.instances import straggler_probs
from gcdesign.profile import MOBILENET_V3_SMALL_PARAMS

n, bpw, trace = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "trace"
def profile(n):
    p = straggler_probs(np.random.default_rng(0), n, "paper")
    return ClusterProfile(p, dim=MOBILENET_V3_SMALL_PARAMS)
design(profile(3000), bits_per_worker=bpw)  # warm-up: every kernel of the windowed scan
prof = profile(n)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if trace:
    tracemalloc.start()
wall, cpu = time.perf_counter(), time.process_time()
d = design(prof, bits_per_worker=bpw)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
traced = tracemalloc.get_traced_memory()[1] if trace else 0
a = d.allocation
print(json.dumps({
    "wall_s": wall, "cpu_s": cpu, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "rss_before": base, "traced_peak": traced, "method": a.method, "objective": a.objective,
    "bits_sha": hashlib.sha256(np.ascontiguousarray(d.bits, dtype=np.int64).tobytes()).hexdigest()[:12],
}))
"""


def measure(src: Path, n: int, bpw: int, trace: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    args = [sys.executable, "-c", CHILD, str(n), str(bpw), "trace" if trace else "time"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd=src)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(src: Path, n: int, bpw: int, repeats: int) -> dict:
    runs = [measure(src, n, bpw, False) for _ in range(repeats)]
    traced = measure(src, n, bpw, True)
    if len({r["bits_sha"] for r in runs + [traced]}) != 1:
        raise RuntimeError(f"{src}: different bits across runs at N = {n}")
    return {
        "wall_s": float(np.median([r["wall_s"] for r in runs])),
        "cpu_s": float(np.median([r["cpu_s"] for r in runs])),
        "peak_rss": float(np.median([r["peak_rss"] for r in runs])),
        "rss_before": float(np.median([r["rss_before"] for r in runs])),
        "traced_peak": traced["traced_peak"],
        "method": runs[0]["method"],
        "objective": runs[0]["objective"],
        "bits_sha": runs[0]["bits_sha"],
    }


def main(argv=None):
    from gcdesign.studies._common import write_csv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="studies/out", help="output directory (default studies/out)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per size (default 3)")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated N")
    parser.add_argument("--bits-per-worker", type=int, default=7, help="B / N (default 7)")
    parser.add_argument("--before", default=None, help="another gcdesign source tree to compare with")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trees = ([("before", Path(args.before).resolve())] if args.before else []) + [("after", HERE)]
    mib = 2.0**20
    header = (
        f"{'N':>8} {'tree':>6} {'allocator':>9} {'wall s':>8} {'cpu s':>7} {'peak RSS MiB':>13} "
        f"{'RSS before MiB':>15} {'traced MiB':>11} {'bits':>13}"
    )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of {args.repeats}")
    print(header)
    print("-" * len(header))
    rows = []
    for n in (int(float(s)) for s in args.sizes.split(",")):
        results = {}
        for label, src in trees:
            r = summarize(src, n, args.bits_per_worker, args.repeats)
            results[label] = r
            rows.append({"N": n, "tree": label, "B": args.bits_per_worker * n, **r})
            print(
                f"{n:>8} {label:>6} {r['method']:>9} {r['wall_s']:>8.2f} {r['cpu_s']:>7.2f} "
                f"{r['peak_rss'] / mib:>13.0f} {r['rss_before'] / mib:>15.0f} "
                f"{r['traced_peak'] / mib:>11.0f} {r['bits_sha']:>13}",
                flush=True,
            )
        if len(results) == 2:
            same = results["before"]["bits_sha"] == results["after"]["bits_sha"]
            print(f"{'':>8} same bits before and after: {same}", flush=True)
    write_csv(out / "bench_design_scale.csv", rows)
    print(f"\nwritten: {out / 'bench_design_scale.csv'}")


if __name__ == "__main__":
    main()
