r"""The worker's side of a round, whatever carries it: what a worker holds and what it sends.

A transport places one :class:`Shard` on each of its machines (the data of
the partitions that its logical workers hold, each partition once) and, each
round, runs :func:`work_round` once per logical worker there: compute the
partition gradients at the model ``w``, encode the coded message with
:func:`gcdesign.runtime.encode`, then sleep the emulated delay. The reply is a
:class:`Reply`; its payload is the message's bytes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from .. import runtime
from .._validate import InputError
from ..training import Problem
from .emulation import BATCH, QUANTIZE, counter_rng


class Reply(NamedTuple):
    """What a logical worker returns for one round.

    ``payload`` is ``Message.to_bytes()`` of its coded message, or None for a
    worker that sends nothing (no bits or no partitions: a probe of its round
    time) and for a task that started after the hold (its round is long over).
    """

    round: int
    worker: int
    start_offset: float  # seconds from the round's start (wall clock) to the task's start
    compute: float  # seconds spent computing and encoding (NaN when it skipped the round)
    payload: bytes | None


@dataclass(frozen=True, eq=False)
class Shard:
    """What one machine holds: the scheme and the data of its logical workers' partitions.

    ``parts`` maps a partition to a one-partition :class:`Problem` (harness
    problems), or ``gradient_fn`` is the user's ``fn(w, partitions)``.
    """

    scheme: object
    parts: dict | None
    gradient_fn: Callable | None
    n_samples: int
    reg_per_partition: float
    batch_size: int | None

    def partial_gradients(self, w, worker: int, round_index: int, seed: int) -> np.ndarray:
        """The rows :math:`g_j(w)` of the partitions `worker` holds, in its encoding row's order."""
        held = runtime.partitions_of(self.scheme, worker)
        if self.gradient_fn is not None:
            out = np.asarray(self.gradient_fn(w, held), dtype=np.float64)
            if out.ndim != 2 or out.shape[0] != held.size:
                raise InputError(
                    f"`gradient_fn` must return an array ({held.size}, d) for {held.size} partitions, "
                    f"got shape {out.shape}."
                )
            return out
        rows = []
        for j in held:
            part = self.parts[int(j)]
            rng = None if self.batch_size is None else counter_rng(seed, BATCH, round_index, int(j))
            data = part.partition_gradients(w, batch_size=self.batch_size, rng=rng)[0]
            rows.append(data * (part.n_samples / self.n_samples) + self.reg_per_partition * w)
        return np.vstack(rows)

    def message(self, worker: int, w, round_index: int, seed: int) -> bytes | None:
        """The bytes of `worker`'s coded message at `w` (None when it sends nothing)."""
        if not (self.scheme.bits[worker] > 0 and runtime.partitions_of(self.scheme, worker).size):
            return None
        grads = self.partial_gradients(w, worker, round_index, seed)
        rng = counter_rng(seed, QUANTIZE, round_index, worker)
        return runtime.encode(self.scheme, worker, grads, rng=rng).to_bytes()


def partition_problem(problem: Problem, j: int) -> Problem:
    r"""Partition `j` of `problem` alone, as a :class:`Problem` without regularization.

    Its :meth:`~Problem.partition_gradients` is :math:`\frac{1}{|P_j|}\sum_{s\in P_j}\nabla\ell_s`;
    times :math:`|P_j| / n` plus :math:`(\rho / K)\,w` it is the :math:`g_j` of `problem`
    (what a shard computes). It carries only partition `j`'s samples.
    """
    size = int(problem.partition_sizes[j])
    return replace(
        problem,
        name=f"{problem.name}[{j}]",
        features=problem.partition_features[j, :size],
        targets=problem.partition_targets[j, :size],
        partition_features=problem.partition_features[j : j + 1],
        partition_targets=problem.partition_targets[j : j + 1],
        partition_sizes=problem.partition_sizes[j : j + 1],
        reg=0.0,
        optimum=None,
        optimal_loss=None,
    )


def held_partitions(encoding, logical) -> list[int]:
    """The partitions the logical workers `logical` hold together (sorted, each once)."""
    import scipy.sparse as sp

    enc = sp.csr_array(encoding)
    held = set()
    for i in logical:
        row = slice(enc.indptr[i], enc.indptr[i + 1])
        held.update(int(j) for j, v in zip(enc.indices[row], enc.data[row], strict=True) if v != 0)
    return sorted(held)


def lacking_partitions(previous, encoding, logical) -> list[int]:
    """The partitions the logical workers `logical` hold together under `encoding` and did not
    under `previous` (sorted): what a machine hosting them receives on a redesign."""
    had = set(held_partitions(previous, logical))
    return [j for j in held_partitions(encoding, logical) if j not in had]


@dataclass(frozen=True, eq=False)
class ShardMaker:
    """``make(logical_workers) -> Shard`` of a run; also the data of given partitions (to move them)."""

    scheme: object
    problem: Problem | None
    gradient_fn: Callable | None
    batch_size: int | None

    def __call__(self, logical: list[int]) -> Shard:
        if self.problem is None:
            return Shard(self.scheme, None, self.gradient_fn, 0, 0.0, None)
        problem = self.problem
        parts = self.parts(held_partitions(self.scheme.encoding, logical))
        return Shard(
            self.scheme, parts, None, problem.n_samples, problem.reg / problem.partitions, self.batch_size
        )

    def parts(self, held) -> dict | None:
        """``{j: partition_problem(problem, j)}`` for `held` (None with a gradient function)."""
        if self.problem is None:
            return None
        return {int(j): partition_problem(self.problem, int(j)) for j in held}

    def for_scheme(self, scheme) -> ShardMaker:
        """The same maker for another scheme (after a redesign)."""
        return replace(self, scheme=scheme)


def shard_maker(scheme, problem: Problem | None, gradient_fn, batch_size) -> ShardMaker:
    """``make(logical_workers) -> Shard``: the shard of a machine that runs these logical workers."""
    return ShardMaker(scheme, problem, gradient_fn, batch_size)


def reshard(shard: Shard, scheme, new_parts: dict | None, keep) -> Shard:
    """A machine's shard after a redesign, built where it lives: the new scheme, the partitions
    in `keep` that it had, and `new_parts` (those it lacked, just sent). Nothing kept travels."""
    if shard.parts is None:
        return replace(shard, scheme=scheme)
    keep = set(keep)
    parts = {j: part for j, part in shard.parts.items() if j in keep}
    parts.update(new_parts or {})
    return replace(shard, scheme=scheme, parts=parts)


def work_round(
    shard, worker, round_index, w, round_start, time_unit, delay, hold, seed, sleep=time.sleep
) -> Reply:
    """One logical worker's round: compute and encode, then sleep until its emulated delay.

    `round_start` is the round's start on the wall clock (``time.time()``; the
    emulation assumes synchronized clocks), `delay` the emulated :math:`D_i` in
    time units (None: no emulation), `hold` the time units after which the round
    is over: a task that starts later returns at once without computing, and
    a delay beyond it is cut to it. `sleep(seconds)` waits (a transport may
    first release its thread).
    """
    started = time.time()
    if math.isfinite(hold) and started > round_start + time_unit * hold:
        return Reply(round_index, worker, started - round_start, math.nan, None)
    payload = shard.message(worker, w, round_index, seed)
    compute = time.time() - started
    if delay is not None:
        wait = round_start + time_unit * min(delay, hold) - time.time()
        if wait > 0:
            sleep(wait)
    return Reply(round_index, worker, started - round_start, compute, payload)


def warm_up(shard, worker, w) -> int:
    """Encode one message of `worker` and discard it: its first-call costs, before round 0 (bytes)."""
    payload = shard.message(worker, w, 0, 0)
    return 0 if payload is None else len(payload)


__all__ = [
    "Reply",
    "Shard",
    "ShardMaker",
    "held_partitions",
    "lacking_partitions",
    "partition_problem",
    "reshard",
    "shard_maker",
    "warm_up",
    "work_round",
]
