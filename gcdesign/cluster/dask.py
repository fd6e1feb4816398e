r"""The dask.distributed transport: placement, pinned tasks, one scatter per worker, liveness.

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
:meth:`DaskTransport.start` submits one task per logical worker, pinned to
its Dask worker (``workers=[address]``, ``allow_other_workers=False``,
``pure=False``); the tasks of one Dask worker go out in one ``client.map``
(one graph update per Dask worker and round). A task runs
:func:`~gcdesign.cluster.worker.work_round` and sleeps its emulated delay
after :func:`distributed.secede`, so the delays of the logical workers
sharing one process overlap (as on separate machines) while their
computations share the process's thread. Every round runs as its own tasks:
a late task keeps sleeping beside the next round's (its delay is cut to the
hold, and a task that starts after the hold returns at once: no backlog).
The master watches the tasks finish (:class:`distributed.as_completed`,
non-blocking) and fetches the bytes of the round's tasks in time in one
``client.gather``; a late result is released unread.

Failures
--------
A Dask worker that leaves the cluster (its process died) makes its logical
workers stragglers from the next liveness poll on (the scheduler is asked
every 0.25 s, in a thread). With ``replace_workers=True``, a Dask worker that
joins later (a nanny's restart, a new machine) adopts them: their partitions
are scattered to it and they answer again.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .._validate import InputError
from ..parallel import connect_scheduler, process_count
from .engine import Arrival, RoundOrder
from .worker import Reply, held_partitions, lacking_partitions, reshard, warm_up, work_round

#: Seconds between two polls of the scheduler for workers that left or joined.
LIVENESS_INTERVAL = 0.25


def is_lost(exc) -> bool:
    """A task that failed because its worker or its data went away (a straggler, not a bug)."""
    from asyncio import CancelledError

    from distributed import KilledWorker

    lost = (CancelledError, KilledWorker, ConnectionError, OSError)
    return isinstance(exc, lost) or type(exc).__name__ in ("FutureCancelledError", "CommClosedError")


def dask_round(shard, worker, round_index, w, round_start, time_unit, delay, hold, seed) -> Reply:
    """:func:`work_round` in a Dask task: the emulated sleep leaves the worker's thread pool."""
    return work_round(
        shard, worker, round_index, w, round_start, time_unit, delay, hold, seed, sleep=_seceded_sleep
    )


def _seceded_sleep(seconds: float) -> None:
    from distributed import secede

    secede()  # leave the thread pool: other logical workers compute while this one waits
    time.sleep(seconds)


class DaskTransport:
    """A :class:`~gcdesign.cluster.engine.Transport` over a ``distributed.Client``.

    Places the shards (``make_shard(logical_workers) -> Shard``) and warms every
    Dask worker up with one message at `w` before it returns.
    """

    def __init__(self, client, scheme, make_shard: Callable, w, *, replace_workers: bool = True):
        from distributed import as_completed

        self.client = client
        self.make_shard = make_shard
        self.w = w
        self.n = scheme.encoding.shape[0]
        self.replace_workers = replace_workers
        self.run_id = uuid.uuid4().hex[:8]
        self.poller = ThreadPoolExecutor(1, thread_name_prefix="gcdesign-liveness")
        self.liveness = None  # the running poll of the scheduler (a concurrent Future)
        self.liveness_started = 0.0
        self.queue = as_completed(loop=client.loop)
        self.tags: dict[str, tuple[int, int]] = {}
        self.pending: dict[str, object] = {}
        self.current = -1  # the round started last
        self.finished: dict[int, object] = {}  # worker -> future of the current round, until collected
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
                if not (is_lost(exc) or isinstance(exc, KeyError)):
                    raise
                self._forget(address)

    # ------------------------------------------------------------ placement and liveness
    def _place(self, address: str) -> None:
        logical = [i for i in range(self.n) if self.where[i] == address]
        if not logical:
            return
        shard = self.make_shard(logical)
        [self.shards[address]] = self.client.scatter([shard], workers=[address], broadcast=False, hash=False)
        # one message before round 0, so imports and first-call costs are not charged to a round
        self.client.submit(
            warm_up,
            self.shards[address],
            logical[0],
            self.w,
            workers=[address],
            allow_other_workers=False,
            pure=False,
        ).result()

    def _forget(self, address: str) -> None:
        self.shards.pop(address, None)
        self.where = [None if a == address else a for a in self.where]

    def _scheduler_workers(self) -> set:
        # a direct call: scheduler_info() returns a cache that a periodic update can empty
        return set(self.client.nthreads())

    def _check_workers(self) -> None:
        """Apply the last finished liveness poll and start the next (in a thread: it can take 50 ms)."""
        if self.liveness is not None and not self.liveness.done():
            return
        if self.liveness is not None and time.perf_counter() - self.liveness_started < LIVENESS_INTERVAL:
            return
        up = None if self.liveness is None or self.liveness.exception() else self.liveness.result()
        self.liveness = self.poller.submit(self._scheduler_workers)
        self.liveness_started = time.perf_counter()
        if up is None:
            return
        for address in [a for a in self.shards if a not in up]:
            self._forget(address)
        newcomers = sorted(up - self.seen)
        self.seen |= up - set(newcomers)
        orphans = [i for i in range(self.n) if self.where[i] is None]
        if not (self.replace_workers and newcomers and orphans):
            self.seen |= set(newcomers)
            return
        for k, address in enumerate(newcomers):
            self._adopt(address, orphans[k :: len(newcomers)])

    def _adopt(self, address: str, orphans: list[int]) -> None:
        for i in orphans:
            self.where[i] = address
        try:
            self._place(address)
        except Exception as exc:  # noqa: BLE001 - it left again before the scatter: retry next poll
            if not (is_lost(exc) or isinstance(exc, KeyError)):
                raise
            for i in orphans:
                self.where[i] = None
            self.shards.pop(address, None)
            return
        self.seen.add(address)

    # ------------------------------------------------------------ the Transport interface
    def start(self, order: RoundOrder) -> list[int]:
        """One ``client.map`` per Dask worker (one graph update each), one task per logical worker."""
        self._check_workers()  # who left, who joined: from the poll started a round ago
        self.current = order.index
        self.finished.clear()  # the last round's results that were not collected (late) are released
        groups: dict[str, list[int]] = {}
        for i, address in enumerate(self.where):
            if address is not None:
                groups.setdefault(address, []).append(i)
        started = []
        r = order.index
        for address, logical in groups.items():
            k = len(logical)
            futures = self.client.map(
                dask_round,
                [self.shards[address]] * k,
                logical,
                [r] * k,
                [order.w] * k,
                [order.start_time] * k,
                [order.time_unit] * k,
                [order.delay(i) for i in logical],
                [order.hold] * k,
                [order.seed] * k,
                key=[f"gcdesign-{self.run_id}-{r}-{i}" for i in logical],
                workers=[address],
                allow_other_workers=False,
                pure=False,
            )
            for i, future in zip(logical, futures, strict=True):
                self.tags[future.key] = (r, i)
                self.pending[future.key] = future
            self.queue.update(futures)
            started += logical
        return started

    def poll(self, timeout: float) -> list[Arrival]:
        """The tasks that finished (in time or not); an error of the computation is raised."""
        batch = self.queue.next_batch(block=False)
        if not batch and timeout > 0:
            if self.liveness is not None and self.liveness.done():  # a worker that left is not waited for
                self._check_workers()
            time.sleep(timeout)
            batch = self.queue.next_batch(block=False)
        now = time.perf_counter()
        arrivals = []
        for future in batch:
            round_index, worker = self.tags.pop(future.key)
            self.pending.pop(future.key, None)  # a late result is released unread
            if future.status == "error":
                exc = future.exception()
                if not is_lost(exc):
                    raise RuntimeError(
                        f"the task of worker {worker} in round {round_index} failed: {exc!r}"
                    ) from exc
                continue
            if future.status != "finished":
                continue
            if round_index == self.current:  # an older round's result is released unread
                self.finished[worker] = future
            arrivals.append(Arrival(round_index, worker, now))
        return arrivals

    def alive(self) -> set[int]:
        """The logical workers placed on a Dask worker that is up (as of the last liveness poll)."""
        return {i for i, a in enumerate(self.where) if a is not None and a in self.shards}

    def placement(self) -> list[str | None]:
        """The Dask worker address of each logical worker (None: lost)."""
        return list(self.where)

    def collect(self, arrivals) -> list[Reply]:
        """The replies of `arrivals` in one ``client.gather``; every other finished result is released."""
        futures = [self.finished[a.worker] for a in arrivals if a.round == self.current]
        self.finished.clear()
        return [Reply(*reply) for reply in self.client.gather(futures, errors="skip")]

    def redesign(self, scheme) -> int:
        """Switch to `scheme` from the next round, moving only the data a Dask worker lacks.

        Each Dask worker receives the partitions its logical workers hold under
        `scheme` and did not before (one scatter to that worker only) and rebuilds its
        shard in place (:func:`~gcdesign.cluster.worker.reshard`, a pinned task): what
        it keeps never travels. Waits until every shard is rebuilt, so the transfer
        falls between rounds. Returns the partitions sent (each once per Dask worker).
        """
        old = self.make_shard.scheme
        self.make_shard = self.make_shard.for_scheme(scheme)
        sent = 0
        rebuilt = []
        for address, shard in list(self.shards.items()):
            logical = [i for i in range(self.n) if self.where[i] == address]
            keep = held_partitions(scheme.encoding, logical)
            new_parts = self.make_shard.parts(lacking_partitions(old.encoding, scheme.encoding, logical))
            payload = None
            if new_parts:
                sent += len(new_parts)
                [payload] = self.client.scatter([new_parts], workers=[address], broadcast=False, hash=False)
            self.shards[address] = self.client.submit(
                reshard,
                shard,
                scheme,
                payload,
                keep,
                workers=[address],
                allow_other_workers=False,
                pure=False,
            )
            rebuilt.append(self.shards[address])
        self.client.gather(rebuilt)  # the new shards are in place before the next round starts
        return sent

    def close(self) -> None:
        """Cancel what is still running (late results are not needed); stop the liveness poller."""
        if self.pending:
            with contextlib.suppress(Exception):  # a cluster already gone has nothing to cancel
                self.client.cancel(list(self.pending.values()))
        self.pending.clear()
        self.finished.clear()
        self.poller.shutdown(wait=True)


@contextlib.contextmanager
def dask_client(workers=2, scheduler=None):
    """The ``distributed.Client`` of one run, closed afterwards when it is made here.

    `workers` is a ``distributed.Client`` (used as is) or a number of processes
    (a ``LocalCluster`` with one thread each; -1: one per core); `scheduler` an
    address (``"tcp://host:8786"``) or a Client, in place of `workers`.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if isinstance(scheduler, Client):
            yield scheduler
            return
        with connect_scheduler(scheduler) as client:
            yield client
        return
    if isinstance(workers, Client):
        yield workers
        return
    n = local_processes(workers)
    with (
        LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def local_processes(workers) -> int:
    """The processes of the LocalCluster that an integer `workers` asks for (-1: one per core)."""
    try:
        return process_count(workers)
    except InputError:
        raise InputError(
            f"`workers` must be an integer >= 1 (Dask worker processes; -1: one per core) "
            f"or a distributed.Client, got {workers!r}."
        ) from None


__all__ = ["LIVENESS_INTERVAL", "DaskTransport", "dask_client", "dask_round", "is_lost", "local_processes"]
