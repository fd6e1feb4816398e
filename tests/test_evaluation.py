"""Exact expected error and the Monte-Carlo estimator (gcdesign.evaluation, gcdesign._mc_kernels)."""

from __future__ import annotations

from dataclasses import replace

import numba
import numpy as np
import pytest

from gcdesign import ClusterProfile, design
from gcdesign._mc_kernels import _uniform, simulate_rounds, simulate_rounds_reference, uniforms
from gcdesign._validate import InputError
from gcdesign.evaluation import (
    MC_CHUNK,
    EvaluationError,
    decoder_moments,
    expected_error,
    monte_carlo_error,
    synthetic_gradients,
)
from gcdesign.quantization import quantization_variance, row_variances, sign_quantization_variance
from gcdesign.schemes import Scheme, make_scheme


def toy_profile(dim: int = 50) -> ClusterProfile:
    return ClusterProfile([0.05, 0.1, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8], dim=dim)


def random_design(seed: int):
    """A random small design: N in [3, 8], K near N, p in (0.02, 0.9), 2..6 bits per worker."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 9))
    k = int(rng.integers(max(1, n - 2), n + 4))
    p = rng.uniform(0.02, 0.9, size=n)
    dim = int(rng.integers(5, 40))
    budget = int(rng.integers(2 * n, 6 * n + 1))
    kappa = ["balanced", "raw", 0.01][seed % 3]
    return design(ClusterProfile(p, dim=dim, partitions=k), budget, kappa=kappa), dim


# ---------------------------------------------------------------- exact pieces
def test_message_variances_match_the_scalar_formulas():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 40))
    x[2] = 0.0
    bits = np.array([2, 3, 5, 4, 8, 2])
    got = row_variances(x, bits, "stochastic")
    want = [quantization_variance(row, int(b)) for row, b in zip(x, bits, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    np.testing.assert_allclose(
        row_variances(x, np.ones(6, int), "sign"), [sign_quantization_variance(r) for r in x], rtol=1e-13
    )
    assert np.all(row_variances(x, bits, "none") == 0)


def test_fixed_decoder_closed_form_equals_enumeration():
    d = design(toy_profile(), bits_per_worker=4)
    grads = synthetic_gradients(d.partitions, 30, rng=1)
    as_decoder = Scheme(
        name="joint-as-decoder",
        encoding=d.encoding,
        bits=d.bits,
        straggler_probs=d.straggler_probs,
        decoder=lambda arrived: d.decoding.copy(),
    )
    closed, enum = expected_error(d, grads), expected_error(as_decoder, grads)
    assert closed.method == "closed-form" and enum.method == "enumeration" and enum.patterns == 2**8
    for field in ("error", "bias_sq", "straggler_variance", "quantization_variance"):
        assert getattr(enum, field) == pytest.approx(getattr(closed, field), rel=1e-12, abs=1e-14)


def test_component_enumeration_equals_global_enumeration():
    prof = toy_profile()
    scheme = make_scheme("ehd", prof, 32, replication=3)
    grads = synthetic_gradients(8, 20, rng=2)
    glob = replace(scheme, local_decoder=False)
    local_moments, global_moments = decoder_moments(scheme), decoder_moments(glob)
    assert local_moments.patterns < global_moments.patterns
    np.testing.assert_allclose(local_moments.mean, global_moments.mean, atol=1e-14)
    a, b = expected_error(scheme, grads), expected_error(glob, grads)
    assert a.error == pytest.approx(b.error, rel=1e-12)


def test_design_is_unbiased_and_within_lemma1_bound():
    for seed in range(10):
        d, dim = random_design(seed)
        r = expected_error(d, synthetic_gradients(d.partitions, dim, rng=seed))
        assert r.unbiased and r.bias_sq <= 1e-20 * r.grad_norm_sq
        assert r.error <= r.bound * (1 + 1e-12)
        assert r.relative_error == pytest.approx(r.error / r.grad_norm_sq)


def test_biased_schemes_have_a_bias_term():
    prof = toy_profile()
    grads = synthetic_gradients(8, 30, rng=3)
    for name in ("is-sgd", "bgc"):
        r = expected_error(make_scheme(name, prof, 32, rng=4), grads)
        assert not r.unbiased and r.bias_sq > 0.01 * r.grad_norm_sq
        # Lemma 1 bounds the variance part only
        assert r.straggler_variance + r.quantization_variance <= r.bound * (1 + 1e-12)


def test_exact_error_refuses_too_many_patterns():
    prof = ClusterProfile(np.full(20, 0.3), dim=10)
    scheme = make_scheme("od", prof, 60, rng=0, replication=3)
    with pytest.raises(EvaluationError, match="monte_carlo_error"):
        expected_error(scheme, synthetic_gradients(20, 5, rng=0))


def test_gradients_are_validated():
    d = design(toy_profile(), bits_per_worker=4)
    with pytest.raises(InputError, match="`gradients` must have shape"):
        expected_error(d, np.zeros((3, 4)))
    with pytest.raises(InputError, match="`gradients` must be finite"):
        monte_carlo_error(d, np.full((8, 4), np.nan), trials=10)
    with pytest.raises(InputError, match="`trials`"):
        monte_carlo_error(d, np.ones((8, 4)), trials=1)


def test_synthetic_gradients():
    g = synthetic_gradients(7, 100, rng=5, norm_bound=3.0)
    norms = np.linalg.norm(g, axis=1)
    assert g.shape == (7, 100) and np.all(norms <= 3.0 + 1e-12) and np.all(norms >= 1.5 - 1e-12)
    np.testing.assert_array_equal(g, synthetic_gradients(7, 100, rng=5, norm_bound=3.0))
    with pytest.raises(InputError, match="norm_bound"):
        synthetic_gradients(2, 3, norm_bound=-1)


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


# ---------------------------------------------------------------- kernel and reproducibility
def test_uniforms_numba_equals_numpy_and_look_uniform():
    key = np.uint64(0xDEADBEEF12345678)
    counters = np.array([0, 1, 2, 10**9, 2**40 + 3], dtype=np.uint64)
    ref = uniforms(key, counters)
    for c, r in zip(counters, ref, strict=True):
        assert _uniform(key, np.uint64(c)) == r
    u = uniforms(key, np.arange(200_000))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.003 and abs(u.var() - 1 / 12) < 0.002
    hist = np.bincount((u * 10).astype(int), minlength=10)
    chi2 = float(np.sum((hist - 20_000) ** 2 / 20_000))
    assert chi2 < 30.0  # 9 degrees of freedom, p ~ 4e-4


@pytest.mark.parametrize("quantizer", [0, 1, 2])
def test_kernel_equals_numpy_reference(quantizer):
    rng = np.random.default_rng(quantizer)
    n, d, trials = 5, 23, 150
    x = rng.standard_normal((n, d))
    x[3] = 0.0
    norms = np.linalg.norm(x, axis=1)
    lv = np.array([1.0, 3.0, 7.0, 15.0, 3.0])
    weights = rng.standard_normal((trials, n)) * (rng.random((trials, n)) < 0.6)
    n_chunks = -(-trials // MC_CHUNK)
    keys = rng.integers(0, 2**64, size=n_chunks, dtype=np.uint64)
    target = rng.standard_normal(d)
    outs = []
    for kernel in (simulate_rounds, simulate_rounds_reference):
        out = (np.zeros(trials), np.zeros((n_chunks, d)))
        kernel(x, norms, lv, quantizer, weights, keys, MC_CHUNK, target, *out)
        outs.append(out)
    (e1, s1), (e2, s2) = outs
    np.testing.assert_array_equal(s1, s2)  # same draws, same estimates, same accumulation order
    np.testing.assert_allclose(e1, e2, rtol=1e-12)  # squared norms summed in a different order
    assert np.all(e1 > 0)


def test_monte_carlo_numba_equals_reference_and_is_reproducible():
    prof = toy_profile()
    grads = synthetic_gradients(8, 40, rng=9)
    for scheme in (design(prof, bits_per_worker=4), make_scheme("od", prof, 32, rng=1)):
        fast = monte_carlo_error(scheme, grads, trials=300, rng=11)
        ref = monte_carlo_error(scheme, grads, trials=300, rng=11, reference=True)
        np.testing.assert_allclose(fast.errors, ref.errors, rtol=1e-12)
        assert fast.bias == pytest.approx(ref.bias, rel=1e-12)
        again = monte_carlo_error(scheme, grads, trials=300, rng=11)
        np.testing.assert_array_equal(fast.errors, again.errors)
        assert fast.bias == again.bias and fast.mean == again.mean
        other = monte_carlo_error(scheme, grads, trials=300, rng=12)
        assert not np.array_equal(fast.errors, other.errors)


def test_thread_count_and_map_do_not_change_the_result():
    d = design(toy_profile(), bits_per_worker=4)
    grads = synthetic_gradients(8, 40, rng=10)
    runs = [monte_carlo_error(d, grads, trials=700, rng=13, workers=w) for w in (1, 2, None, map)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.errors, runs[0].errors)
        assert r.mean == runs[0].mean and r.bias == runs[0].bias and r.bias_bound == runs[0].bias_bound
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # restored


# ---------------------------------------------------------------- CLI
def test_cli_evaluate(tmp_path, capsys):
    import json

    from gcdesign import save_design
    from gcdesign.cli import main

    path = tmp_path / "toy.json"
    save_design(design(toy_profile(), bits_per_worker=4), path)
    argv = ["evaluate", str(path), "--trials", "400", "--dim", "20", "--compare", "sgc,od", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["scheme"]: r for r in out["rows"]}
    assert set(rows) == {"design", "sgc", "od"} and out["dim"] == 20
    for r in rows.values():
        assert abs(r["mc_error"] - r["exact_error"]) <= 4 * r["mc_standard_error"]
    assert rows["design"]["unbiased"] and not rows["design"]["biased"]
    assert main(["evaluate", str(path), "--trials", "50", "--dim", "5", "--compare", "all"]) == 0
    text = capsys.readouterr().out
    assert "is-sgd" in text and "joint" not in text and "design" in text
    for argv, field in (
        (["--trials", "ten"], "`trials`"),
        (["--dim", "0"], "`dim`"),
        (["--compare", "sgc,nope"], "Unknown scheme 'nope'"),
    ):
        assert main(["evaluate", str(path), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert field in err and len(err.splitlines()) == 1
