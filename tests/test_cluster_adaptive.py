"""Designs that follow the cluster on the Dask runtime: redesign between rounds, data moved to the
workers that lack it, delays that follow the load (gcdesign.cluster with adapt= and load_cost=)."""

from __future__ import annotations

import numpy as np
import pytest

import gcdesign.cluster as gcluster
from gcdesign import ClusterProfile
from gcdesign._validate import InputError
from gcdesign.cluster.adaptive import AdaptOptions, Schedule, closest_redesign, fresh_design
from gcdesign.cluster.emulation import emulated_delays, round_delays
from gcdesign.construction import moved_partitions
from gcdesign.runtime import partitions_of
from gcdesign.schemes import make_scheme
from gcdesign.training import gd

P4 = np.array([0.1, 0.25, 0.4, 0.6])


def _held_by_worker(client):
    def held(dask_worker):
        shards = [v for v in dask_worker.data.values() if isinstance(v, gcluster.Shard)]
        return [(sorted(s.parts), s.scheme) for s in shards]

    return client.run(held)


def test_round_delays_follow_the_drift_and_the_load():
    rates = np.array([[1.0, 2.0], [0.5, 2.0]])
    d0 = round_delays(9, 0, rates, 1.0)
    d1 = round_delays(9, 1, rates, 1.0, load_cost=[0.1, 0.2], loads=[3, 1])
    assert np.array_equal(d0, emulated_delays(9, 0, rates[0], 1.0))
    assert np.allclose(d1 - emulated_delays(9, 1, rates[1], 1.0), [0.3, 0.2])


def test_a_scheduled_redesign_moves_only_missing_partitions(threads_client, problem, code):
    slowed = P4.copy()
    slowed[0] = 0.9  # the most reliable worker (the largest mass) becomes the least
    fresh = fresh_design(code, slowed)
    new, moved, moved_fresh = closest_redesign(code, fresh)
    assert moved <= moved_fresh
    schedule = Schedule(code, {3: new}, fresh={3: fresh})
    seen = {}

    class Watch:  # the schedule, looking at what the Dask workers hold one round after the switch
        design = property(lambda self: schedule.design)
        last = property(lambda self: schedule.last)

        def observe(self, r, late):
            if r == 3:
                seen.update(_held_by_worker(threads_client))
            return schedule.observe(r, late)

    hist = gcluster.train(
        problem,
        code,
        workers=threads_client,
        deadline=2.0,
        shift=1.0,
        rounds=6,
        time_unit=0.05,
        optimizer=gd(0.5),
        rng=3,
        adapt=Watch(),
    )
    [change] = hist.adaptation
    assert change["round"] == 2 and change["moved"] == moved == moved_partitions(code.encoding, new.encoding)
    assert change["moved_fresh"] == moved_fresh
    assert hist.final_design is new
    # every Dask worker now holds exactly the partitions of its logical workers under the new design
    addresses = sorted(threads_client.nthreads())
    held = seen
    sent = 0
    for w, address in enumerate(addresses):
        logical = range(w, code.n_workers, len(addresses))
        expect = sorted({int(j) for i in logical for j in partitions_of(new, i)})
        before = {int(j) for i in logical for j in partitions_of(code, i)}
        [(parts, scheme)] = held[address]
        assert parts == expect and np.array_equal(scheme.bits, new.bits)
        sent += len(set(expect) - before)
    assert change["moved_transport"] == sent  # only what a machine lacked travelled
    assert np.all(np.isfinite(hist.loss)) and hist.loss[-1] < hist.loss[0]


def test_adapt_redesigns_when_a_worker_slows_down(threads_client, problem, code):
    rounds = 40
    rates = np.tile(gcluster.delay_rates(P4, deadline=2.0, shift=1.0), (rounds, 1))
    rates[12:, 0] = 1e-3  # worker 0 (p = 0.1, the largest mass) never answers in time from round 12
    hist = gcluster.train(
        problem,
        code,
        workers=threads_client,
        deadline=2.0,
        shift=1.0,
        rates=rates,
        rounds=rounds,
        time_unit=0.08,
        optimizer=gd(0.5),
        rng=5,
        # 12 rounds of reference: the test tests from round 17, the window all after the change
        adapt=AdaptOptions(window=6, calibration=12, false_alarm=0.05),
    )
    redesigns = [c for c in hist.adaptation if c["action"] == "redesign"]
    assert redesigns, hist.adaptation
    final = hist.final_design
    # 12 rounds after the alarm worker 0's rate is measured on those rounds alone: near 1
    assert any(c["cause"] == "calibrated" for c in hist.adaptation), hist.adaptation
    assert final.straggler_probs[0] > 0.6
    assert final.row_mass[0] < code.row_mass[0]  # and the redesign took mass away from it
    assert all(c["moved"] <= c["moved_fresh"] for c in redesigns)
    assert all(c["moved_transport"] <= c["moved"] for c in redesigns)


def test_load_cost_makes_the_loaded_worker_late(threads_client, problem, code):
    loads = np.diff(code.encoding.indptr)
    cost = np.zeros(4)
    cost[np.argmax(loads)] = 5.0  # its delay grows far past the deadline
    hist = gcluster.train(
        problem,
        code,
        workers=threads_client,
        deadline=2.0,
        shift=1.0,
        rates=np.full(4, 50.0),
        load_cost=cost,
        rounds=3,
        time_unit=0.05,
        rng=1,
    )
    plain = emulated_delays(0, 0, np.full(4, 50.0), 1.0)  # shape check only: the seed differs
    assert hist.delays.shape == (3, plain.size)
    assert np.all(hist.delays[:, np.argmax(loads)] >= 1.0 + 5.0 * loads.max())
    assert not hist.on_time[:, np.argmax(loads)].any()


def test_bad_input_names_the_field(problem, code):
    common = {"deadline": 2.0, "rounds": 3, "workers": 1}
    with pytest.raises(InputError, match="`adapt` needs a Design"):
        scheme = make_scheme("sgc", ClusterProfile(P4, dim=problem.dim), 24, rng=0)
        gcluster.train(problem, scheme, adapt=True, **common)
    with pytest.raises(InputError, match="finite `deadline`"):
        gcluster.train(problem, code, adapt=True, **{**common, "deadline": np.inf}, rates=np.ones(4))
    with pytest.raises(InputError, match=r"`rates` must be 4 numbers.*\(3, 4\)"):
        gcluster.train(problem, code, rates=np.ones((5, 4)), **common)
    with pytest.raises(InputError, match="`load_cost`"):
        gcluster.train(problem, code, load_cost=[1.0, 2.0], **common)
    with pytest.raises(InputError, match="`adapt` has unknown option"):
        gcluster.train(problem, code, adapt={"alpha": 0.1}, **common)


@pytest.mark.parametrize("spec", ["0:5", "x:5@3", "0:-1@3", "-1:5@3"])
def test_cli_slow_refuses_bad_specs(spec, capsys):
    from gcdesign.cli import main

    argv = ["cluster", "--example", "toy-n8", "--deadline", "2", "--rounds", "3", "--adapt", f"--slow={spec}"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "`slow`" in err and "\n" not in err


@pytest.mark.slow
def test_cli_adapt_reports_the_redesign(capsys):
    import json

    from gcdesign.cli import main

    argv = ["cluster", "--example", "toy-n8", "--deadline", "2", "--shift", "1", "--rounds", "40"]
    argv += ["--adapt", "--window", "8", "--slow", "0:50@16", "--no-baseline", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert any(c["action"] == "redesign" for c in out["adaptation"])
