"""Load-aware latency: fit from traces, design at its fixed point (gcdesign.latency)."""

import numpy as np
import pytest

from gcdesign._validate import InputError
from gcdesign.latency import (
    LoadLatency,
    design_loads,
    fit_load_latency,
    load_aware_design,
    load_fixed_points,
)


def test_straggler_probs_follow_the_load_and_saturate():
    model = LoadLatency(rates=(2.0, 1.0), per_partition=(0.1, 0.3), shift=1.0)
    p = model.straggler_probs([2, 2], deadline=1.5)
    assert p[0] == pytest.approx(np.exp(-2.0 * 0.3)) and p[1] == 1.0  # 0.6 >= tau - t0
    assert np.all(np.diff(model.straggler_probs(np.arange(4)[:, None] * [1, 1], 1.5), axis=0) >= 0)


def test_sampled_lateness_matches_the_formula():
    model = LoadLatency(rates=(1.5, 3.0, 0.8), per_partition=(0.05, 0.1, 0.02), shift=1.0)
    loads = np.array([1, 2, 3])
    times = model.sample(loads, rounds=20_000, rng=4)
    p = model.straggler_probs(loads, 1.6)
    measured = (times > 1.6).mean(axis=0)
    assert np.all(np.abs(measured - p) < 4 * np.sqrt(p * (1 - p) / 20_000))


@pytest.mark.parametrize("censor", [np.inf, 3.0])
def test_fit_recovers_the_parameters(censor):
    rng = np.random.default_rng(0)
    truth = LoadLatency(rates=(3.0, 1.5, 0.7, 2.0), per_partition=(0.05, 0.1, 0.08, 0.0), shift=1.0)
    loads = rng.integers(1, 5, size=(3000, 4))
    times = truth.sample(loads, rounds=3000, rng=1)
    times = np.where(times > censor, np.inf, times)
    fit = fit_load_latency(times, loads, censor=censor)
    assert fit.shift == pytest.approx(1.0, abs=0.02)
    assert np.allclose(fit.per_partition, truth.per_partition, atol=0.02)
    assert np.allclose(fit.rates, truth.rates, rtol=0.1)


def test_fit_refuses_traces_at_one_load():
    with pytest.raises(InputError, match="two different loads"):
        fit_load_latency(np.ones((5, 2)), np.ones((5, 2)))
    with pytest.raises(InputError, match="`loads` must have the shape"):
        fit_load_latency(np.ones((5, 2)), np.ones((4, 2)))


# seeds 4, 9: a fixed point exists (brute force finds one); 3: none does
@pytest.mark.parametrize("seed", [3, 4, 9])
def test_fixed_point_converges_and_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 3
    model = LoadLatency(rates=tuple(rng.uniform(0.5, 4, n)), per_partition=(0.08,) * n, shift=1.0)
    res = load_aware_design(model, deadline=1.5, dim=100, partitions=n, bits_per_worker=4)
    every = load_fixed_points(model, deadline=1.5, dim=100, partitions=n, max_load=n, bits_per_worker=4)
    found = [tuple(design_loads(d).tolist()) for d in every]
    # the iteration converges exactly when a fixed point exists (on these instances: unique)
    assert res.converged == bool(found)
    loads = tuple(design_loads(res.design).tolist())
    implied = model.straggler_probs(loads, 1.5)
    # as deployed the design is unbiased for the probabilities its own loads imply
    assert np.allclose(res.design.straggler_probs, implied, atol=1e-9)
    if res.converged:
        assert res.method == "fixed-point" and loads in found
        assert len(found) == 1 and res.design.bound == pytest.approx(every[0].bound, rel=1e-9)
    else:
        assert res.method == "best-visited"
        assert res.design.bound == pytest.approx(min(s["true_error"] for s in res.iterations), rel=1e-9)


def test_load_aware_beats_load_blind_when_load_costs_time():
    model = LoadLatency(rates=(4.0, 3.0, 1.0, 0.6), per_partition=(0.08,) * 4, shift=1.0)
    res = load_aware_design(model, deadline=1.5, dim=100, partitions=4, bits_per_worker=4)
    blind = res.iterations[0]  # designed for one partition each, run at its own loads
    assert res.converged and res.message.startswith("fixed point after")
    assert res.design.bound <= blind["true_error"]
