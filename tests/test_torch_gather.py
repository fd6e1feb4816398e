"""The torch deadline gather: a real gloo run on localhost through the round engine (one session)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch_tasks import small_task  # noqa: E402

from gcdesign import ClusterProfile, design, runtime  # noqa: E402
from gcdesign.cluster.emulation import delay_rates  # noqa: E402
from gcdesign.cluster.engine import Engine  # noqa: E402
from gcdesign.cluster.history import ClusterHistory, record_fields  # noqa: E402
from gcdesign.cluster.torch import (  # noqa: E402
    TorchTransport,
    host_program,
    hosts_of,
    process_group,
    torch_shard,
)
from gcdesign.torch import decode as torch_decode  # noqa: E402

DEADLINE, SHIFT, UNIT, ROUNDS = 1.0, 0.5, 0.25, 6


class Recording(TorchTransport):
    """The transport, keeping what it started and the replies it handed to the engine."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.started, self.collected = [], []

    def start(self, order):
        started = super().start(order)
        self.started.append(sorted(started))
        return started

    def collect(self, arrivals):
        replies = super().collect(arrivals)
        self.collected.append(replies)
        return replies


@pytest.fixture(scope="module")
def session():
    task = small_task()
    profile = ClusterProfile([0.1, 0.2, 0.2, 0.3, 0.4], dim=task.dim, partitions=5)
    code = design(profile, 20, allocator="equal")
    rates = delay_rates(code.straggler_probs, deadline=DEADLINE, shift=SHIFT)
    rates[0] = 0.0  # worker 0 never makes it: its delay is cut to the hold (2 tau), always late
    estimates = []
    w0 = task.initial_point()
    make_shard = functools.partial(torch_shard, task, code, None)
    with process_group([host_program(make_shard, code, w0)], workers=2) as rank:
        assert rank == 0
        transport = Recording(code, w0, seed=11)
        try:
            engine = Engine(
                transport, code, time_unit=UNIT, deadline=DEADLINE, rates=rates, shift=SHIFT, seed=11
            )

            def update(w, estimate, r):
                estimates.append(estimate.copy())
                return w - 0.5 * estimate

            iterates, _, record = engine.run(task.initial_point(), ROUNDS, update)
        finally:
            transport.close()
    fields = record_fields(code, record, time_unit=UNIT, deadline=DEADLINE, shift=SHIFT)
    history = ClusterHistory(
        optimizer="gd",
        problem="t",
        loss=np.zeros(ROUNDS + 1),
        grad_norm=np.zeros(ROUNDS + 1),
        distance=None,
        **fields,
    )
    return {
        "code": code,
        "task": task,
        "transport": transport,
        "record": record,
        "history": history,
        "estimates": estimates,
        "iterates": iterates,
    }


def test_every_round_decodes_what_arrived_like_runtime_decode(session):
    code = session["code"]
    for r, replies in enumerate(session["transport"].collected):
        payloads = [rep.payload for rep in replies if rep.payload is not None]
        assert all(rep.round == r for rep in replies)
        want = runtime.decode(code, payloads) if payloads else np.zeros(session["task"].dim)
        assert np.array_equal(session["estimates"][r], want)
        if payloads:
            assert np.array_equal(torch_decode(code, payloads).numpy(), want)
    arrived = np.array(
        [
            [i in {rep.worker for rep in replies} for i in range(5)]
            for replies in session["transport"].collected
        ]
    )
    assert np.array_equal(arrived, session["record"].arrived)
    assert arrived[:, 1:].any()  # the others did arrive


def test_a_late_message_is_drained_and_never_decoded(session):
    rec, transport = session["record"], session["transport"]
    assert not rec.arrived[:, 0].any()
    assert all(0 not in {rep.worker for rep in replies} for replies in transport.collected)
    started0 = [r for r, s in enumerate(transport.started) if 0 in s]
    # no backlog: worker 0 is busy (late) in the round after each one it was given
    assert len(started0) < ROUNDS
    assert all(r + 1 not in started0 for r in started0)
    times = rec.round_times[started0[:-1], 0]  # each drained before its next round: timed, late
    assert np.all(np.isfinite(times)) and np.all(times > DEADLINE)
    skipped = [r for r in range(ROUNDS) if r not in started0]
    assert np.all(np.isinf(rec.round_times[skipped, 0]))


def test_traces_read_back(session, tmp_path):
    h = session["history"]
    path = h.write_traces(tmp_path / "traces.csv")
    profile = ClusterProfile.from_traces(
        {name: h.round_times[:, i] for i, name in enumerate(h.names)}, deadline=DEADLINE, dim=3
    )
    assert profile.n_workers == 5
    assert path.read_text().startswith("worker,round,time\n")
    assert h.placement[0].tolist() == [f"rank {r}" for r in hosts_of(5, 3)]


def test_on_time_means_within_the_deadline(session):
    h = session["history"]
    decoded = session["record"].arrived
    sends = np.array([runtime.partitions_of(session["code"], i).size > 0 for i in range(5)])
    assert np.array_equal(h.on_time[:, sends], h.round_times[:, sends] <= DEADLINE)
    assert np.all(decoded <= h.on_time)
    assert math.isfinite(float(np.median(h.overhead)))


def test_cluster_train_with_the_torch_backend():
    """The public entry point: a TorchTask and a torch optimizer through gcdesign.cluster.train,
    following a scripted redesign after round 1 (tests/test_torch_adapt.py checks the switch itself)."""
    import gcdesign.cluster as gcluster
    from gcdesign.cluster.adaptive import Schedule, closest_redesign, fresh_design
    from gcdesign.cluster.worker import held_partitions

    task = small_task(seed=1)
    code = design(ClusterProfile([0.1, 0.2, 0.3], dim=task.dim, partitions=3), 12, allocator="equal")
    new = closest_redesign(code, fresh_design(code, [0.9, 0.2, 0.3]))[0]
    h = gcluster.train(
        task,
        code,
        backend="torch",
        workers=2,
        deadline=DEADLINE,
        rounds=4,
        time_unit=UNIT,
        rng=0,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.5),
        adapt=Schedule(code, {2: new}),
    )
    [change] = h.adaptation
    ranks = [[0, 2], [1]]  # logical workers of host ranks 1 and 2 (here both already hold what they need)
    lacked = [set(held_partitions(new.encoding, g)) - set(held_partitions(code.encoding, g)) for g in ranks]
    assert change["round"] == 1 and change["moved_transport"] == sum(map(len, lacked))
    assert h.final_design is new
    assert h.round_times.shape == (4, 3) and h.optimizer == "SGD"
    assert h.loss.shape == (5,) and np.all(np.isfinite(h.loss))
    assert np.array_equal(h.on_time, h.round_times <= DEADLINE)
    w = task.initial_point()
    assert task.evaluate(w)[0] == pytest.approx(h.loss[-1])  # the task's model holds the last iterate


def test_torch_backend_refuses_a_scheduler():
    import gcdesign.cluster as gcluster
    from gcdesign._validate import InputError

    task = small_task()
    code = design(ClusterProfile([0.1, 0.2], dim=task.dim, partitions=2), 8, allocator="equal")
    with pytest.raises(InputError, match="`scheduler` is a Dask address"):
        gcluster.train(task, code, backend="torch", scheduler="tcp://x:1", deadline=1.0, rounds=1)
    with pytest.raises(InputError, match="backend"):
        gcluster.train(task, code, backend="mpi", deadline=1.0, rounds=1)


def test_torch_task_rounds_are_checked_as_the_dask_ones():
    import gcdesign.cluster as gcluster
    from gcdesign._validate import InputError

    task = small_task()
    code = design(ClusterProfile([0.1, 0.2], dim=task.dim, partitions=2), 8, allocator="equal")
    with pytest.raises(InputError, match="too long a round"):  # before any process starts
        gcluster.train(task, code, backend="torch", deadline=1e308, rounds=1)
    with pytest.raises(InputError, match="`time_unit`"):
        gcluster.train(task, code, backend="torch", deadline=1.0, rounds=1, time_unit=0.0)


def test_the_quantizer_stream_tag_is_the_clusters():
    from gcdesign.cluster.emulation import QUANTIZE
    from gcdesign.torch import task

    assert task.QUANTIZE == QUANTIZE  # a TorchShard draws its quantizer key as the numpy shard does


@pytest.mark.slow
def test_cli_cluster_backend_torch_prints_what_dask_prints():
    import json
    import os
    import subprocess
    import sys

    args = [
        "cluster",
        "--example",
        "toy-n8",
        "--deadline",
        "2",
        "--rounds",
        "3",
        "--time-unit",
        "0.1",
        "--json",
    ]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    torch_run = subprocess.run(
        [sys.executable, "-m", "gcdesign", *args, "--backend", "torch"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert torch_run.returncode == 0, torch_run.stderr
    result = json.loads(torch_run.stdout)
    assert len(result["stragglers"]) == 8 and result["rounds"] == 3
    assert {"overhead_ms", "coded_seconds_to_target", "uncoded_seconds_to_target"} <= set(result)


def test_study_uncoded_baseline_is_unbiased():
    from gcdesign.studies.torch import P, uncoded_rescaled

    scheme = uncoded_rescaled(ClusterProfile(P, dim=10, partitions=8), 32)
    B = scheme.encoding.toarray()
    expected = ((1.0 - np.asarray(P)) * scheme.decoding) @ B  # E[sum_i a_i 1{i arrives} b_ij]
    assert np.allclose(expected, 1.0)


@pytest.mark.slow
def test_docs_torch_python_blocks_run_as_written(tmp_path):
    """docs/torch.md: its python blocks, run in order in one process, print what the page says."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "torch.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    said = re.findall(r"prints `([^`]*)`", text)
    script = tmp_path / "blocks.py"
    script.write_text(
        "if __name__ == '__main__':\n"
        + "".join("    " + line + "\n" for block in blocks for line in block.splitlines())
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[: len(said)] == said


class _FailsAfterAStep(torch.nn.Module):
    """A linear model whose forward raises once its weights moved from the start (a user's bug)."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 2)
        self.start = self.lin.weight.detach().clone()

    def forward(self, x):
        if not torch.equal(self.lin.weight.detach(), self.start):
            raise ZeroDivisionError("user bug")
        return self.lin(x)


@pytest.mark.slow
def test_a_failing_worker_round_is_raised_on_the_master():
    import gcdesign.cluster as gcluster

    task = small_task()
    task.model = _FailsAfterAStep()
    code = design(ClusterProfile([0.1, 0.2], dim=task.dim, partitions=2), 8, allocator="equal")
    with pytest.raises(RuntimeError, match="ZeroDivisionError: user bug"):
        gcluster.train(task, code, backend="torch", workers=1, deadline=4.0, rounds=3, time_unit=0.25, rng=0)


@pytest.mark.slow
def test_the_synthetic_task_at_a_million_parameters_runs_over_the_gather():
    import gcdesign.cluster as gcluster
    from gcdesign.torch.models import synthetic_task

    task = synthetic_task(dim=10**6, partitions=4, rng=0)
    code = design(ClusterProfile([0.1, 0.2, 0.3, 0.4], dim=task.dim, partitions=4), 16)
    h = gcluster.train(task, code, backend="torch", workers=2, deadline=1.0, rounds=3, time_unit=1.0, rng=0)
    assert task.dim > 900_000 and h.round_times.shape == (3, 4)
    assert h.arrived[1:].sum() > 0 and np.all(np.isfinite(h.loss))
