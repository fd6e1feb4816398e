"""design() at scale: wall time, CPU time and peak memory from N = 10^3 to 10^6, before and after.

Two straggler profiles (``--profiles``): ``paper`` (the paper's shifted
exponential, rates U(0.01, 2), deadline 0.1 after the shift) and ``random``
(p ~ U(0.01, 0.95)); MobileNetV3-Small dimension, the design defaults (raw
quantization model, buckets of 512), bits in [2, 32], B = 7N
(``--bits-per-worker``), the default allocator (``--allocator`` to name one,
e.g. ``heuristic``: the allocation without a certificate). Every run is
a fresh subprocess: it imports gcdesign, warms the numba kernels up on a small
design, then times one ``design(profile, bits_per_worker=7)`` and reads the
process's peak resident set size (``resource.getrusage``: everything the
process ever held, the ~250-330 MB of imported libraries included) and, in a
separate run, the peak traced by ``tracemalloc`` (numpy's allocations only, not
the arrays the numba kernels allocate). Medians over --repeats runs.

``--before DIR`` runs the same measurement on another source tree (e.g. the
main branch: ``git archive main | tar -x -C /tmp/before``) and checks that both
give the same bits. The growth exponent is the least-squares slope of log CPU time
against log N over the sizes, per profile and tree (1 = linear).

    python studies/bench_design_scale.py [--sizes 1000,10000,100000,1000000] [--profiles paper,random]
                                         [--allocator auto] [--repeats 3] [--before DIR]
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
family, allocator = {"paper": "paper", "random": "uniform"}[sys.argv[4]], sys.argv[5]
def profile(n):
    p = straggler_probs(np.random.default_rng(0), n, family)
    return ClusterProfile(p, dim=MOBILENET_V3_SMALL_PARAMS)
design(profile(3000), bits_per_worker=bpw, allocator=allocator)  # warm-up: the kernels load
prof = profile(n)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if trace:
    tracemalloc.start()
wall, cpu = time.perf_counter(), time.process_time()
d = design(prof, bits_per_worker=bpw, allocator=allocator)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
traced = tracemalloc.get_traced_memory()[1] if trace else 0
a = d.allocation
print(json.dumps({
    "wall_s": wall, "cpu_s": cpu, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "rss_before": base, "traced_peak": traced, "method": a.method, "objective": a.objective,
    "optimal": a.optimal,
    "bits_sha": hashlib.sha256(np.ascontiguousarray(d.bits, dtype=np.int64).tobytes()).hexdigest()[:12],
}))
"""


def measure(src: Path, n: int, bpw: int, trace: bool, family: str, allocator: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    args = [sys.executable, "-c", CHILD, str(n), str(bpw), "trace" if trace else "time", family, allocator]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd=src)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(src: Path, n: int, bpw: int, repeats: int, family: str, allocator: str) -> dict:
    runs = [measure(src, n, bpw, False, family, allocator) for _ in range(repeats)]
    traced = measure(src, n, bpw, True, family, allocator)
    if len({r["bits_sha"] for r in runs + [traced]}) != 1:
        raise RuntimeError(f"{src}: different bits across runs at N = {n}")
    return {
        "wall_s": float(np.median([r["wall_s"] for r in runs])),
        "cpu_s": float(np.median([r["cpu_s"] for r in runs])),
        "peak_rss": float(np.median([r["peak_rss"] for r in runs])),
        "rss_before": float(np.median([r["rss_before"] for r in runs])),
        "traced_peak": traced["traced_peak"],
        "method": runs[0]["method"],
        "optimal": runs[0].get("optimal"),
        "objective": runs[0]["objective"],
        "bits_sha": runs[0]["bits_sha"],
    }


def main(argv=None):
    from gcdesign.studies._common import write_csv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="studies/out", help="output directory (default studies/out)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per size (default 3)")
    parser.add_argument("--sizes", default="1000,10000,100000,1000000", help="comma-separated N")
    parser.add_argument("--profiles", default="paper,random", help="comma-separated: paper, random")
    parser.add_argument("--allocator", default="auto", help="the allocator design() runs (default auto)")
    parser.add_argument("--bits-per-worker", type=int, default=7, help="B / N (default 7)")
    parser.add_argument("--before", default=None, help="another gcdesign source tree to compare with")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trees = ([("before", Path(args.before).resolve())] if args.before else []) + [("after", HERE)]
    mib = 2.0**20
    header = (
        f"{'N':>8} {'profile':>7} {'tree':>6} {'allocator':>9} {'optimal':>7} {'wall s':>8} {'cpu s':>7} "
        f"{'peak RSS MiB':>13} {'RSS before MiB':>15} {'traced MiB':>11} {'bits':>13}"
    )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of {args.repeats}")
    print(header)
    print("-" * len(header))
    rows = []
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    for family in args.profiles.split(","):
        for n in sizes:
            results = {}
            for label, src in trees:
                r = summarize(src, n, args.bits_per_worker, args.repeats, family, args.allocator)
                results[label] = r
                rows.append({"N": n, "profile": family, "tree": label, "B": args.bits_per_worker * n, **r})
                print(
                    f"{n:>8} {family:>7} {label:>6} {r['method']:>9} {str(r['optimal']):>7} "
                    f"{r['wall_s']:>8.2f} {r['cpu_s']:>7.2f} {r['peak_rss'] / mib:>13.0f} "
                    f"{r['rss_before'] / mib:>15.0f} "
                    f"{r['traced_peak'] / mib:>11.0f} {r['bits_sha']:>13}  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            if len(results) == 2:
                same = results["before"]["bits_sha"] == results["after"]["bits_sha"]
                print(f"{'':>8} same bits before and after: {same}", flush=True)
        if len(sizes) >= 2:
            for label, _ in trees:
                cpu = [r["cpu_s"] for r in rows if r["profile"] == family and r["tree"] == label]
                slope = np.polyfit(np.log(sizes), np.log(cpu), 1)[0]
                print(f"{'':>8} {family} {label}: CPU time grows as N^{slope:.2f}", flush=True)
    write_csv(out / "bench_design_scale.csv", rows)
    print(f"\nwritten: {out / 'bench_design_scale.csv'}")


if __name__ == "__main__":
    main()
