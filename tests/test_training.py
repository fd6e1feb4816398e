"""Tests of the training harness (gcdesign/training/)."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from gcdesign import ClusterProfile, InputError, design
from gcdesign.latency import RoundTimes
from gcdesign.quantization import payload_bits, quantize, quantize_rows, quantize_sign
from gcdesign.schemes import Scheme
from gcdesign.training import (
    PROBLEM_KINDS,
    Centralized,
    adam,
    gd,
    gradient_estimates,
    make_problem,
    second_moment_shrinkage,
    sgd,
    synthetic_problem,
    train,
)

P8 = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6])


@pytest.fixture(scope="module")
def problems():
    return {
        kind: synthetic_problem(kind, partitions=8, n_samples=160, n_features=6, rng=3)
        for kind in PROBLEM_KINDS
    }


def _design(problem, bits_per_worker=4, p=P8):
    return design(
        ClusterProfile(p, dim=problem.dim, partitions=problem.partitions), bits_per_worker=bits_per_worker
    )


# ------------------------------------------------------------------ problems
@pytest.mark.parametrize("kind", PROBLEM_KINDS)
def test_partition_gradients_sum_to_gradient_and_match_finite_differences(problems, kind):
    prob = problems[kind]
    w = np.random.default_rng(0).standard_normal(prob.dim) * 0.3
    g = prob.gradient(w)
    assert np.allclose(prob.partition_gradients(w).sum(axis=0), g, rtol=0, atol=1e-13)
    h = 1e-6
    fd = np.array([(prob.loss(w + h * e) - prob.loss(w - h * e)) / (2 * h) for e in np.eye(prob.dim)])
    assert np.allclose(fd, g, atol=1e-7)


@pytest.mark.parametrize("kind", PROBLEM_KINDS)
def test_optimum_is_stationary(problems, kind):
    prob = problems[kind]
    assert np.linalg.norm(prob.gradient(prob.optimum)) < 1e-8
    assert prob.loss(prob.optimum) == pytest.approx(prob.optimal_loss)
    w = prob.optimum + 0.01 * np.random.default_rng(1).standard_normal(prob.dim)
    assert prob.loss(w) > prob.optimal_loss


def test_least_squares_optimum_is_exact():
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((50, 4)), rng.standard_normal(50)
    prob = make_problem("least-squares", X, y, partitions=5, reg=0.0, rng=0)
    assert np.allclose(prob.optimum, np.linalg.lstsq(X, y, rcond=None)[0], atol=1e-12)


def test_minibatch_partition_gradients_are_unbiased(problems):
    prob = problems["logistic"]
    w = np.full(prob.dim, 0.2)
    rng = np.random.default_rng(2)
    draws = np.array([prob.partition_gradients(w, batch_size=3, rng=rng) for _ in range(3000)])
    mean, se = draws.mean(axis=0), draws.std(axis=0, ddof=1) / math.sqrt(len(draws))
    assert np.all(np.abs(mean - prob.partition_gradients(w)) <= 4.5 * se + 1e-15)


def test_problem_input_errors():
    X = np.ones((4, 2))
    with pytest.raises(InputError, match="partitions"):
        make_problem("least-squares", X, np.zeros(4), partitions=5)
    with pytest.raises(InputError, match="0/1"):
        make_problem("logistic", X, np.array([0, 1, 2, 1]), partitions=2)
    with pytest.raises(InputError, match="reg"):
        make_problem("logistic", X, np.array([0, 1, 0, 1]), partitions=2, reg=0.0)
    with pytest.raises(InputError, match="problem kind"):
        make_problem("hinge", X, np.zeros(4), partitions=2)


# ------------------------------------------------------------------ quantization
def test_quantize_rows_equals_reference_row_by_row():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 30))
    bits = np.array([2, 3, 1, 8, 1])
    batch = quantize_rows(x, bits, rng=np.random.default_rng(11))
    ref_rng = np.random.default_rng(11)
    ref = np.array(
        [
            quantize_sign(r, rng=ref_rng) if b == 1 else quantize(r, int(b), rng=ref_rng)
            for r, b in zip(x, bits, strict=True)
        ]
    )
    assert np.allclose(batch, ref, rtol=1e-13, atol=0)
    assert np.array_equal(quantize_rows(x, bits, quantizer="none"), x)
    out = quantize_rows(np.vstack([np.zeros(30), x[0]]), [3, 3], rng=0)
    assert np.all(out[0] == 0)


def test_payload_bits():
    assert payload_bits([0, 1, 4], 10, "stochastic").tolist() == [0, 42, 72]
    assert payload_bits([3, 3], 10, "none").tolist() == [320, 320]


# ------------------------------------------------------------------ train
def test_same_seed_same_history(problems):
    prob = problems["logistic"]
    code = _design(prob)
    for opt in (sgd(0.5, batch_size=4), adam(0.05)):
        a = train(prob, code, rounds=40, optimizer=opt, rng=123)
        b = train(prob, code, rounds=40, optimizer=opt, rng=123)
        c = train(prob, code, rounds=40, optimizer=opt, rng=124)
        for field in ("loss", "grad_norm", "distance", "bits", "wall_time", "arrived"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
        assert not np.array_equal(a.loss, c.loss)


def test_centralized_gd_descends_to_the_optimum(problems):
    prob = problems["least-squares"]
    L = np.linalg.eigvalsh(prob.features.T @ prob.features / prob.n_samples).max() + prob.reg
    hist = train(prob, Centralized(_design(prob).profile), rounds=300, optimizer=gd(1.0 / L), rng=0)
    assert np.all(np.diff(hist.loss) <= 1e-15)
    assert hist.distance[-1] < 1e-3 * hist.distance[0]
    # the reference is a scheme like any other: 8 workers, one partition each, 32 bits a coordinate
    assert np.all(hist.bits[1:] == 8 * 32 * prob.dim) and np.all(hist.arrived[1:] == 8)


def test_coded_training_converges_and_counts_bits(problems):
    prob = problems["least-squares"]
    code = _design(prob, bits_per_worker=8)
    hist = train(prob, code, rounds=200, optimizer=sgd(0.2, batch_size=8, schedule="inverse"), rng=0)
    assert hist.suboptimality[-1] < 0.05 * hist.suboptimality[0]
    # bits: every arrived worker sends 32 + b_i d (no idle workers here)
    assert np.all(hist.bits[1:] % 1 == 0) and hist.bits[0] == 0
    assert hist.total_bits[-1] == hist.bits.sum()
    # with p = 0 everywhere every worker arrives: bits per round known exactly
    sure = Scheme("sure", code.encoding, code.bits, np.zeros(8), decoding=np.ones(8) / (1 - P8) * (1 - P8))
    h2 = train(prob, sure, rounds=3, optimizer=gd(0.1), rng=0)
    assert np.all(h2.bits[1:] == np.sum(32 + code.bits * prob.dim))
    assert np.all(h2.wall_time == np.arange(4))
    with pytest.warns(DeprecationWarning, match="wall_time"):
        assert h2.wall_clock is h2.wall_time  # the old name, for one release


def test_partition_mismatch_is_refused(problems):
    prob = problems["least-squares"]
    other = design(ClusterProfile(P8, dim=prob.dim, partitions=4), bits_per_worker=4)
    with pytest.raises(InputError, match="partitions"):
        train(prob, other, rounds=2, optimizer=gd(0.1))
    with pytest.raises(InputError, match="lr"):
        gd(-1.0)
    with pytest.raises(InputError, match="rounds"):
        train(prob, _design(prob), rounds=0, optimizer=gd(0.1))


def test_steps_is_the_deprecated_name_of_rounds(problems):
    prob = problems["least-squares"]
    code = _design(prob)
    new = train(prob, code, rounds=5, optimizer=gd(0.1), rng=3)
    with pytest.warns(DeprecationWarning, match=r"train: `steps=` is deprecated.*use `rounds=`"):
        old = train(prob, code, steps=5, optimizer=gd(0.1), rng=3)
    np.testing.assert_array_equal(old.loss, new.loss)
    assert new.rounds == 5
    with pytest.warns(DeprecationWarning, match="History.steps"):
        assert new.steps == 5
    with pytest.raises(InputError, match="give `rounds` only"):
        train(prob, code, rounds=5, steps=5, optimizer=gd(0.1))
    with pytest.raises(TypeError, match="rounds"):
        train(prob, code, optimizer=gd(0.1))


# ------------------------------------------------------------------ unbiasedness
def _z_scores(estimates, truth):
    se = estimates.std(axis=0, ddof=1) / math.sqrt(estimates.shape[0])
    return np.abs(estimates.mean(axis=0) - truth) / se


def test_decoded_gradient_is_unbiased_at_a_fixed_model(problems):
    """Average decoded gradient over many rounds matches the true gradient within its CI."""
    prob = problems["logistic"]
    w = np.linspace(-0.5, 0.5, prob.dim)
    truth = prob.gradient(w)
    code = _design(prob, bits_per_worker=3)
    est = gradient_estimates(prob, code, w, rounds=20000, rng=1)
    assert np.max(_z_scores(est, truth)) < 4.5
    # negative control: ignoring stragglers (a = 1, identity code) is biased by (1 - p_j)
    ignore = Scheme("ignore", sp.identity(8, format="csr"), np.full(8, 4), P8, decoding=np.ones(8))
    est_bad = gradient_estimates(prob, ignore, w, rounds=20000, rng=1)
    assert np.max(_z_scores(est_bad, truth)) > 10


def test_round_times_arrivals_match_the_latency_model(problems):
    prob = problems["least-squares"]
    rates = np.linspace(0.5, 3.0, 8)
    times = RoundTimes(rates, deadline=1.5, shift=1.0)
    code = design(times.profile(dim=prob.dim), bits_per_worker=4)
    assert np.allclose(code.straggler_probs, np.exp(-rates * 0.5))
    hist = train(prob, code, rounds=3000, optimizer=gd(1e-4), rng=0, stragglers=times)
    expected = np.sum(1 - times.straggler_probs)
    var = np.sum(times.straggler_probs * (1 - times.straggler_probs))
    assert abs(hist.arrived[1:].mean() - expected) < 4.5 * math.sqrt(var / 3000)
    durations = np.diff(hist.wall_time)
    assert np.all(durations <= 1.5 + 1e-9) and np.all(durations > 1.0)
    central = train(prob, Centralized(code.profile), rounds=200, optimizer=gd(1e-4), rng=0, stragglers=times)
    assert np.diff(central.wall_time).mean() > 1.5  # waits for the slowest worker


# ------------------------------------------------------------------ two-track Adam
def test_two_track_shrinkage_closed_form_and_generic_agree(problems):
    prob = problems["logistic"]
    code = _design(prob, bits_per_worker=5)
    S = prob.partitions**2 / code.bound
    for lam in (0.1, 1.0, 10.0):
        c = second_moment_shrinkage(code, lam, dim=prob.dim)
        assert c == pytest.approx(lam * S / (1 + lam * S), rel=1e-12)
        assert 0 < c < 1
    assert second_moment_shrinkage(code, math.inf, dim=prob.dim) == 1.0
    # the generic formula on the same code reproduces the closed form (equal bits: balanced kappa
    # from the scheme's own budget equals the design's)
    same = Scheme("same", code.encoding, code.bits, code.straggler_probs, decoding=code.decoding)
    assert second_moment_shrinkage(same, 1.0, dim=prob.dim) == pytest.approx(
        second_moment_shrinkage(code, 1.0, dim=prob.dim)
    )
    sign = Scheme(
        "sign", code.encoding, np.ones(8), code.straggler_probs, decoding=code.decoding, quantizer="sign"
    )
    assert second_moment_shrinkage(sign, 1.0, dim=prob.dim) == 1.0


def test_adam_two_track_changes_only_the_second_moment(problems):
    prob = problems["logistic"]
    code = _design(prob, bits_per_worker=3)
    on = train(prob, code, rounds=30, optimizer=adam(0.05, two_track=True), rng=9)
    off = train(prob, code, rounds=30, optimizer=adam(0.05, two_track=False), rng=9)
    huge = train(prob, code, rounds=30, optimizer=adam(0.05, two_track=True, lam=1e12), rng=9)
    assert on.shrinkage < 1 and off.shrinkage == 1.0
    assert not np.array_equal(on.loss, off.loss)
    assert np.allclose(huge.loss, off.loss, rtol=1e-9)
    assert np.array_equal(on.arrived, off.arrived)  # same draws, different update


def test_digits_problem_if_sklearn_present():
    pytest.importorskip("sklearn")
    from gcdesign.training import digits_problem

    prob = digits_problem("logistic", partitions=20, rng=0)
    assert (prob.n_samples, prob.dim, prob.partitions) == (1797, 65, 20)
    assert np.linalg.norm(prob.gradient(prob.optimum)) < 1e-8
    assert set(np.unique(prob.targets)) == {0.0, 1.0}


def test_digits_joint_design_is_unbiased_and_ignoring_stragglers_is_not():
    """Chi-square test of the mean decoded gradient on real data, paper profile (mean p = 0.9)."""
    pytest.importorskip("sklearn")
    from scipy import stats

    from gcdesign.profile import paper_profile
    from gcdesign.training import digits_problem, training_scheme

    prob = digits_problem("logistic", partitions=50, rng=0)
    profile = paper_profile(50, dim=prob.dim)
    w = 0.5 * prob.optimum
    truth = prob.gradient(w)
    joint = training_scheme("joint", profile, 150)
    est = gradient_estimates(prob, joint, w, rounds=6000, rng=2)
    se = est.std(axis=0, ddof=1) / math.sqrt(est.shape[0])
    live = se > 0  # pixels that are zero in every image: gradient and estimate are exactly 0
    assert np.array_equal(est.mean(axis=0)[~live], truth[~live])
    chi2 = float(np.sum(((est.mean(axis=0)[live] - truth[live]) / se[live]) ** 2))
    assert stats.chi2.sf(chi2, int(live.sum())) > 1e-3
    ignore = Scheme(
        "ignore", sp.identity(50, format="csr"), np.full(50, 3), profile.straggler_probs, decoding=np.ones(50)
    )
    bad = gradient_estimates(prob, ignore, w, rounds=500, rng=2)
    assert np.linalg.norm(bad.mean(axis=0) - truth) > 0.5 * np.linalg.norm(truth)


def test_softmax_training_with_a_design_approaches_the_optimum(problems):
    prob = problems["softmax"]
    code = _design(prob, bits_per_worker=6)
    hist = train(prob, code, rounds=400, optimizer=sgd(0.5, batch_size=8, schedule="sqrt"), rng=4)
    assert hist.distance.shape == (401,)
    assert hist.suboptimality[-50:].mean() < 0.1 * hist.suboptimality[0]
    assert hist.grad_norm[-50:].mean() < 0.3 * hist.grad_norm[0]
    assert np.all(hist.arrived[1:] <= 8) and hist.wall_time[-1] == 400


# ------------------------------------------------------------------ the centralized reference
@pytest.mark.parametrize(("n", "k"), [(8, 8), (3, 7), (6, 4)])
def test_centralized_is_a_scheme_with_real_fields(n, k):
    from gcdesign import expected_error
    from gcdesign.schemes import SCHEME_FIELDS, SchemeLike, check_scheme

    ref = Centralized(ClusterProfile(np.linspace(0.1, 0.6, n), dim=5, partitions=k))
    assert isinstance(check_scheme(ref), SchemeLike)
    for attr in SCHEME_FIELDS:
        assert attr in vars(ref) or attr == "decode_weights", attr  # instance fields, not class stand-ins
    enc = ref.encoding.toarray()
    assert np.array_equal(enc.sum(axis=0), np.ones(k))  # every partition held exactly once
    holds = enc.sum(axis=1) > 0
    assert np.array_equal(ref.bits, np.where(holds, 32, 0)) and np.all(ref.straggler_probs == 0)
    assert (ref.quantizer, ref.bucket_size) == ("none", None)
    assert np.array_equal(ref.decoding, holds.astype(float))
    with pytest.raises(ValueError):
        ref.bits[0] = 7
    grads = np.random.default_rng(0).standard_normal((k, 5))
    result = expected_error(ref, grads)  # the exact evaluator takes it as is: no error at all
    assert result.unbiased and result.error < 1e-28 and result.straggler_variance == 0.0


def test_centralized_takes_no_special_path_in_the_round_loop(problems):
    """A plain Scheme with the reference's fields trains bitwise like the reference."""
    prob = problems["logistic"]
    ref = Centralized(_design(prob).profile)
    plain = Scheme(
        "centralized", ref.encoding, ref.bits, ref.straggler_probs, decoding=ref.decoding, quantizer="none"
    )
    times = RoundTimes(np.linspace(0.5, 3.0, 8), deadline=1.5, shift=1.0)
    for kwargs in ({}, {"stragglers": times}):
        a = train(prob, ref, rounds=30, optimizer=sgd(0.5, batch_size=4), rng=5, **kwargs)
        b = train(prob, plain, rounds=30, optimizer=sgd(0.5, batch_size=4), rng=5, **kwargs)
        for field in ("loss", "grad_norm", "distance", "bits", "wall_time", "arrived"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
    # SGD with the reference follows the sum of the mini-batch partition gradients
    est = gradient_estimates(prob, ref, np.full(prob.dim, 0.1), rounds=1, rng=3, batch_size=4)[0]
    rng = np.random.default_rng(3)
    assert np.allclose(
        est,
        prob.partition_gradients(np.full(prob.dim, 0.1), batch_size=4, rng=rng).sum(0),
        rtol=1e-14,
        atol=1e-16,
    )


@pytest.mark.parametrize("bits_per_worker", [2, 3, 5, 7])
def test_general_shrinkage_equals_the_closed_form_for_a_design(bits_per_worker):
    pytest.importorskip("sklearn")
    from gcdesign.profile import paper_profile

    code = design(paper_profile(50, dim=65), 50 * bits_per_worker)
    total_utility = code.partitions**2 / code.bound
    for lam in (0.1, 1.0, 10.0):
        closed = lam * total_utility / (1 + lam * total_utility)
        assert second_moment_shrinkage(code, lam, dim=65) == pytest.approx(closed, rel=1e-13)
