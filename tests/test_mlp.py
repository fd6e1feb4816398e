"""Tests of the MLP problem (gcdesign/training/mlp.py, docs/math.md section 13)."""

import math

import numpy as np
import pytest

from gcdesign import ClusterProfile, InputError, design
from gcdesign.training import (
    Centralized,
    MLPProblem,
    adam,
    digits_mlp_problem,
    mlp_dim,
    mlp_problem,
    mlp_width,
    sgd,
    synthetic_mlp_problem,
    train,
)


def _small(activation="tanh", hidden=(7,), partitions=5, reg=1e-3, rng=0):
    gen = np.random.default_rng(10)
    X = gen.standard_normal((64, 6))
    y = np.argmax(X[:, :3] + 0.3 * gen.standard_normal((64, 3)), axis=1)
    return mlp_problem(X, y, partitions=partitions, hidden=hidden, activation=activation, reg=reg, rng=rng)


def _loop_reference(problem, w, rows, weights):
    """Slow reference: backpropagation written out sample by sample (the layout of the module doc)."""
    layers, start = [], 0
    for a, b in zip(problem.layer_sizes[:-1], problem.layer_sizes[1:], strict=False):
        w_part, b_part = slice(start, start + a * b), slice(start + a * b, start + a * b + b)
        layers.append((w[w_part].reshape(a, b), w[b_part], w_part, b_part))
        start = b_part.stop
    assert start == w.size
    total = np.zeros(w.size)
    for s, weight in zip(rows, weights, strict=True):
        acts = [problem.features[s]]
        for W, b, _, _ in layers[:-1]:
            z = acts[-1] @ W + b
            acts.append(np.maximum(z, 0) if problem.activation == "relu" else np.tanh(z))
        W, b, _, _ = layers[-1]
        logits = acts[-1] @ W + b
        delta = np.exp(logits - logits.max())
        delta /= delta.sum()
        delta[problem.targets[s]] -= 1.0
        for depth in range(len(layers) - 1, -1, -1):
            W, _, w_part, b_part = layers[depth]
            total[w_part] += weight * np.outer(acts[depth], delta).ravel()
            total[b_part] += weight * delta
            if depth:
                a = acts[depth]
                delta = (W @ delta) * ((a > 0) if problem.activation == "relu" else (1 - a * a))
    return total


# ------------------------------------------------------------------ sizes
def test_mlp_dim_and_width_hit_the_target():
    assert mlp_dim((64, 100, 10)) == 65 * 100 + 101 * 10
    assert mlp_dim((5, 3, 4, 2)) == 6 * 3 + 4 * 4 + 5 * 2
    for target in (10**4, 10**5, 10**6):
        for layers in (1, 2):
            h = mlp_width(target, 64, 10, hidden_layers=layers)
            d = mlp_dim((64, *[h] * layers, 10))
            neighbours = [mlp_dim((64, *[w] * layers, 10)) for w in (h - 1, h + 1)]
            assert all(abs(d - target) <= abs(e - target) for e in neighbours)
            assert abs(d - target) / target < 0.01
    with pytest.raises(InputError, match="hidden_layers"):
        mlp_width(1000, 4, 2, hidden_layers=3)


def test_digits_dimensions_from_1e4_to_1e6():
    pytest.importorskip("sklearn")
    for target in (10**4, 10**5):
        prob = digits_mlp_problem(dim=target, partitions=10)
        assert abs(prob.dim - target) / target < 0.01
        assert prob.layer_sizes[0] == 64 and prob.layer_sizes[-1] == 10
    prob = digits_mlp_problem(dim=10**6, partitions=50)
    assert abs(prob.dim - 10**6) < 100 and prob.init.shape == (prob.dim,)
    assert prob.n_samples + prob.test_targets.size == 1797 and prob.test_targets.size == 359
    big = synthetic_mlp_problem(dim=10**5, hidden_layers=2, n_samples=300, n_features=200, partitions=10)
    assert abs(big.dim - 10**5) / 10**5 < 0.01 and len(big.layer_sizes) == 4


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize(
    ("activation", "hidden"), [("tanh", (7,)), ("relu", (6,)), ("tanh", (5, 4)), ("relu", (5, 4))]
)
def test_gradient_matches_finite_differences_and_a_per_sample_loop(activation, hidden):
    prob = _small(activation, hidden)
    w = prob.initial_point() + 0.1 * np.random.default_rng(1).standard_normal(prob.dim)
    loss, grad = prob.loss_and_gradient(w)
    assert loss == prob.loss(w)
    h = 1e-6
    fd = np.array([(prob.loss(w + h * e) - prob.loss(w - h * e)) / (2 * h) for e in np.eye(prob.dim)])
    assert np.allclose(fd, grad, rtol=0, atol=1e-7)
    n = prob.n_samples
    ref = _loop_reference(prob, w, range(n), np.full(n, 1.0 / n)) + prob.reg * w
    assert np.allclose(grad, ref, rtol=0, atol=1e-14)


@pytest.mark.parametrize(("activation", "hidden"), [("tanh", (7,)), ("relu", (5, 4))])
def test_partition_gradients_sum_to_the_gradient(activation, hidden):
    prob = _small(activation, hidden, partitions=7)  # 51 training samples: sizes 8 and 7 (padding)
    assert set(prob.partition_sizes.tolist()) == {7, 8}
    w = prob.initial_point() + 0.2 * np.random.default_rng(2).standard_normal(prob.dim)
    parts = prob.partition_gradients(w)
    assert parts.shape == (7, prob.dim)
    assert np.max(np.abs(parts.sum(axis=0) - prob.gradient(w))) < 1e-10
    # each partition's term is the sum over its own samples (a per-sample loop as the oracle)
    starts = np.concatenate([[0], np.cumsum(prob.partition_sizes)[:-1]])
    for j in (0, 6):
        rows = range(starts[j], starts[j] + prob.partition_sizes[j])
        ref = _loop_reference(prob, w, rows, np.full(len(rows), 1.0 / prob.n_samples))
        assert np.allclose(parts[j], ref + prob.reg / 7 * w, rtol=0, atol=1e-14)


def test_minibatch_partition_gradients_are_unbiased():
    prob = _small("tanh", (5,), partitions=4)
    w = prob.initial_point() + 0.3
    rng = np.random.default_rng(3)
    draws = np.array([prob.partition_gradients(w, batch_size=3, rng=rng) for _ in range(4000)])
    mean, se = draws.mean(axis=0), draws.std(axis=0, ddof=1) / math.sqrt(len(draws))
    z = np.abs(mean - prob.partition_gradients(w)) / np.where(se > 0, se, np.inf)
    assert np.max(z) < 5.0  # ~ 4 * dim coordinates; 5 sigma is rare under H0
    # negative control: forgetting the |P_j| / m scaling is detected
    unscaled = draws * 3 / prob.partition_sizes[None, :, None]
    z_bad = np.abs(unscaled.mean(axis=0) - prob.partition_gradients(w)) / np.where(se > 0, se, np.inf)
    assert np.max(z_bad) > 10


def test_mlp_input_errors():
    X = np.ones((10, 3))
    y = np.arange(10) % 2
    with pytest.raises(InputError, match="activation"):
        mlp_problem(X, y, partitions=2, activation="sigmoid")
    with pytest.raises(InputError, match="hidden_layers"):
        mlp_problem(X, y, partitions=2, hidden=(3, 3, 3))
    with pytest.raises(InputError, match="test_fraction"):
        mlp_problem(X, y, partitions=2, test_fraction=1.0)
    with pytest.raises(InputError, match="class indices"):
        mlp_problem(X, y + 0.5, partitions=2)
    with pytest.raises(InputError, match="partitions"):
        mlp_problem(X, y, partitions=9)  # 8 training samples after the 20 % hold-out
    with pytest.raises(InputError, match="not both"):
        synthetic_mlp_problem(dim=1000, hidden=5)


# ------------------------------------------------------------------ in the harness
def test_same_seed_same_mlp_history_with_test_accuracy():
    prob = synthetic_mlp_problem(hidden=16, n_samples=400, n_features=20, n_classes=3, partitions=8, rng=4)
    again = synthetic_mlp_problem(hidden=16, n_samples=400, n_features=20, n_classes=3, partitions=8, rng=4)
    assert np.array_equal(prob.init, again.init) and np.array_equal(prob.features, again.features)
    other = synthetic_mlp_problem(hidden=16, n_samples=400, n_features=20, n_classes=3, partitions=8, rng=5)
    assert not np.array_equal(prob.init, other.init)
    profile = ClusterProfile(np.linspace(0.05, 0.5, 8), dim=prob.dim, partitions=8)
    code = design(profile, bits_per_worker=4)
    runs = [train(p, code, rounds=25, optimizer=adam(0.01, batch_size=8), rng=7) for p in (prob, again)]
    for field in ("loss", "grad_norm", "bits", "arrived", "test_accuracy"):
        assert np.array_equal(getattr(runs[0], field), getattr(runs[1], field)), field
    hist = runs[0]
    assert hist.distance is None and hist.optimal_loss is None
    assert hist.test_accuracy.shape == (26,) and np.all((0 <= hist.test_accuracy) & (hist.test_accuracy <= 1))
    assert hist.as_rows()[3]["test_accuracy"] == hist.test_accuracy[3]


def test_mlp_training_learns_digits():
    pytest.importorskip("sklearn")
    prob = digits_mlp_problem(hidden=16, partitions=10, rng=0)
    ref = Centralized(ClusterProfile(np.zeros(10), dim=prob.dim))
    hist = train(prob, ref, rounds=100, optimizer=sgd(0.5, batch_size=16), rng=1)
    assert hist.loss[-1] < 0.3 * hist.loss[0]
    assert hist.test_accuracy[0] < 0.3 and hist.test_accuracy[-1] > 0.85
    assert isinstance(prob, MLPProblem) and prob.test_accuracy(prob.init) == hist.test_accuracy[0]


def test_history_is_the_same_on_any_blas_thread_count():
    """Threaded OpenBLAS splits long dot products by thread (the loss differed in the 16th
    digit at d = 1e5 with 1 vs 2 threads): train computes on one thread, whatever the caller set."""
    pytest.importorskip("sklearn")
    from threadpoolctl import threadpool_limits

    prob = digits_mlp_problem(dim=100_000, partitions=10, rng=0)
    code = design(ClusterProfile(np.linspace(0.1, 0.6, 10), dim=prob.dim), bits_per_worker=3)
    runs = []
    for threads in (1, 2):
        with threadpool_limits(threads, user_api="blas"):
            runs.append(train(prob, code, rounds=3, optimizer=sgd(0.1, batch_size=8), rng=3))
    for field in ("loss", "grad_norm", "test_accuracy"):
        assert np.array_equal(getattr(runs[0], field), getattr(runs[1], field)), field
