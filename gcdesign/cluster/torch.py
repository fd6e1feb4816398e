r"""The deadline gather on torch.distributed: a transport for the round engine (docs/torch.md).

Rank 0 is the master; ranks ``1 .. R-1`` host the logical workers (the rows of the
encoding): worker ``i`` lives on rank ``1 + i mod (R - 1)``, so a design with more
workers than ranks puts several on one rank, each with its own emulated delay. The
master's round is :class:`gcdesign.cluster.engine.Engine`'s, the one the Dask backend
runs; :class:`TorchTransport` carries it over gloo point-to-point messages.

Setup. The master sends every host ``[seed, batch size, N, K, d, sum of bits]``; a host
whose own scheme or task disagrees stops with an error naming the field. Each host
encodes one message per logical worker at the initial model (first-call costs paid
before round 0) and answers with their sizes, so the master allocates one receive
buffer per worker.

Rounds. Round ``r``'s order to a host is one float64 header (tag ``2k``, the host's
``k``-th order) with the round, its start on the wall clock, the time unit, the hold
``2 tau`` and, per hosted worker, whether it is started and its emulated delay; then,
when it starts any, the model (tag ``2k + 1``). Every alive host gets every order, so
the tags stay in step. A host runs each logical worker in a thread of its own
(:func:`gcdesign.cluster.worker.work_round`: compute, encode, sleep the emulated delay)
and one sender thread sends the replies (``[start offset, compute seconds]`` as two
float64 then the message bytes) with the tag ``r N + i`` (modulo 2^30).

The master never blocks on a straggler. One receiver thread per logical worker posts
the receive of its round's tag and blocks in ``wait()`` **without a timeout** (on gloo
a timed-out receive closes the pair and kills the job); it flags the arrival with the
master's clock. The engine applies the deadline to the flags. A worker is started only
once its previous reply has arrived, so a late message is drained (received, timed,
never decoded) before that worker gets the next round: no backlog. Models go out with
``isend`` and are waited for in the background.

Redesign. When the engine switches designs (``train(..., adapt=...)``), :meth:`TorchTransport.redesign`
sends every alive host an order of its own between two rounds (the header's first field
2, then one byte message, tag ``2k + 1``): the new design in the design file's JSON
(:func:`gcdesign.io.design_to_dict`, checked again on the host) and the data of only the
partitions its logical workers hold under the new design and did not hold before (raw
tensor bytes behind a JSON list of dtypes and shapes; no pickle). The host rebuilds its
shard from the partitions it keeps and those it received, and answers with its new
message sizes; the master waits for every answer, so the transfer is round overhead and
round ``r + 1`` is computed with the new design. A reply still owed for an older round
was computed with the old one; the engine never decodes it (it is late).

Failures. gloo does not survive a dead peer: the receive from a rank that died raises
in its thread, the master marks the rank's workers lost (they straggle from then on,
as in the Dask backend) and goes on while the transport lets it; a send to the dead
rank fails and is ignored. torchrun's elastic restart (``--max-restarts``) restarts
*every* rank and the run starts over from the initial model (docs/torch.md).

Launching. :func:`train` runs a :class:`gcdesign.torch.TorchTask` (the torch backend of
:func:`gcdesign.cluster.train`). Under ``torchrun``
(``torch.distributed.is_torchelastic_launched()``) every rank calls it with the same
task and scheme: rank 0 runs the engine and returns the
:class:`~gcdesign.cluster.ClusterHistory`, the other ranks serve their logical workers
(:func:`serve`) and return None. Elsewhere it spawns ``workers`` host processes on this
machine (``spawn`` start method, gloo over ``127.0.0.1``), is rank 0 itself, and joins
(or kills) them at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import multiprocessing
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from .. import runtime
from .._files import parse_json
from .._validate import InputError, positive_int
from ..io import design_from_dict, design_to_dict
from ..schemes import check_scheme
from ..torch.codec import flat_params, set_flat_grad, set_flat_params
from ..torch.task import TorchShard, TorchTask
from .emulation import load_settings, timing_settings
from .engine import Arrival, RoundOrder, run_engine
from .history import ClusterHistory
from .worker import (
    Reply,
    held_partitions,
    lacking_partitions,
    partition_problem,
    reshard,
    shard_maker,
    warm_up,
    work_round,
)

_TAG_SPACE = 1 << 30
_REPLY_HEAD = 16  # bytes: start offset and compute seconds, two float64
_ORDER_HEAD = 6  # kind (0 round, 1 stop, 2 redesign), round, start time, time unit, hold, seed check
_ROUND, _STOP, _REDESIGN = 0.0, 1.0, 2.0
_ACK_TAG = _TAG_SPACE + 16  # + the redesign order's index (mod 2^20): a host's answer to a redesign


def hosts_of(n_workers: int, world: int) -> list[int]:
    """The rank of every logical worker: ``1 + i mod (world - 1)``.

    Examples
    --------
    >>> hosts_of(5, 3)
    [1, 2, 1, 2, 1]
    """
    if world < 2:
        raise InputError(f"the torch gather needs at least 2 ranks (a master and a host), got {world}.")
    return [1 + i % (world - 1) for i in range(n_workers)]


def _reply_tag(round_index: int, worker: int, n: int) -> int:
    return (round_index * n + worker) % _TAG_SPACE


def _ack_tag(order: int) -> int:
    return _ACK_TAG + order % (1 << 20)


def message_size(scheme, worker: int, dim: int) -> int:
    """Bytes of `worker`'s message under `scheme` (0 when it sends nothing: no bits or no partition).

    The wire format's size does not depend on the values, so it is that of a zero vector's message.
    """
    if not (scheme.bits[worker] > 0 and runtime.partitions_of(scheme, worker).size):
        return 0
    return len(runtime.encode_vector(scheme, worker, np.zeros(dim), rng=0).to_bytes())


def pack_tensors(meta: dict, tensors) -> torch.Tensor:
    """One uint8 tensor: the byte length of a JSON head (8 bytes, little endian), the head
    (`meta` and each tensor's dtype and shape), then each tensor's raw bytes (no pickle)."""
    entries = [{"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape)} for t in tensors]
    head = json.dumps({**meta, "tensors": entries}, allow_nan=False, separators=(",", ":")).encode()
    parts = [np.array([len(head)], dtype="<u8").view(np.uint8), np.frombuffer(head, dtype=np.uint8)]
    parts += [t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy() for t in tensors]
    return torch.from_numpy(np.concatenate(parts))


def unpack_tensors(buf: torch.Tensor) -> tuple[dict, list[torch.Tensor]]:
    """``(meta, tensors)`` of :func:`pack_tensors`'s bytes (each tensor a copy of its own; the
    head is read as strictly as a design file, :func:`gcdesign._files.parse_json`)."""
    raw = buf.numpy()
    size = int(raw[:8].view("<u8")[0])
    meta = parse_json(bytes(raw[8 : 8 + size]).decode(), what="the head of a torch message")
    pos, out = 8 + size, []
    for entry in meta.pop("tensors"):
        dtype = getattr(torch, str(entry["dtype"]), None)
        if not isinstance(dtype, torch.dtype):
            raise InputError(f"a tensor on the wire has the dtype {entry['dtype']!r}: not a torch dtype.")
        count = math.prod(int(k) for k in entry["shape"])
        nbytes = count * dtype.itemsize
        if pos + nbytes > raw.size:
            raise InputError(f"the message ends before its tensors: {raw.size} bytes, {pos + nbytes} needed.")
        out.append(buf[pos : pos + nbytes].clone().view(dtype).reshape(entry["shape"]))
        pos += nbytes
    return meta, out


def _check_vector(scheme, dim: int, batch_size) -> np.ndarray:
    """[seed slot, batch size, N, K, d, bits]: what master and hosts must agree on."""
    n, k = scheme.encoding.shape
    batch = 0 if batch_size is None else batch_size
    return np.array([0, batch, n, k, dim, int(np.sum(scheme.bits))], dtype=np.int64)


# ====================================================================== the master's transport
class TorchTransport:
    """The engine's :class:`~gcdesign.cluster.engine.Transport` over torch.distributed (rank 0).

    Call in the master (rank 0) once the process group is up and every host runs
    :func:`serve`; :meth:`close` stops the hosts and joins the receiver threads.
    `source` is the hosts' ``make_shard`` (a :class:`TorchShards` or :class:`NumpyShards`):
    with it, :meth:`redesign` sends the data of the partitions a host lacks.
    """

    def __init__(self, scheme, w0, *, seed: int, batch_size=None, source=None):
        self.scheme = scheme
        self.source = source
        self.n = scheme.encoding.shape[0]
        self.world = dist.get_world_size()
        self.rank_of = hosts_of(self.n, self.world)
        self.hosted = {h: [i for i in range(self.n) if self.rank_of[i] == h] for h in range(1, self.world)}
        check = torch.from_numpy(_check_vector(scheme, np.size(w0), batch_size))
        check[0] = seed
        for h in range(1, self.world):
            dist.send(check, h, tag=_TAG_SPACE + 1)
        self.sizes = np.zeros(self.n, dtype=np.int64)
        for h, logical in self.hosted.items():
            sizes = torch.zeros(len(logical) + 1, dtype=torch.int64)
            dist.recv(sizes, h, tag=_TAG_SPACE + 2)
            if sizes[0] > 0:
                raise InputError(f"rank {h} refused the run: its {_FIELDS[int(sizes[0]) - 1]} differs.")
            if sizes[0] < 0:
                raise RuntimeError(
                    f"rank {h}: a logical worker failed before round 0 (see its error output)."
                )
            self.sizes[logical] = sizes[1:].numpy()
        _warm_decoder(scheme, np.size(w0))
        self.orders = 0  # orders sent to every host (tags 2k, 2k + 1)
        self.lock = threading.Condition()
        self.news: list[Arrival] = []
        self.payloads: dict[tuple[int, int], torch.Tensor] = {}
        self.busy = np.zeros(self.n, dtype=bool)
        self.dead: set[int] = set()
        self.errors: list[BaseException] = []  # what gloo raised for a peer that died
        self.failed: RuntimeError | None = None  # a worker's computation failed: the engine stops
        self.sends: list = []
        self.inbox = [queue.SimpleQueue() for _ in range(self.n)]
        self.threads = [
            threading.Thread(target=self._receive, args=(i,), name=f"gcdesign-recv-{i}", daemon=True)
            for i in range(self.n)
        ]
        for t in self.threads:
            t.start()
        self.closed = False

    # ---------------------------------------------------------------- receiver threads
    def _receive(self, worker: int) -> None:
        """Post the receive of each round given to `worker` and block in wait() (no timeout)."""
        src = self.rank_of[worker]
        while True:
            job = self.inbox[worker].get()
            if job is None:
                return
            r, size = job  # the size of a message of the design the round was sent under
            buf = torch.empty(_REPLY_HEAD + size, dtype=torch.uint8)
            try:
                dist.irecv(buf, src, tag=_reply_tag(r, worker, self.n)).wait()
            except Exception as exc:  # noqa: BLE001 - the peer died (gloo closes the pair): a lost worker
                with self.lock:
                    self.dead.add(src)
                    self.busy[worker] = False
                    self.errors.append(exc)
                    self.lock.notify_all()
                return
            now = time.perf_counter()
            if buf[:8].numpy().view(np.float64)[0] == -math.inf:  # the worker's computation failed
                text = bytes(buf[_REPLY_HEAD:].numpy()).decode(errors="replace").strip()
                with self.lock:
                    self.failed = RuntimeError(f"the round {r} of worker {worker} failed: {text}")
                    self.busy[worker] = False
                    self.lock.notify_all()
                continue
            with self.lock:
                self.payloads[(r, worker)] = buf
                self.busy[worker] = False
                self.news.append(Arrival(r, worker, now))
                self.lock.notify_all()

    # ---------------------------------------------------------------- the Transport protocol
    def start(self, order: RoundOrder) -> list[int]:
        """Send the round to every free worker of every alive host; return the started workers."""
        with self.lock:
            for key in [k for k in self.payloads if k[0] < order.index]:
                del self.payloads[key]  # late replies of older rounds: drained, never decoded
            free = [i for i in range(self.n) if not self.busy[i] and self.rank_of[i] not in self.dead]
            for i in free:
                self.busy[i] = True
        for i in free:  # the receive is posted before the model leaves
            self.inbox[i].put((order.index, int(self.sizes[i])))
        model = None
        k = self.orders
        self.sends = [s for s in self.sends if not _done(s)]
        chosen = set(free)
        for h, logical in self.hosted.items():
            if h in self.dead:
                continue
            head = np.zeros(_ORDER_HEAD + 2 * len(logical))
            head[:5] = [0, order.index, order.start_time, order.time_unit, order.hold]
            for slot, i in enumerate(logical):
                head[_ORDER_HEAD + 2 * slot] = 1.0 if i in chosen else 0.0
                delay = order.delay(i)
                head[_ORDER_HEAD + 2 * slot + 1] = math.nan if delay is None else delay
            self._isend(torch.from_numpy(head), h, 2 * k)
            if any(i in chosen for i in logical):
                if model is None:
                    model = torch.from_numpy(np.array(order.w, dtype=np.float64))
                self._isend(model, h, 2 * k + 1)
        self.orders += 1
        return free

    def _isend(self, tensor, rank: int, tag: int) -> None:
        try:
            self.sends.append((dist.isend(tensor, rank, tag=tag % _TAG_SPACE), tensor))
        except Exception as exc:  # noqa: BLE001 - the rank died
            with self.lock:
                self.dead.add(rank)
                self.errors.append(exc)

    def poll(self, timeout: float) -> list[Arrival]:
        """The replies flagged since the last call (waits up to `timeout` s for one)."""
        with self.lock:
            if not self.news and self.failed is None and timeout > 0:
                self.lock.wait(timeout)
            if self.failed is not None:
                raise self.failed
            out, self.news = self.news, []
        return out

    def alive(self) -> set[int]:
        with self.lock:
            return {i for i in range(self.n) if self.rank_of[i] not in self.dead}

    def placement(self) -> list[str | None]:
        with self.lock:
            return [None if r in self.dead else f"rank {r}" for r in self.rank_of]

    def collect(self, arrivals) -> list[Reply]:
        """The replies of `arrivals` (their bytes as received; nothing is copied again)."""
        out = []
        with self.lock:
            for a in arrivals:
                buf = self.payloads.pop((a.round, a.worker), None)
                if buf is None:
                    continue
                head = buf[:_REPLY_HEAD].numpy().view(np.float64)
                payload = bytes(buf[_REPLY_HEAD:].numpy()) if buf.numel() > _REPLY_HEAD else None
                out.append(Reply(a.round, a.worker, float(head[0]), float(head[1]), payload))
        return out

    def redesign(self, scheme) -> int:
        """Switch to `scheme` from the next round, moving only the data a host rank lacks.

        Each alive host receives the new design and the data of the partitions its logical
        workers hold under `scheme` and did not before (one order of its own, module
        docstring); what it keeps never travels. Waits until every host has rebuilt its
        shard, so the transfer falls between rounds. Returns the partitions sent (each
        once per host rank; none for a gradient function, whose hosts hold no data), the
        count :meth:`gcdesign.cluster.dask.DaskTransport.redesign` returns.
        """
        if self.source is None or not callable(getattr(self.source, "partition_data", None)):
            raise InputError(
                "this torch transport has no data source to move partitions: create it with "
                "source=make_shard (a TorchShards or NumpyShards)."
            )
        if not hasattr(scheme, "profile"):
            raise InputError(
                f"the torch transport switches to a gcdesign.Design (it travels as its file format), got "
                f"{type(scheme).__name__}."
            )
        if scheme.encoding.shape != self.scheme.encoding.shape:
            raise InputError(
                f"a redesign keeps N and K: the new encoding is {scheme.encoding.shape}, the run's "
                f"{self.scheme.encoding.shape}."
            )
        design = design_to_dict(scheme)
        k, sent, asked = self.orders, 0, []
        for h, logical in self.hosted.items():
            if h in self.dead:
                continue
            parts, tensors = [], []
            for j in lacking_partitions(self.scheme.encoding, scheme.encoding, logical):
                data = self.source.partition_data(j)
                if data is None:  # a gradient function: the hosts hold no data
                    continue
                sent += 1
                for name, tensor in data.items():
                    parts.append([j, name])
                    tensors.append(tensor)
            payload = pack_tensors({"design": design, "parts": parts}, tensors)
            head = np.zeros(_ORDER_HEAD + 2 * len(logical))
            head[0], head[1] = _REDESIGN, payload.numel()
            self._isend(torch.from_numpy(head), h, 2 * k)
            self._isend(payload, h, 2 * k + 1)
            asked.append(h)
        self.orders += 1
        sizes = self.sizes.copy()
        for h in asked:
            logical = self.hosted[h]
            answer = torch.zeros(len(logical) + 1, dtype=torch.int64)
            try:
                dist.recv(answer, h, tag=_ack_tag(k))
            except Exception as exc:  # noqa: BLE001 - the rank died meanwhile: its workers are lost
                with self.lock:
                    self.dead.add(h)
                    self.errors.append(exc)
                continue
            if answer[0] != 0:
                raise RuntimeError(f"rank {h} could not switch to the new design (see its error output).")
            sizes[logical] = answer[1:].numpy()
        with self.lock:
            self.sizes = sizes
            self.scheme = scheme
        return sent

    def close(self, *, timeout: float = 60.0) -> None:
        """Stop the hosts (they send what they still owe), drain, join the receiver threads."""
        if self.closed:
            return
        self.closed = True
        for h, logical in self.hosted.items():
            if h not in self.dead:
                stop = torch.zeros(_ORDER_HEAD + 2 * len(logical), dtype=torch.float64)
                stop[0] = _STOP
                self._isend(stop, h, 2 * self.orders)
        for i in range(self.n):
            self.inbox[i].put(None)
        deadline = time.perf_counter() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.perf_counter()))
        for work, _ in self.sends:
            with suppress(Exception):
                work.wait()
        self.sends = []


def _warm_decoder(scheme, dim: int) -> None:
    """Decode one message on the master: the codec's first-call costs are not charged to round 0."""
    senders = [i for i in range(scheme.encoding.shape[0]) if scheme.bits[i] > 0]
    if senders:
        message = runtime.encode_vector(scheme, senders[0], np.ones(dim), rng=0)
        runtime.decode(scheme, [message.to_bytes()])


def _done(send) -> bool:
    work, _ = send
    try:
        return work.is_completed()
    except Exception:  # noqa: BLE001 - failed: done
        return True


_FIELDS = ("batch size", "number of workers N", "number of partitions K", "model dimension d", "bits")


# ====================================================================== the hosts
def serve(make_shard, scheme, w0, *, batch_size=None) -> None:
    """A host rank's side of a run (ranks >= 1): serve the master's orders until it says stop.

    ``make_shard(logical)`` builds the shard of this rank's logical workers: anything
    with ``message(worker, w, round, seed) -> bytes | None`` (a :class:`TorchShard`, a
    numpy-harness :class:`gcdesign.cluster.Shard`); `w0` is the initial model (its size
    is checked against the master's, and the warm-up encodes at it).

    One thread per hosted logical worker (warm-up, then :func:`~gcdesign.cluster.worker.work_round`
    per order), one sender thread; the main thread receives the orders. An error of a
    worker's computation goes to the master as the reply (its start offset ``-inf``,
    then the error text), where :meth:`TorchTransport.poll` raises it. A redesign order
    rebuilds the shard (``make_shard.rebuild``, :class:`TorchShards`); a round takes the
    shard and message size of the design it was sent under, so a late worker finishes an
    older round with the old design.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    n = scheme.encoding.shape[0]
    logical = [i for i, h in enumerate(hosts_of(n, world)) if h == rank]
    check = torch.zeros(6, dtype=torch.int64)
    dist.recv(check, 0, tag=_TAG_SPACE + 1)
    mine = _check_vector(scheme, np.size(w0), batch_size)
    seed = int(check[0])
    sizes = torch.zeros(len(logical) + 1, dtype=torch.int64)
    mismatch = [f for f in range(1, 6) if int(check[f]) != mine[f]]
    if mismatch:
        sizes[0] = mismatch[0]
        dist.send(sizes, 0, tag=_TAG_SPACE + 2)
        raise InputError(f"rank {rank}: the {_FIELDS[mismatch[0] - 1]} differs from the master's.")
    shard = make_shard(logical)
    w0 = np.asarray(w0, dtype=np.float64)
    outbox: queue.SimpleQueue = queue.SimpleQueue()
    warm: queue.SimpleQueue = queue.SimpleQueue()
    inboxes = {i: queue.SimpleQueue() for i in logical}

    def send_loop():
        while (item := outbox.get()) is not None:
            dist.send(item[0], 0, tag=item[1])

    def work_loop(slot, i):
        try:  # first-call costs (autograd's thread state, the codec) in this thread, before round 0
            warm.put((slot, warm_up(shard, i, w0), None))
        except Exception as exc:  # noqa: BLE001 - reported to the master
            warm.put((slot, 0, exc))
            return
        while (job := inboxes[i].get()) is not None:
            r, w, start, unit, delay, hold, current, size = job
            try:
                reply = work_round(current, i, r, w, start, unit, delay, hold, seed)
                head = np.array([reply.start_offset, reply.compute])
                body = np.frombuffer(reply.payload or b"", dtype=np.uint8)
            except Exception as exc:  # noqa: BLE001 - the master raises it (a bug, not a straggler)
                head = np.array([-math.inf, 0.0])
                body = np.frombuffer(f"{type(exc).__name__}: {exc}".encode()[:size].ljust(size), np.uint8)
            outbox.put((torch.from_numpy(np.concatenate([head.view(np.uint8), body])), _reply_tag(r, i, n)))

    threads = [threading.Thread(target=send_loop, name="gcdesign-send", daemon=True)]
    threads += [
        threading.Thread(target=work_loop, args=(slot, i), name=f"gcdesign-worker-{i}", daemon=True)
        for slot, i in enumerate(logical)
    ]
    for t in threads:
        t.start()
    failed = None
    for _ in logical:
        slot, size, exc = warm.get()
        sizes[slot + 1] = size
        failed = failed or exc
    if failed is not None:
        sizes[0] = -1
    dist.send(sizes, 0, tag=_TAG_SPACE + 2)
    head = torch.zeros(_ORDER_HEAD + 2 * len(logical), dtype=torch.float64)
    model = torch.zeros(w0.size, dtype=torch.float64)
    k = 0
    try:
        if failed is not None:
            raise RuntimeError(f"rank {rank}: a logical worker failed before round 0: {failed!r}") from failed
        while True:
            dist.recv(head, 0, tag=(2 * k) % _TAG_SPACE)
            h = head.numpy()
            if h[0] == _STOP:
                break
            if h[0] == _REDESIGN:
                payload = torch.empty(int(h[1]), dtype=torch.uint8)
                dist.recv(payload, 0, tag=(2 * k + 1) % _TAG_SPACE)
                answer = torch.zeros(len(logical) + 1, dtype=torch.int64)
                try:
                    scheme, shard = _switch(make_shard, shard, payload, logical)
                    answer[1:] = torch.tensor([message_size(scheme, i, w0.size) for i in logical])
                    sizes[1:] = answer[1:]
                except Exception:
                    answer[0] = -1
                    outbox.put((answer, _ack_tag(k)))
                    raise
                outbox.put((answer, _ack_tag(k)))  # after the replies still owed: one sender
                k += 1
                continue
            r, start, unit, hold = int(h[1]), float(h[2]), float(h[3]), float(h[4])
            chosen = [slot for slot in range(len(logical)) if h[_ORDER_HEAD + 2 * slot] == 1.0]
            if chosen:
                dist.recv(model, 0, tag=(2 * k + 1) % _TAG_SPACE)
                w = model.numpy().copy()
                for slot in chosen:
                    delay = float(h[_ORDER_HEAD + 2 * slot + 1])
                    delay = None if math.isnan(delay) else delay
                    inboxes[logical[slot]].put((r, w, start, unit, delay, hold, shard, int(sizes[slot + 1])))
            k += 1
    finally:
        for i in logical:
            inboxes[i].put(None)
        for t in threads[1:]:
            t.join()
        outbox.put(None)  # after the workers: what they still owe goes out first
        threads[0].join()


def _switch(make_shard, shard, payload, logical):
    """``(scheme, shard)`` after a redesign order: the design and the partitions sent, the rest kept."""
    meta, tensors = unpack_tensors(payload)
    scheme = design_from_dict(meta["design"])
    received: dict[int, dict] = {}
    for (j, name), tensor in zip(meta["parts"], tensors, strict=True):
        received.setdefault(int(j), {})[str(name)] = tensor
    keep = held_partitions(scheme.encoding, logical)
    return scheme, make_shard.rebuild(shard, scheme, received, keep)


# ====================================================================== launching
_JOIN_SECONDS = 30.0


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _host_process(rank: int, world: int, port: int, programs, threads: int) -> None:
    torch.set_num_threads(threads)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=timedelta(hours=1)
    )
    try:
        for program in programs:
            program()
    finally:
        dist.destroy_process_group()


class TorchShards:
    """``make(logical) -> TorchShard`` for a :class:`TorchTask` (picklable for spawn).

    Also what a redesign moves: :meth:`partition_data` (the master reads a partition's
    samples) and :meth:`rebuild` (a host's shard from what it keeps and what it got).
    """

    def __init__(self, task: TorchTask, scheme, batch_size=None):
        self.task, self.scheme, self.batch_size = task, scheme, batch_size

    def __call__(self, logical) -> TorchShard:
        held = held_partitions(self.scheme.encoding, logical)
        return TorchShard(self.task, self.scheme, batch_size=self.batch_size, partitions=held)

    def partition_data(self, j: int) -> dict:
        """``{"inputs", "targets"}``: the samples of partition `j`, in data-set order."""
        members = np.flatnonzero(self.task.partition_of(self.scheme.encoding.shape[1]) == j)
        inputs, targets = self.task.items(members)
        return {"inputs": inputs, "targets": targets}

    def rebuild(self, shard: TorchShard, scheme, received: dict, keep) -> TorchShard:
        """`shard` under `scheme`: the partitions of `keep` it had and `received` (:meth:`partition_data`)."""
        pairs = {j: (data["inputs"], data["targets"]) for j, data in received.items()}
        return shard.reshard(scheme, pairs, keep)


def torch_shard(task: TorchTask, scheme, batch_size, logical) -> TorchShard:
    """The shard of a host rank for a :class:`TorchTask` (picklable with ``functools.partial``)."""
    return TorchShards(task, scheme, batch_size)(logical)


_PART_ARRAYS = ("partition_features", "partition_targets", "partition_sizes")


class NumpyShards:
    """``make(logical) -> Shard`` for a numpy-harness problem or gradient function (picklable for spawn).

    Moves partitions as :class:`TorchShards` does: :meth:`partition_data` gives the
    arrays of :func:`~gcdesign.cluster.worker.partition_problem`, :meth:`rebuild`
    makes that one-partition problem again from them (bit for bit) on the host.
    """

    def __init__(self, scheme, problem, gradient_fn, batch_size):
        self.args = (scheme, problem, gradient_fn, batch_size)

    def __call__(self, logical):
        return shard_maker(*self.args)(logical)

    def partition_data(self, j: int) -> dict | None:
        """Partition `j`'s padded features, targets and size as tensors (None: a gradient function)."""
        problem = self.args[1]
        if problem is None:
            return None
        part = partition_problem(problem, j)
        return {name: torch.from_numpy(np.ascontiguousarray(getattr(part, name))) for name in _PART_ARRAYS}

    def rebuild(self, shard, scheme, received: dict, keep):
        """`shard` under `scheme` (:func:`~gcdesign.cluster.worker.reshard`) with the received partitions."""
        problem = self.args[1]
        parts = {}
        for j, data in received.items():
            arrays = {name: data[name].numpy() for name in _PART_ARRAYS}
            one = dataclasses.replace(problem, **arrays)
            parts[j] = dataclasses.replace(partition_problem(one, 0), name=f"{problem.name}[{j}]")
        return reshard(shard, scheme, parts or None, keep)


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
    adapter=None,
    load_cost=None,
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
    adapter : object, optional
        Follows the cluster between rounds (``observe(r, late) -> bool`` and ``design``:
        an :class:`~gcdesign.cluster.adaptive.Adapter` or a
        :class:`~gcdesign.cluster.adaptive.Schedule`); :func:`gcdesign.cluster.train` makes
        one from ``adapt=``. A new layout sends each host only the partitions it lacks
        (:meth:`TorchTransport.redesign`).
    load_cost : float or array_like (N,), optional
        As in :func:`gcdesign.cluster.train`.

    Returns
    -------
    ClusterHistory on rank 0 (loss: mean training loss; test_accuracy when the task
    has a test set), None on the other ranks.
    """
    if not isinstance(task, TorchTask):
        raise InputError(f"`task` must be a gcdesign.torch.TorchTask, got {type(task).__name__}.")
    scheme = check_scheme(scheme)
    rounds = positive_int("rounds", rounds)
    time_unit, deadline, shift, rates = timing_settings(
        scheme, deadline, time_unit, shift, rates, emulate, rounds
    )
    load_cost = load_settings(load_cost, scheme.encoding.shape[0], emulate)
    task.partition_of(scheme.encoding.shape[1])  # K against the data, before any process starts
    if batch_size is not None:
        batch_size = positive_int("batch_size", batch_size)
    seed = int(np.random.default_rng(rng).integers(2**63))
    w0 = task.initial_point()
    make_shard = TorchShards(task, scheme, batch_size)
    programs = [host_program(make_shard, scheme, w0, batch_size=batch_size)]
    with process_group(programs, workers=workers, threads=threads) as rank:
        if rank != 0:
            return None
        return run_master(
            task,
            scheme,
            deadline,
            rounds,
            time_unit,
            rates,
            shift,
            optimizer,
            seed,
            batch_size,
            on_round,
            adapter=adapter,
            load_cost=load_cost,
            source=make_shard,
        )


@contextlib.contextmanager
def process_group(programs, *, workers: int = 2, threads: int = 1):
    """The gloo process group of one or more runs; yields this process's rank (the master is 0).

    `programs` are what the host ranks run, in order, one per run (e.g.
    ``functools.partial(serve, make_shard, scheme, w0)``: :func:`host_program`); the
    master runs its side of each, in the same order, inside the ``with`` block.
    Under torchrun: joins the group (if not up yet; it stays up for the process's next
    runs) and a rank other than 0 runs the programs before yielding. Elsewhere: spawns
    `workers` host processes on 127.0.0.1 (the programs are pickled to them) and yields
    0; on exit destroys the group and joins the hosts (killing any that do not end
    within 30 s).
    """
    if dist.is_torchelastic_launched():
        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=timedelta(hours=1))
        rank = dist.get_rank()
        if rank != 0:
            for program in programs:
                program()
        yield rank
        return
    if dist.is_initialized():
        raise InputError("a torch.distributed process group is already up: launch with torchrun instead.")
    workers = positive_int("workers", workers)
    world, port = workers + 1, free_port()
    ctx = multiprocessing.get_context("spawn")
    procs, owned = [], False
    try:
        for rank in range(1, world):
            args = (rank, world, port, list(programs), threads)
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


def host_program(make_shard, scheme, w0, *, batch_size=None):
    """What a host rank runs for one coded run: :func:`serve` with these arguments (picklable)."""
    return functools.partial(serve, make_shard, scheme, w0, batch_size=batch_size)


def is_host_rank() -> bool:
    """Whether this process is a torchrun rank other than 0 (a host of logical workers)."""
    return dist.is_torchelastic_launched() and int(os.environ.get("RANK", "0")) != 0


@contextlib.contextmanager
def torch_transport(scheme, make_shard, w0, *, workers=2, seed: int, batch_size=None):
    """The torch transport of one run of the round engine (rank 0); the hosts serve meanwhile.

    The seam of :func:`gcdesign.cluster.train` with ``backend="torch"``: a process group
    (:func:`process_group`), then a :class:`TorchTransport`,
    closed at the end. On a torchrun rank other than 0 it serves and yields None.
    """
    with process_group(
        [host_program(make_shard, scheme, w0, batch_size=batch_size)], workers=workers
    ) as rank:
        if rank != 0:
            yield None
            return
        transport = TorchTransport(scheme, w0, seed=seed, batch_size=batch_size, source=make_shard)
        try:
            yield transport
        finally:
            transport.close()


def run_master(
    task,
    scheme,
    deadline,
    rounds,
    time_unit,
    rates,
    shift,
    optimizer,
    seed,
    batch_size,
    on_round,
    *,
    adapter=None,
    load_cost=None,
    source=None,
):
    """Rank 0's side of one coded run of `task` (a process group is up and the hosts serve it).

    `source` is what the hosts build their shards with (default ``TorchShards(task, scheme,
    batch_size)``): a redesign of the `adapter` reads the partitions it moves from it.
    """
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

    source = TorchShards(task, scheme, batch_size) if source is None else source
    transport = TorchTransport(scheme, w0, seed=seed, batch_size=batch_size, source=source)
    try:
        iterates, _, fields = run_engine(
            transport,
            scheme,
            w0,
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
    finally:
        transport.close()
    metrics = np.array([task.evaluate(w) for w in iterates])
    set_flat_params(model, torch.from_numpy(iterates[-1]))
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
    "TorchShards",
    "TorchTransport",
    "free_port",
    "host_program",
    "hosts_of",
    "is_host_rank",
    "make_optimizer",
    "message_size",
    "pack_tensors",
    "process_group",
    "run_master",
    "serve",
    "stop_processes",
    "torch_shard",
    "torch_transport",
    "train",
    "unpack_tensors",
]
