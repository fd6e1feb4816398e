"""Designs that follow the cluster on the torch backend: a redesign between rounds over gloo, with
the new design and only the partitions a host rank lacks sent as a control message (one session of
real processes; the Dask transport on the same scripted schedule for comparison)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch_tasks import small_task  # noqa: E402

import gcdesign.cluster as gcluster  # noqa: E402
from gcdesign import ClusterProfile, design, runtime  # noqa: E402
from gcdesign._validate import InputError  # noqa: E402
from gcdesign.cluster.adaptive import Schedule, closest_redesign, fresh_design  # noqa: E402
from gcdesign.cluster.dask import DaskTransport  # noqa: E402
from gcdesign.cluster.engine import Engine  # noqa: E402
from gcdesign.cluster.torch import (  # noqa: E402
    NumpyShards,
    TorchShards,
    TorchTransport,
    host_program,
    hosts_of,
    message_size,
    pack_tensors,
    process_group,
    unpack_tensors,
)
from gcdesign.cluster.worker import held_partitions, partition_problem, shard_maker  # noqa: E402
from gcdesign.construction import moved_partitions  # noqa: E402
from gcdesign.torch.task import TorchShard  # noqa: E402
from gcdesign.training import gd  # noqa: E402

P4 = np.array([0.1, 0.25, 0.4, 0.6])
DEADLINE, SHIFT, UNIT, ROUNDS, SWITCH, SEED = 1.0, 0.4, 0.2, 7, 1, 11
HOSTS = 2  # host ranks: logical worker i on rank 1 + i mod 2, as Dask worker i mod 2 of two


def switch(code):
    """The scripted redesign: worker 0 (the largest mass) turns slow; the closest layout to `code`."""
    slowed = P4.copy()
    slowed[0] = 0.9
    fresh = fresh_design(code, slowed)
    new, _, _ = closest_redesign(code, fresh)
    return new, fresh


def expected_sent(old, new, groups):
    """Partitions each group of logical workers holds under `new` and not under `old`, summed."""
    return sum(
        len(set(held_partitions(new.encoding, g)) - set(held_partitions(old.encoding, g))) for g in groups
    )


def rates():
    r = np.full(4, 1e3)  # on time: delay t0 + Exp(1e3), far below the deadline
    r[0] = 0.0  # worker 0 never makes it: cut to the hold (2 tau), in flight when the design switches
    return r


class Recording(TorchTransport):
    """The transport, keeping the redesign payloads it sent per host rank."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.moves = []

    def _isend(self, tensor, rank, tag):
        if tensor.dtype == torch.uint8:  # only a redesign sends bytes to a host
            self.moves.append((rank, unpack_tensors(tensor)))
        super()._isend(tensor, rank, tag)


def _engine_run(transport, code, schedule, w):
    estimates = []

    def update(current, estimate, r):
        estimates.append(estimate.copy())
        return current

    engine = Engine(
        transport,
        code,
        time_unit=UNIT,
        deadline=DEADLINE,
        rates=rates(),
        shift=SHIFT,
        seed=SEED,
        adapter=schedule,
    )
    _, _, record = engine.run(w, ROUNDS, update)
    return estimates, record


@pytest.fixture(scope="module")
def session(problem, code):
    """One gloo group (2 host ranks), two runs switching designs after round 0: a harness problem, a task."""
    new, fresh = switch(code)
    task = small_task(n=80)
    tcode = design(ClusterProfile(P4, dim=task.dim), bits_per_worker=6)
    tnew, tfresh = switch(tcode)
    w, tw = problem.initial_point(), task.initial_point()
    numpy_shards = NumpyShards(code, problem, None, None)
    torch_shards = TorchShards(task, tcode)
    programs = [host_program(numpy_shards, code, w), host_program(torch_shards, tcode, tw)]
    out = {"code": code, "new": new, "tcode": tcode, "tnew": tnew, "w": w, "tw": tw, "task": task}
    with process_group(programs, workers=HOSTS) as rank:
        assert rank == 0
        for key, scheme, shards, start, nxt, fr in (
            ("numpy", code, numpy_shards, w, new, fresh),
            ("torch", tcode, torch_shards, tw, tnew, tfresh),
        ):
            transport = Recording(scheme, start, seed=SEED, source=shards)
            try:
                schedule = Schedule(scheme, {SWITCH: nxt}, fresh={SWITCH: fr})
                estimates, record = _engine_run(transport, scheme, schedule, start)
            finally:
                transport.close()
            out[key] = {"estimates": estimates, "record": record, "transport": transport}
    return out


def _groups(n):
    return [[i for i, h in enumerate(hosts_of(n, HOSTS + 1)) if h == rank] for rank in range(1, HOSTS + 1)]


def test_only_the_missing_partitions_travel(session):
    for key, old, new in (("numpy", "code", "new"), ("torch", "tcode", "tnew")):
        old, new = session[old], session[new]
        rec, transport = session[key]["record"], session[key]["transport"]
        [change] = rec.adaptation
        assert change["round"] == SWITCH - 1
        assert change["moved"] == moved_partitions(old.encoding, new.encoding)
        assert change["moved_transport"] == expected_sent(old, new, _groups(4)) > 0
        assert len(transport.moves) == HOSTS  # one order per host rank, once
        for rank, (meta, tensors) in transport.moves:
            group = _groups(4)[rank - 1]
            want = set(held_partitions(new.encoding, group)) - set(held_partitions(old.encoding, group))
            assert {j for j, _ in meta["parts"]} == want  # what a host keeps never travels
            assert len(tensors) == len(meta["parts"])
            assert meta["design"]["bits"] == new.bits.tolist()
        assert rec.final_scheme is new


def test_each_estimate_is_the_numpy_reference_of_the_design_in_force(session, problem):
    """After the switch the hosts compute from the partitions they kept and those they were sent."""
    code, new, w = session["code"], session["new"], session["w"]
    rec, estimates = session["numpy"]["record"], session["numpy"]["estimates"]
    for r in range(ROUNDS):
        scheme = code if r < SWITCH else new
        shard = shard_maker(scheme, problem, None, None)(range(4))
        sent = [i for i in range(4) if rec.arrived[r, i]]
        assert sent, r
        want = runtime.decode(scheme, [shard.message(i, w, r, SEED) for i in sent])
        assert np.array_equal(estimates[r], want), r
    assert not np.array_equal(estimates[SWITCH - 1], estimates[SWITCH])


def test_a_torch_task_estimate_is_the_full_shards_of_the_design_in_force(session):
    task, tcode, tnew, tw = session["task"], session["tcode"], session["tnew"], session["tw"]
    rec, estimates = session["torch"]["record"], session["torch"]["estimates"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the hosts' thread count: the same sums in the same order
    try:
        for r in range(ROUNDS):
            scheme = tcode if r < SWITCH else tnew
            shard = TorchShard(task, scheme)  # every partition, read from the task's own data set
            sent = [i for i in range(4) if rec.arrived[r, i]]
            want = runtime.decode(scheme, [shard.message(i, tw, r, SEED) for i in sent])
            assert np.array_equal(estimates[r], want), r
    finally:
        torch.set_num_threads(threads)


def test_a_reply_in_flight_across_the_switch_is_timed_not_decoded(session, problem):
    """Worker 0's round-0 reply comes at the hold (2 tau), after the switch (at tau), with the old
    design's size: received (timed), never decoded, and no rank is lost on the change."""
    code, new = session["code"], session["new"]
    assert message_size(code, 0, problem.dim) != message_size(new, 0, problem.dim)
    for key in ("numpy", "torch"):
        rec, transport = session[key]["record"], session[key]["transport"]
        assert not rec.arrived[:, 0].any() and rec.arrived[:, 1:].all()
        came = rec.wall_time[:SWITCH] + UNIT * rec.round_times[:SWITCH, 0]  # seconds, from round 0's start
        assert np.isfinite(came[0]) and came[0] > rec.wall_time[SWITCH]  # in flight across the switch
        assert rec.round_times[0, 0] > DEADLINE
        assert not transport.errors and not transport.dead
        assert all(p is not None for row in rec.placement for p in row)


def test_the_dask_transport_on_the_same_schedule_gives_the_same_run(session, problem, threads_client):
    code, new, w = session["code"], session["new"], session["w"]
    _, fresh = switch(code)
    make_shard = shard_maker(code, problem, None, None)
    transport = DaskTransport(threads_client, code, make_shard, w)
    try:
        schedule = Schedule(code, {SWITCH: new}, fresh={SWITCH: fresh})
        estimates, record = _engine_run(transport, code, schedule, w)
    finally:
        transport.close()
    ours = session["numpy"]
    [theirs], [mine] = record.adaptation, ours["record"].adaptation
    keys = ("round", "action", "moved", "moved_fresh", "moved_transport")
    assert {k: theirs[k] for k in keys} == {k: mine[k] for k in keys}
    same = [r for r in range(ROUNDS) if np.array_equal(record.arrived[r], ours["record"].arrived[r])]
    assert len(same) >= ROUNDS - 1 and any(r >= SWITCH for r in same)
    for r in same:
        assert np.array_equal(estimates[r], ours["estimates"][r]), r


def test_gradient_estimates_follow_a_schedule(problem, code, threads_client):
    """gradient_estimates(..., adapt=): after the switch each estimate is the new design's."""
    new, fresh = switch(code)
    w = problem.initial_point()
    estimates, h = gcluster.gradient_estimates(
        problem,
        code,
        w,
        workers=threads_client,
        deadline=DEADLINE,
        shift=SHIFT,
        rates=np.full(4, 1e3),
        rounds=3,
        time_unit=UNIT,
        rng=4,
        adapt=Schedule(code, {1: new}, fresh={1: fresh}),
    )
    [change] = h.adaptation
    assert change["round"] == 0 and h.final_design is new
    assert change["moved_transport"] == expected_sent(code, new, [[0, 2], [1, 3]])
    seed = int(np.random.default_rng(4).integers(2**63))  # the run's seed, drawn from rng as train does
    for r in range(3):
        scheme = code if r < 1 else new
        shard = shard_maker(scheme, problem, None, None)(range(4))
        sent = [i for i in range(4) if h.on_time[r, i] and runtime.partitions_of(scheme, i).size]
        want = runtime.decode(scheme, [shard.message(i, w, r, seed) for i in sent])
        assert np.array_equal(estimates[r], want), r


# ---------------------------------------------------------------------------- no processes
def test_pack_tensors_round_trip_every_dtype():
    tensors = [
        torch.arange(6, dtype=torch.float32).reshape(2, 3),
        torch.tensor([1, -2], dtype=torch.int64),
        torch.tensor([True, False, True]),
        torch.ones(3, dtype=torch.bfloat16),
        torch.zeros(0, 4, dtype=torch.float64),
        torch.arange(12, dtype=torch.float64).reshape(3, 4).T,  # not contiguous
    ]
    meta, back = unpack_tensors(pack_tensors({"a": [1, 2]}, tensors))
    assert meta == {"a": [1, 2]}
    for t, b in zip(tensors, back, strict=True):
        assert b.dtype == t.dtype and b.shape == t.shape and torch.equal(b, t)
    bad = pack_tensors({}, [torch.ones(4)])
    with pytest.raises(InputError, match="ends before its tensors"):
        unpack_tensors(bad[:-1])


def test_a_torch_shard_reads_only_its_partitions_and_reshards():
    task = small_task(n=80)
    code = design(ClusterProfile(P4, dim=task.dim), bits_per_worker=6)
    new, _ = switch(code)
    makers = TorchShards(task, code)
    full_new = TorchShard(task, new)
    w = task.initial_point()
    for group in _groups(4):
        shard = makers(group)
        assert sorted(shard.data) == held_partitions(code.encoding, group)
        keep = held_partitions(new.encoding, group)
        outside = [i for i in range(4) if not set(runtime.partitions_of(new, i)) <= set(shard.data)]
        for i in outside:  # before the move, a worker of the new design needs data this rank lacks
            with pytest.raises(RuntimeError, match="does not hold partition"):
                TorchShard(task, new, data=shard.data).coded_gradient(i, w, 0, 0)
        missing = [j for j in keep if j not in shard.data]
        after = makers.rebuild(shard, new, {j: makers.partition_data(j) for j in missing}, keep)
        assert sorted(after.data) == keep
        for i in group:
            assert torch.equal(after.coded_gradient(i, w, 0, 5), full_new.coded_gradient(i, w, 0, 5))


def test_numpy_shards_rebuild_the_partition_problem_bit_for_bit(problem, code):
    new, _ = switch(code)
    makers = NumpyShards(code, problem, None, None)
    shard = makers([0, 2])
    keep = held_partitions(new.encoding, [0, 2])
    received = {j: makers.partition_data(j) for j in keep if j not in shard.parts}
    after = makers.rebuild(shard, new, received, keep)
    assert sorted(after.parts) == keep and after.scheme is new
    for j in keep:
        ref = partition_problem(problem, j)
        for field in ("features", "targets", "partition_features", "partition_targets", "partition_sizes"):
            assert np.array_equal(getattr(after.parts[j], field), getattr(ref, field)), (j, field)
    assert NumpyShards(code, None, lambda w, parts: None, None).partition_data(0) is None


def test_adapt_on_torch_refuses_an_infinite_deadline():
    task = small_task(n=80)
    code = design(ClusterProfile(P4, dim=task.dim), bits_per_worker=6)
    with pytest.raises(InputError, match="finite `deadline`"):
        gcluster.train(task, code, backend="torch", deadline=np.inf, rates=np.ones(4), rounds=2, adapt=True)


@pytest.mark.slow
def test_adapt_redesigns_on_torch_when_a_worker_slows_down(problem, code):
    """The online adapter (not a script) over gloo: the slowed worker loses mass, data moves."""
    from gcdesign.cluster.adaptive import AdaptOptions

    rounds = 40
    table = np.tile(gcluster.delay_rates(P4, deadline=2.0, shift=1.0), (rounds, 1))
    table[12:, 0] = 1e-3  # the drift test compares with the worker's own rounds: 12 before the change
    hist = gcluster.train(
        problem,
        code,
        backend="torch",
        workers=HOSTS,
        deadline=2.0,
        shift=1.0,
        rates=table,
        rounds=rounds,
        time_unit=0.08,
        optimizer=gd(0.5),
        rng=5,
        adapt=AdaptOptions(window=6, calibration=12, false_alarm=0.05),
    )
    redesigns = [c for c in hist.adaptation if c["action"] == "redesign"]
    assert redesigns, hist.adaptation
    assert hist.final_design.row_mass[0] < code.row_mass[0]
    assert all(c["moved_transport"] <= c["moved"] <= c["moved_fresh"] for c in redesigns)
    assert np.all(np.isfinite(hist.loss))


@pytest.mark.slow
def test_cli_cluster_backend_torch_adapt_reports_the_redesign(capsys):
    import json

    from gcdesign.cli import main

    argv = ["cluster", "--backend", "torch", "--example", "toy-n8", "--deadline", "2", "--shift", "1"]
    argv += [
        "--rounds",
        "40",
        "--time-unit",
        "0.05",
        "--adapt",
        "--window",
        "8",
        "--slow",
        "0:50@16",
        "--no-baseline",
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert any(c["action"] == "redesign" for c in out["adaptation"])
    assert all(c["moved_transport"] <= c["moved"] for c in out["adaptation"] if c["action"] == "redesign")


def test_the_drift_study_refuses_an_unknown_backend(tmp_path):
    from gcdesign.studies import drift

    with pytest.raises(InputError, match="backend"):
        drift.run(tmp_path, quick=True, backend="mpi", progress=False)


@pytest.mark.slow
def test_the_drift_study_runs_on_torch(tmp_path):
    """The drift study's quick plan (slowdown: static, adaptive, oracle) over gloo host ranks."""
    import csv

    from gcdesign.studies import drift

    result = drift.run(tmp_path, quick=True, backend="torch", progress=False)
    assert "torch host ranks" in result.summary
    with open(tmp_path / "drift.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["arm"] for r in rows} == {"static", "adaptive", "oracle"}
    oracle = next(r for r in rows if r["arm"] == "oracle")
    assert float(oracle["redesigns_per_run"]) >= 1  # the scripted switch happened over the process group
