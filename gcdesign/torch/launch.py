r"""Run coded training over torch.distributed: under torchrun, or spawned from Python on one machine.

:func:`train` is the torch backend of :func:`gcdesign.cluster.train`. Under
``torchrun`` (``torch.distributed.is_torchelastic_launched()``) every rank calls it
with the same task and scheme: rank 0 runs the engine and returns the
:class:`~gcdesign.cluster.ClusterHistory`, the other ranks serve their logical
workers (:func:`gcdesign.torch.gather.serve`) and return None. Elsewhere it spawns
``workers`` host processes on this machine (``spawn`` start method, gloo over
``127.0.0.1``), is rank 0 itself, and joins (or kills) them at the end.
"""

from __future__ import annotations

import contextlib
import functools
import math
import multiprocessing
import os
import socket
from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from .._validate import InputError, positive_int
from ..cluster.emulation import latency_settings
from ..cluster.engine import Engine
from ..cluster.history import ClusterHistory, record_fields
from ..schemes import check_scheme
from .codec import flat_params, set_flat_grad, set_flat_params
from .gather import TorchTransport, serve
from .task import TorchShard, TorchTask

_JOIN_SECONDS = 30.0


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _host_process(rank: int, world: int, port: int, make_shard, scheme, w0, batch_size, threads: int) -> None:
    torch.set_num_threads(threads)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=timedelta(hours=1)
    )
    try:
        serve(make_shard, scheme, w0, batch_size=batch_size)
    finally:
        dist.destroy_process_group()


def torch_shard(task: TorchTask, scheme, batch_size, logical) -> TorchShard:
    """The shard of a host rank for a :class:`TorchTask` (picklable with ``functools.partial``)."""
    return TorchShard(task, scheme, batch_size=batch_size)


class NumpyShards:
    """``make(logical) -> Shard`` for a numpy-harness problem or gradient function (picklable for spawn)."""

    def __init__(self, scheme, problem, gradient_fn, batch_size):
        self.args = (scheme, problem, gradient_fn, batch_size)

    def __call__(self, logical):
        from ..cluster.worker import shard_maker

        return shard_maker(*self.args)(logical)


def make_optimizer(optimizer, model):
    """A torch optimizer for `model`: `optimizer` itself, a factory ``params -> Optimizer``, or SGD(0.1)."""
    if optimizer is None:
        return torch.optim.SGD(model.parameters(), lr=0.1)
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if callable(optimizer):
        made = optimizer(model.parameters())
        if isinstance(made, torch.optim.Optimizer):
            return made
    raise InputError(
        "`optimizer` must be a torch.optim.Optimizer of the task's model or a factory params -> Optimizer "
        "(e.g. lambda p: torch.optim.Adam(p, lr=1e-3))."
    )


def train(
    task: TorchTask,
    scheme,
    *,
    deadline: float,
    rounds: int,
    workers: int = 2,
    time_unit: float = 0.25,
    emulate: bool = True,
    shift: float | None = None,
    rates=None,
    optimizer=None,
    rng=None,
    batch_size: int | None = None,
    threads: int = 1,
    on_round: Callable | None = None,
) -> ClusterHistory | None:
    r"""Coded training of a :class:`TorchTask` over torch.distributed with a real deadline every round.

    Parameters
    ----------
    task : TorchTask
        The model (rank 0's copy is trained), its per-sample loss and its data.
    scheme : Design or Scheme
        ``K`` partitions of the data set (:meth:`TorchTask.partition_of`).
    deadline, rounds, time_unit, emulate, shift, rates, rng
        As in :func:`gcdesign.cluster.train`.
    workers : int
        Host processes to spawn (ignored under torchrun: the ranks ``1 .. R-1``).
    optimizer : torch.optim.Optimizer, callable or None
        Applied by the master to the decoded estimate (written into ``.grad``);
        default SGD with learning rate 0.1 (:func:`make_optimizer`).
    batch_size : int, optional
        Samples per partition and round (the shared mini-batch); None: every sample.
    threads : int
        torch threads of each spawned host process.
    on_round : callable, optional
        ``on_round(r, w)`` after each step (progress).

    Returns
    -------
    ClusterHistory on rank 0 (loss: mean training loss; test_accuracy when the task
    has a test set), None on the other ranks.
    """
    if not isinstance(task, TorchTask):
        raise InputError(f"`task` must be a gcdesign.torch.TorchTask, got {type(task).__name__}.")
    scheme = check_scheme(scheme)
    rounds = positive_int("rounds", rounds)
    time_unit = float(time_unit)
    if not (math.isfinite(time_unit) and time_unit > 0):
        raise InputError(f"`time_unit` must be a finite number of seconds > 0, got {time_unit!r}.")
    deadline, shift, rates = latency_settings(scheme, deadline, shift, rates, emulate)
    task.partition_of(scheme.encoding.shape[1])  # K against the data, before any process starts
    if batch_size is not None:
        batch_size = positive_int("batch_size", batch_size)
    seed = int(np.random.default_rng(rng).integers(2**63))
    w0 = task.initial_point()
    make_shard = functools.partial(torch_shard, task, scheme, batch_size)
    with process_group(
        make_shard, scheme, w0, batch_size=batch_size, workers=workers, threads=threads
    ) as rank:
        if rank != 0:
            return None
        return _master(
            task, scheme, deadline, rounds, time_unit, rates, shift, optimizer, seed, batch_size, on_round
        )


@contextlib.contextmanager
def process_group(make_shard, scheme, w0, *, batch_size=None, workers: int = 2, threads: int = 1):
    """The gloo process group of a run; yields this process's rank (the master is 0).

    Under torchrun: joins the group (if not up yet; it stays up for the next run of the
    process); a rank other than 0 serves its logical workers
    (:func:`~gcdesign.torch.gather.serve` with ``make_shard``) before yielding. Elsewhere: spawns `workers` host processes on 127.0.0.1 (`make_shard`,
    `scheme` and `w0` are pickled to them) and yields 0; on exit destroys the group and
    joins the hosts (killing any that do not end within 30 s).
    """
    procs, owned = [], False
    if dist.is_torchelastic_launched():
        if not dist.is_initialized():  # it stays up for the process's next run (torchrun ends it)
            dist.init_process_group("gloo", timeout=timedelta(hours=1))
        rank = dist.get_rank()
        if rank != 0:
            serve(make_shard, scheme, w0, batch_size=batch_size)
        yield rank
        return
    if dist.is_initialized():
        raise InputError("a torch.distributed process group is already up: launch with torchrun instead.")
    workers = positive_int("workers", workers)
    world, port = workers + 1, free_port()
    ctx = multiprocessing.get_context("spawn")
    try:
        for rank in range(1, world):
            args = (rank, world, port, make_shard, scheme, w0, batch_size, threads)
            procs.append(ctx.Process(target=_host_process, args=args, daemon=True))
            procs[-1].start()
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=0,
            world_size=world,
            timeout=timedelta(hours=1),
        )
        owned = True
        yield 0
    finally:
        if owned:
            with suppress(Exception):
                dist.destroy_process_group()
        stop_processes(procs)


def is_host_rank() -> bool:
    """Whether this process is a torchrun rank other than 0 (a host of logical workers)."""
    return dist.is_torchelastic_launched() and int(os.environ.get("RANK", "0")) != 0


@contextlib.contextmanager
def torch_transport(scheme, make_shard, w0, *, workers=2, seed: int, batch_size=None):
    """The torch transport of one run of the round engine (rank 0); the hosts serve meanwhile.

    The seam of :func:`gcdesign.cluster.train` with ``backend="torch"``: a process group
    (:func:`process_group`), then a :class:`~gcdesign.torch.gather.TorchTransport`,
    closed at the end. On a torchrun rank other than 0 it serves and yields None.
    """
    with process_group(make_shard, scheme, w0, batch_size=batch_size, workers=workers) as rank:
        if rank != 0:
            yield None
            return
        transport = TorchTransport(scheme, w0, seed=seed, batch_size=batch_size)
        try:
            yield transport
        finally:
            transport.close()


def _master(task, scheme, deadline, rounds, time_unit, rates, shift, optimizer, seed, batch_size, on_round):
    model = task.model
    w0 = task.initial_point()
    opt = make_optimizer(optimizer, model)

    def update(w, estimate, r):
        set_flat_grad(model, torch.from_numpy(estimate))
        opt.step()
        w = flat_params(model).to(torch.float64).numpy().copy()
        if on_round is not None:
            on_round(r, w)
        return w

    transport = TorchTransport(scheme, w0, seed=seed, batch_size=batch_size)
    try:
        engine = Engine(
            transport, scheme, time_unit=time_unit, deadline=deadline, rates=rates, shift=shift, seed=seed
        )
        iterates, _, record = engine.run(w0, rounds, update)
    finally:
        transport.close()
    metrics = np.array([task.evaluate(w) for w in iterates])
    set_flat_params(model, torch.from_numpy(iterates[-1]))
    fields = record_fields(scheme, record, time_unit=time_unit, deadline=deadline, shift=shift)
    accuracy = metrics[:, 1]
    return ClusterHistory(
        optimizer=type(opt).__name__,
        problem=task.name,
        loss=metrics[:, 0],
        grad_norm=np.full(len(iterates), math.nan),
        distance=None,
        test_accuracy=None if np.all(np.isnan(accuracy)) else accuracy,
        **fields,
    )


def stop_processes(procs) -> None:
    """Join the spawned hosts; kill the ones that do not end."""
    for p in procs:
        p.join(_JOIN_SECONDS if p.is_alive() else 0)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(5)


__all__ = [
    "NumpyShards",
    "free_port",
    "is_host_rank",
    "make_optimizer",
    "process_group",
    "stop_processes",
    "torch_shard",
    "torch_transport",
    "train",
]
