"""Tests of error feedback in the round loop (gcdesign/training/loop.py, docs/math.md section 12)."""

import numpy as np
import pytest
import scipy.sparse as sp

from gcdesign import ClusterProfile, InputError, design
from gcdesign.quantization import quantize, quantize_sign
from gcdesign.schemes import Scheme, make_scheme
from gcdesign.training import (
    ErrorFeedback,
    available_schemes,
    gd,
    scheme_variant,
    sgd,
    synthetic_problem,
    train,
    training_scheme,
)

P8 = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6])
FIELDS = ("loss", "grad_norm", "distance", "bits", "wall_time", "arrived")


@pytest.fixture(scope="module")
def problem():
    return synthetic_problem("least-squares", partitions=8, n_samples=160, n_features=6, rng=3)


def _slow_ef_run(problem, scheme, *, rounds, lr, batch_size, rng):
    """Error feedback written out worker by worker, round by round (the oracle)."""
    rng = np.random.default_rng(rng)
    enc = scheme.encoding.toarray()
    bits = np.asarray(scheme.bits)
    residual = np.zeros((enc.shape[0], problem.dim))
    w = problem.initial_point()
    losses, norms = [problem.loss(w)], [0.0]
    for _ in range(rounds):
        arrived = rng.random(enc.shape[0]) >= scheme.straggler_probs
        grads = problem.partition_gradients(w, batch_size=batch_size, rng=rng)
        weights = scheme.decode_weights(arrived)
        estimate = np.zeros(problem.dim)
        for i in range(enc.shape[0]):
            if bits[i] == 0 or not enc[i].any():
                continue
            v = enc[i] @ grads + residual[i]
            q = quantize_sign(v, rng=rng) if bits[i] == 1 else quantize(v, int(bits[i]), rng=rng)
            residual[i] = v - q  # every round, arrived or not
            if arrived[i]:
                estimate += weights[i] * q
        w = w - lr * estimate
        losses.append(problem.loss(w))
        norms.append(float(np.linalg.norm(residual)))
    return np.array(losses), np.array(norms)


def test_without_quantization_error_feedback_is_a_no_op(problem):
    plain = Scheme(
        "float",
        sp.csr_array(np.eye(8) + np.eye(8, k=1)),
        np.full(8, 32),
        P8,
        decoding=1.0 / (1.0 - P8) / 2,
        quantizer="none",
    )
    for kwargs in ({"optimizer": sgd(0.1, batch_size=4)}, {"optimizer": gd(0.2)}):
        off = train(problem, plain, rounds=40, rng=11, **kwargs)
        on = train(problem, plain, rounds=40, rng=11, error_feedback=True, **kwargs)
        for field in FIELDS:
            assert np.array_equal(getattr(on, field), getattr(off, field)), field
        assert np.all(on.residual_norm == 0) and off.residual_norm is None
        assert (on.scheme, on.error_feedback, off.scheme) == ("float+ef", True, "float")


@pytest.mark.parametrize("name", ["joint", "sgc-1bit"])
def test_residuals_follow_the_recursion(problem, name):
    profile = ClusterProfile(P8, dim=problem.dim, partitions=8)
    scheme = training_scheme(name, profile, 24, rng=2)
    hist = train(problem, scheme, rounds=30, optimizer=sgd(0.05, batch_size=4), rng=5, error_feedback=True)
    losses, norms = _slow_ef_run(problem, scheme, rounds=30, lr=0.05, batch_size=4, rng=5)
    assert np.allclose(hist.loss, losses, rtol=1e-12, atol=0)
    assert np.allclose(hist.residual_norm, norms, rtol=1e-10, atol=1e-14)
    assert np.all(norms[1:] > 0)
    # the residuals change the trajectory: error feedback is not a relabelled plain run
    plain = train(problem, scheme, rounds=30, optimizer=sgd(0.05, batch_size=4), rng=5)
    assert not np.allclose(plain.loss, hist.loss)


def test_error_feedback_state_keeps_every_residual():
    rng = np.random.default_rng(0)
    enc = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    bits = np.array([3, 2, 4])
    state = ErrorFeedback([0, 1, 2], bits, 5, quantizer="stochastic", bucket_size=None)
    residual = np.zeros((3, 5))
    for use in ([True, False, True], [False, False, False], [True, True, True]):
        grads = rng.standard_normal((3, 5))
        seed = int(rng.integers(1 << 30))
        sent = state.messages(enc, grads, np.array(use), np.random.default_rng(seed))
        ref_rng = np.random.default_rng(seed)
        v = enc @ grads + residual
        q = np.array([quantize(v[i], int(bits[i]), rng=ref_rng) for i in range(3)])
        residual = v - q
        assert np.allclose(state.residuals, residual, rtol=0, atol=1e-13)
        assert np.allclose(sent, q[np.array(use)], rtol=0, atol=1e-13)


def test_error_feedback_with_an_unbiased_scheme_at_high_bits_converges(problem):
    profile = ClusterProfile(P8, dim=problem.dim, partitions=8)
    code = make_scheme("osgc", profile, 8 * 10)  # the unbiased OSGC code, 10 bits on every worker
    assert np.all(code.bits == 10)
    opt = sgd(0.2, batch_size=8, schedule="inverse")
    hist = train(problem, code, rounds=300, optimizer=opt, rng=0, error_feedback=True)
    assert hist.suboptimality[-1] < 0.05 * hist.suboptimality[0]
    plain = train(problem, code, rounds=300, optimizer=opt, rng=0)
    assert hist.suboptimality[-1] < 2 * plain.suboptimality[-1] + 1e-3
    assert np.max(hist.residual_norm) < 1e-2 * hist.grad_norm[0]
    # 2-bit stochastic quantization is no contraction at d = 6: the joint design's 2-bit workers
    # (high p) make their residuals grow round after round and the run diverges (MATH 12's caveat),
    # while the same code without error feedback converges
    joint = design(profile, bits_per_worker=3)
    assert joint.bits.min() == 2
    unstable = train(problem, joint, rounds=300, optimizer=opt, rng=0, error_feedback=True)
    assert unstable.residual_norm[-1] > 1e3 * unstable.residual_norm[10]
    assert train(problem, joint, rounds=300, optimizer=opt, rng=0).suboptimality[-1] < 1e-3


def test_error_feedback_variants_by_name(problem):
    assert scheme_variant("bgc+ef") == ("bgc", True) and scheme_variant("bgc") == ("bgc", False)
    ok, missing = available_schemes(["sgc+ef", "joint+ef", "nope+ef"])
    assert ok == ["sgc+ef", "joint+ef"] and missing == ["nope+ef"]
    profile = ClusterProfile(P8, dim=problem.dim, partitions=8)
    with pytest.raises(InputError, match="error_feedback=True"):
        training_scheme("sgc+ef", profile, 24)
    with pytest.raises(InputError, match="error_feedback"):
        sgc = make_scheme("sgc", profile, 24, rng=0)
        train(problem, sgc, rounds=2, optimizer=gd(0.1), error_feedback="yes")
    from gcdesign.studies._common import run_schemes

    runs = run_schemes(problem, profile, 24, ["sgc", "sgc+ef"], seeds=[1, 2], rounds=5, optimizer=gd(0.1))
    assert [h.scheme for h in runs["sgc+ef"]] == ["sgc+ef", "sgc+ef"]
    assert [h.error_feedback for h in runs["sgc"]] == [False, False]
    assert not np.array_equal(runs["sgc"][0].loss, runs["sgc+ef"][0].loss)
