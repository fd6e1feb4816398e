"""The Monte-Carlo estimator (gcdesign.montecarlo) and its kernel with numpy twin (gcdesign._mc_kernels)."""

from __future__ import annotations

from dataclasses import replace

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_evaluation import random_design, toy_profile  # the same small cases

from gcdesign import design
from gcdesign._mc_kernels import (
    ERROR_LANES,
    MAX_BLOCK,
    simulate_rounds,
    simulate_rounds_reference,
    squared_norm_in_lanes,
    uniform,
    uniform_bits,
    uniforms,
)
from gcdesign._rounding import TWO_53, draw_threshold
from gcdesign._validate import InputError
from gcdesign.evaluation import expected_error, synthetic_gradients
from gcdesign.montecarlo import (
    MC_CHUNK,
    kernel_arguments,
    monte_carlo_error,
    monte_carlo_problem,
)
from gcdesign.quantization import levels
from gcdesign.schemes import make_scheme


# ---------------------------------------------------------------- Monte Carlo vs exact
@pytest.mark.parametrize("seed", range(20))
def test_monte_carlo_within_three_standard_errors_random_designs(seed):
    d, dim = random_design(seed)
    grads = synthetic_gradients(d.partitions, dim, rng=100 + seed)
    exact = expected_error(d, grads)
    mc = monte_carlo_error(d, grads, trials=3000, rng=200 + seed)
    assert abs(mc.mean - exact.error) <= 3 * mc.standard_error
    # our design is unbiased: the empirical bias stays within its confidence bound
    assert mc.bias <= mc.bias_bound and not mc.biased


@pytest.mark.parametrize("beta", [None, 8, 64])
@pytest.mark.parametrize("scheme_name", ["joint", "osgc", "od"])
def test_bucketed_monte_carlo_within_three_standard_errors(beta, scheme_name):
    """Bucketed stochastic quantizer: d = 150 is a multiple of neither 8 nor 64 (short last bucket)."""
    prof = toy_profile(dim=150)
    if scheme_name == "joint":
        base = design(prof, bits_per_worker=3, quantization="balanced", bucket_size=None)
    else:  # a fixed-decoder baseline and an arrival-dependent (least-squares) one
        base = make_scheme(scheme_name, prof, 24, rng=5)
    scheme = replace(base, bucket_size=beta)
    grads = synthetic_gradients(8, 150, rng=31, correlation=0.2)
    exact = expected_error(scheme, grads)
    mc = monte_carlo_error(scheme, grads, trials=4000, rng=32)
    assert abs(mc.mean - exact.error) <= 3 * mc.standard_error
    assert exact.quantization_variance > 0.1 * exact.error  # quantization matters here
    if exact.unbiased:
        assert not mc.biased


def test_buckets_change_the_simulated_error_as_the_exact_one_says():
    """Negative control: simulating beta = 8 while the exact value assumes one bucket is caught."""
    prof = toy_profile(dim=150)
    d = design(prof, bits_per_worker=3, quantization="balanced", bucket_size=None)
    grads = synthetic_gradients(8, 150, rng=33, correlation=0.0)
    one, eight = expected_error(d, grads), expected_error(replace(d, bucket_size=8), grads)
    mc = monte_carlo_error(replace(d, bucket_size=8), grads, trials=4000, rng=34)
    assert abs(mc.mean - eight.error) <= 3 * mc.standard_error
    assert abs(mc.mean - one.error) > 10 * mc.standard_error


def test_bias_detected_where_theory_says_and_matches_exact_bias():
    prof = toy_profile()
    grads = synthetic_gradients(8, 30, rng=6)
    for name in ("is-sgd", "bgc"):
        scheme = make_scheme(name, prof, 32, rng=7)
        exact = expected_error(scheme, grads)
        mc = monte_carlo_error(scheme, grads, trials=3000, rng=8)
        assert mc.biased and mc.bias > mc.bias_bound
        # the empirical bias estimates the exact one: | ||mean - g|| - ||E ghat - g|| | <= noise bound
        assert abs(mc.bias - np.sqrt(exact.bias_sq)) <= mc.bias_bound


def test_inputs_are_validated():
    d = design(toy_profile(), bits_per_worker=4)
    with pytest.raises(InputError, match="`gradients` must be finite"):
        monte_carlo_error(d, np.full((8, 4), np.nan), trials=10)
    with pytest.raises(InputError, match="`trials`"):
        monte_carlo_error(d, np.ones((8, 4)), trials=1)
    with pytest.raises(InputError, match="`scheme` has no `name`"):
        monte_carlo_error(object(), np.ones((8, 4)), trials=10)
    with pytest.raises(InputError, match=r"`workers` must be None or 1 \(serial\).*got 0"):
        monte_carlo_error(d, np.ones((8, 4)), trials=10, workers=0)
    with pytest.raises(InputError, match="`threads` must be None or an integer >= 1, got 0"):
        monte_carlo_error(d, np.ones((8, 4)), trials=10, threads=0)


# ---------------------------------------------------------------- kernel vs numpy twin
def test_uniforms_numba_equals_numpy_and_look_uniform():
    key = np.uint64(0xDEADBEEF12345678)
    counters = np.array([0, 1, 2, 10**9, 2**40 + 3], dtype=np.uint64)
    ref = uniforms(key, counters)
    for c, r in zip(counters, ref, strict=True):
        assert uniform(key, np.uint64(c)) == r
    u = uniforms(key, np.arange(200_000))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.003 and abs(u.var() - 1 / 12) < 0.002
    hist = np.bincount((u * 10).astype(int), minlength=10)
    chi2 = float(np.sum((hist - 20_000) ** 2 / 20_000))
    assert chi2 < 30.0  # 9 degrees of freedom, p ~ 4e-4


@pytest.mark.parametrize(("quantizer", "beta"), [(0, None), (0, 4), (0, 10), (0, 23), (1, None), (2, None)])
def test_kernel_equals_numpy_twin_bit_for_bit(quantizer, beta):
    """Same draws, same arithmetic: estimates, chunk sums and per-round errors identical to the bit."""
    rng = np.random.default_rng(quantizer)
    n, d, trials = 5, 23, 150
    x = rng.standard_normal((n, d))
    x[3] = 0.0
    x[1, :4] = 0.0  # a zero bucket (beta = 4) inside a nonzero message
    bits = np.array([2, 3, 4, 5, 3]) if quantizer == 0 else np.full(n, 1 if quantizer == 1 else 32)
    bucket = d if beta is None else beta
    from gcdesign.quantization import coordinate_norms

    norms = np.ascontiguousarray(coordinate_norms(x, beta)[:, ::bucket])
    lv = np.where(bits >= 2, levels(np.maximum(bits, 2)), 1.0)
    weights = rng.standard_normal((trials, n)) * (rng.random((trials, n)) < 0.6)
    n_chunks = -(-trials // MC_CHUNK)
    keys = rng.integers(0, 2**64, size=n_chunks, dtype=np.uint64)
    target = rng.standard_normal(d)
    outs = []
    for kernel in (simulate_rounds, simulate_rounds_reference):
        out = (np.zeros(trials), np.zeros((n_chunks, d)))
        kernel(x, bits, bucket, norms, lv, quantizer, weights, keys, MC_CHUNK, target, *out)
        outs.append(out)
    (e1, s1), (e2, s2) = outs
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(e1, e2)
    assert np.all(e1 > 0)


def test_draw_threshold_decides_exactly_as_the_uniform():
    """``m 2^-53 < p`` iff ``m < draw_threshold(p)``, at the edges of p and of m."""
    rng = np.random.default_rng(5)
    tiny = 2.0**-53
    ps = [0.0, -0.0, -1e-300, 5e-324, tiny / 3, tiny, 1.5 * tiny, 0.5, np.nextafter(0.5, 0), 1 - tiny]
    ps += [np.nextafter(1.0, 0), 1.0, 1.0 + 2e-16, 3.0, np.inf, -np.inf, np.nan, *rng.random(20)]
    for p in ps:
        t = int(draw_threshold(p))
        assert 0 <= t <= 2**53
        ms = {0, 1, 2**53 - 1, *range(max(t - 2, 0), min(t + 3, 2**53))}
        ms |= set(rng.integers(0, 2**53, 10).tolist())
        for m in ms:
            assert (m * tiny < p) == (m < t), (p, m, t)
    assert TWO_53 == 2.0**53 and uniform_bits(np.uint64(9), np.uint64(4)) * tiny == uniform(
        np.uint64(9), np.uint64(4)
    )


def test_squared_norm_in_lanes_is_the_kernels_order():
    v = np.random.default_rng(1).standard_normal(3 * ERROR_LANES + 5)
    lanes = [sum(float(x) ** 2 for x in v[j::ERROR_LANES]) for j in range(ERROR_LANES)]  # left to right
    total = 0.0
    for s in lanes:
        total += s
    assert squared_norm_in_lanes(v) == total
    assert squared_norm_in_lanes(np.array([3.0, 4.0])) == 25.0


@pytest.mark.parametrize(("quantizer", "beta"), [(0, None), (0, 100), (0, 7), (1, None), (2, None)])
def test_kernel_equals_twin_over_groups_blocks_and_fixed_weights(quantizer, beta):
    """Many chunks (groups of several), several coordinate blocks (a partial last one), buckets
    that straddle blocks, and a fixed decoder (the kernel's tables then hold w Q): same bits."""
    rng = np.random.default_rng(10 + quantizer)
    n, d, trials = 6, 2 * MAX_BLOCK + 37, 1500
    x = rng.standard_normal((n, d))
    x[2] = 0.0
    x[4, :100] = 0.0  # a zero bucket (beta = 100)
    x[3, :] = 0.0
    x[3, 9] = 2.5  # alone in its message: at its norm (y = s exactly; sign: p = 1)
    bits = np.array([2, 3, 8, 5, 3, 32]) if quantizer == 0 else np.full(n, 1 if quantizer == 1 else 32)
    bucket = d if beta is None else beta
    from gcdesign.quantization import coordinate_norms

    norms = np.ascontiguousarray(coordinate_norms(x, beta)[:, ::bucket])
    lv = np.where(bits >= 2, levels(np.maximum(bits, 2)), 1.0)
    fixed = rng.standard_normal(n)
    weights = np.where(rng.random((trials, n)) < 0.3, fixed, 0.0)
    weights[7] = 0.0  # a round where nobody arrives
    n_chunks = -(-trials // MC_CHUNK)
    keys = rng.integers(0, 2**64, size=n_chunks, dtype=np.uint64)
    target = rng.standard_normal(d)
    outs = []
    for w in (weights, weights * np.where(np.arange(trials) % 3 == 0, 1.0, 0.5)[:, None]):
        for kernel in (simulate_rounds, simulate_rounds_reference):
            out = (np.zeros(trials), np.zeros((n_chunks, d)))
            kernel(x, bits, bucket, norms, lv, quantizer, w, keys, MC_CHUNK, target, *out)
            outs.append(out)
    for (e1, s1), (e2, s2) in (outs[:2], outs[2:]):
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_array_equal(e1, e2)
    assert outs[0][0][7] == squared_norm_in_lanes(target)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 6),
    d=st.integers(1, 40),
    beta=st.one_of(st.none(), st.integers(1, 45)),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-150, 1e-8, 1.0, 1e8, 1e100]),
)
def test_kernel_equals_numpy_twin_on_random_shapes(n, d, beta, seed, scale):
    """Any shape, bucket length (dividing d or not, larger than d), magnitude: the same bits."""
    from gcdesign.quantization import coordinate_norms

    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.8)
    bits = rng.integers(2, 33, size=n)
    bucket = d if beta is None else min(beta, d)
    norms = np.ascontiguousarray(coordinate_norms(x, None if bucket >= d else bucket)[:, ::bucket])
    lv = levels(bits).astype(np.float64)
    trials = int(rng.integers(1, 40))
    weights = rng.standard_normal((trials, n)) * (rng.random((trials, n)) < 0.7)
    n_chunks = -(-trials // MC_CHUNK)
    keys = rng.integers(0, 2**64, size=n_chunks, dtype=np.uint64)
    target = scale * rng.standard_normal(d)
    outs = []
    for kernel in (simulate_rounds, simulate_rounds_reference):
        out = (np.zeros(trials), np.zeros((n_chunks, d)))
        kernel(x, bits, bucket, norms, lv, 0, weights, keys, MC_CHUNK, target, *out)
        outs.append(out)
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    np.testing.assert_array_equal(outs[0][0], outs[1][0])


def test_twin_quantizes_with_the_bucket_norms():
    """One round, one worker, weight 1: ghat is Q(x) with one norm per bucket (MATH 2c)."""
    x = np.array([[3.0, 4.0, 0.0, 0.0, 1.0]])  # buckets of 2: norms 5, 0, 1
    out = (np.zeros(1), np.zeros((1, 5)))
    keys = np.array([7], dtype=np.uint64)
    simulate_rounds_reference(
        x, np.array([2]), 2, None, None, 0, np.ones((1, 1)), keys, MC_CHUNK, np.zeros(5), *out
    )
    ghat = out[1][0]
    # s = 1: every coordinate is 0 or +-(its bucket's norm)
    assert set(np.abs(ghat[:2])) <= {0.0, 5.0} and ghat[2] == ghat[3] == 0.0 and abs(ghat[4]) in (0.0, 1.0)


def test_monte_carlo_numba_equals_reference_end_to_end_and_is_reproducible():
    prof = toy_profile()
    grads = synthetic_gradients(8, 40, rng=9)
    schemes = (
        design(prof, bits_per_worker=4),
        replace(design(prof, bits_per_worker=4), bucket_size=16),
        make_scheme("od", prof, 32, rng=1),
        make_scheme("sgc-1bit", prof, 8, rng=1),
    )
    for scheme in schemes:
        fast = monte_carlo_error(scheme, grads, trials=300, rng=11)
        ref = monte_carlo_error(scheme, grads, trials=300, rng=11, reference=True)
        np.testing.assert_array_equal(fast.errors, ref.errors)
        assert fast.bias == ref.bias and fast.bias_bound == ref.bias_bound
        again = monte_carlo_error(scheme, grads, trials=300, rng=11)
        np.testing.assert_array_equal(fast.errors, again.errors)
        other = monte_carlo_error(scheme, grads, trials=300, rng=12)
        assert not np.array_equal(fast.errors, other.errors)


def test_kernel_arguments_follow_the_problem():
    d = replace(design(toy_profile(), bits_per_worker=4), bucket_size=16)
    grads = synthetic_gradients(8, 40, rng=9)
    problem = monte_carlo_problem(d, grads)
    assert problem.bucket == 16 and problem.norms.shape == (8, 3)
    np.testing.assert_allclose(
        problem.norms[:, 2], np.linalg.norm(problem.messages[:, 32:], axis=1), rtol=1e-14
    )
    keys = np.random.default_rng(0).integers(0, 2**64, size=(4, 2), dtype=np.uint64)
    args = kernel_arguments(problem, 0, keys, 50)
    assert args[-2].shape == (50,) and args[-1].shape == (4, 40)


# ---------------------------------------------------------------- who runs it
def test_thread_count_batching_and_map_do_not_change_the_result():
    d = design(toy_profile(), bits_per_worker=4)
    grads = synthetic_gradients(8, 40, rng=10)
    before = numba.get_num_threads()
    runs = [monte_carlo_error(d, grads, trials=700, rng=13, workers=w) for w in (None, 1, map)]
    runs += [monte_carlo_error(d, grads, trials=700, rng=13, threads=t) for t in (1, 2)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.errors, runs[0].errors)
        assert r.mean == runs[0].mean and r.bias == runs[0].bias and r.bias_bound == runs[0].bias_bound
    assert numba.get_num_threads() == before  # the thread count is scoped


def test_thread_count_is_restored_when_the_run_fails():
    d = design(toy_profile(), bits_per_worker=4)
    before = numba.get_num_threads()

    def broken_map(fn, tasks):
        assert numba.get_num_threads() == 1
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        monte_carlo_error(d, np.ones((8, 4)), trials=40, threads=1, workers=broken_map)
    assert numba.get_num_threads() == before
