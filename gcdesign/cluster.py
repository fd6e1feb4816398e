r"""Coded training on a dask.distributed cluster, with a real deadline every round.

The user's side of a design: place the partitions, run rounds against a
deadline, skip late workers without blocking, decode what arrived
(docs/cluster.md; MATH.md section 14).

Placement
---------
Logical worker ``i`` (row ``i`` of the encoding) lives on Dask worker
``addresses[i mod W]``, the ``W`` Dask workers sorted by address. Each Dask
worker receives, once, one *shard*: the data of the partitions its logical
workers hold (the union, each partition once), scattered to that worker only
(``client.scatter(..., workers=[address], broadcast=False)``). Fifty design
workers on two processes are 25 logical workers per process.

Rounds
------
Round ``r`` starts at :math:`t_r`: the master submits one task per logical
worker, pinned to its Dask worker (``workers=[address]``,
``allow_other_workers=False``, ``pure=False``). The task computes the
partition gradients of the worker's partitions, encodes its coded message
with :func:`gcdesign.runtime.encode` and returns the message BYTES. With
``emulate=True`` it then sleeps until :math:`t_r + u D_i`,
:math:`D_i = t_0 + \mathrm{Exp}(\mu_i)`, so it is ready at
:math:`t_r + u \max(C_i / u, D_i)` (:math:`C_i` its compute time). The
sleep happens after :func:`distributed.secede`, so the delays of the logical
workers sharing one process overlap (as on separate machines) while their
computations share the process's thread. The tasks of one Dask worker go out
in one ``client.map`` (one graph update per Dask worker and round). The
master waits until :math:`t_r + u \tau` (watching an
:class:`distributed.as_completed`), fetches the bytes of the tasks that
finished in one ``client.gather``, decodes them with
:func:`gcdesign.runtime.decode`, and starts round ``r + 1`` at once (earlier,
when every message is in). Results are tagged with their round: a late one
is timed for the traces and never decoded. A delay beyond :math:`2\tau` is
cut to :math:`2\tau` (late either way; no pile-up of sleeping tasks), and a
task that starts after that cut returns at once without computing.

When :math:`C_i` plus the task latency stays below :math:`u t_0`, worker
``i`` is late with probability :math:`e^{-\mu_i(\tau - t_0)} = p_i`, the
profile's value. The return trip (about 10 ms on a loaded LocalCluster)
counts against the deadline like any real slowness; choose
:math:`u (\tau - t_0)` well above it.

Seeds are counter-based: the delay of ``(round, worker)``, the quantizer's
uniforms of ``(round, worker)`` and the mini-batch of ``(round, partition)``
each come from ``default_rng([seed, stream, round, index])``, whatever runs
them.

Failures
--------
A Dask worker that leaves the cluster (its process died) makes its logical
workers stragglers from the next round on. With ``replace=True``, a Dask
worker that joins later (a nanny's restart, a new machine) adopts them: their
partitions are scattered to it and they answer again. The master holds the
model and the record; nothing is lost.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from . import runtime
from ._files import atomic_write_text
from ._validate import InputError, positive_int
from .profile import ClusterProfile
from .schemes import check_scheme
from .training import History, Optimizer, Problem, gd, second_moment_shrinkage
from .training.optimizers import make_step

# stream tags of the counter-based seeds: default_rng([seed, stream, round, index])
_DELAY, _QUANTIZE, _BATCH = 0, 1, 2
_POLL = 0.002  # seconds between checks of the arrival queue while waiting for the deadline
_LIVENESS_INTERVAL = 0.25  # seconds between polls of the scheduler for workers that left or joined


# ====================================================================== timing model
def emulated_delays(seed: int, round_index: int, rates, shift: float) -> np.ndarray:
    r"""The emulated delays :math:`D_i = t_0 + \mathrm{Exp}(\mu_i)` of one round (time units).

    One stream per ``(seed, round, worker)``; a rate of ``inf`` gives exactly
    :math:`t_0`, a rate of 0 never answers (``inf``).

    Examples
    --------
    >>> d = emulated_delays(7, 3, [1.0, 2.0, np.inf], 0.5)
    >>> bool(np.all(d >= 0.5)), float(d[2])
    (True, 0.5)
    >>> np.array_equal(d, emulated_delays(7, 3, [1.0, 2.0, np.inf], 0.5))
    True
    """
    rates = np.asarray(rates, dtype=np.float64)
    draws = np.array(
        [
            np.random.default_rng([seed, _DELAY, round_index, i]).standard_exponential()
            for i in range(rates.size)
        ]
    )
    with np.errstate(divide="ignore"):
        return shift + draws / rates


def delay_rates(straggler_probs, *, deadline: float, shift: float) -> np.ndarray:
    r"""Rates :math:`\mu_i = -\ln p_i / (\tau - t_0)` that reproduce `straggler_probs` (MATH 8).

    ``p_i = 0`` gives ``inf`` (always on time), ``p_i = 1`` gives 0 (never).

    Examples
    --------
    >>> mu = delay_rates([0.5, 0.1], deadline=1.5, shift=1.0)
    >>> np.round(np.exp(-mu * 0.5), 12).tolist()
    [0.5, 0.1]
    """
    p = np.asarray(straggler_probs, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return -np.log(p) / (deadline - shift)


def _latency_iv(scheme, deadline, shift, rates, emulate, rounds=None) -> tuple[float, float, np.ndarray | None]:
    n = scheme.encoding.shape[0]
    try:
        deadline = float(deadline)
    except (TypeError, ValueError):
        raise InputError(
            f"`deadline` must be a number > 0 (or math.inf: wait for all), got {deadline!r}."
        ) from None
    if not deadline > 0:  # NaN too
        raise InputError(f"`deadline` must be a number > 0 (or math.inf: wait for all), got {deadline!r}.")
    if not emulate:
        return deadline, 0.0, None
    if shift is None:
        shift = 0.5 * deadline if math.isfinite(deadline) else 0.0
    shift = float(shift)
    if not (math.isfinite(shift) and 0 <= shift and (shift < deadline or not math.isfinite(deadline))):
        raise InputError(f"`shift` must be a finite number in [0, deadline = {deadline:g}), got {shift!r}.")
    if rates is None:
        if not math.isfinite(deadline):
            raise InputError("`rates` is needed to emulate delays without a deadline (deadline = inf).")
        return deadline, shift, delay_rates(scheme.straggler_probs, deadline=deadline, shift=shift)
    rates = np.asarray(rates, dtype=np.float64)
    shapes = [(n,)] + ([] if rounds is None else [(rounds, n)])
    if rates.shape not in shapes or np.any(np.isnan(rates)) or np.any(rates < 0):
        also = "" if rounds is None else f", or ({rounds}, {n}): one row per round"
        raise InputError(
            f"`rates` must be {n} numbers >= 0 (one per worker, inf allowed{also}), got shape {rates.shape}."
        )
    return deadline, shift, rates


def _load_cost_iv(load_cost, n: int, emulate: bool) -> np.ndarray | None:
    if load_cost is None:
        return None
    if not emulate:
        raise InputError("`load_cost` needs emulated delays (emulate=True).")
    from ._validate import real_array

    cost = real_array("load_cost", np.broadcast_to(np.asarray(load_cost, dtype=np.float64), (n,)), low=0)
    return cost


# ====================================================================== shards (worker side)
@dataclass(frozen=True, eq=False)
class Shard:
    """What one Dask worker holds: the scheme and the data of its logical workers' partitions.

    ``parts`` maps a partition to a one-partition :class:`Problem` (harness
    problems), or ``gradient_fn`` is the user's ``fn(theta, partitions)``.
    """

    scheme: object
    parts: dict | None
    gradient_fn: Callable | None
    n_samples: int
    reg_per_partition: float
    batch_size: int | None

    def partial_gradients(self, theta, worker: int, round_index: int, seed: int) -> np.ndarray:
        held = runtime.partitions_of(self.scheme, worker)
        if self.gradient_fn is not None:
            out = np.asarray(self.gradient_fn(theta, held), dtype=np.float64)
            if out.ndim != 2 or out.shape[0] != held.size:
                raise InputError(
                    f"`gradient_fn` must return an array ({held.size}, d) for {held.size} partitions, "
                    f"got shape {out.shape}."
                )
            return out
        rows = []
        for j in held:
            part = self.parts[int(j)]
            rng = (
                None
                if self.batch_size is None
                else np.random.default_rng([seed, _BATCH, round_index, int(j)])
            )
            data = part.partition_gradients(theta, batch_size=self.batch_size, rng=rng)[0]
            rows.append(data * (part.n_samples / self.n_samples) + self.reg_per_partition * theta)
        return np.vstack(rows)


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


def _worker_round(shard, worker, round_index, theta, round_start, time_unit, delay, hold, seed):
    """One logical worker's task in one round (runs on its Dask worker).

    Returns ``(round, worker, start offset, compute seconds, message bytes or None)``; None
    for an idle worker (a probe of its round time) or a task started after the
    hold (its round is long over).
    """
    started = time.time()
    if math.isfinite(hold) and started > round_start + time_unit * hold:
        return round_index, worker, started - round_start, math.nan, None
    payload = None
    if shard.scheme.bits[worker] > 0 and runtime.partitions_of(shard.scheme, worker).size:
        grads = shard.partial_gradients(theta, worker, round_index, seed)
        rng = np.random.default_rng([seed, _QUANTIZE, round_index, worker])
        payload = runtime.encode(shard.scheme, worker, grads, rng=rng).to_bytes()
    compute = time.time() - started
    if delay is not None:
        wait = round_start + time_unit * min(delay, hold) - time.time()
        if wait > 0:
            from distributed import secede

            secede()  # leave the thread pool: other logical workers compute while this one waits
            time.sleep(wait)
    return round_index, worker, started - round_start, compute, payload


def _reshard(shard, scheme, new_parts, keep):
    """The shard a Dask worker holds after a redesign: the new scheme, the partitions it keeps
    and the ones just sent (runs on that worker: nothing it kept travels)."""
    if shard.parts is None:
        return replace(shard, scheme=scheme)
    parts = {j: part for j, part in shard.parts.items() if j in keep}
    parts.update(new_parts)
    return replace(shard, scheme=scheme, parts=parts)


def _warm_up(shard, worker, theta) -> int:
    """Encode one message of `worker` (discarded): the worker's first-call costs, before round 0."""
    if shard.scheme.bits[worker] > 0 and runtime.partitions_of(shard.scheme, worker).size:
        grads = shard.partial_gradients(theta, worker, 0, 0)
        return len(runtime.encode(shard.scheme, worker, grads, rng=0).to_bytes())
    return 0


# ====================================================================== result
@dataclass(frozen=True, eq=False)
class ClusterHistory(History):
    """A :class:`~gcdesign.History` measured on a cluster, with the per-worker record.

    ``wall_clock`` is measured, in time units (seconds / ``time_unit``).

    Attributes
    ----------
    time_unit, deadline, shift : float
        ``u`` seconds, :math:`\\tau` and :math:`t_0` in time units (``deadline = inf``: wait for all).
    round_times : ndarray (rounds, N)
        Time from round start until the master learns that worker i's task
        finished, in time units; ``inf`` when it never did (dead worker, stale
        task, still running at the run's end). Late results are timed when they
        finish during the run, and never fetched.
    on_time : ndarray of bool (rounds, N)
        Received by the deadline (decoded, or a probe of an idle worker).
    delays : ndarray (rounds, N) or None
        The emulated :math:`D_i` (None without emulation).
    compute_times : ndarray (rounds, N)
        Seconds each task spent computing (NaN unless it was in time).
    start_offsets : ndarray (rounds, N)
        Seconds from the round start to the task starting on its worker (NaN
        unless in time; the emulation assumes synchronized clocks).
    overhead : ndarray (rounds,)
        Seconds from the decision point (the deadline, or the last arrival if
        all came earlier) to the start of the next round: decode, step, submit.
    placement : ndarray of object (rounds, N)
        The Dask worker address of each logical worker in each round (None: lost).
    names : tuple of str
        Worker names (the profile's, for the traces).
    adaptation : tuple of dict
        With ``adapt``: one entry per design change (alarm), with its round, ``action``
        (``"redesign"`` or ``"reweight"``), the relative ``gain`` and the ``required`` one,
        ``moved`` (partition copies of the layout chosen), ``moved_fresh`` (of a fresh
        layout), ``moved_transport`` (partitions sent to Dask workers) and ``move_seconds``.
    final_design : Design or None
        With ``adapt``: the design in use at the end.
    """

    time_unit: float = 1.0
    deadline: float = math.inf
    shift: float = 0.0
    round_times: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    on_time: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    delays: np.ndarray | None = None
    compute_times: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    start_offsets: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    overhead: np.ndarray = field(default_factory=lambda: np.zeros(0))
    placement: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=object))
    names: tuple = ()
    adaptation: tuple = ()
    final_design: object = None

    @property
    def straggler_frequency(self) -> np.ndarray:
        """Fraction of rounds in which each worker missed the deadline (N,)."""
        return 1.0 - self.on_time.mean(axis=0)

    def trace_rows(self) -> list[dict]:
        """The round times in the long trace format (``worker, round, time``)."""
        rounds, n = self.round_times.shape
        return [
            {"worker": self.names[i], "round": r, "time": float(self.round_times[r, i])}
            for r in range(rounds)
            for i in range(n)
        ]

    def write_traces(self, path):
        """Write :meth:`trace_rows` as CSV (atomically) for :meth:`ClusterProfile.from_traces`."""
        lines = ["worker,round,time"]
        lines += [f"{row['worker']},{row['round']},{row['time']!r}" for row in self.trace_rows()]
        return atomic_write_text(path, "\n".join(lines) + "\n")

    def profile(self, *, dim: int, partitions: int | None = None, smoothing: float = 1.0) -> ClusterProfile:
        """Re-profile the cluster from the measured round times (:meth:`ClusterProfile.from_traces`)."""
        times = {name: self.round_times[:, i] for i, name in enumerate(self.names)}
        return ClusterProfile.from_traces(
            times, deadline=self.deadline, dim=dim, partitions=partitions, smoothing=smoothing
        )


# ====================================================================== the master
def _is_lost(exc) -> bool:
    """A task that failed because its worker or its data went away (a straggler, not a bug)."""
    from asyncio import CancelledError

    from distributed import KilledWorker

    lost = (CancelledError, KilledWorker, ConnectionError, OSError)
    return isinstance(exc, lost) or type(exc).__name__ in ("FutureCancelledError", "CommClosedError")


class Engine:
    """Places the shards, runs the rounds, keeps the record (one per training run)."""

    def __init__(
        self,
        client,
        scheme,
        make_shard,
        theta,
        *,
        time_unit,
        deadline,
        rates,
        shift,
        seed,
        replace_workers,
        load_cost=None,
    ):
        from distributed import as_completed

        self.client = client
        self.scheme = scheme
        self.make_shard = make_shard
        self.load_cost = load_cost
        self.theta = theta
        self.n = scheme.encoding.shape[0]
        self.time_unit = time_unit
        self.deadline = deadline
        self.hold = 2.0 * deadline if math.isfinite(deadline) else math.inf
        self.rates, self.shift, self.seed = rates, shift, seed
        self.replace_workers = replace_workers
        self.run_id = uuid.uuid4().hex[:8]
        self.poller = ThreadPoolExecutor(1, thread_name_prefix="gcdesign-liveness")
        self.poll = None
        self.poll_started = 0.0
        self.queue = as_completed(loop=client.loop)
        self.tags: dict[str, tuple[int, int]] = {}
        self.starts: list[float] = []
        self.times: list[np.ndarray] = []
        self.computes: list[np.ndarray] = []
        self.offsets: list[np.ndarray] = []
        self.pending: dict[str, object] = {}
        addresses = sorted(client.nthreads())
        if not addresses:
            raise InputError("the Dask cluster has no workers.")
        self.seen = set(addresses)
        self.where: list[str | None] = [addresses[i % len(addresses)] for i in range(self.n)]
        self.shards: dict[str, object] = {}
        for address in addresses:
            try:
                self._place(address)
            except Exception as exc:  # noqa: BLE001 - it left already: its logical workers are orphans
                if not (_is_lost(exc) or isinstance(exc, KeyError)):
                    raise
                self.shards.pop(address, None)
                self.where = [None if a == address else a for a in self.where]

    def _place(self, address: str) -> None:
        logical = [i for i in range(self.n) if self.where[i] == address]
        if not logical:
            return
        shard = self.make_shard(logical)
        [self.shards[address]] = self.client.scatter([shard], workers=[address], broadcast=False, hash=False)
        # one message before round 0, so imports and first-call costs are not charged to a round
        warm = self.client.submit(
            _warm_up,
            self.shards[address],
            logical[0],
            self.theta,
            workers=[address],
            allow_other_workers=False,
            pure=False,
        )
        warm.result()

    def reshard(self, scheme) -> int:
        """Run `scheme` from the next round: each Dask worker receives only the partitions its
        logical workers hold now and did not before, and rebuilds its shard in place.

        Returns the partitions sent (per Dask worker, each partition once). Waits for the
        transfers, so their time falls between rounds, never inside one.
        """
        import scipy.sparse as sp

        old, new = sp.csr_array(self.scheme.encoding), sp.csr_array(scheme.encoding)
        self.scheme = scheme
        self.make_shard = self.make_shard.for_scheme(scheme)
        sent = 0
        futures = []
        for address, shard in list(self.shards.items()):
            logical = [i for i in range(self.n) if self.where[i] == address]
            had = _held(old, logical)
            keep = _held(new, logical)
            missing = sorted(keep - had)
            new_parts = self.make_shard.parts(missing)
            sent += len(missing) if new_parts is not None else 0
            payload = {}
            if new_parts:
                [payload] = self.client.scatter([new_parts], workers=[address], broadcast=False, hash=False)
            self.shards[address] = self.client.submit(
                _reshard, shard, scheme, payload, keep, workers=[address], allow_other_workers=False, pure=False
            )
            futures.append(self.shards[address])
        self.client.gather(futures)  # the new shards are built before the next round starts
        return sent

    def _alive(self) -> set:
        return set(
            self.client.nthreads()
        )  # a direct call: scheduler_info() returns a cache that a periodic update can empty

    def _check_workers(self) -> None:
        """Apply the last finished liveness poll and start the next (in a thread: it can take 50 ms)."""
        if self.poll is not None and not self.poll.done():
            return
        if self.poll is not None and time.perf_counter() - self.poll_started < _LIVENESS_INTERVAL:
            return
        alive = None if self.poll is None or self.poll.exception() else self.poll.result()
        self.poll = self.poller.submit(self._alive)
        self.poll_started = time.perf_counter()
        if alive is None:
            return
        for address in [a for a in self.shards if a not in alive]:
            del self.shards[address]
            self.where = [None if a == address else a for a in self.where]
        newcomers = sorted(alive - self.seen)
        self.seen |= alive - set(newcomers)
        orphans = [i for i in range(self.n) if self.where[i] is None]
        if not (self.replace_workers and newcomers and orphans):
            self.seen |= set(newcomers)
            return
        for k, address in enumerate(newcomers):
            adopted = orphans[k :: len(newcomers)]
            for i in adopted:
                self.where[i] = address
            try:
                self._place(address)
            except Exception as exc:  # noqa: BLE001 - it left again before the scatter: retry next poll
                if not (_is_lost(exc) or isinstance(exc, KeyError)):
                    raise
                for i in adopted:
                    self.where[i] = None
                self.shards.pop(address, None)
                continue
            self.seen.add(address)

    def _drain(self, now: float, ready: dict, current: int) -> None:
        """Time the results that finished; keep the current round's futures in `ready`."""
        for future in self.queue.next_batch(block=False):
            round_index, worker = self.tags.pop(future.key)
            self.pending.pop(future.key, None)  # a late result is released unread
            if future.status == "error":
                exc = future.exception()
                if not _is_lost(exc):
                    raise RuntimeError(
                        f"the task of worker {worker} in round {round_index} failed: {exc!r}"
                    ) from exc
                continue
            if future.status != "finished":
                continue
            self.times[round_index][worker] = (now - self.starts[round_index]) / self.time_unit
            if round_index == current:
                ready[worker] = future

    def _submit(self, theta, round_index: int, start_wall: float, delays) -> int:
        """One ``client.map`` per Dask worker (one graph update each), one task per logical worker."""
        groups: dict[str, list[int]] = {}
        for i, address in enumerate(self.where):
            if address is not None:
                groups.setdefault(address, []).append(i)
        count = 0
        for address, logical in groups.items():
            k = len(logical)
            futures = self.client.map(
                _worker_round,
                [self.shards[address]] * k,
                logical,
                [round_index] * k,
                [theta] * k,
                [start_wall] * k,
                [self.time_unit] * k,
                [None if delays is None else float(delays[i]) for i in logical],
                [self.hold] * k,
                [self.seed] * k,
                key=[f"gcdesign-{self.run_id}-{round_index}-{i}" for i in logical],
                workers=[address],
                allow_other_workers=False,
                pure=False,
            )
            for i, future in zip(logical, futures, strict=True):
                self.tags[future.key] = (round_index, i)
                self.pending[future.key] = future
            self.queue.update(futures)
            count += k
        return count

    def round(self, theta, round_index: int):
        """One round: (messages in time {worker: bytes or None}, delays, placement, decision time)."""
        delays = None
        if self.rates is not None:
            rates = self.rates[round_index] if self.rates.ndim == 2 else self.rates
            delays = emulated_delays(self.seed, round_index, rates, self.shift)
            if self.load_cost is not None:  # compute time follows the partitions held (MATH 16)
                delays = delays + self.load_cost * np.diff(sp_csr(self.scheme.encoding).indptr)
        start_wall, start = time.time(), time.perf_counter()
        self.starts.append(start)
        self.times.append(np.full(self.n, math.inf))
        self.computes.append(np.full(self.n, math.nan))
        self.offsets.append(np.full(self.n, math.nan))
        self._check_workers()  # who left, who joined: from the poll started a round ago
        placement = np.array(self.where, dtype=object)
        expected = self._submit(theta, round_index, start_wall, delays)
        ready: dict[int, object] = {}
        end = start + self.time_unit * self.deadline
        while True:
            now = time.perf_counter()
            self._drain(now, ready, round_index)
            if len(ready) == expected or now >= end:
                break
            if self.poll is not None and self.poll.done():  # a worker that left is not waited for
                self._check_workers()
                expected = sum(1 for a in placement if a is not None and a in self.shards)
            time.sleep(min(_POLL, end - now))
        decided = time.perf_counter()
        self._drain(decided, ready, round_index)  # what finished during the last poll interval
        messages: dict[int, bytes | None] = {}
        if ready:  # the bytes of the messages in time, in one transfer
            results = self.client.gather(list(ready.values()), errors="skip")
            for _, worker, offset, compute, payload in results:
                self.offsets[round_index][worker] = offset
                self.computes[round_index][worker] = compute
                messages[worker] = payload
        return messages, delays, placement, min(decided, end)

    def close(self) -> None:
        """Cancel what is still running (one call at the end; late results are not needed)."""
        if self.pending:
            try:
                self.client.cancel(list(self.pending.values()))
            except Exception:  # noqa: BLE001 - a cluster already gone has nothing to cancel
                pass
        self.pending.clear()
        self.poller.shutdown(wait=True)


# ====================================================================== public entry points
def _source_iv(problem_or_gradient_fn, scheme, x0):
    if isinstance(problem_or_gradient_fn, Problem):
        problem = problem_or_gradient_fn
        if scheme.encoding.shape[1] != problem.partitions:
            raise InputError(
                f"the scheme encodes K = {scheme.encoding.shape[1]} partitions but the problem has "
                f"{problem.partitions}; build the profile with partitions={problem.partitions}."
            )
        theta = problem.initial_point() if x0 is None else np.array(x0, dtype=np.float64)
        if theta.shape != (problem.dim,):
            raise InputError(f"`x0` must have shape ({problem.dim},), got {theta.shape}.")
        return problem, None, theta
    if not callable(problem_or_gradient_fn):
        raise InputError(
            "`problem_or_gradient_fn` must be a Problem or a callable fn(theta, partitions) -> (len, d)."
        )
    if x0 is None:
        raise InputError("`x0` (the initial model) is needed with a gradient function.")
    theta = np.array(x0, dtype=np.float64)
    if theta.ndim != 1 or theta.size == 0 or not np.all(np.isfinite(theta)):
        raise InputError(f"`x0` must be a finite 1-D array, got shape {theta.shape}.")
    return None, problem_or_gradient_fn, theta


def sp_csr(matrix):
    import scipy.sparse as sp

    return sp.csr_array(matrix)


def _held(encoding, logical) -> set:
    """The partitions the logical workers `logical` hold together (nonzero entries)."""
    held = set()
    for i in logical:
        row = slice(encoding.indptr[i], encoding.indptr[i + 1])
        held.update(int(j) for j, v in zip(encoding.indices[row], encoding.data[row], strict=True) if v != 0)
    return held


def shard_maker(scheme, problem, gradient_fn, batch_size) -> ShardMaker:
    """The :class:`ShardMaker` of a run."""
    return ShardMaker(scheme, problem, gradient_fn, batch_size)


@dataclass(frozen=True, eq=False)
class ShardMaker:
    """Makes the shard of a Dask worker from the logical workers it hosts (and the partitions to send)."""

    scheme: object
    problem: Problem | None
    gradient_fn: Callable | None
    batch_size: int | None

    def __call__(self, logical: list[int]) -> Shard:
        if self.problem is None:
            return Shard(self.scheme, None, self.gradient_fn, 0, 0.0, None)
        held = sorted(_held(sp_csr(self.scheme.encoding), logical))
        return Shard(
            self.scheme,
            self.parts(held),
            None,
            self.problem.n_samples,
            self.problem.reg / self.problem.partitions,
            self.batch_size,
        )

    def parts(self, held) -> dict | None:
        """The data of the partitions `held` (None with a gradient function: nothing to move)."""
        if self.problem is None:
            return None
        return {int(j): partition_problem(self.problem, int(j)) for j in held}

    def for_scheme(self, scheme) -> ShardMaker:
        return replace(self, scheme=scheme)


class _Session:
    """The client for one call: the given one, one connected to `scheduler`, or a LocalCluster."""

    def __init__(self, client, scheduler, n_workers):
        self.owned = []
        if client is not None:
            self.client = client
            return
        from distributed import Client, LocalCluster

        if scheduler is not None:
            self.client = Client(scheduler, set_as_default=False)
            self.owned = [self.client]
            return
        n_workers = positive_int("n_workers", n_workers)
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        self.client = Client(cluster, set_as_default=False)
        self.owned = [self.client, cluster]

    def close(self):
        for item in self.owned:
            item.close()


def _run(
    problem_or_gradient_fn,
    scheme,
    *,
    update,
    client,
    scheduler,
    n_workers,
    deadline,
    rounds,
    time_unit,
    emulate,
    shift,
    rates,
    rng,
    x0,
    batch_size,
    replace_workers,
    adapt=None,
    load_cost=None,
    accuracy=None,
):
    scheme = check_scheme(scheme)
    rounds = positive_int("rounds", rounds)
    time_unit = float(time_unit)
    if not (math.isfinite(time_unit) and time_unit > 0):
        raise InputError(f"`time_unit` must be a finite number of seconds > 0, got {time_unit!r}.")
    deadline, shift, rates = _latency_iv(scheme, deadline, shift, rates, emulate, rounds)
    load_cost = _load_cost_iv(load_cost, scheme.encoding.shape[0], emulate)
    adapter = make_adapter(scheme, adapt)
    if adapter is not None and not math.isfinite(deadline):
        raise InputError("`adapt` needs a finite `deadline` (lateness is what it follows).")
    problem, gradient_fn, theta = _source_iv(problem_or_gradient_fn, scheme, x0)
    seed = int(np.random.default_rng(rng).integers(2**63))
    n = scheme.encoding.shape[0]
    session = _Session(client, scheduler, n_workers)
    iterates = [theta]
    estimates = []
    arrived = np.zeros((rounds, n), dtype=bool)
    overhead = np.zeros(rounds)
    round_wall = np.zeros(rounds)
    delays = np.full((rounds, n), math.nan) if rates is not None else None
    placement = np.empty((rounds, n), dtype=object)
    bits = np.zeros(rounds + 1, dtype=np.int64)
    adaptation: list[dict] = []
    try:
        engine = Engine(
            session.client,
            scheme,
            shard_maker(scheme, problem, gradient_fn, batch_size),
            theta,
            time_unit=time_unit,
            deadline=deadline,
            rates=rates,
            shift=shift,
            seed=seed,
            replace_workers=replace_workers,
            load_cost=load_cost,
        )
        try:
            decided = None
            for r in range(rounds):
                messages, drawn, placement[r], decided_now = engine.round(theta, r)
                if r:
                    overhead[r - 1] = engine.starts[r] - decided
                    round_wall[r - 1] = engine.starts[r] - engine.starts[r - 1]
                decided = decided_now
                if drawn is not None:
                    delays[r] = drawn
                payloads = [m for m in messages.values() if m is not None]
                for i, m in messages.items():
                    arrived[r, i] = m is not None
                bits[r + 1] = 8 * sum(len(m) for m in payloads)
                estimate = runtime.decode(scheme, payloads) if payloads else np.zeros(theta.size)
                estimates.append(estimate)
                theta = update(theta, estimate, r)
                iterates.append(theta)
                if adapter is not None and r + 1 < rounds:
                    late = ~(engine.times[r] <= deadline)  # at the decision: not in time
                    if adapter.observe(r, late):
                        scheme = _follow(engine, adapter, scheme, adaptation)
            finished = time.perf_counter()
            overhead[-1] = finished - decided
            round_wall[-1] = finished - engine.starts[-1]
            engine._drain(time.perf_counter(), {}, -1)
        finally:
            engine.close()
    finally:
        session.close()
    round_times = np.array(engine.times)
    on_time = round_times <= deadline
    names = tuple(scheme.profile.names) if hasattr(scheme, "profile") else tuple(f"w{i}" for i in range(n))
    record = {
        "time_unit": time_unit,
        "deadline": deadline,
        "shift": shift,
        "round_times": round_times,
        "on_time": on_time,
        "delays": delays,
        "compute_times": np.array(engine.computes),
        "start_offsets": np.array(engine.offsets),
        "overhead": overhead,
        "placement": placement,
        "names": names,
        "wall_clock": np.concatenate([[0.0], np.cumsum(round_wall)]) / time_unit,
        "bits": bits,
        "arrived": np.concatenate([[0], arrived.sum(axis=1)]),
        "adaptation": tuple(adaptation),
        "final_design": scheme if adapter is not None else None,
    }
    return problem, np.array(iterates), np.array(estimates), arrived, record


def make_adapter(scheme, adapt):
    """The run's adapter: None, or an object with ``observe(round, late) -> bool`` and ``design``
    (``adapt`` = True / a dict / :class:`~gcdesign.adaptive.AdaptOptions`: an
    :class:`~gcdesign.adaptive.Adapter`; such an object itself, e.g. a
    :class:`~gcdesign.adaptive.Schedule`, is used as is)."""
    from .adaptive import Adapter, adapt_options

    if hasattr(adapt, "observe") and hasattr(adapt, "design"):
        return adapt
    options = adapt_options(adapt)
    return None if options is None else Adapter(scheme, options)


def _follow(engine, adapter, scheme, adaptation: list) -> object:
    """Switch the run to the adapter's design; move the data when the layout or bits changed."""
    import scipy.sparse as sp

    new = adapter.design
    record = dict(adapter.last) if getattr(adapter, "last", None) else {"action": "redesign"}
    changed = (sp.csr_array(new.encoding) != sp.csr_array(scheme.encoding)).nnz > 0 or not np.array_equal(
        new.bits, scheme.bits
    )
    started = time.perf_counter()
    record["moved_transport"] = engine.reshard(new) if changed else 0
    record["move_seconds"] = time.perf_counter() - started
    adaptation.append(record)
    return new


def _metrics(problem, iterates, loss):
    if problem is not None:
        losses = np.array([problem.loss(w) for w in iterates])
        norms = np.array([np.linalg.norm(problem.gradient(w)) for w in iterates])
        distance = None if problem.optimum is None else np.linalg.norm(iterates - problem.optimum, axis=1)
        return losses, norms, distance, problem.optimal_loss, problem.name
    losses = np.array([loss(w) for w in iterates]) if loss is not None else np.full(len(iterates), math.nan)
    return losses, np.full(len(iterates), math.nan), None, None, "gradient_fn"


def _model_dim(problem_or_gradient_fn, x0) -> int:
    """The model's dimension: the problem's, or the starting point's for a gradient function."""
    if isinstance(problem_or_gradient_fn, Problem):
        return problem_or_gradient_fn.dim
    return int(np.asarray(x0).size)


def train(
    problem_or_gradient_fn,
    scheme,
    *,
    deadline: float,
    rounds: int,
    client=None,
    scheduler: str | None = None,
    n_workers: int = 2,
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
) -> ClusterHistory:
    r"""Train with `scheme` on a dask.distributed cluster, a real deadline every round.

    Parameters
    ----------
    problem_or_gradient_fn : Problem or callable
        A harness problem (:func:`gcdesign.training.digits_problem`, ...), or
        ``fn(theta, partitions) -> array (len(partitions), d)``, the partition
        gradients :math:`g_j(\theta)` of the given partitions (then `x0` is
        required; the function is shipped once to every Dask worker).
    scheme : Design or Scheme
        Checked with :func:`gcdesign.schemes.check_scheme`.
    deadline : float
        :math:`\tau` in time units; ``math.inf`` waits for every message.
    rounds : int
    client : distributed.Client, optional
        Default: a client of `scheduler`, else a LocalCluster of `n_workers`
        processes with one thread each, created and closed here.
    time_unit : float
        Seconds per time unit ``u`` (default 0.25: on a loaded 2-core machine the
        start and return latencies of a task reach 50-150 ms, and ``u t0`` and
        ``u (tau - t0)`` must stay well above them for the emulation to be the profile).
    emulate : bool
        Sleep the emulated delay :math:`D_i = t_0 + \mathrm{Exp}(\mu_i)` in each
        task; False: only real slowness counts.
    shift : float, optional
        :math:`t_0` (default ``deadline / 2``).
    rates : array_like (N,), optional
        :math:`\mu_i`; default :func:`delay_rates` of the scheme's ``p_i``, so
        that the emulated cluster is the profiled one.
    optimizer : Optimizer
        :func:`~gcdesign.training.gd` (default ``gd(0.5)``), ``sgd`` or ``adam``.
    rng : None, int or Generator
        Draws the run's seed (delays, quantization, mini-batches: counter-based).
    x0 : array_like, optional
        Initial model.
    loss : callable, optional
        ``loss(theta)`` recorded each round with a gradient function.
    replace_workers : bool
        Re-place the logical workers of a dead Dask worker on a worker that
        joins later (else they straggle for the rest of the run).
    adapt : None, True, dict, AdaptOptions or an adapter
        Follow the cluster (docs/math.md, section 16; :mod:`gcdesign.adaptive`):
        after every round the lateness updates each worker's estimate and a drift
        test; on an alarm the decoder is re-weighted or, when the gain is worth
        it, the design is re-optimized on the layout closest to the current one
        and only the partitions a Dask worker lacks are sent to it. Needs a
        :class:`~gcdesign.Design`. The record is ``history.adaptation``.
    load_cost : float or array_like (N,), optional
        Emulated compute time per held partition :math:`c_i` (time units): the
        delay becomes :math:`t_0 + c_i \ell_i + \mathrm{Exp}(\mu_i)` with
        :math:`\ell_i` the partitions worker i holds in the current design.
    accuracy : callable, optional
        ``accuracy(theta)`` recorded each round (``test_accuracy``); default the
        problem's ``test_accuracy`` when it has one.

    Returns
    -------
    ClusterHistory
    """
    optimizer = gd(0.5) if optimizer is None else optimizer
    if not isinstance(optimizer, Optimizer):
        raise InputError("`optimizer` must be an Optimizer (use gd(...), sgd(...) or adam(...)).")
    shrink = 1.0
    if optimizer.method == "adam" and optimizer.two_track:
        dim = problem_or_gradient_fn.dim if isinstance(problem_or_gradient_fn, Problem) else None
        shrink = second_moment_shrinkage(scheme, optimizer.lam, dim=dim)
    batch = optimizer.batch_size if optimizer.method != "gd" else None
    problem, iterates, _, _, record = _run(
        problem_or_gradient_fn,
        scheme,
        update=make_step(optimizer, _model_dim(problem_or_gradient_fn, x0), shrink),
        client=client,
        scheduler=scheduler,
        n_workers=n_workers,
        deadline=deadline,
        rounds=rounds,
        time_unit=time_unit,
        emulate=emulate,
        shift=shift,
        rates=rates,
        rng=rng,
        x0=x0,
        batch_size=batch,
        replace_workers=replace_workers,
        adapt=adapt,
        load_cost=load_cost,
    )
    losses, norms, distance, optimal_loss, name = _metrics(problem, iterates, loss)
    if accuracy is None and problem is not None:
        accuracy = problem.test_accuracy
    scores = None if accuracy is None else [accuracy(w) for w in iterates]
    test_accuracy = None if scores is None or scores[0] is None else np.array(scores, dtype=np.float64)
    return ClusterHistory(
        test_accuracy=test_accuracy,
        scheme=str(scheme.name),
        optimizer=optimizer.label,
        problem=name,
        loss=losses,
        grad_norm=norms,
        distance=distance,
        optimal_loss=optimal_loss,
        shrinkage=shrink,
        **record,
    )


def gradient_estimates(
    problem_or_gradient_fn,
    scheme,
    theta,
    *,
    deadline: float,
    rounds: int,
    client=None,
    scheduler: str | None = None,
    n_workers: int = 2,
    time_unit: float = 0.25,
    emulate: bool = True,
    shift: float | None = None,
    rates=None,
    rng=None,
    replace_workers: bool = True,
) -> tuple[np.ndarray, ClusterHistory]:
    """`rounds` decoded gradients at the fixed model `theta` on the cluster: (array (rounds, d), record).

    The cluster twin of :func:`gcdesign.training.gradient_estimates` (same
    arguments as :func:`train`); their mean squared error against the true
    gradient estimates :func:`gcdesign.expected_error`.
    """
    problem, iterates, estimates, _, record = _run(
        problem_or_gradient_fn,
        scheme,
        update=lambda current, estimate, t: current,
        client=client,
        scheduler=scheduler,
        n_workers=n_workers,
        deadline=deadline,
        rounds=rounds,
        time_unit=time_unit,
        emulate=emulate,
        shift=shift,
        rates=rates,
        rng=rng,
        x0=theta,
        batch_size=None,
        replace_workers=replace_workers,
    )
    losses, norms, distance, optimal_loss, name = _metrics(problem, iterates[:1], None)
    history = ClusterHistory(
        scheme=str(scheme.name),
        optimizer="fixed",
        problem=name,
        loss=np.repeat(losses, len(iterates)),
        grad_norm=np.repeat(norms, len(iterates)),
        distance=None if distance is None else np.repeat(distance, len(iterates)),
        optimal_loss=optimal_loss,
        **record,
    )
    return estimates, history


# ====================================================================== command line
def uncoded_scheme(scheme):
    """Uncoded wait-for-all on the same cluster: partition j on worker ``j mod N``, ``a = 1``,
    the scheme's total bits split equally (``is-sgd`` of :mod:`gcdesign.schemes`)."""
    from .schemes import make_scheme

    profile = ClusterProfile(scheme.straggler_probs, dim=1, partitions=scheme.encoding.shape[1])
    budget = max(int(np.asarray(scheme.bits).sum()), 2 * profile.n_workers)
    return make_scheme("is-sgd", profile, budget)


def time_to_loss(history: History, target: float) -> float:
    """Seconds of measured wall clock until the loss first reaches `target` (inf if never)."""
    hit = np.flatnonzero(history.loss <= target)
    unit = getattr(history, "time_unit", 1.0)
    return float(history.wall_clock[hit[0]] * unit) if hit.size else math.inf


def straggler_table(history: ClusterHistory, straggler_probs, *, groups: int | None = None) -> list[dict]:
    """Realized straggler frequency against the profile's p, per worker or per group of workers.

    Workers are grouped by p (sorted, `groups` equal groups; default: per
    worker up to 16 workers, else 8 groups). Each row carries the binomial 99%
    interval of the late count under p and whether the realized count is inside.
    """
    from scipy import stats

    p = np.asarray(straggler_probs, dtype=np.float64)
    n = p.size
    groups = (n if n <= 16 else 8) if groups is None else min(int(groups), n)
    order = np.argsort(p, kind="stable")
    rounds = history.on_time.shape[0]
    rows = []
    for members in np.array_split(order, groups):
        late = int((~history.on_time[:, members]).sum())
        trials = rounds * members.size
        # a sum of binomials with different p: its normal 99% interval (exact binomial for one worker)
        if members.size == 1:
            low, high = stats.binom.interval(0.99, rounds, p[members[0]])
        else:
            mean = rounds * p[members].sum()
            sd = math.sqrt(rounds * float(np.sum(p[members] * (1 - p[members]))))
            low, high = mean - 2.576 * sd, mean + 2.576 * sd
        rows.append(
            {
                "workers": ",".join(history.names[i] for i in members),
                "p": float(p[members].mean()),
                "realized": late / trials,
                "low": max(low, 0.0) / trials,
                "high": min(high, trials) / trials,
                "inside": bool(low <= late <= high),
            }
        )
    return rows


def add_cli_arguments(parser) -> None:
    """The arguments of ``gcdesign cluster`` (numbers parsed by the CLI's one number type)."""
    from .cli.args import SEED, Number, add_json
    from .cli.paths import input_file, output_file

    src = parser.add_argument_group("code (one of)")
    src.add_argument("--example", metavar="NAME", help="design for a bundled example profile")
    src.add_argument("--design", type=input_file, metavar="FILE", help="a design file (.json or .npz)")
    positive = {"low": 0, "low_open": True}
    add = parser.add_argument
    add(
        "--workers",
        type=Number("workers", integer=True, low=1),
        default=2,
        metavar="W",
        help="Dask worker processes of the LocalCluster (default 2)",
    )
    add(
        "--deadline",
        type=Number("deadline", **positive),
        required=True,
        metavar="TAU",
        help="round deadline in time units",
    )
    add("--rounds", type=Number("rounds", integer=True, low=1), required=True, metavar="R")
    add("--scheduler", metavar="ADDRESS", help="run on an existing Dask scheduler")
    add(
        "--time-unit",
        type=Number("time-unit", **positive),
        default=0.25,
        metavar="U",
        help="seconds per time unit (default 0.25)",
    )
    add(
        "--shift",
        type=Number("shift", low=0),
        default=None,
        metavar="T0",
        help="delay shift t0 (default deadline / 2)",
    )
    add(
        "--bits-per-worker",
        type=Number("bits-per-worker", **positive),
        default=None,
        metavar="X",
        help="with --example (default: the example's)",
    )
    add("--problem", default="logistic", help="digits problem: logistic (default), softmax, least-squares")
    add("--lr", type=Number("lr", **positive), default=0.5, help="gradient-descent step (default 0.5)")
    add(
        "--target-loss",
        type=Number("target-loss"),
        default=None,
        metavar="L",
        help="default: the best loss both runs reach",
    )
    add("--no-baseline", action="store_true", help="skip uncoded wait-for-all")
    add("--real", action="store_true", help="no emulated delays: only real slowness")
    add(
        "--traces",
        type=output_file("traces", suffixes=(".csv",)),
        metavar="FILE",
        help="write the measured round times (CSV, long format)",
    )
    add("--rng", type=SEED, default=0, help="seed (default 0)")
    add_json(parser, help="print the results as JSON")


def run_cli(args) -> int:
    """``gcdesign cluster``: coded training on digits on a Dask cluster, against uncoded wait-for-all."""
    import sys

    from .design import design
    from .io import load_design
    from .profile import load_example
    from .training import digits_problem

    if (args.example is None) == (args.design is None):
        raise InputError("give exactly one of --example NAME and --design FILE.")
    deadline, rounds, workers, time_unit = args.deadline, args.rounds, args.workers, args.time_unit
    shift = 0.5 * deadline if args.shift is None else args.shift
    if shift >= deadline:
        raise InputError(f"`shift` must be below the deadline {deadline:g}, got {shift:g}.")
    lr, seed = args.lr, args.rng
    if args.example is not None:
        profile, defaults = load_example(args.example, with_defaults=True)
        bits = defaults.get("bits_per_worker", 4) if args.bits_per_worker is None else args.bits_per_worker
        problem = digits_problem(args.problem, partitions=profile.partitions)
        profile = ClusterProfile(
            profile.straggler_probs, dim=problem.dim, partitions=profile.partitions, names=profile.names
        )
        options = {k: v for k, v in defaults.items() if k != "bits_per_worker"}
        code = design(profile, bits_per_worker=bits, **options)
    else:
        code = load_design(args.design)
        problem = digits_problem(args.problem, partitions=code.partitions)
    rates = None if args.real else delay_rates(code.straggler_probs, deadline=deadline, shift=shift)
    session = _Session(None, args.scheduler, workers)
    common = {
        "client": session.client,
        "rounds": rounds,
        "time_unit": time_unit,
        "rng": seed,
        "optimizer": gd(lr),
        "emulate": not args.real,
        "shift": shift,
        "rates": rates,
    }
    try:
        print(
            f"coded: {code.n_workers} logical workers on {workers if args.scheduler is None else 'the'} "
            f"Dask workers, deadline {deadline:g}, {rounds} rounds",
            file=sys.stderr,
        )
        coded = train(problem, code, deadline=deadline, **common)
        baseline = None
        if not args.no_baseline:
            print("uncoded wait-for-all on the same cluster", file=sys.stderr)
            baseline = train(problem, uncoded_scheme(code), deadline=math.inf, **common)
    finally:
        session.close()
    if args.traces:
        coded.write_traces(args.traces)
    if args.target_loss is not None:
        target = args.target_loss
    else:
        target = (
            float(coded.loss.min()) if baseline is None else float(max(coded.loss.min(), baseline.loss.min()))
        )
    overhead_ms = 1e3 * coded.overhead
    result = {
        "scheme": coded.scheme,
        "workers": code.n_workers,
        "rounds": rounds,
        "deadline": deadline,
        "time_unit": time_unit,
        "stragglers": straggler_table(coded, code.straggler_probs),
        "overhead_ms": {
            "median": float(np.median(overhead_ms)),
            "p95": float(np.percentile(overhead_ms, 95)),
        },
        "final_loss": float(coded.loss[-1]),
        "optimal_loss": problem.optimal_loss,
        "target_loss": target,
        "coded_seconds_to_target": time_to_loss(coded, target),
        "uncoded_seconds_to_target": None if baseline is None else time_to_loss(baseline, target),
        "uncoded_final_loss": None if baseline is None else float(baseline.loss[-1]),
        "coded_seconds": float(coded.wall_clock[-1] * time_unit),
        "uncoded_seconds": None if baseline is None else float(baseline.wall_clock[-1] * time_unit),
    }
    if args.json:
        from .cli.output import print_json

        print_json(result)  # a target never reached is "inf"
        return 0
    print(f"{'workers':<28} {'p':>7} {'realized':>9} {'99% interval':>17}")
    for row in result["stragglers"]:
        label = row["workers"] if len(row["workers"]) <= 28 else row["workers"][:25] + "..."
        flag = "" if row["inside"] else "  outside"
        print(
            f"{label:<28} {row['p']:7.3f} {row['realized']:9.3f}  [{row['low']:.3f}, {row['high']:.3f}]{flag}"
        )
    o = result["overhead_ms"]
    print(f"overhead beyond the deadline: median {o['median']:.2f} ms, p95 {o['p95']:.2f} ms")
    print(f"final loss {result['final_loss']:.6f} (optimum {problem.optimal_loss:.6f})")
    line = f"wall clock to loss {target:.6f}: coded {result['coded_seconds_to_target']:.2f} s"
    if baseline is not None:
        t_unc = result["uncoded_seconds_to_target"]
        line += f", uncoded wait-for-all {t_unc:.2f} s"
        if math.isfinite(t_unc) and result["coded_seconds_to_target"] > 0:
            line += f" ({t_unc / result['coded_seconds_to_target']:.2f}x)"
    print(line)
    return 0


__all__ = [
    "ClusterHistory",
    "add_cli_arguments",
    "delay_rates",
    "emulated_delays",
    "gradient_estimates",
    "partition_problem",
    "run_cli",
    "straggler_table",
    "time_to_loss",
    "train",
    "uncoded_scheme",
]
