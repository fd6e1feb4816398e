"""Who runs a list of independent tasks: ``workers=`` for studies and Monte-Carlo sweeps.

One convention for every embarrassingly parallel loop of the package (scipy's
``workers=`` habit, plus Dask):

* ``None`` or ``1``: serially, in this process;
* an int ``n >= 2`` (``-1``: every core this process may use): a local
  :class:`concurrent.futures.ProcessPoolExecutor` of ``n`` processes started
  with the **spawn** method (forking a process whose numba kernels already ran
  on the OpenMP threading layer aborts the child);
* a map-like callable ``workers(fn, tasks)`` (``map``, ``multiprocessing.Pool.map``,
  ``ProcessPoolExecutor.map``, ``client.map``): called once with every task;
* a :class:`dask.distributed.Client` (or ``scheduler=`` an address such as
  ``"tcp://10.0.0.1:8786"``): the tasks become Dask tasks.

Results always come back **in task order**, and a task's result never depends
on which process ran it: callers give every task its own seed (or its own
counter-based random stream) before mapping, never one per process. Hence
the same numbers whatever runs them. Functions and tasks must pickle for
anything but the serial path (module-level functions, plain data).

**One meaning per keyword.** Outside the cluster package, ``workers=`` is always
this: who runs the independent tasks (a pool of processes, a map-like, a Dask
client), never a count of threads. ``threads=`` is always the threads of one
process (numba's thread count, CP-SAT's search threads); :func:`gcdesign.monte_carlo_error`
takes both: ``workers`` runs its batches of trials, ``threads`` is the numba thread
count inside each batch. The gradient-coding workers of a profile are ``N``,
``n_workers``.

:func:`open_workers` turns ``workers`` / ``scheduler`` into something reusable
for many :func:`parallel_map` calls (one process pool or one client for a
whole study). :func:`numba_threads` scopes a change of numba's thread count,
:func:`single_blas_thread` pins BLAS to one thread.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._validate import InputError

WORKERS_ALLOWED = (
    "None or 1 (serial), -1 (all cores), an integer >= 2 (a spawn process pool), "
    "a map-like callable or a dask.distributed Client"
)


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def process_count(workers) -> int:
    """The number of processes an integer `workers` asks for (``-1``: :func:`cpu_count`).

    Raises :class:`~gcdesign._validate.InputError` for 0, -2, 1.5, True, ...
    """
    if (
        isinstance(workers, bool)
        or not isinstance(workers, numbers.Integral)
        or not (workers == -1 or workers >= 1)
    ):
        raise InputError(f"`workers` must be {WORKERS_ALLOWED}; got {workers!r}.")
    return cpu_count() if workers == -1 else int(workers)


def _dask_client(workers):
    """The dask.distributed Client behind `workers` (a Client or its bound ``map``), else None."""
    distributed = sys.modules.get("distributed")  # whoever made a Client has imported it
    if distributed is None:
        return None
    owner = getattr(workers, "__self__", None)
    if isinstance(owner, distributed.Client) and getattr(workers, "__name__", "") == "map":
        return owner
    return workers if isinstance(workers, distributed.Client) else None


def describe_workers(workers=None, scheduler=None) -> str:
    """Who runs the tasks, in words (for summaries): ``"serial"``, ``"2 processes (spawn)"``, ..."""
    if scheduler is not None:
        return f"Dask scheduler {scheduler}" if isinstance(scheduler, str) else "a Dask client"
    if workers is None:
        return "serial"
    if _dask_client(workers) is not None:
        return "a Dask client"
    if callable(workers):
        return f"the map-like callable {getattr(workers, '__qualname__', type(workers).__name__)}"
    n = process_count(workers)
    return "serial" if n == 1 else f"{n} processes (spawn)"


def _check_workers(workers) -> None:
    if workers is None or callable(workers) or _dask_client(workers) is not None:
        return
    process_count(workers)


def parallel_map(
    fn: Callable[[Any], Any],
    tasks: Iterable,
    *,
    workers=None,
    scheduler=None,
    progress: Callable[[], Any] | None = None,
) -> list:
    """``[fn(t) for t in tasks]``, run by `workers` (see the module docstring); results in task order.

    Parameters
    ----------
    fn : callable
        Applied to every task. A module-level function unless the run is serial.
    tasks : iterable
        One argument of `fn` per task (a tuple when `fn` unpacks several).
    workers : None, int, map-like callable or dask.distributed.Client
        None or 1: serial; ``n >= 2``: a spawn process pool of ``min(n, len(tasks))``
        processes; -1: as many as :func:`cpu_count`; a callable: ``workers(fn, tasks)``;
        a Client (or ``client.map``): Dask tasks, gathered in order.
    scheduler : str or dask.distributed.Client, optional
        A Dask scheduler address to connect to for this call (closed afterwards), or a
        Client. Give `workers` or `scheduler`, not both.
    progress : callable, optional
        Called with no argument once per result, in task order.

    Returns
    -------
    list
        ``fn(task)`` for every task, in the order of `tasks`.

    Examples
    --------
    >>> parallel_map(abs, [-3, 1, -2])
    [3, 1, 2]
    >>> parallel_map(abs, [-3, 1, -2], workers=map)
    [3, 1, 2]
    """
    out = []
    for result in parallel_imap(fn, tasks, workers=workers, scheduler=scheduler):
        out.append(result)
        if progress is not None:
            progress()
    return out


def parallel_imap(fn: Callable[[Any], Any], tasks: Iterable, *, workers=None, scheduler=None) -> Iterator:
    """Lazy :func:`parallel_map`: yields ``fn(task)`` in task order as the results come in.

    On the serial path each task runs only when its result is asked for, so a caller
    that reduces the results one by one holds one at a time.
    """
    tasks = list(tasks)
    if scheduler is not None:
        if workers is not None:
            raise InputError("give `workers` or `scheduler`, not both (`scheduler` runs everything on Dask).")
        with open_workers(scheduler=scheduler) as client:
            yield from parallel_imap(fn, tasks, workers=client)
        return
    _check_workers(workers)
    client = _dask_client(workers)
    if client is not None:
        futures = client.map(fn, tasks, pure=False)
        try:
            for future in futures:
                yield future.result()
        finally:
            client.cancel(futures)
        return
    if callable(workers):
        yield from workers(fn, tasks)
        return
    n = 1 if workers is None else min(process_count(workers), len(tasks))
    if n <= 1:
        yield from map(fn, tasks)
        return
    import pickle

    with _process_pool(n) as pool:
        try:
            yield from pool.map(fn, tasks)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            # lambdas, local functions, open handles: refused by the pickler on the way out
            if not isinstance(exc, pickle.PicklingError) and "pickle" not in str(exc):
                raise
            raise InputError(
                f"`workers` = {workers!r} runs the tasks in other processes, but a task does not pickle "
                f"({exc}); use module-level functions and picklable data, or workers=None."
            ) from None


def _process_pool(n: int):
    """A spawn pool of `n` processes, each with ``cpu_count() // n`` BLAS, OpenMP and numba threads.

    Without the cap every process starts a thread per core: n processes on n cores
    then run n^2 spinning threads, which made a 2-process study 3x slower than the
    serial one (``studies/README.md``). Thread counts change no result: training runs
    on one BLAS thread (:func:`single_blas_thread`) and the numba Monte-Carlo kernels
    seed every chunk, not every thread.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, cpu_count() // n)
    return ProcessPoolExecutor(
        max_workers=n,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_limit_threads,
        initargs=(threads,),
    )


def _limit_threads(threads: int) -> None:
    """Pool initializer: cap this process's BLAS / OpenMP pools and numba's threads at `threads`."""
    global _THREAD_LIMITS
    from threadpoolctl import threadpool_limits

    _THREAD_LIMITS = threadpool_limits(threads)  # kept alive for the process's lifetime
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a core dependency
        pass


_THREAD_LIMITS = None


def connect_scheduler(address, *, timeout: float = 10.0):
    """A ``distributed.Client`` connected to the scheduler at `address` (the caller closes it).

    Refuses in one line an address that is not a non-empty string, or where no
    scheduler answers within `timeout` seconds (Dask's own default waits 30 s).
    """
    if not isinstance(address, str) or not address.strip():
        raise InputError(
            f"`scheduler` must be a Dask scheduler address such as 'tcp://host:8786' or a Client, "
            f"got {address!r}."
        )
    from dask.distributed import Client

    address = address.strip()
    try:
        _probe_handshake(address, timeout)
        return Client(address, timeout=f"{timeout:g}s", set_as_default=False)
    except OSError as exc:  # TimeoutError included: nothing answered in time
        raise InputError(f"`scheduler` {address!r}: cannot connect ({exc}).") from None
    except ValueError as exc:  # Dask's parse of the address: no port, unknown scheme
        raise InputError(
            f"`scheduler` must be a Dask scheduler address such as 'tcp://host:8786', "
            f"got {address!r} ({exc})."
        ) from None


def _probe_handshake(address: str, timeout: float) -> None:
    """Open and close one Dask comm to `address`, handshake included, within `timeout` s.

    ``distributed.Client(timeout=...)`` bounds the TCP connect but not the handshake
    read that follows it (``distributed.comm.core.connect``), so a port that accepts
    connections and never speaks Dask would hang the Client forever. The probe runs on
    its own event loop in a helper thread (the caller may be inside a running loop).
    Raises TimeoutError (an OSError) when no handshake arrives within `timeout` + 1 s.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    async def probe():
        try:
            # connect's own timeout bounds the TCP connect (its error names it); the
            # margin lets that error through before the handshake bound fires
            comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout + 1.0)
        except TimeoutError:  # asyncio's, the builtin since 3.11
            raise TimeoutError(f"connected, but no Dask handshake within {timeout + 1.0:g} s") from None
        await comm.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, probe()).result()


@contextlib.contextmanager
def open_workers(workers=None, *, scheduler=None) -> Iterator:
    """Open what `workers` / `scheduler` describe once, for many :func:`parallel_map` calls.

    Yields a value for ``parallel_map(..., workers=...)``: None (serial), the ``map``
    of one spawn process pool (an int ``>= 2`` or -1), `workers` itself (a map-like
    callable or a Client), or a Client connected to `scheduler` (closed on exit; a
    Client given as `scheduler` is left open).

    Examples
    --------
    >>> with open_workers(1) as run:
    ...     parallel_map(abs, [-1, 2], workers=run)
    [1, 2]
    """
    if scheduler is not None:
        if workers is not None:
            raise InputError("give `workers` or `scheduler`, not both (`scheduler` runs everything on Dask).")
        distributed = sys.modules.get("distributed")
        if distributed is not None and isinstance(scheduler, distributed.Client):
            yield scheduler
            return
        client = connect_scheduler(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    _check_workers(workers)
    if workers is None or callable(workers) or _dask_client(workers) is not None:
        yield workers
        return
    n = process_count(workers)
    if n <= 1:
        yield None
        return
    with _process_pool(n) as pool:
        yield pool.map


def single_blas_thread():
    """Context manager: the block's BLAS calls (numpy's ``@``, SVDs) run on one thread.

    Two uses. Results: threaded OpenBLAS splits long dot products and
    matrix-vector reductions by thread, so a sum's rounding, hence a training
    history, depends on the thread count; on one thread it is the same on any
    machine and in any process (the harness trains this way). Speed: batched
    SVDs of small matrices run far faster on one thread, and a busy machine
    makes threaded OpenBLAS thrash (100x slower seen at N = 100).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


@contextlib.contextmanager
def numba_threads(threads: int | None) -> Iterator[int]:
    """Run the block with numba's thread count set to `threads`, then restore the previous count.

    ``None`` leaves the count alone. Counts above ``NUMBA_NUM_THREADS`` (the size of
    numba's pool, fixed at start-up) are capped. Yields the count in force.

    Examples
    --------
    >>> import numba
    >>> before = numba.get_num_threads()
    >>> with numba_threads(1) as n:
    ...     n, numba.get_num_threads()
    (1, 1)
    >>> numba.get_num_threads() == before
    True
    """
    import numba

    if threads is None:
        yield numba.get_num_threads()
        return
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise InputError(f"`threads` must be None or an integer >= 1, got {threads!r}.")
    previous = numba.get_num_threads()
    numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        yield numba.get_num_threads()
    finally:
        numba.set_num_threads(previous)


__all__ = [
    "WORKERS_ALLOWED",
    "connect_scheduler",
    "cpu_count",
    "describe_workers",
    "numba_threads",
    "open_workers",
    "parallel_imap",
    "parallel_map",
    "process_count",
]
