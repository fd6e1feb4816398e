"""gcdesign.parallel: workers= (serial, spawn pool, map-like, Dask), in order and bitwise reproducible."""

from __future__ import annotations

import math
import operator

import numba
import numpy as np
import pytest

from gcdesign import design, load_example
from gcdesign._validate import InputError
from gcdesign.evaluation import synthetic_gradients
from gcdesign.montecarlo import monte_carlo_error
from gcdesign.parallel import (
    cpu_count,
    describe_workers,
    numba_threads,
    open_workers,
    parallel_imap,
    parallel_map,
    process_count,
)

TASKS = [(3, 1), (10, 2), (0, 5), (7, 7), (12, 3)]  # math.comb(n, k)


def comb(args):
    return math.comb(*args)


WANT = [math.comb(*t) for t in TASKS]


@pytest.fixture(scope="module")
def dask_client():
    """A real, small dask.distributed cluster (threads in this process), closed afterwards."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


# ---------------------------------------------------------------- the local paths
def test_serial_and_map_like_paths_keep_task_order():
    assert parallel_map(comb, TASKS) == WANT
    assert parallel_map(comb, TASKS, workers=1) == WANT
    assert parallel_map(comb, TASKS, workers=map) == WANT
    assert parallel_map(comb, iter(TASKS), workers=lambda fn, ts: [fn(t) for t in ts]) == WANT
    assert parallel_map(comb, []) == []
    seen = []
    assert parallel_map(comb, TASKS, progress=lambda: seen.append(1)) == WANT and len(seen) == len(TASKS)


def test_serial_imap_is_lazy():
    calls = []

    def fn(t):
        calls.append(t)
        return t

    it = parallel_imap(fn, range(5))
    assert next(it) == 0 and calls == [0]


def test_spawn_process_pool_keeps_task_order():
    # builtins: the spawned children need not import this test module
    assert parallel_map(abs, [-3, 1, -2, 5, -8], workers=2) == [3, 1, 2, 5, 8]
    with open_workers(2) as run:
        assert callable(run)
        assert parallel_map(abs, [-1, -2], workers=run) == [1, 2]
        assert parallel_map(operator.neg, range(4), workers=run) == [0, -1, -2, -3]  # the pool is reused
    with pytest.raises(InputError, match="`workers` = 2 runs the tasks in other processes, but a task"):
        parallel_map(lambda t: t, [1, 2], workers=2)


def test_worker_counts_and_messages():
    assert process_count(3) == 3 and process_count(-1) == cpu_count() >= 1
    assert process_count(np.int64(2)) == 2
    for bad in (0, -2, 1.5, True, "2", None):
        with pytest.raises(InputError, match=r"`workers` must be None or 1 \(serial\), -1 \(all cores\)"):
            process_count(bad)
    with pytest.raises(InputError, match="got 'many'"):
        parallel_map(comb, TASKS, workers="many")
    with pytest.raises(InputError, match="not both"):
        parallel_map(comb, TASKS, workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(InputError, match="`scheduler` must be a Dask scheduler address"):
        with open_workers(scheduler=""):
            pass
    assert describe_workers() == "serial" == describe_workers(1)
    assert describe_workers(2) == "2 processes (spawn)"
    assert describe_workers(map) == "the map-like callable map"
    assert describe_workers(scheduler="tcp://h:1") == "Dask scheduler tcp://h:1"
    with open_workers(None) as run:
        assert run is None
    with open_workers(1) as run:
        assert run is None


def test_numba_threads_restores_what_was_set_before():
    outer = numba.get_num_threads()
    top = numba.config.NUMBA_NUM_THREADS
    with numba_threads(1) as n:
        assert n == numba.get_num_threads() == 1
        with numba_threads(top + 5) as m:  # capped at the pool size
            assert m == numba.get_num_threads() == top
        assert numba.get_num_threads() == 1  # the inner block restored the outer setting, not the default
        with pytest.raises(RuntimeError, match="boom"):
            with numba_threads(top):
                raise RuntimeError("boom")
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == outer
    with numba_threads(None) as n:
        assert n == outer
    with pytest.raises(InputError, match="`threads` must be None or an integer >= 1, got 0"):
        with numba_threads(0):
            pass


def test_monte_carlo_batches_pickle_and_give_the_same_numbers():
    """What a process pool or a Dask worker receives: a pickled batch (Design and an LS decoder)."""
    import pickle

    from gcdesign.montecarlo import monte_carlo_problem, simulate_batch
    from gcdesign.schemes import make_scheme

    profile = load_example("toy-n8")
    grads = synthetic_gradients(8, 30, rng=3)
    keys = np.random.default_rng(0).integers(0, 2**64, size=(3, 2), dtype=np.uint64)
    for scheme in (design(profile, bits_per_worker=4), make_scheme("od", profile, 32, rng=1)):
        batch = (monte_carlo_problem(scheme, grads), 0, keys, 40, 1)
        here, there = simulate_batch(batch), simulate_batch(pickle.loads(pickle.dumps(batch)))
        for a, b in zip(here, there, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_monte_carlo_on_a_spawn_pool_equals_serial():
    code = design(load_example("toy-n8"), bits_per_worker=4)
    grads = synthetic_gradients(code.partitions, 30, rng=3)
    serial = monte_carlo_error(code, grads, trials=500, rng=4)
    pooled = monte_carlo_error(code, grads, trials=500, rng=4, workers=2)
    np.testing.assert_array_equal(pooled.errors, serial.errors)
    assert pooled.bias == serial.bias and pooled.bias_bound == serial.bias_bound


# ---------------------------------------------------------------- Dask
def test_dask_client_map_and_scheduler_address(dask_client):
    assert parallel_map(comb, TASKS, workers=dask_client) == WANT
    assert parallel_map(comb, TASKS, workers=dask_client.map) == WANT
    address = dask_client.scheduler.address
    assert parallel_map(comb, TASKS, scheduler=address) == WANT
    assert parallel_map(comb, TASKS, scheduler=dask_client) == WANT
    with open_workers(scheduler=dask_client) as run:
        assert run is dask_client
    assert dask_client.status == "running"  # a Client we were given is left open


def test_dask_errors_surface(dask_client):
    with pytest.raises(ValueError):
        parallel_map(comb, [(3, 1), (-1, 2)], workers=dask_client)


def test_monte_carlo_on_dask_equals_serial(dask_client):
    """The docstring's promise: ``workers=client.map`` (and a Client, and an address) work."""
    code = design(load_example("toy-n8"), bits_per_worker=4)
    grads = synthetic_gradients(code.partitions, 30, rng=5)
    serial = monte_carlo_error(code, grads, trials=400, rng=6)
    for kw in (
        {"workers": dask_client.map},
        {"workers": dask_client},
        {"scheduler": dask_client.scheduler.address},
    ):
        r = monte_carlo_error(code, grads, trials=400, rng=6, **kw)
        np.testing.assert_array_equal(r.errors, serial.errors)
        assert r.mean == serial.mean and r.bias == serial.bias and r.bias_bound == serial.bias_bound


# ---------------------------------------------------------------- studies
def _runs_equal(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        for ha, hb in zip(a[name], b[name], strict=True):
            np.testing.assert_array_equal(ha.loss, hb.loss)
            np.testing.assert_array_equal(ha.total_bits, hb.total_bits)


def _small_runs(workers):
    from gcdesign import ClusterProfile
    from gcdesign.studies._common import run_schemes
    from gcdesign.training import sgd, synthetic_problem

    problem = synthetic_problem("least-squares", partitions=8, rng=1)
    profile = ClusterProfile(np.linspace(0.05, 0.6, 8), dim=problem.dim)
    return run_schemes(
        problem,
        profile,
        32,
        ["joint", "osgc", "centralized"],
        seeds=[3, 4],
        rounds=15,
        optimizer=sgd(0.05, batch_size=8),
        workers=workers,
    )


def test_study_runs_are_the_same_whatever_runs_them(dask_client):
    serial = _small_runs(None)
    assert [len(v) for v in serial.values()] == [2, 2, 2]
    assert not np.array_equal(serial["joint"][0].loss, serial["joint"][1].loss)  # per-task seeds differ
    _runs_equal(serial, _small_runs(map))
    _runs_equal(serial, _small_runs(dask_client))


def test_study_tasks_pickle_and_give_the_same_history():
    """What a spawn pool receives: the task, pickled (a Design and a named scheme)."""
    import pickle

    from gcdesign import ClusterProfile
    from gcdesign.studies._common import train_run
    from gcdesign.training import sgd, synthetic_problem

    problem = synthetic_problem("least-squares", partitions=8, rng=1)
    profile = ClusterProfile(np.linspace(0.05, 0.6, 8), dim=problem.dim)
    options = {"rounds": 10, "optimizer": sgd(0.05, batch_size=8)}
    code = design(profile, 32, bucket_size=4)
    for scheme in (code, ("sgc", profile, 32)):
        task = (problem, scheme, 5, options)
        here, there = train_run(task), train_run(pickle.loads(pickle.dumps(task)))
        np.testing.assert_array_equal(here.loss, there.loss)
    again = pickle.loads(pickle.dumps(code))  # the design comes back whole and read-only
    assert again.options == code.options and again.bucket_size == 4 and not again.bits.flags.writeable
    np.testing.assert_array_equal(again.decoding, code.decoding)


@pytest.mark.slow
def test_a_quick_study_writes_the_same_csv_with_one_and_two_workers(tmp_path):
    from gcdesign.studies import run_study

    for workers in (1, 2):
        run_study("deadline", tmp_path / str(workers), quick=True, progress=False, workers=workers)
    one, two = (tmp_path / w / "deadline.csv" for w in ("1", "2"))
    assert one.read_bytes() == two.read_bytes()


def test_cli_study_passes_workers_and_scheduler(monkeypatch, tmp_path, capsys):
    import gcdesign.studies
    from gcdesign.cli import main
    from gcdesign.studies import StudyResult

    seen = []

    def fake_run_study(name, out, **kw):
        seen.append(kw)
        return StudyResult(name)

    monkeypatch.setattr(gcdesign.studies, "run_study", fake_run_study)
    out = str(tmp_path / "o")
    assert main(["study", "adam", "--out", out]) == 0
    assert main(["study", "adam", "--out", out, "--workers", "2"]) == 0
    assert main(["study", "adam", "--out", out, "--scheduler", "tcp://10.0.0.1:8786"]) == 0
    assert [(k["workers"], k["scheduler"]) for k in seen] == [
        (-1, None),
        (2, None),
        (None, "tcp://10.0.0.1:8786"),
    ]
    capsys.readouterr()
    for argv in (["--workers", "0"], ["--workers", "two"], ["--workers", "-2"]):
        assert main(["study", "adam", "--out", out, *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert "`workers` must be an integer >= 1 or -1 (every core)" in err and len(err.splitlines()) == 1
    assert main(["study", "adam", "--workers", "2", "--scheduler", "tcp://h:1"]) == 2  # one or the other
    assert "not allowed with argument --workers" in capsys.readouterr().err


def test_connect_scheduler_refuses_a_port_that_never_speaks_dask():
    """A listener that accepts TCP and stays silent: Dask's Client alone would wait forever."""
    import socket

    from gcdesign.parallel import connect_scheduler

    with socket.create_server(("127.0.0.1", 0)) as silent:
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(
            InputError,
            match=r"^`scheduler` 'tcp://127\.0\.0\.1:\d+': cannot connect \(connected, but no Dask handshake",
        ):
            connect_scheduler(address, timeout=0.5)
    for bad in ("garbage", "foo://x:1"):
        with pytest.raises(
            InputError, match=r"`scheduler` must be a Dask scheduler address such as 'tcp://host:8786', got"
        ):
            connect_scheduler(bad)
