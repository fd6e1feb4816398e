r"""Wall clock to a target test accuracy over torch.distributed: coded gathers with a deadline vs DDP.

A digits MLP (PyTorch, :func:`gcdesign.torch.models.digits_task`) trained by
``N = 8`` logical workers on gloo host ranks with emulated heterogeneous delays
:math:`D_i = t_0 + \mathrm{Exp}(\mu_i)`, :math:`\mu_i` chosen so that worker
:math:`i` misses the deadline :math:`\tau` with the profile's probability
:math:`p_i` (the same draws for every competitor of a seed). Competitors:

* **joint**: the joint design (quantized, unbiased) through the deadline gather
  (:mod:`gcdesign.cluster.torch`);
* **uncoded**: partition :math:`j` on worker :math:`j`, the stragglers ignored and
  the arrivals rescaled by :math:`1 / (1 - p_i)` (unbiased), same gather;
* **osgc**, **sgc**: the baselines through the same gather;
* **ddp**: real ``torch.nn.parallel.DistributedDataParallel`` all-reduce on the host
  ranks, each holding the partitions of its logical workers and sleeping the largest
  of their emulated delays before its backward pass: every round waits for every rank.

Every run uses SGD with momentum (the master's torch optimizer; DDP's on every rank)
and full partitions. The table gives the measured seconds until the test accuracy
first reaches the target, mean and 95 % CI over seeds, and the ratio to DDP paired by
seed. All runs of the study share one process group (hosts spawned once).
"""

from __future__ import annotations

import copy
import functools
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..cluster.emulation import delay_rates, emulated_delays
from ..profile import ClusterProfile
from ..schemes import Scheme, make_scheme
from ..training import seeds
from ._common import StudyResult, markdown_table, mean_ci, new_figure, save_figure, write_csv

P = (0.05, 0.05, 0.1, 0.1, 0.2, 0.3, 0.4, 0.5)
BITS_PER_WORKER = 4
DEADLINE, SHIFT = 1.0, 0.5
COMPETITORS = ("joint", "uncoded", "osgc", "sgc", "ddp")


def _setting(quick: bool) -> dict:
    if quick:
        return {"hidden": 32, "rounds": 25, "seeds": 2, "ranks": 2, "time_unit": 0.1, "target": 0.8}
    return {"hidden": 64, "rounds": 60, "seeds": 3, "ranks": 4, "time_unit": 0.1, "target": 0.9}


def uncoded_rescaled(profile: ClusterProfile, budget: int) -> Scheme:
    """Partition j on worker j mod N (is-sgd), decoded with ``a_i = 1 / (1 - p_i)``: unbiased, no code."""
    base = make_scheme("is-sgd", profile, budget)
    p = np.asarray(profile.straggler_probs)
    return Scheme(
        "uncoded",
        base.encoding,
        base.bits,
        p,
        decoding=1.0 / (1.0 - p),
        quantizer=base.quantizer,
        bucket_size=base.bucket_size,
    )


def _schemes(profile, budget) -> dict:
    from ..design import design

    return {
        "joint": design(profile, budget),
        "uncoded": uncoded_rescaled(profile, budget),
        "osgc": make_scheme("osgc", profile, budget),
        "sgc": make_scheme("sgc", profile, budget),
    }


def _optimizer(lr=0.2, momentum=0.9):
    import torch

    return functools.partial(torch.optim.SGD, lr=lr, momentum=momentum)


# ---------------------------------------------------------------- DDP (the host ranks' program)
def ddp_host(task, n_workers: int, partitions: int, rates, shift, time_unit, rounds, seed) -> None:
    """One DDP run on the host ranks: forward, sleep the largest emulated delay of the rank's
    logical workers, backward (the all-reduce), step. Rank 1 sends its round end times and
    models to rank 0."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from ..cluster.torch import hosts_of
    from ..torch.codec import flat_params

    world, rank = dist.get_world_size(), dist.get_rank()
    group = dist.new_group(list(range(1, world)))
    where = hosts_of(n_workers, world)
    logical = [i for i in range(n_workers) if where[i] == rank]
    part = task.partition_of(partitions)
    idx = np.flatnonzero(np.isin(part, [j for j in range(partitions) if where[j % n_workers] == rank]))
    X, y = task.items(idx)
    model = copy.deepcopy(task.model)
    ddp = DistributedDataParallel(model, process_group=group)
    opt = _optimizer()(ddp.parameters())
    scale = (world - 1) / task.n_samples  # DDP averages over the ranks: the mean loss's gradient
    ends, models = [], []
    first = time.perf_counter()
    for r in range(rounds):
        start = time.time()
        delay = float(np.max(emulated_delays(seed, r, rates, shift)[logical]))
        opt.zero_grad()
        loss = (task.loss(ddp(X), y) * scale).sum()
        wait = start + time_unit * delay - time.time()
        if wait > 0:
            time.sleep(wait)
        loss.backward()
        opt.step()
        ends.append(time.perf_counter() - first)
        if rank == 1:
            models.append(flat_params(model).to(torch.float64))
    if rank == 1:
        dist.send(torch.tensor(ends, dtype=torch.float64), 0, tag=7)
        dist.send(torch.stack(models), 0, tag=8)


def _ddp_master(task, rounds):
    import torch
    import torch.distributed as dist

    dist.new_group(list(range(1, dist.get_world_size())))  # every rank takes part in creating it
    ends = torch.zeros(rounds, dtype=torch.float64)
    models = torch.zeros(rounds, task.dim, dtype=torch.float64)
    dist.recv(ends, 1, tag=7)
    dist.recv(models, 1, tag=8)
    iterates = [task.initial_point()] + [m.numpy() for m in models]
    accuracy = np.array([task.evaluate(w)[1] for w in iterates])
    return np.concatenate([[0.0], ends.numpy()]), accuracy, None


# ---------------------------------------------------------------- the study
def time_to_accuracy(seconds, accuracy, target: float) -> float:
    """Seconds until the accuracy first reaches `target` (inf if never).

    >>> time_to_accuracy(np.array([0.0, 1.0, 2.5]), np.array([0.1, 0.95, 0.97]), 0.9)
    1.0
    """
    hit = np.flatnonzero(np.asarray(accuracy) >= target)
    return float(seconds[hit[0]]) if hit.size else math.inf


def run(out: Path, *, quick: bool = False, rng=0, progress: bool = True, workers=None) -> StudyResult:
    from ..cluster.torch import host_program, process_group, run_master, torch_shard
    from ..torch.models import digits_task

    s = _setting(quick)
    n = len(P)
    run_seeds = [int(x) % 2**31 for x in seeds(rng, s["seeds"])]
    plan = []  # (seed, competitor, task, scheme)
    programs = []
    for seed in run_seeds:
        task = digits_task("mlp", partitions=n, hidden=s["hidden"], rng=seed)
        profile = ClusterProfile(P, dim=task.dim, partitions=n)
        rates = delay_rates(profile.straggler_probs, deadline=DEADLINE, shift=SHIFT)
        for name, scheme in _schemes(profile, BITS_PER_WORKER * n).items():
            plan.append((seed, name, copy.deepcopy(task), scheme, rates))  # the master trains its copy
            make_shard = functools.partial(torch_shard, task, scheme, None)
            programs.append(host_program(make_shard, scheme, task.initial_point()))
        plan.append((seed, "ddp", copy.deepcopy(task), None, rates))
        programs.append(
            functools.partial(ddp_host, task, n, n, rates, SHIFT, s["time_unit"], s["rounds"], seed)
        )
    results = {}
    started = time.perf_counter()
    with process_group(programs, workers=s["ranks"]) as rank:
        assert rank == 0
        for k, (seed, name, task, scheme, rates) in enumerate(plan):
            if progress:
                print(
                    f"torch study: run {k + 1}/{len(plan)} ({name}, seed {seed})", file=sys.stderr, flush=True
                )
            if name == "ddp":
                results[(name, seed)] = _ddp_master(task, s["rounds"])
                continue
            h = run_master(
                task,
                scheme,
                DEADLINE,
                s["rounds"],
                s["time_unit"],
                rates,
                SHIFT,
                _optimizer(),
                seed,
                None,
                None,
            )
            results[(name, seed)] = (h.wall_time * h.time_unit, h.test_accuracy, h)
    elapsed = time.perf_counter() - started
    rows, table = [], []
    ddp_times = {seed: time_to_accuracy(*results[("ddp", seed)][:2], s["target"]) for seed in run_seeds}
    for name in COMPETITORS:
        times = [time_to_accuracy(*results[(name, seed)][:2], s["target"]) for seed in run_seeds]
        ratios = [ddp_times[seed] / t for seed, t in zip(run_seeds, times, strict=True)]
        finite = [t for t in times if math.isfinite(t)]
        mean, half = mean_ci(finite) if len(finite) == len(times) else (math.inf, math.nan)
        reached = all(map(math.isfinite, times)) and all(map(math.isfinite, ddp_times.values()))
        r_mean, r_half = mean_ci(ratios) if reached else (math.nan, math.nan)
        final = [float(results[(name, seed)][1][-1]) for seed in run_seeds]
        rows += [
            {"scheme": name, "seed": seed, "seconds_to_target": t, "final_accuracy": f}
            for seed, t, f in zip(run_seeds, times, final, strict=True)
        ]
        table.append(
            [
                name,
                f"{mean:.2f} ± {half:.2f}" if math.isfinite(mean) else f"{len(finite)}/{len(times)} reached",
                f"{r_mean:.2f} ± {r_half:.2f}" if math.isfinite(r_mean) else "n/a",
                f"{np.mean(final):.3f}",
            ]
        )
    from scipy import stats

    joint = [results[("joint", seed)][2] for seed in run_seeds]
    strag_rows, late_rows = [], []

    # a worker late in round r is still busy when r + 1 starts and is not given it (no backlog): the
    # profile's p is the chance of missing the deadline in a round it was given (its reply then timed)
    given = np.sum([np.isfinite(h.round_times[:-1]).sum(axis=0) for h in joint], axis=0)
    late = np.sum([(np.isfinite(h.round_times[:-1]) & ~h.on_time[:-1]).sum(axis=0) for h in joint], axis=0)
    total_rounds = sum(h.on_time.shape[0] - 1 for h in joint)
    for i, p in enumerate(P):
        low, high = stats.binom.interval(0.95, int(given[i]), p)
        inside = "yes" if low <= late[i] <= high else "no"
        strag_rows.append(
            [
                f"w{i}",
                f"{p:.2f}",
                f"{int(given[i])}",
                f"{late[i] / given[i]:.3f}",
                f"[{low / given[i]:.3f}, {high / given[i]:.3f}]",
                inside,
            ]
        )
        late_rows.append(
            {
                "scheme": "joint",
                "worker_index": i,
                "p": p,
                "rounds_given": int(given[i]),
                "late": int(late[i]),
                "realized": float(late[i] / given[i]),
                "low": float(low / given[i]),
                "high": float(high / given[i]),
            }
        )
    overhead = np.concatenate([h.overhead for h in joint]) * 1e3
    fig, axes = new_figure()
    ax = axes[0][0]
    for name in COMPETITORS:
        for j, seed in enumerate(run_seeds):
            secs, acc = results[(name, seed)][:2]
            ax.plot(
                secs,
                acc,
                color=f"C{COMPETITORS.index(name)}",
                alpha=0.8,
                lw=1.2,
                label=name if j == 0 else None,
            )
    ax.axhline(s["target"], color="gray", ls=":", lw=1)
    ax.set_xlabel("measured wall clock (s)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"digits MLP (d = {digits_dim(s)}), N = {n} on {s['ranks']} gloo host ranks")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    files = [
        write_csv(out / "torch.csv", rows),
        write_csv(out / "torch_stragglers.csv", late_rows),
        save_figure(fig, out / "torch.png"),
    ]
    summary = "\n".join(
        [
            f"Digits MLP in PyTorch, N = {n} logical workers on {s['ranks']} gloo host ranks, p = {list(P)}, "
            f"B/N = {BITS_PER_WORKER}, deadline tau = {DEADLINE} (t0 = {SHIFT}) time units of "
            f"{s['time_unit']} s, {s['rounds']} rounds, {len(run_seeds)} seeds, SGD (0.2, momentum 0.9); "
            f"target test accuracy {s['target']}.",
            "",
            markdown_table(
                [
                    "competitor",
                    "seconds to target (95% CI)",
                    "DDP time / its time (paired)",
                    "final accuracy",
                ],
                table,
            ),
            "",
            "Realized straggler frequency of the joint runs against the profile: late replies among the "
            f"rounds each worker was given (of {total_rounds}; a late worker is still busy at the next "
            "round's start and is not given it), with the 95% binomial interval under p:",
            "",
            markdown_table(["worker", "p", "rounds given", "realized", "interval", "inside"], strag_rows),
            "",
            f"Overhead of the torch gather beyond the deadline (joint runs): median "
            f"{np.median(overhead):.2f} ms, p95 {np.percentile(overhead, 95):.2f} ms. "
            f"All {len(plan)} runs took {elapsed:.0f} s in one process group.",
        ]
    )
    return StudyResult(name="torch", summary=summary, files=files, notes=[])


def digits_dim(setting) -> int:
    """The MLP's parameter count: (64 + 1) h + (h + 1) 10."""
    h = setting["hidden"]
    return 65 * h + (h + 1) * 10


__all__ = ["COMPETITORS", "ddp_host", "run", "time_to_accuracy", "uncoded_rescaled"]
