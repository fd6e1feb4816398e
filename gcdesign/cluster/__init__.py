r"""Coded training on a real cluster, with a real deadline every round (docs/cluster.md; MATH.md 14).

The user's side of a design: place the partitions, run rounds against a
deadline, skip late workers without blocking, decode what arrived. One
concept per module:

* :mod:`.engine`: the master's round (deadline, arrivals, decode, optimizer
  step, traces, late messages dropped) and the :class:`Transport` protocol
  that a transport implements;
* :mod:`.dask`: the dask.distributed transport (placement, pinned tasks,
  scatter, liveness and replacement of workers);
* :mod:`.worker`: the worker's side of a round (its shard, compute, encode,
  emulated sleep), whatever carries it;
* :mod:`.emulation`: emulated delays from a latency model, the run's
  counter-based random streams;
* :mod:`.history`: :class:`ClusterHistory`, its traces, re-profiling;
* :mod:`.analysis`: straggler frequencies against the profile, time to a
  target loss, the uncoded baseline;
* :mod:`.run`: the entry points :func:`train` and :func:`gradient_estimates`.

Seeds are counter-based: the delay of ``(round, worker)``, the quantizer's
uniforms of ``(round, worker)`` and the mini-batch of ``(round, partition)``
each come from ``default_rng([seed, stream, round, index])``, whatever runs
them.
"""

from __future__ import annotations

from .analysis import straggler_table, time_to_loss, uncoded_scheme
from .emulation import delay_rates, emulated_delays
from .engine import Arrival, Engine, RoundOrder, Transport
from .history import ClusterHistory
from .run import gradient_estimates, train
from .worker import Reply, Shard, partition_problem, shard_maker

__all__ = [
    "Arrival",
    "ClusterHistory",
    "Engine",
    "Reply",
    "RoundOrder",
    "Shard",
    "Transport",
    "delay_rates",
    "emulated_delays",
    "gradient_estimates",
    "partition_problem",
    "shard_maker",
    "straggler_table",
    "time_to_loss",
    "train",
    "uncoded_scheme",
]
