"""Designs that follow the cluster on the torch backend: static vs adaptive vs oracle, and the cost of a move.

Part 1 (slowdown): the drift study's slowdown scenario (gcdesign.studies.drift: the most
reliable worker's delay rate / 5 a third of the way through, deadline 1.5, t0 = 1) on the
torch backend with a TorchTask (the digits MLP in PyTorch, torch SGD 0.5), N = 8 logical
workers on 2 gloo host ranks. Arms: ``static`` (the initial design), ``adaptive``
(``adapt=AdaptOptions(window=W)``) and ``oracle`` (the design for the true profile from the
change on, on the closest layout: a Schedule). Time to target: measured seconds until the loss
first reaches the oracle's median loss at 60 % of the rounds; per redesign the (worker,
partition) assignments that changed (``moved``), those of a fresh layout, the partitions
sent to the host ranks (``moved_transport``) and the seconds from the decision to every
host's answer (``move_seconds``), next to the median round.

Part 2 (move cost): a scripted switch on the synthetic task (a one-hidden-layer MLP of
about 10^6 parameters, 1000 features, 2000 samples, float32), N = 8 on 2 ranks: the
partitions and bytes sent, and the seconds of the switch against a round.

    python studies/bench_torch_adapt.py [--seeds 3] [--rounds 30] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

HOSTS = 2


def slowdown(seeds: int, rounds: int, hidden: int, window: int, unit: float):
    import torch

    import gcdesign.cluster as gcluster
    from gcdesign import ClusterProfile, design
    from gcdesign.cluster.adaptive import AdaptOptions
    from gcdesign.studies.drift import (
        DEADLINE,
        SHIFT,
        initial_probs,
        oracle_schedule,
        probs_of,
        rate_schedule,
    )
    from gcdesign.torch.models import digits_task

    n = 8
    rows = {}
    for seed in range(seeds):
        rates = rate_schedule("slowdown", initial_probs(n), rounds, rng=seed)
        for arm in ("static", "adaptive", "oracle"):
            task = digits_task("mlp", partitions=n, hidden=hidden, rng=0)
            code = design(ClusterProfile(probs_of(rates[0]), dim=task.dim, partitions=n), bits_per_worker=4)
            adapt = {"static": None, "adaptive": AdaptOptions(window=window)}.get(arm)
            if arm == "oracle":
                adapt = oracle_schedule(code, "slowdown", rates)
            started = time.perf_counter()
            h = gcluster.train(
                task,
                code,
                backend="torch",
                workers=HOSTS,
                deadline=DEADLINE,
                shift=SHIFT,
                rates=rates,
                rounds=rounds,
                time_unit=unit,
                rng=seed,
                adapt=adapt,
                optimizer=lambda params: torch.optim.SGD(params, lr=0.5),
            )
            print(f"  seed {seed} {arm}: {time.perf_counter() - started:.1f} s, {len(h.adaptation)} changes")
            rows.setdefault(arm, []).append(h)
    target = float(np.median([h.loss[int(0.6 * rounds)] for h in rows["oracle"]]))
    print(
        f"\nslowdown on torch: N = {n} on {HOSTS} ranks, {rounds} rounds, {seeds} seed(s), time unit {unit} s"
    )
    print(f"target loss {target:.4f} (the oracle's median at 60 % of the rounds)")
    header = (
        "arm        to target (s)       reached  final loss  accuracy  redesigns  moved/fresh/sent  move ms"
    )
    print(header)
    for arm, hists in rows.items():
        reach = np.array([gcluster.time_to_loss(h, target) for h in hists])
        finite = reach[np.isfinite(reach)]
        half = 1.96 * finite.std(ddof=1) / math.sqrt(finite.size) if finite.size > 1 else 0.0
        spent = f"{finite.mean():.2f} ± {half:.2f}" if finite.size else "never"
        changes = [a for h in hists for a in h.adaptation if a["action"] == "redesign"]
        moved = "-"
        move_ms = "-"
        if changes:
            fresh = [a["moved_fresh"] for a in changes if a["moved_fresh"] is not None]
            moved = (
                f"{np.mean([a['moved'] for a in changes]):.1f}/"
                f"{np.mean(fresh) if fresh else math.nan:.1f}/"
                f"{np.mean([a['moved_transport'] for a in changes]):.1f}"
            )
            move_ms = f"{1e3 * np.median([a['move_seconds'] for a in changes]):.1f}"
        print(
            f"{arm:<10} {spent:<19} {finite.size}/{len(hists):<6} "
            f"{np.mean([h.loss[-1] for h in hists]):<11.4f} "
            f"{np.mean([h.test_accuracy[-1] for h in hists]):<9.3f} {len(changes) / len(hists):<10.2f} "
            f"{moved:<17} {move_ms}"
        )
    rounds_ms = np.concatenate([1e3 * np.diff(h.wall_time) * h.time_unit for hs in rows.values() for h in hs])
    print(f"median round {np.median(rounds_ms):.1f} ms")


def move_cost(rounds: int = 4):
    import torch

    import gcdesign.cluster as gcluster
    from gcdesign import ClusterProfile, design
    from gcdesign.cluster.adaptive import Schedule, closest_redesign, fresh_design
    from gcdesign.cluster.torch import TorchShards, hosts_of
    from gcdesign.cluster.worker import held_partitions
    from gcdesign.torch.models import synthetic_task

    n = 8
    task = synthetic_task(dim=10**6, partitions=n, rng=0)
    p0 = np.linspace(0.05, 0.5, n)
    code = design(ClusterProfile(p0, dim=task.dim, partitions=n), bits_per_worker=4)
    slowed = p0.copy()
    slowed[0] = 0.9
    fresh = fresh_design(code, slowed)
    new, moved, moved_fresh = closest_redesign(code, fresh)
    source = TorchShards(task, code)
    groups = [[i for i, h in enumerate(hosts_of(n, HOSTS + 1)) if h == r] for r in range(1, HOSTS + 1)]
    sent_bytes = 0
    for g in groups:
        for j in set(held_partitions(new.encoding, g)) - set(held_partitions(code.encoding, g)):
            sent_bytes += sum(t.numel() * t.element_size() for t in source.partition_data(j).values())
    h = gcluster.train(
        task,
        code,
        backend="torch",
        workers=HOSTS,
        deadline=2.0,
        shift=1.0,
        rounds=rounds,
        time_unit=0.25,
        rng=0,
        adapt=Schedule(code, {2: new}, fresh={2: fresh}),
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
    )
    [change] = h.adaptation
    rounds_ms = 1e3 * np.diff(h.wall_time) * h.time_unit
    print(
        f"\nmove cost: synthetic task d = {task.dim:,}, N = {n} on {HOSTS} ranks, "
        "a scripted switch after round 1"
    )
    print(
        f"assignments changed {change['moved']} (fresh layout {moved_fresh}); partitions sent "
        f"{change['moved_transport']} ({sent_bytes / 2**20:.2f} MiB of samples); switch "
        f"{1e3 * change['move_seconds']:.1f} ms; rounds {', '.join(f'{x:.0f}' for x in rounds_ms)} ms"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--window", type=int, default=6)
    parser.add_argument("--time-unit", type=float, default=0.25)
    parser.add_argument("--quick", action="store_true", help="1 seed, 20 rounds, no move-cost part")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.quick:
        slowdown(1, 20, args.hidden, args.window, args.time_unit)
        return
    slowdown(args.seeds, args.rounds, args.hidden, args.window, args.time_unit)
    move_cost()
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
