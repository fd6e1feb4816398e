r"""The entry points: :func:`train` and :func:`gradient_estimates` on a cluster.

Each call checks its inputs, opens the cluster (:func:`~gcdesign.cluster.dask.dask_client`),
places the shards (:class:`~gcdesign.cluster.dask.DaskTransport`), runs the
rounds (:class:`~gcdesign.cluster.engine.Engine`) and returns the record as a
:class:`~gcdesign.cluster.ClusterHistory`.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable

import numpy as np

from .._validate import UNSET, InputError, choice, positive_int, renamed_keyword
from ..schemes import check_scheme
from ..training import Optimizer, Problem, gd, second_moment_shrinkage
from ..training.optimizers import make_step
from .dask import DaskTransport, dask_client
from .emulation import load_settings, timing_settings
from .engine import run_engine
from .history import ClusterHistory, iterate_metrics
from .worker import shard_maker


def _workers(function: str, workers, client, n_workers):
    """`workers`, also given under its deprecated names `client` and `n_workers` (default: 2 processes)."""
    workers = renamed_keyword(function, "client", client, "workers", workers, None)
    workers = renamed_keyword(function, "n_workers", n_workers, "workers", workers, None)
    return 2 if workers is None else workers


def _source(problem_or_gradient_fn, scheme, x0):
    """``(problem or None, gradient_fn or None, initial w)``, checked against the scheme."""
    if isinstance(problem_or_gradient_fn, Problem):
        problem = problem_or_gradient_fn
        if scheme.encoding.shape[1] != problem.partitions:
            raise InputError(
                f"the scheme encodes K = {scheme.encoding.shape[1]} partitions but the problem has "
                f"{problem.partitions}; build the profile with partitions={problem.partitions}."
            )
        w = problem.initial_point() if x0 is None else np.array(x0, dtype=np.float64)
        if w.shape != (problem.dim,):
            raise InputError(f"`x0` must have shape ({problem.dim},), got {w.shape}.")
        return problem, None, w
    if not callable(problem_or_gradient_fn):
        raise InputError(
            "`problem_or_gradient_fn` must be a Problem or a callable fn(w, partitions) -> (len, d)."
        )
    if x0 is None:
        raise InputError("`x0` (the initial model) is needed with a gradient function.")
    w = np.array(x0, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)):
        raise InputError(f"`x0` must be a finite 1-D array, got shape {w.shape}.")
    return None, problem_or_gradient_fn, w


@contextlib.contextmanager
def _dask_transport(scheme, make_shard, w, workers, scheduler, replace_workers):
    """The Dask transport of one run, on the cluster `workers` / `scheduler`; closed afterwards."""
    with dask_client(workers, scheduler) as client:
        transport = DaskTransport(client, scheme, make_shard, w, replace_workers=replace_workers)
        try:
            yield transport
        finally:
            transport.close()


def _run(source, scheme, *, update, workers, scheduler, deadline, rounds, time_unit, emulate, backend, **run):
    """Check, open the cluster, run the engine: ``(problem, iterates, estimates, record fields)``."""
    scheme = check_scheme(scheme)
    rounds = positive_int("rounds", rounds)
    time_unit, deadline, shift, rates = timing_settings(
        scheme, deadline, time_unit, run["shift"], run["rates"], emulate, rounds
    )
    load_cost = load_settings(run.get("load_cost"), scheme.encoding.shape[0], emulate)
    adapter = make_adapter(scheme, run.get("adapt"), deadline)
    problem, gradient_fn, w = _source(source, scheme, run["x0"])
    seed = int(np.random.default_rng(run["rng"]).integers(2**63))
    if backend == "torch":  # torch.distributed (gcdesign.torch); a torchrun host rank yields None
        from .torch import NumpyShards, torch_transport

        shards = NumpyShards(scheme, problem, gradient_fn, run["batch_size"])
        opened = torch_transport(scheme, shards, w, workers=workers, seed=seed, batch_size=run["batch_size"])
    else:
        make_shard = shard_maker(scheme, problem, gradient_fn, run["batch_size"])
        opened = _dask_transport(scheme, make_shard, w, workers, scheduler, run["replace_workers"])
    with opened as transport:
        if transport is None:
            return None
        iterates, estimates, fields = run_engine(
            transport,
            scheme,
            w,
            rounds,
            update,
            time_unit=time_unit,
            deadline=deadline,
            rates=rates,
            shift=shift,
            seed=seed,
            load_cost=load_cost,
            adapter=adapter,
        )
    return problem, np.array(iterates), np.array(estimates), fields


def _backend_iv(backend, scheduler) -> None:
    choice("backend", backend, ("dask", "torch"))
    if backend == "torch" and scheduler is not None:
        raise InputError(
            "`scheduler` is a Dask address: the torch backend takes `workers` or a torchrun launch."
        )


def _is_torch_task(source) -> bool:
    """A :class:`gcdesign.torch.TorchTask` (without importing torch when it is not loaded)."""
    module = sys.modules.get("gcdesign.torch.task")
    return module is not None and isinstance(source, module.TorchTask)


def make_adapter(scheme, adapt, deadline=math.inf):
    """The run's adapter: None (``adapt`` None or False); an :class:`~.adaptive.Adapter` for
    True, a dict or :class:`~.adaptive.AdaptOptions`; an object with ``observe`` and
    ``design`` (e.g. an :class:`~.adaptive.Schedule`) as is. Refused without a finite `deadline`."""
    from .adaptive import Adapter, adapt_options

    if hasattr(adapt, "observe") and hasattr(adapt, "design"):
        adapter = adapt
    else:
        options = adapt_options(adapt)
        adapter = None if options is None else Adapter(scheme, options)
    if adapter is not None and not math.isfinite(float(deadline)):
        raise InputError("`adapt` needs a finite `deadline` (lateness is what it follows).")
    return adapter


def _optimizer_step(optimizer, source, scheme, x0) -> tuple[Callable, float]:
    """``(update(w, estimate, r) -> w, shrinkage)`` of `optimizer` (:func:`make_step`)."""
    if not isinstance(optimizer, Optimizer):
        raise InputError("`optimizer` must be an Optimizer (use gd(...), sgd(...) or adam(...)).")
    dim = source.dim if isinstance(source, Problem) else None
    shrink = 1.0
    if optimizer.method == "adam" and optimizer.two_track:
        shrink = second_moment_shrinkage(scheme, optimizer.lam, dim=dim)
    return make_step(optimizer, int(np.asarray(x0).size) if dim is None else dim, shrink), shrink


def train(
    problem_or_gradient_fn,
    scheme,
    *,
    deadline: float,
    rounds: int,
    workers=None,
    scheduler=None,
    time_unit: float = 0.25,
    emulate: bool = True,
    shift: float | None = None,
    rates=None,
    optimizer: Optimizer | None = None,
    rng=None,
    x0=None,
    loss: Callable | None = None,
    replace_workers: bool = True,
    adapt=None,
    load_cost=None,
    accuracy: Callable | None = None,
    backend: str = "dask",
    client=UNSET,
    n_workers=UNSET,
) -> ClusterHistory | None:
    r"""Train with `scheme` on a dask.distributed or torch.distributed cluster, a real deadline every round.

    Parameters
    ----------
    problem_or_gradient_fn : Problem, callable or gcdesign.torch.TorchTask
        A harness problem (:func:`gcdesign.training.digits_problem`, ...), or
        ``fn(w, partitions) -> array (len(partitions), d)``, the partition
        gradients :math:`g_j(w)` of the given partitions (then `x0` is
        required; the function is shipped once to every Dask worker), or with
        ``backend="torch"`` a :class:`gcdesign.torch.TorchTask` (any ``nn.Module``
        with a per-sample loss and a data set; then `optimizer` is a torch optimizer
        or a factory, see :func:`gcdesign.torch.train`).
    scheme : Design or Scheme
        Checked with :func:`gcdesign.schemes.check_scheme`.
    deadline : float
        :math:`\tau` in time units; ``math.inf`` waits for every message.
    rounds : int
    workers : int or distributed.Client
        As in :mod:`gcdesign.parallel`: a Client runs the rounds on its cluster;
        an int ``W`` (default 2; -1: one per core) starts a LocalCluster of ``W``
        processes with one thread each, closed at the end.
    scheduler : str or distributed.Client, optional
        A Dask scheduler address (``"tcp://host:8786"``) to connect to, in place of `workers`.
    time_unit : float
        Seconds per time unit ``u`` (default 0.25: on a loaded 2-core machine the
        start and return latencies of a task reach 50-150 ms, and ``u t0`` and
        ``u (tau - t0)`` must stay well above them for the emulation to be the profile).
    emulate : bool
        Sleep the emulated delay :math:`D_i = t_0 + \mathrm{Exp}(\mu_i)` in each
        task; False: only real slowness counts.
    shift : float, optional
        :math:`t_0` (default ``deadline / 2``).
    rates : array_like (N,) or (rounds, N), optional
        :math:`\mu_i`; default :func:`delay_rates` of the scheme's ``p_i``, so
        that the emulated cluster is the profiled one. One row per round: a
        cluster whose speeds drift during the run.
    optimizer : Optimizer
        :func:`~gcdesign.training.gd` (default ``gd(0.5)``), ``sgd`` or ``adam``.
    rng : None, int or Generator
        Draws the run's seed (delays, quantization, mini-batches: counter-based).
    x0 : array_like, optional
        Initial model.
    loss : callable, optional
        ``loss(w)`` recorded each round with a gradient function.
    replace_workers : bool
        Re-place the logical workers of a dead Dask worker on a worker that
        joins later (else they straggle for the rest of the run).
    backend : {"dask", "torch"}
        The transport of the same round engine: dask.distributed, or torch.distributed
        (gloo point-to-point, :mod:`gcdesign.cluster.torch`; `workers` host processes
        spawned here, or the ranks of a ``torchrun`` launch, where the ranks other than
        0 serve and return None).
    adapt : None, True, dict, AdaptOptions or an adapter
        Follow the cluster (docs/math.md, section 13; :mod:`gcdesign.cluster.adaptive`):
        after every round the lateness updates each worker's estimate and a
        drift test; on an alarm the decoder is re-weighted or, when the gain is
        worth it, the design is re-optimized on the layout closest to the
        current one and each Dask worker (each torch host rank, with
        ``backend="torch"``) receives only the partitions it lacks. Needs a
        :class:`~gcdesign.Design`; the record is ``history.adaptation``.
    load_cost : float or array_like (N,), optional
        Emulated compute time per held partition :math:`c_i` (time units): worker
        i is ready at :math:`t_0 + c_i \ell_i + \mathrm{Exp}(\mu_i)`, with :math:`\ell_i`
        the partitions it holds in the current design.
    accuracy : callable, optional
        ``accuracy(w)`` recorded each round as ``test_accuracy`` (default: the
        problem's ``test_accuracy`` when it has one).
    client, n_workers
        Deprecated names of `workers` (a Client, a number of processes); removed in the next release.

    Returns
    -------
    ClusterHistory (None on a torchrun rank other than 0)
    """
    workers = _workers("cluster.train", workers, client, n_workers)
    _backend_iv(backend, scheduler)
    if backend == "torch" and _is_torch_task(problem_or_gradient_fn):
        from .torch import train as torch_train

        if accuracy is not None:
            raise InputError("`accuracy` does not apply to a TorchTask: its test set gives the accuracy.")
        return torch_train(
            problem_or_gradient_fn,
            scheme,
            deadline=deadline,
            rounds=rounds,
            workers=workers,
            time_unit=time_unit,
            emulate=emulate,
            shift=shift,
            rates=rates,
            optimizer=optimizer,
            rng=rng,
            adapter=make_adapter(check_scheme(scheme), adapt, deadline),
            load_cost=load_cost,
        )
    optimizer = gd(0.5) if optimizer is None else optimizer
    update, shrink = _optimizer_step(optimizer, problem_or_gradient_fn, scheme, x0)
    out = _run(
        problem_or_gradient_fn,
        scheme,
        update=update,
        workers=workers,
        scheduler=scheduler,
        deadline=deadline,
        rounds=rounds,
        time_unit=time_unit,
        emulate=emulate,
        shift=shift,
        rates=rates,
        rng=rng,
        x0=x0,
        batch_size=optimizer.batch_size if optimizer.method != "gd" else None,
        replace_workers=replace_workers,
        adapt=adapt,
        load_cost=load_cost,
        backend=backend,
    )
    if out is None:  # a torchrun rank other than 0: it served its logical workers
        return None
    problem, iterates, _, fields = out
    metrics = iterate_metrics(problem, iterates, loss, accuracy)
    return ClusterHistory(optimizer=optimizer.label, shrinkage=shrink, **metrics, **fields)


def gradient_estimates(
    problem_or_gradient_fn,
    scheme,
    w=None,
    *,
    deadline: float,
    rounds: int,
    workers=None,
    scheduler=None,
    time_unit: float = 0.25,
    emulate: bool = True,
    shift: float | None = None,
    rates=None,
    rng=None,
    replace_workers: bool = True,
    backend: str = "dask",
    adapt=None,
    client=UNSET,
    n_workers=UNSET,
    theta=UNSET,
) -> tuple[np.ndarray, ClusterHistory] | None:
    """`rounds` decoded gradients at the fixed model `w` on the cluster: (array (rounds, d), record).

    The cluster twin of :func:`gcdesign.training.gradient_estimates` (same
    arguments as :func:`train`, `backend` and `adapt` included; `theta` is the deprecated name
    of `w`); their mean squared error against the true gradient estimates
    :func:`gcdesign.expected_error`. After a redesign the estimates are the new design's.
    """
    workers = _workers("cluster.gradient_estimates", workers, client, n_workers)
    w = renamed_keyword("cluster.gradient_estimates", "theta", theta, "w", w, None)
    if w is None:
        raise InputError("`w` (the model at which to estimate the gradient) is required.")
    _backend_iv(backend, scheduler)
    out = _run(
        problem_or_gradient_fn,
        scheme,
        update=lambda current, estimate, r: current,
        workers=workers,
        scheduler=scheduler,
        deadline=deadline,
        rounds=rounds,
        time_unit=time_unit,
        emulate=emulate,
        shift=shift,
        rates=rates,
        rng=rng,
        x0=w,
        batch_size=None,
        replace_workers=replace_workers,
        backend=backend,
        adapt=adapt,
    )
    if out is None:  # a torchrun rank other than 0
        return None
    problem, iterates, estimates, fields = out
    metrics = iterate_metrics(problem, iterates[:1], None)
    for key in ("loss", "grad_norm", "distance", "test_accuracy"):
        if metrics[key] is not None:
            metrics[key] = np.repeat(metrics[key], len(iterates))
    return estimates, ClusterHistory(optimizer="fixed", **metrics, **fields)


__all__ = ["gradient_estimates", "make_adapter", "train"]
