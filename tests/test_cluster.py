"""gcdesign.cluster: coded rounds on a dask.distributed LocalCluster (small, closed at the end)."""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time

import numpy as np
import pytest
from scipy import stats

from gcdesign import ClusterProfile, InputError, design, expected_error
from gcdesign import cluster as gcluster
from gcdesign.cluster.dask import DaskTransport
from gcdesign.runtime import encode, partitions_of
from gcdesign.schemes import make_scheme
from gcdesign.training import gd, synthetic_problem

distributed = pytest.importorskip("distributed")

P4 = np.array([0.1, 0.25, 0.4, 0.6])


# ---------------------------------------------------------------- no cluster needed
def test_partition_problem_reproduces_the_partition_gradients():
    prob = synthetic_problem("softmax", partitions=7, n_samples=150, n_features=5, rng=1, solve=False)
    w = np.random.default_rng(1).standard_normal(prob.dim) * 0.1
    full = prob.partition_gradients(w)
    for j in range(prob.partitions):
        part = gcluster.partition_problem(prob, j)
        assert part.partition_features.shape[0] == 1 and part.n_samples == prob.partition_sizes[j]
        g = part.partition_gradients(w)[0] * part.n_samples / prob.n_samples + prob.reg / prob.partitions * w
        np.testing.assert_allclose(g, full[j], rtol=1e-12, atol=1e-15)


def test_emulated_delays_are_counter_based_and_shifted_exponential():
    rates = np.array([0.5, 1.0, 4.0])
    a = gcluster.emulated_delays(11, 5, rates, 1.0)
    assert np.array_equal(a, gcluster.emulated_delays(11, 5, rates, 1.0))
    assert not np.array_equal(a, gcluster.emulated_delays(11, 6, rates, 1.0))
    # worker i's delay does not depend on the other workers (its own stream)
    assert gcluster.emulated_delays(11, 5, rates[:1], 1.0)[0] == a[0]
    draws = np.array([gcluster.emulated_delays(3, r, rates, 1.0) for r in range(4000)])
    assert draws.min() >= 1.0
    mean, se = (draws - 1.0).mean(axis=0), (draws - 1.0).std(axis=0) / math.sqrt(4000)
    assert np.all(np.abs(mean - 1.0 / rates) < 3 * se)


def test_delay_rates_reproduce_the_profile():
    p = np.array([0.0, 0.05, 0.5, 1.0])
    mu = gcluster.delay_rates(p, deadline=1.1, shift=1.0)
    assert mu[0] == np.inf and mu[3] == 0.0
    np.testing.assert_allclose(np.exp(-mu * 0.1), p, rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"deadline": 0.0}, "`deadline`"),
        ({"deadline": float("nan")}, "`deadline`"),
        ({"deadline": 2.0, "shift": 2.0}, "`shift`"),
        ({"deadline": math.inf}, "`rates`"),
        ({"deadline": 2.0, "rates": [1.0, 2.0]}, "`rates`"),
        ({"deadline": 2.0, "rounds": 0}, "`rounds`"),
        ({"deadline": 2.0, "time_unit": -1.0}, "`time_unit`"),
        ({"deadline": "soon"}, "`deadline`"),
        ({"deadline": 1e308}, "too long a round"),
        ({"deadline": 2.0, "optimizer": "gd"}, "`optimizer`"),
    ],
)
def test_bad_input_names_the_field(problem, code, kwargs, field):
    kwargs = {"rounds": 3, **kwargs}
    with pytest.raises(InputError, match=field):
        gcluster.train(problem, code, workers=object(), **kwargs)


def test_the_old_keywords_still_work_with_a_deprecation_warning(problem, code):
    # checked before any cluster is opened: a bad deadline stops the call after the renaming
    for old in ({"client": object()}, {"n_workers": 3}):
        with (
            pytest.warns(DeprecationWarning, match="workers="),
            pytest.raises(InputError, match="`deadline`"),
        ):
            gcluster.train(problem, code, deadline=0.0, rounds=2, **old)
    with pytest.warns(DeprecationWarning, match="`w=`"), pytest.raises(InputError, match="`deadline`"):
        gcluster.gradient_estimates(problem, code, theta=np.zeros(problem.dim), deadline=0.0, rounds=2)
    with pytest.raises(InputError, match="give `workers` only; `n_workers` is its deprecated name"):
        gcluster.train(problem, code, workers=2, n_workers=2, deadline=2.0, rounds=2)


def test_bad_scheme_and_source(problem, code):
    with pytest.raises(InputError, match="scheme"):
        gcluster.train(problem, object(), workers=object(), deadline=2.0, rounds=2)
    with pytest.raises(InputError, match="`x0`"):
        gcluster.train(lambda w, parts: None, code, workers=object(), deadline=2.0, rounds=2)
    other = synthetic_problem("logistic", partitions=5, n_samples=100, n_features=6, rng=0)
    with pytest.raises(InputError, match="partitions"):
        gcluster.train(other, code, workers=object(), deadline=2.0, rounds=2)


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (("--deadline", "2", "--rounds", "3"), "--example"),
        (("--example", "toy-n8", "--design", "x.json", "--deadline", "2", "--rounds", "3"), "--example"),
        (("--example", "toy-n8", "--deadline", "-2", "--rounds", "3"), "`deadline`"),
        (("--example", "toy-n8", "--deadline", "2", "--rounds", "0"), "`rounds`"),
        (("--example", "toy-n8", "--deadline", "2", "--rounds", "3", "--time-unit", "x"), "`time-unit`"),
        (("--example", "toy-n8", "--deadline", "2", "--rounds", "3", "--workers", "0"), "`workers`"),
        (("--example", "toy-n8", "--deadline", "2", "--rounds", "3", "--shift", "2"), "`shift`"),
    ],
)
def test_cli_bad_input_names_the_field(argv, field, capsys):
    from gcdesign.cli import main

    assert main(["cluster", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gcdesign: error:") and field in err and "\n" not in err


# ---------------------------------------------------------------- short runs (in-process workers)
def test_each_dask_worker_holds_only_its_partitions_once(threads_client):
    prob = synthetic_problem("least-squares", partitions=6, n_samples=120, n_features=4, rng=2)
    code = make_scheme("sgc", ClusterProfile(np.full(5, 0.2), dim=prob.dim, partitions=6), 30, rng=0)
    transport = DaskTransport(
        threads_client, code, gcluster.shard_maker(code, prob, None, None), np.zeros(prob.dim)
    )
    addresses = sorted(threads_client.nthreads())

    def held_by_worker(dask_worker):
        shards = [v for v in dask_worker.data.values() if isinstance(v, gcluster.Shard)]
        return [sorted(s.parts) for s in shards]

    held = threads_client.run(held_by_worker)
    for w, address in enumerate(addresses):
        logical = range(w, code.n_workers, len(addresses))  # i -> i mod W
        expect = sorted({int(j) for i in logical for j in partitions_of(code, i)})
        assert held[address] == [expect]  # one shard, only these partitions
        assert all(transport.placement()[i] == address for i in logical)
    transport.close()


def test_arrivals_follow_the_emulated_delays_and_traces_redesign(threads_client, problem, code, tmp_path):
    # rates far from the deadline: every worker's arrival is decided by its draw, not by timing noise
    rates = np.array([50.0, 0.05, 50.0, 0.05])
    run = {
        "workers": threads_client,
        "deadline": 4.0,
        "shift": 1.0,
        "rates": rates,
        "rounds": 4,
        "time_unit": 0.25,
        "optimizer": gd(0.5),
        "rng": 4,
    }
    hist = gcluster.train(problem, code, **run)
    # ready by 1.5 (375 ms) against a 1 s deadline, or not before 4: decided by the draw, not by load
    clear = (hist.delays < 1.5) | (hist.delays > 4.0)
    assert clear.mean() > 0.8
    assert np.array_equal(hist.on_time[clear], hist.delays[clear] < 1.5)
    assert np.array_equal(hist.arrived[1:], hist.on_time.sum(axis=1))
    assert hist.loss.shape == (5,) and np.all(np.isfinite(hist.loss)) and hist.loss[-1] < hist.loss[0]
    assert np.all(hist.round_times[hist.on_time] <= 4.0)
    again = gcluster.train(problem, code, **{**run, "rounds": 1})
    assert np.array_equal(again.delays, hist.delays[:1])  # same seed, same draws
    rows = gcluster.straggler_table(hist, P4)  # per worker (N <= 16), sorted by p
    assert [r["workers"] for r in rows] == list(code.profile.names)
    np.testing.assert_allclose([r["realized"] for r in rows], hist.straggler_frequency)
    grouped = gcluster.straggler_table(hist, P4, groups=2)
    assert len(grouped) == 2 and grouped[0]["p"] == pytest.approx(P4[:2].mean())
    assert gcluster.time_to_loss(hist, hist.loss[0]) == 0.0
    assert gcluster.time_to_loss(hist, -1.0) == math.inf
    # measure -> re-profile -> redesign
    path = hist.write_traces(tmp_path / "traces.csv")
    prof = ClusterProfile.from_traces(path, deadline=4.0, dim=problem.dim, smoothing=0.0)
    assert prof.names == code.profile.names
    np.testing.assert_allclose(prof.straggler_probs, hist.straggler_frequency, rtol=1e-12)
    assert prof == hist.profile(dim=problem.dim, smoothing=0.0)
    smoothed = hist.profile(dim=problem.dim)
    redesigned = design(smoothed, bits_per_worker=6)
    assert redesigned.n_workers == code.n_workers and redesigned.bound > 0


def test_gradient_function_and_wait_for_all(threads_client, problem):
    def fn(w, parts):
        return problem.partition_gradients(w)[parts]

    profile = ClusterProfile(P4, dim=problem.dim)
    uncoded = make_scheme("is-sgd", profile, 4 * 32)
    uncoded = dataclasses.replace(uncoded, quantizer="none", bits=np.full(4, 32))
    theta = np.full(problem.dim, 0.1)
    est, rec = gcluster.gradient_estimates(
        fn,
        uncoded,
        theta,
        workers=threads_client,
        deadline=math.inf,
        rates=[20.0] * 4,
        shift=0.5,
        rounds=3,
        time_unit=0.01,
    )
    assert rec.on_time.all() and np.all(np.isfinite(rec.round_times))
    # unquantized messages carry float32 values: every round is the gradient to float32 precision
    np.testing.assert_allclose(est, np.tile(problem.gradient(theta), (3, 1)), rtol=1e-6, atol=1e-9)
    assert np.array_equal(est[0], est[1]) and np.array_equal(est[0], est[2])
    one = encode(uncoded, 0, problem.partition_gradients(theta)).nbytes
    assert rec.bits[1:].tolist() == [4 * 8 * one] * 3


def test_a_failing_task_is_an_error_not_a_straggler(threads_client, code):
    def broken(w, parts):
        raise ZeroDivisionError("user bug")

    def fails_later(w, parts):  # fine at x0 = 0 (the warm-up and round 0), broken after a step
        if np.any(w):
            raise ZeroDivisionError("user bug")
        return np.ones((len(parts), 3))

    run = {"workers": threads_client, "deadline": 2.0, "rounds": 3, "x0": np.zeros(3), "time_unit": 0.05}
    with pytest.raises(ZeroDivisionError, match="user bug"):  # the warm-up before round 0
        gcluster.train(broken, code, **run)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        gcluster.train(fails_later, code, **run)


# ---------------------------------------------------------------- statistics (slow)
@pytest.fixture(scope="module")
def fixed_theta_run(problem, code):
    theta = np.linspace(-0.5, 0.5, problem.dim)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        # u (tau - t0) = 1 s: the return trip (10-50 ms on a loaded 2-core machine) moves p_i by a
        # few percent only; the 100 ms shift leaves the compute time out of it
        est, rec = gcluster.gradient_estimates(
            problem, code, theta, workers=client, deadline=4.4, shift=0.4, rounds=100, time_unit=0.25, rng=7
        )
    return theta, est, rec


@pytest.mark.slow
def test_realized_straggler_frequencies_match_the_profile(fixed_theta_run):
    _, _, rec = fixed_theta_run
    rounds = rec.on_time.shape[0]
    late = (~rec.on_time).sum(axis=0)
    low, high = stats.binom.interval(0.99, rounds, P4)
    assert np.all((late >= low) & (late <= high)), (late / rounds, P4)
    chi2 = float(np.sum((late - rounds * P4) ** 2 / (rounds * P4 * (1 - P4))))
    pvalue = stats.chi2.sf(chi2, df=P4.size)
    print(f"realized {late / rounds} vs p {P4}; chi-square {chi2:.2f}, p-value {pvalue:.3f}")
    assert pvalue > 0.001


@pytest.mark.slow
def test_decoded_gradient_error_matches_expected_error(fixed_theta_run, problem, code):
    theta, est, rec = fixed_theta_run
    grads = problem.partition_gradients(theta)
    sq = np.sum((est - grads.sum(axis=0)) ** 2, axis=1)
    exact = expected_error(code, grads).error
    se = sq.std(ddof=1) / math.sqrt(sq.size)
    print(f"MSE {sq.mean():.6g} +- {se:.2g} (SE) vs expected_error {exact:.6g}")
    assert abs(sq.mean() - exact) < 3 * se, (sq.mean(), exact, se)


@pytest.mark.slow
def test_cli_prints_the_straggler_table_overhead_and_time_to_target(capsys):
    import json

    from gcdesign.cli import main

    argv = ["cluster", "--example", "toy-n8", "--deadline", "2", "--shift", "1", "--rounds", "6"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["stragglers"]) == 8 and out["rounds"] == 6
    assert out["overhead_ms"]["median"] >= 0 and math.isfinite(out["final_loss"])
    assert out["coded_seconds_to_target"] is not None and out["uncoded_seconds_to_target"] is not None


@pytest.mark.slow
def test_a_killed_worker_process_straggles_then_is_replaced(problem, code):
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        victim = sorted(client.nthreads())[1]

        def kill():  # once round 3 has been submitted
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                keys = [str(k) for k in list(client.futures)]
                if any(k.startswith("gcdesign-") and int(k.split("-")[2]) >= 3 for k in keys):
                    break
                time.sleep(0.01)
            try:
                client.run(os._exit, 1, workers=[victim])
            except Exception:  # noqa: BLE001 - the worker dies before it answers
                pass

        killer = threading.Thread(target=kill)
        killer.start()
        hist = gcluster.train(
            problem,
            code,
            workers=client,
            deadline=2.0,
            shift=1.0,
            rounds=40,
            time_unit=0.2,
            optimizer=gd(0.5),
            rng=3,
        )
        killer.join()
    assert hist.rounds == 40 and np.all(np.isfinite(hist.loss))
    orphans = [1, 3]  # logical workers on the second Dask worker (i mod 2 == 1)
    lost = np.array([[a is None for a in row] for row in hist.placement])
    assert lost[:, orphans].any(), "the dead worker was never noticed"
    assert not lost[:, [0, 2]].any()
    assert not hist.on_time[lost].any()  # lost logical workers never arrive
    first_lost = int(np.flatnonzero(lost[:, 1])[0])
    replaced = [r for r in range(first_lost, 40) if hist.placement[r, 1] not in (None, victim)]
    assert replaced, "the nanny's replacement never adopted the orphans"
    assert hist.on_time[replaced][:, orphans].any()  # they answer again after re-placement
    assert hist.on_time[:, [0, 2]].any(axis=0).all()  # the survivors kept answering
