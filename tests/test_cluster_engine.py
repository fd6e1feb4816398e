"""gcdesign.cluster.engine over a second, real transport: one thread per logical worker.

The thread transport below works the way a point-to-point transport does
(torch.distributed): each logical worker runs one round at a time in its own
thread (real gradients, real encoding, real emulated sleeps), its reply comes
back through a queue that the master reads, a late reply is drained and
dropped, and a worker still busy with an earlier round is not started.
"""

from __future__ import annotations

import math
import queue
import threading
import time

import numpy as np
import pytest

from gcdesign import ClusterProfile, design, runtime
from gcdesign.cluster import ClusterHistory, Engine, Transport, shard_maker
from gcdesign.cluster.engine import Arrival
from gcdesign.cluster.history import iterate_metrics, record_fields
from gcdesign.cluster.worker import warm_up, work_round
from gcdesign.training import synthetic_problem

_DIE = "die"


class ThreadTransport:
    """Logical worker ``i`` is thread ``i``; its replies come back through one queue."""

    def __init__(self, scheme, make_shard, w):
        self.n = scheme.encoding.shape[0]
        self.shards = [make_shard([i]) for i in range(self.n)]
        for i, shard in enumerate(self.shards):
            warm_up(shard, i, w)
        self.inboxes = [queue.Queue() for _ in range(self.n)]
        self.outbox: queue.Queue = queue.Queue()
        self.busy: set[int] = set()
        self.ready: list[Arrival] = []  # drained from the outbox, not yet handed to the engine
        self.replies: dict[tuple[int, int], object] = {}  # every reply that came back (for the checks)
        self.kept: dict[tuple[int, int], object] = {}  # the current round's, until collected
        self.collected: list[tuple[int, int]] = []
        self.log: list[tuple[str, int, int]] = []  # ("start" | "reply", round, worker), in order
        self.threads = [threading.Thread(target=self._serve, args=(i,), daemon=True) for i in range(self.n)]
        for thread in self.threads:
            thread.start()

    def _serve(self, i):
        while True:
            order = self.inboxes[i].get()
            if order is None or order == _DIE:
                return
            reply = work_round(
                self.shards[i],
                i,
                order.index,
                order.w,
                order.start_time,
                order.time_unit,
                order.delay(i),
                order.hold,
                order.seed,
            )
            self.outbox.put(reply)

    def _drain(self, timeout=0.0):
        try:
            reply = self.outbox.get(timeout=timeout) if timeout > 0 else self.outbox.get_nowait()
        except queue.Empty:
            return
        while True:
            now = time.perf_counter()
            key = (reply.round, reply.worker)
            self.replies[key] = reply
            self.busy.discard(reply.worker)
            self.log.append(("reply", *key))
            self.ready.append(Arrival(reply.round, reply.worker, now))
            try:
                reply = self.outbox.get_nowait()
            except queue.Empty:
                return

    def start(self, order):
        self._drain()  # a late reply that is in frees its worker
        self.kept.clear()  # late replies of older rounds are dropped
        started = [i for i in sorted(self.alive()) if i not in self.busy]
        for i in started:
            self.busy.add(i)
            self.log.append(("start", order.index, i))
            self.inboxes[i].put(order)
        self.round = order.index
        return started

    def poll(self, timeout):
        if not self.ready:
            self._drain(timeout)
        out, self.ready = self.ready, []
        for a in out:
            if a.round == self.round:
                self.kept[a.round, a.worker] = self.replies[a.round, a.worker]
        return out

    def alive(self):
        return {i for i, t in enumerate(self.threads) if t.is_alive()}

    def placement(self):
        return [f"thread-{i}" if t.is_alive() else None for i, t in enumerate(self.threads)]

    def collect(self, arrivals):
        keys = [(a.round, a.worker) for a in arrivals]
        self.collected += keys
        return [self.kept.pop(key) for key in keys]

    def kill(self, i):
        self.inboxes[i].put(_DIE)

    def close(self):
        for box in self.inboxes:
            box.put(None)
        for thread in self.threads:
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def setup():
    problem = synthetic_problem("logistic", partitions=4, n_samples=200, n_features=6, rng=0, solve=False)
    code = design(ClusterProfile([0.1, 0.25, 0.4, 0.6], dim=problem.dim), bits_per_worker=6)
    return problem, code


def _engine(code, transport, *, deadline, rates, time_unit=0.1, shift=1.0):
    return Engine(transport, code, time_unit=time_unit, deadline=deadline, rates=rates, shift=shift, seed=5)


def test_the_thread_transport_satisfies_the_protocol(setup):
    problem, code = setup
    transport = ThreadTransport(code, shard_maker(code, problem, None, None), problem.initial_point())
    try:
        assert isinstance(transport, Transport)
    finally:
        transport.close()


def test_late_replies_are_timed_never_decoded_and_traces_reprofile(setup, tmp_path):
    problem, code = setup
    w = np.linspace(-0.5, 0.5, problem.dim)
    # worker 0 and 1 are ready at t0 = 1 (< tau = 2); worker 2 never (cut to the hold 2 tau = 4);
    # worker 3 is late with probability exp(-1)
    rates = np.array([np.inf, np.inf, 0.0, 1.0])
    transport = ThreadTransport(code, shard_maker(code, problem, None, None), w)
    try:
        engine = _engine(code, transport, deadline=2.0, rates=rates)
        iterates, estimates, rec = engine.run(w, 10, lambda current, estimate, r: current)
    finally:
        transport.close()
    late = rec.round_times > 2.0
    # the deadline is respected: nothing decoded arrived after it; worker 2 never makes it
    collected = set(transport.collected)
    assert all(rec.round_times[r, i] <= 2.0 for r, i in collected)
    assert late[:, 2].all() and not any(i == 2 for _, i in collected)
    # worker 2's replies came in after the next round had started (the engine did not wait for them),
    # and were timed for the traces though never decoded
    timed = np.flatnonzero(np.isfinite(rec.round_times[:, 2]))
    assert timed.size > 0
    for r in timed[timed < 9]:
        assert rec.round_times[r, 2] * 0.1 > rec.wall_time[r + 1] - rec.wall_time[r]
    # each estimate decodes exactly the replies that came in time, not the late ones
    for r in range(10):
        on_time = [transport.replies[r, i].payload for i in range(4) if (r, i) in collected]
        assert rec.arrived[r].sum() == len(on_time)
        np.testing.assert_array_equal(estimates[r], runtime.decode(code, on_time))
    everything = [transport.replies[r, i].payload for r, i in transport.replies if r == 0]
    assert len(everything) > len([k for k in collected if k[0] == 0])  # a late reply of round 0 came in
    # no backlog: a worker is never sent a round while its previous reply is outstanding
    for i in range(4):
        events = [kind for kind, _, j in transport.log if j == i]
        assert all(a != b for a, b in zip(events, events[1:], strict=False)), events
    started = {(r, i) for kind, r, i in transport.log if kind == "start"}
    assert all(math.isinf(rec.round_times[r, 2]) for r in range(10) if (r, 2) not in started)
    # traces written and read back: the realized straggler frequencies are the profile's p (no smoothing)
    metrics = iterate_metrics(problem, np.array(iterates)[:1])
    metrics = {k: v if k not in ("loss", "grad_norm") else np.repeat(v, 11) for k, v in metrics.items()}
    hist = ClusterHistory(
        optimizer="fixed",
        **metrics,
        **record_fields(code, rec, time_unit=0.1, deadline=2.0, shift=1.0),
    )
    path = hist.write_traces(tmp_path / "traces.csv")
    profile = ClusterProfile.from_traces(path, deadline=2.0, dim=problem.dim, smoothing=0.0)
    assert profile.names == code.profile.names
    np.testing.assert_array_equal(profile.straggler_probs, late.mean(axis=0))
    assert profile.straggler_probs[2] == 1.0


def test_a_dead_worker_is_not_waited_for(setup):
    problem, code = setup
    w = problem.initial_point()
    transport = ThreadTransport(code, shard_maker(code, problem, None, None), w)
    steps = []

    def update(current, estimate, r):
        steps.append(r)
        if r == 1:
            transport.kill(3)
        return current - 0.1 * estimate

    done = threading.Event()

    def run():
        engine = _engine(code, transport, deadline=math.inf, rates=np.full(4, 20.0), time_unit=0.02)
        run.result = engine.run(w, 5, update)
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert done.wait(30), "the engine waited for a dead worker"
    finally:
        transport.close()
    _, _, rec = run.result
    assert steps == [0, 1, 2, 3, 4]
    assert rec.placement[-1, 3] is None and all(rec.placement[-1, :3] != None)  # noqa: E711
    assert np.isinf(rec.round_times[2:, 3]).all()  # it never answered again
    assert np.isfinite(rec.round_times[:, :3]).all()  # wait-for-all: every live worker, every round
    assert rec.arrived[:2].all()


def _imports(path):
    """``(module, names)`` of every import statement of `path` (relative ones with their dots)."""
    import ast

    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append(("." * node.level + (node.module or ""), tuple(a.name for a in node.names)))
    return out


def test_the_engine_imports_no_transport_and_the_package_no_private_names():
    from pathlib import Path

    import gcdesign.cluster

    package = Path(gcdesign.cluster.__file__).parent
    engine = _imports(package / "engine.py")
    assert not [m for m, _ in engine if m.split(".")[-1] in ("dask", "distributed", "torch")], engine
    for path in sorted(package.glob("*.py")):
        for module, names in _imports(path):
            assert "cli" not in module.split("."), (path.name, module)  # the library never imports the CLI
            assert not [n for n in names if n.startswith("_")], (path.name, module, names)
