"""The exact expected error (gcdesign.evaluation); the Monte-Carlo estimator is in test_montecarlo.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import gcdesign
from gcdesign import ClusterProfile, design
from gcdesign._validate import InputError
from gcdesign.evaluation import (
    EvaluationError,
    decoder_moments,
    expected_error,
    synthetic_gradients,
    worker_messages,
)
from gcdesign.montecarlo import monte_carlo_error
from gcdesign.quantization import (
    delta_raw,
    quantization_variance,
    row_variances,
    sign_quantization_variance,
)
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
    return design(ClusterProfile(p, dim=dim, partitions=k), budget, quantization=kappa), dim


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


@pytest.mark.parametrize("beta", [None, 8, 64, 1000])
def test_bucketed_exact_error_equals_the_math3_formula(beta):
    """MATH 3 with the per-bucket variance of MATH 2c, written out worker by worker."""
    d = replace(design(toy_profile(), bits_per_worker=4), bucket_size=beta)
    grads = synthetic_gradients(d.partitions, 100, rng=21)  # 100 is not a multiple of 8 or 64
    r = expected_error(d, grads)
    x = worker_messages(d, grads)
    q = 1.0 - d.straggler_probs
    want = 0.0
    for i in range(d.n_workers):
        v = quantization_variance(x[i], int(d.bits[i]), bucket_size=beta)
        want += d.decoding[i] ** 2 * q[i] * (d.straggler_probs[i] * float(x[i] @ x[i]) + v)
    assert r.error == pytest.approx(want, rel=1e-12)
    assert r.unbiased and r.bias_sq <= 1e-20 * r.grad_norm_sq
    # the bucket's Lemma 1 bound (delta_raw with min(beta, d) coordinates) still holds
    assert r.error <= r.bound * (1 + 1e-12)
    span = 100 if beta is None else min(beta, 100)  # delta_raw(b; beta) = min(beta, d) / (4 s^2)
    delta = span / (4 * (2.0 ** (d.bits - 1) - 1) ** 2)
    np.testing.assert_allclose(delta, delta_raw(d.bits, 100, beta), rtol=1e-15)
    g2 = r.max_partition_norm**2
    w = d.decoding * np.asarray(d.encoding.sum(axis=1)).ravel()
    bound = g2 * np.sum(q * (d.straggler_probs + delta) * w**2)
    assert r.bound == pytest.approx(bound, rel=1e-12)


def test_smaller_buckets_lower_the_exact_quantization_error():
    base = design(toy_profile(), bits_per_worker=3)
    grads = synthetic_gradients(base.partitions, 500, rng=22, correlation=0.0)
    quant = [
        expected_error(replace(base, bucket_size=beta), grads).quantization_variance for beta in (None, 64, 8)
    ]
    assert quant[0] > quant[1] > quant[2] > 0


def test_evaluation_refuses_a_non_scheme_with_the_validator_message():
    with pytest.raises(InputError, match="`scheme` has no `name`"):
        expected_error(object(), np.ones((8, 4)))
    with pytest.raises(InputError, match="bucket_size"):
        expected_error(replace(design(toy_profile(), bits_per_worker=4), bucket_size=0), np.ones((8, 4)))


def test_public_names_stay_importable_from_the_package():
    assert gcdesign.expected_error is expected_error
    assert gcdesign.monte_carlo_error is monte_carlo_error
    assert gcdesign.synthetic_gradients is synthetic_gradients
    assert not hasattr(gcdesign.evaluation, "monte_carlo_error")  # no alias left behind


def test_synthetic_gradients():
    g = synthetic_gradients(7, 100, rng=5, norm_bound=3.0)
    norms = np.linalg.norm(g, axis=1)
    assert g.shape == (7, 100) and np.all(norms <= 3.0 + 1e-12) and np.all(norms >= 1.5 - 1e-12)
    np.testing.assert_array_equal(g, synthetic_gradients(7, 100, rng=5, norm_bound=3.0))
    with pytest.raises(InputError, match="norm_bound"):
        synthetic_gradients(2, 3, norm_bound=-1)


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


def test_results_carry_a_message():
    profile = toy_profile(20)
    grads = synthetic_gradients(profile.partitions, 20, rng=0)
    joint = expected_error(design(profile, bits_per_worker=4), grads)
    assert joint.message == "closed form (fixed decoder); unbiased: (U) holds"
    biased = expected_error(make_scheme("is-sgd", profile, 32), grads)
    assert biased.message.endswith("biased: (U) fails") and not biased.unbiased
    mc = monte_carlo_error(design(profile, bits_per_worker=4), grads, trials=200, rng=0)
    assert mc.message.startswith("200 trials; bias ") and "no evidence of bias" in mc.message
