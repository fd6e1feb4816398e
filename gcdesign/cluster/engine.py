r"""The master's round, whatever carries the messages: deadline, arrivals, decode, step, traces.

:class:`Engine` runs the rounds of a coded training run (MATH.md section 14).
Round ``r``:

1. starts at :math:`t_r`: draws the emulated delays of the round
   (:func:`~gcdesign.cluster.emulated_delays`, when emulating) and sends the
   model ``w`` to every free logical worker (:meth:`Transport.start`);
2. waits on the wall clock until :math:`t_r + u\tau` or until every worker it
   started has answered or is gone (:meth:`Transport.poll`,
   :meth:`Transport.alive`);
3. takes the replies that arrived by the deadline (:meth:`Transport.collect`)
   and decodes them with :func:`gcdesign.runtime.decode`; a late reply is timed
   for the traces and never collected nor decoded;
4. applies the update (the optimizer step of
   :func:`gcdesign.training.optimizers.make_step`) and starts round ``r + 1`` at
   once.

The engine records, per round and logical worker, the time from the round's
start until the master learned of the reply (``inf``: never), what was
decoded, the compute times and start offsets the replies report, the
emulated delays, where each worker ran, and the overhead of each round. It
never imports a transport: :mod:`gcdesign.cluster.dask` and the torch
transport plug in through :class:`Transport`.

The transport contract
----------------------
A transport connects the master to ``N`` *logical workers* (the rows of the
encoding), however many machines or processes run them. It is created,
connected and warmed up (shards placed, first-call costs paid) before the
engine's first round, and closed by whoever created it.

Threading. The engine calls every method from one thread, the master's,
in this order per round: :meth:`~Transport.start` once, then
:meth:`~Transport.poll` and :meth:`~Transport.alive` any number of times,
:meth:`~Transport.placement` once, :meth:`~Transport.collect` at most once;
:meth:`~Transport.close` is not the engine's. A transport may use threads of
its own (a liveness poller, one receiver thread per worker that blocks in
``wait()`` without a timeout): it hands their news over in :meth:`poll`, and
:meth:`poll` must be safe against them.

Rounds and tags. Every reply carries the round it answers (a per-round tag
on the wire). Replies of older rounds reach the engine through :meth:`poll`
like any other: the engine times them (the trace of that round) and never
asks for their payload. The transport drops them: it releases a late Dask
result unread, or drains a late point-to-point message (receives it and
discards the bytes) before it sends that worker its next round.

No backlog. :meth:`start` gives a round only to workers that can take it
and returns them; the engine waits for those only. A transport whose
workers run one round at a time (torch ranks) does not start a worker whose
reply to an earlier round has not arrived (it is still busy: late again);
a transport that runs each round as its own task (Dask) may start every
worker, provided a task that starts after the hold returns at once without
computing (:func:`gcdesign.cluster.worker.work_round` does). Either way the
round's reply is the worker's answer to *this* round.

Payload. :meth:`collect` returns :class:`~gcdesign.cluster.worker.Reply`
tuples ``(round, worker, start_offset, compute, payload)``; ``payload`` is the
bytes of ``runtime.Message.to_bytes()`` (or a :class:`gcdesign.runtime.Message`),
or None when the worker sends nothing (no bits, no partitions: it still
counts as on time). The engine decodes the payloads with
:func:`gcdesign.runtime.decode`, which checks every header against the
scheme.

Failures. A worker whose machine or process died leaves
:meth:`alive` (from the next check on); it is not waited for, its replies
never come, and its rounds are recorded as late (``inf``). A transport may
bring it back (Dask re-places the orphans on a worker that joins) and then
lists it in :meth:`alive` and :meth:`placement` again. A reply that reports
an *error* of the worker's computation (a bug, not a loss) is raised by
:meth:`poll` as ``RuntimeError`` naming the worker and the round; the run
stops.

Time. The engine measures on the master's ``time.perf_counter()``; an
:class:`Arrival`'s ``time`` is that clock's reading when the master learned
of the reply (not the worker's clock). :class:`RoundOrder` ``start_time`` is
``time.time()`` at the round's start, for the workers' emulated sleep
(synchronized clocks assumed, as NTP gives within milliseconds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from .. import runtime
from .emulation import round_delays
from .history import record_fields
from .worker import Reply

#: Seconds between two looks at the transport while waiting for the deadline (the poll timeout).
POLL_INTERVAL = 0.002


@dataclass(frozen=True, eq=False)
class RoundOrder:
    """What the master sends for round `index`; the transport hands each worker its share.

    Attributes
    ----------
    index : int
        The round ``r`` (the tag of its replies).
    w : ndarray (d,)
        The model (do not modify).
    start_time : float
        ``time.time()`` at the round's start.
    time_unit : float
        Seconds per time unit ``u``.
    delays : ndarray (N,) or None
        The emulated :math:`D_i` in time units (None: no emulation, only real slowness).
    hold : float
        Time units after the start past which the round is over (``2 tau``, ``inf``
        without a deadline): a delay is cut to it, a task that starts later skips the round.
    seed : int
        The run's seed (counter-based streams, :func:`~gcdesign.cluster.emulation.counter_rng`).
    """

    index: int
    w: np.ndarray
    start_time: float
    time_unit: float
    delays: np.ndarray | None
    hold: float
    seed: int

    def delay(self, worker: int) -> float | None:
        """Worker `worker`'s emulated delay (time units), or None without emulation."""
        return None if self.delays is None else float(self.delays[worker])


class Arrival(NamedTuple):
    """News that logical `worker`'s reply to round `round` is in (its payload is not read yet)."""

    round: int
    worker: int
    time: float  # the master's time.perf_counter() when it learned


@runtime_checkable
class Transport(Protocol):
    """How the engine reaches its logical workers (the contract: see the module docstring)."""

    def start(self, order: RoundOrder) -> Collection[int]:
        """Send round `order.index` to every logical worker that is alive and free; return them.

        Non-blocking (the send may complete in the background). A worker still
        busy with an earlier round is not started unless the transport can run the
        new round beside the old one and skip the old one's work (no backlog).
        """
        ...

    def poll(self, timeout: float) -> list[Arrival]:
        """The replies (of any round) that came in since the last call, waiting up to `timeout` s for one.

        Returns at once when some are in; ``timeout = 0`` never waits. Raises
        ``RuntimeError`` for a worker whose computation failed (not for one that died).
        """
        ...

    def alive(self) -> Collection[int]:
        """The logical workers that can still answer (whose machine or process is up)."""
        ...

    def placement(self) -> Sequence[object]:
        """Where each logical worker runs now (N labels: an address, a rank; None: lost)."""
        ...

    def collect(self, arrivals: Sequence[Arrival]) -> list[Reply]:
        """The replies of `arrivals` (the current round's, on time), at once.

        A reply lost in between (its worker died after finishing) may be missing.
        """
        ...

    def close(self) -> None:
        """Stop what still runs and release everything (called by the transport's owner)."""
        ...


@dataclass
class RoundRecord:
    """What the engine measured in one run (rounds x N arrays; see :class:`ClusterHistory`)."""

    round_times: np.ndarray
    arrived: np.ndarray
    delays: np.ndarray | None
    compute_times: np.ndarray
    start_offsets: np.ndarray
    placement: np.ndarray
    overhead: np.ndarray
    wall_time: np.ndarray  # seconds from the first round's start to the end of each round (rounds + 1,)
    bits: np.ndarray  # bits received per round (rounds + 1,), 0 first
    adaptation: tuple = ()  # one dict per design change of an adapter (see ClusterHistory)
    final_scheme: object = None  # the scheme in use at the end (the adapter's last design)


class Engine:
    """The master of one run: rounds against a deadline over a :class:`Transport`.

    Parameters
    ----------
    transport : Transport
        Connected and warmed up.
    scheme : Design or Scheme
        Checked (:func:`gcdesign.schemes.check_scheme`); decodes the replies.
    time_unit : float
        Seconds per time unit ``u``.
    deadline : float
        :math:`\\tau` in time units (``inf``: wait for every started worker).
    rates : ndarray (N,) or None
        Emulated delay rates :math:`\\mu_i` (None: no emulation).
    shift : float
        :math:`t_0` of the emulated delays.
    seed : int
        The run's seed.
    load_cost : ndarray (N,) or None
        Emulated compute time per held partition: the delays follow the current
        design's loads (:func:`~gcdesign.cluster.emulation.round_delays`).
    adapter : object or None
        Follows the cluster between rounds (:mod:`gcdesign.cluster.adaptive`):
        ``adapter.observe(r, late) -> bool`` after round ``r``; when True the run
        switches to ``adapter.design`` from round ``r + 1``, and when its layout or
        bits differ the transport moves the data (``transport.redesign(design) ->
        partitions sent``, a method of transports that support adaptation).
    """

    def __init__(
        self,
        transport: Transport,
        scheme,
        *,
        time_unit,
        deadline,
        rates,
        shift,
        seed,
        load_cost=None,
        adapter=None,
    ):
        self.transport = transport
        self.scheme = scheme
        self.n = scheme.encoding.shape[0]
        self.time_unit = float(time_unit)
        self.deadline = float(deadline)
        self.hold = 2.0 * self.deadline if math.isfinite(self.deadline) else math.inf
        self.rates, self.shift, self.seed = rates, shift, seed
        self.load_cost, self.adapter = load_cost, adapter
        self.adaptation: list[dict] = []
        if adapter is not None and not callable(getattr(transport, "redesign", None)):
            raise TypeError(
                f"{type(transport).__name__} cannot move data: it has no redesign(design) method."
            )
        self.starts: list[float] = []  # perf_counter at each round's start
        self.times: list[np.ndarray] = []  # time units from the round's start to each arrival
        self.computes: list[np.ndarray] = []
        self.offsets: list[np.ndarray] = []

    def _take(self, arrivals, ready: dict, current: int, end: float) -> None:
        """Time `arrivals`; keep those of round `current` that came by `end` in `ready`."""
        for a in arrivals:
            self.times[a.round][a.worker] = (a.time - self.starts[a.round]) / self.time_unit
            if a.round == current and a.time <= end:
                ready[a.worker] = a

    def _waiting(self, started, ready: dict) -> bool:
        """Some started worker has not answered and can still answer."""
        missing = [i for i in started if i not in ready]
        if not missing:
            return False
        alive = self.transport.alive()
        return any(i in alive for i in missing)

    def round(self, w, round_index: int):
        """One round: ``(replies in time {worker: payload}, delays, placement, decision time)``.

        The decision time is the master's ``perf_counter()`` at the deadline, or
        at the last arrival when every started worker answered earlier.
        """
        delays = None
        if self.rates is not None:
            loads = None if self.load_cost is None else _loads(self.scheme.encoding)
            delays = round_delays(self.seed, round_index, self.rates, self.shift, self.load_cost, loads)
        start_wall, start = time.time(), time.perf_counter()
        self.starts.append(start)
        self.times.append(np.full(self.n, math.inf))
        self.computes.append(np.full(self.n, math.nan))
        self.offsets.append(np.full(self.n, math.nan))
        order = RoundOrder(round_index, w, start_wall, self.time_unit, delays, self.hold, self.seed)
        started = self.transport.start(order)
        placement = np.array(self.transport.placement(), dtype=object)
        ready: dict[int, Arrival] = {}
        end = start + self.time_unit * self.deadline
        while True:
            now = time.perf_counter()
            if now >= end or not self._waiting(started, ready):
                break
            self._take(self.transport.poll(min(POLL_INTERVAL, end - now)), ready, round_index, end)
        decided = time.perf_counter()
        self._take(self.transport.poll(0.0), ready, round_index, end)  # what came in meanwhile
        payloads: dict[int, bytes | None] = {}
        if ready:  # the payloads in time, in one transfer
            for reply in self.transport.collect(list(ready.values())):
                self.offsets[round_index][reply.worker] = reply.start_offset
                self.computes[round_index][reply.worker] = reply.compute
                payloads[reply.worker] = reply.payload
        return payloads, delays, placement, min(decided, end)

    def run(self, w, rounds: int, update: Callable) -> tuple[list, list, RoundRecord]:
        """`rounds` rounds from `w`, ``w = update(w, estimate, r)`` after each.

        Returns ``(iterates, estimates, record)``: the rounds + 1 models, the
        rounds decoded estimates, and the :class:`RoundRecord`.
        """
        n = self.n
        iterates, estimates = [w], []
        arrived = np.zeros((rounds, n), dtype=bool)
        overhead, round_wall = np.zeros(rounds), np.zeros(rounds)
        delays = np.full((rounds, n), math.nan) if self.rates is not None else None
        placement = np.empty((rounds, n), dtype=object)
        bits = np.zeros(rounds + 1, dtype=np.int64)
        decided = None
        for r in range(rounds):
            payloads, drawn, placement[r], decided_now = self.round(w, r)
            if r:
                overhead[r - 1] = self.starts[r] - decided
                round_wall[r - 1] = self.starts[r] - self.starts[r - 1]
            decided = decided_now
            if drawn is not None:
                delays[r] = drawn
            sent = [m for m in payloads.values() if m is not None]
            for i, m in payloads.items():
                arrived[r, i] = m is not None
            bits[r + 1] = 8 * sum(len(m) if isinstance(m, bytes) else m.nbytes for m in sent)
            estimate = runtime.decode(self.scheme, sent) if sent else np.zeros(np.size(w))
            estimates.append(estimate)
            w = update(w, estimate, r)
            iterates.append(w)
            if self.adapter is not None and r + 1 < rounds:
                self._adapt(r)
        finished = time.perf_counter()
        overhead[-1] = finished - decided
        round_wall[-1] = finished - self.starts[-1]
        self._take(self.transport.poll(0.0), {}, -1, -math.inf)  # time what finished meanwhile
        record = RoundRecord(
            round_times=np.array(self.times),
            arrived=arrived,
            delays=delays,
            compute_times=np.array(self.computes),
            start_offsets=np.array(self.offsets),
            placement=placement,
            overhead=overhead,
            wall_time=np.concatenate([[0.0], np.cumsum(round_wall)]),
            bits=bits,
            adaptation=tuple(self.adaptation),
            final_scheme=self.scheme,
        )
        return iterates, estimates, record

    def _adapt(self, round_index: int) -> None:
        """Tell the adapter who was late; switch to its design, moving data when the layout changed.

        Runs between the decision and the next round's start: its time (the
        re-optimization and the transfers) is round overhead, never inside a round.
        """
        late = ~(self.times[round_index] <= self.deadline)  # as of the decision: not in time
        if not self.adapter.observe(round_index, late):
            return
        new = self.adapter.design
        record = dict(getattr(self.adapter, "last", None) or {"round": round_index, "action": "redesign"})
        started = time.perf_counter()
        changed = _layout_changed(self.scheme, new)
        record["moved_transport"] = self.transport.redesign(new) if changed else 0
        record["move_seconds"] = time.perf_counter() - started
        self.scheme = new
        self.adaptation.append(record)


def run_engine(transport, scheme, w, rounds: int, update: Callable, *, time_unit, deadline, shift, **options):
    """`rounds` rounds of an :class:`Engine` on `transport` from `w` (`options`: its other keywords).

    Returns ``(iterates, estimates, fields)``, `fields` the record's
    :func:`~gcdesign.cluster.history.record_fields`: what both backends' entry points run.
    """
    engine = Engine(transport, scheme, time_unit=time_unit, deadline=deadline, shift=shift, **options)
    iterates, estimates, record = engine.run(w, rounds, update)
    fields = record_fields(scheme, record, time_unit=time_unit, deadline=deadline, shift=shift)
    return iterates, estimates, fields


def _loads(encoding) -> np.ndarray:
    """Partitions each logical worker holds (nonzero entries per row)."""
    import scipy.sparse as sp

    return np.asarray((sp.csr_array(encoding) != 0).sum(axis=1)).ravel()


def _layout_changed(old, new) -> bool:
    """The encoding's entries or the bits differ: the workers need the new scheme."""
    import scipy.sparse as sp

    a, b = sp.csr_array(old.encoding), sp.csr_array(new.encoding)
    return a.shape != b.shape or (a != b).nnz > 0 or not np.array_equal(old.bits, new.bits)


__all__ = ["POLL_INTERVAL", "Arrival", "Engine", "RoundOrder", "RoundRecord", "Transport", "run_engine"]
