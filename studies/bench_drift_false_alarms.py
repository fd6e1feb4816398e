"""The drift test's false alarms on a long stationary run of the Dask runtime (the drift study's setting).

N = 12 logical workers on a 2-process LocalCluster, the drift study's digits MLP,
profile (p evenly over [0.05, 0.5]), deadline, shift and time unit, emulated
delays that never change; the adaptive design (``Adapter(code,
AdaptOptions(window=20))``) follows the cluster. Prints, as JSON, the rounds the
drift test tested, its alarms, their rate per tested round with its exact 95 %
interval (the promise: at most ``false_alarm`` = 0.01), the redesigns, every
design change (round, cause, action, flagged workers, load average then) and
the realized lateness per quarter of the run (a loaded machine is not
stationary: the task round trip eats into the slack).

Run: ``PYTHONPATH=. python studies/bench_drift_false_alarms.py [ROUNDS [SEED]]`` (default 1000 7).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


class _Watched:
    """The adapter, recording the load average at each round it sees."""

    def __init__(self, adapter):
        self.adapter, self.load = adapter, []

    design = property(lambda self: self.adapter.design)
    last = property(lambda self: self.adapter.last)

    def observe(self, r, late):
        self.load.append(os.getloadavg()[0])
        return self.adapter.observe(r, late)


def main(rounds: int = 1000, seed: int = 7) -> dict:
    from gcdesign import design
    from gcdesign.cluster.adaptive import Adapter, AdaptOptions, rate_interval
    from gcdesign.cluster.dask import dask_client
    from gcdesign.profile import ClusterProfile
    from gcdesign.studies.drift import initial_probs, rate_schedule, train_run
    from gcdesign.training import digits_mlp_problem

    n = 12
    problem = digits_mlp_problem(hidden=[32], partitions=n, rng=0)
    p0 = initial_probs(n)
    code = design(ClusterProfile(p0, dim=problem.dim, partitions=n), bits_per_worker=4)
    adapter = Adapter(code, AdaptOptions(window=20))
    watch = _Watched(adapter)

    def grads(theta, parts):
        return problem.partition_gradients(theta)[np.asarray(parts)]

    started = time.time()
    with dask_client(2) as client:
        rates = rate_schedule("stationary", p0, rounds, rng=0)
        hist = train_run(grads, problem, code, rates, workers=client, time_unit=0.25, rng=seed, adapt=watch)
    alarms = [r for r in adapter.records if r.cause == "alarm"]
    low, high = rate_interval(len(alarms), adapter.tested)
    late = ~hist.on_time
    quarters = [slice(q * rounds // 4, (q + 1) * rounds // 4) for q in range(4)]
    return {
        "rounds": rounds,
        "seed": seed,
        "seconds": round(time.time() - started, 1),
        "tested": adapter.tested,
        "alarms": len(alarms),
        "rate": len(alarms) / adapter.tested if adapter.tested else None,
        "low": low,
        "high": high,
        "promised": adapter.options.false_alarm,
        "redesigns": sum(r.action == "redesign" for r in adapter.records),
        "changes": [
            [r.round, r.cause, r.action, np.flatnonzero(r.drifted).tolist(), round(watch.load[r.round], 2)]
            for r in adapter.records
        ],
        "realized_p": late.mean(axis=0).round(3).tolist(),
        "declared_p": p0.round(3).tolist(),
        "realized_p_by_quarter": [round(float(late[q].mean()), 3) for q in quarters],
        "load_by_quarter": [round(float(np.mean(watch.load[q])), 2) for q in quarters],
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(main(*args), indent=1))
