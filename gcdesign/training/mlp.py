r"""A nonconvex problem for the harness: a multilayer perceptron with a softmax output.

docs/math.md, section 13. One or two hidden layers (ReLU or tanh), softmax
cross-entropy, L2 regularization on every parameter:

.. math::

    f(w) = \frac{1}{n} \sum_s \ell(w; s) + \frac{\rho}{2}\|w\|^2, \qquad
    g_j(w) = \frac{1}{n} \sum_{s \in P_j} \nabla \ell_s(w) + \frac{\rho}{K}w,

so :math:`\sum_j g_j = \nabla f`, the convention of the convex problems
(:mod:`gcdesign.training.problems`). A mini-batch of m points of partition j
is scaled by :math:`|P_j| / m`, so it stays unbiased for :math:`g_j`. No
optimum is known: the :class:`~gcdesign.training.History` records the loss,
the gradient norm and the accuracy on a held-out split.

The K partition gradients of a round come from one forward and one backward
pass over all the round's samples, laid out partition by partition in a
``(K, m)`` block (padding rows weigh 0); the per-partition sums of the weight
gradients are one batched matrix product over the blocks
(``(K, in, m) @ (K, m, out)``), the bias sums one reduction: no loop over
partitions. The parameter vector stacks, layer by layer, the weight matrix
(row-major, ``in x out``) and then the bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validate import InputError, choice, positive_int
from .problems import check_features, check_partitions, class_labels, digits_data, softmax, split_sizes

ACTIVATIONS = ("relu", "tanh")


def mlp_dim(layer_sizes) -> int:
    """Number of parameters of an MLP with these layer sizes (input, hidden..., output).

    >>> mlp_dim((64, 100, 10))
    7510
    """
    sizes = [int(s) for s in layer_sizes]
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def mlp_width(dim: int, n_features: int, n_classes: int, *, hidden_layers: int = 1) -> int:
    """The hidden width (the same for every hidden layer) that brings the MLP closest to `dim` parameters.

    One hidden layer of width h has ``(p + 1) h + (h + 1) C`` parameters, two have
    ``(p + 1) h + (h + 1) h + (h + 1) C``.

    Examples
    --------
    >>> h = mlp_width(10**6, 64, 10)  # digits, one hidden layer
    >>> h, mlp_dim((64, h, 10))
    (13333, 999985)
    >>> h = mlp_width(10**5, 64, 10, hidden_layers=2)
    >>> h, mlp_dim((64, h, h, 10))
    (280, 99690)
    """
    dim = positive_int("dim", dim)
    p = positive_int("n_features", n_features)
    c = positive_int("n_classes", n_classes, minimum=2)
    layers = _check_layers(hidden_layers)
    if layers == 1:
        guess = (dim - c) / (p + 1 + c)
    else:  # h^2 + (p + 2 + c) h + c = dim
        b = p + 2 + c
        guess = (-b + math.sqrt(b * b + 4.0 * max(dim - c, 0))) / 2.0
    candidates = {max(1, int(math.floor(guess)) + k) for k in (-1, 0, 1, 2)}
    return min(candidates, key=lambda h: (abs(mlp_dim((p, *[h] * layers, c)) - dim), h))


def _check_layers(hidden_layers) -> int:
    layers = positive_int("hidden_layers", hidden_layers)
    if layers > 2:
        raise InputError(f"`hidden_layers` must be 1 or 2, got {layers}.")
    return layers


@dataclass(frozen=True, eq=False)
class MLPProblem:
    """A softmax MLP on a data set split into K partitions, with a held-out split.

    Build it with :func:`mlp_problem`, :func:`digits_mlp_problem` or
    :func:`synthetic_mlp_problem`.

    Attributes
    ----------
    name : str
    features, targets : ndarray (n, p), ndarray of int (n,)
        The training samples (shuffled; partition j is a block of consecutive rows).
    test_features, test_targets : ndarray (n_test, p), ndarray of int (n_test,)
        The held-out split (may be empty).
    partition_sizes : ndarray of int (K,)
    layer_sizes : tuple of int
        ``(p, h_1[, h_2], C)``.
    activation : {"relu", "tanh"}
    reg : float
        L2 regularization :math:`\\rho`.
    init : ndarray (dim,)
        The seeded initial point (He normal for ReLU, Glorot normal for tanh; biases 0).
    optimum, optimal_loss : None
        Unknown for a nonconvex problem (the fields exist so every problem has them).
    """

    name: str
    features: np.ndarray
    targets: np.ndarray
    test_features: np.ndarray
    test_targets: np.ndarray
    partition_sizes: np.ndarray
    layer_sizes: tuple
    activation: str
    reg: float
    init: np.ndarray
    optimum: None = None
    optimal_loss: None = None

    @property
    def kind(self) -> str:
        return "mlp"

    @property
    def n_samples(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.layer_sizes[-1])

    @property
    def dim(self) -> int:
        return mlp_dim(self.layer_sizes)

    @property
    def partitions(self) -> int:
        return int(self.partition_sizes.size)

    def initial_point(self) -> np.ndarray:
        return self.init.copy()

    # ------------------------------------------------------------ model
    def _layers(self, w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, slice, slice]]:
        """``(W, b, slice of W, slice of b)`` per layer, W and b views into `w`."""
        out, start = [], 0
        for a, b in zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=False):
            w_part = slice(start, start + a * b)
            b_part = slice(w_part.stop, w_part.stop + b)
            out.append((w[w_part].reshape(a, b), w[b_part], w_part, b_part))
            start = b_part.stop
        return out

    def _forward(self, w, X) -> tuple[list[np.ndarray], np.ndarray]:
        """Activations of every layer (input first) and the output logits."""
        layers = self._layers(w)
        acts = [X]
        for W, b, _, _ in layers[:-1]:
            z = acts[-1] @ W + b
            acts.append(np.maximum(z, 0.0) if self.activation == "relu" else np.tanh(z))
        W, b, _, _ = layers[-1]
        return acts, acts[-1] @ W + b

    def _backward(self, w, acts, logits, labels, weights, blocks: int) -> np.ndarray:
        r"""Per-block gradients of :math:`\sum_s \text{weights}_s \ell_s`: array (blocks, dim).

        `acts` and `logits` come from :meth:`_forward`; their rows (and `labels`,
        `weights`) are `blocks` consecutive blocks of equal length, and a block's
        gradient sums its rows' gradients.
        """
        delta = softmax(logits)
        delta[np.arange(delta.shape[0]), labels] -= 1.0
        delta *= weights[:, None]
        out = np.empty((blocks, w.size))
        layers = self._layers(w)
        for depth in range(len(layers) - 1, -1, -1):
            W, _, w_part, b_part = layers[depth]
            a = acts[depth]
            block_a = a.reshape(blocks, -1, a.shape[1]).transpose(0, 2, 1)
            block_delta = delta.reshape(blocks, -1, delta.shape[1])
            np.matmul(block_a, block_delta, out=out[:, w_part].reshape(blocks, *W.shape))  # a view: no copy
            out[:, b_part] = block_delta.sum(axis=1)
            if depth > 0:
                back = delta @ W.T
                delta = back * (a > 0) if self.activation == "relu" else back * (1.0 - a * a)
        return out

    def loss(self, w) -> float:
        """:math:`f(w)` on the training split."""
        w = np.asarray(w, dtype=np.float64)
        _, logits = self._forward(w, self.features)
        return _cross_entropy(logits, self.targets) + 0.5 * self.reg * float(w @ w)

    def gradient(self, w) -> np.ndarray:
        """:math:`\\nabla f(w) = \\sum_j g_j(w)`."""
        return self.loss_and_gradient(w)[1]

    def loss_and_gradient(self, w) -> tuple[float, np.ndarray]:
        """``(f(w), grad f(w))`` from one forward and one backward pass."""
        w = np.asarray(w, dtype=np.float64)
        n = self.n_samples
        acts, logits = self._forward(w, self.features)
        loss = _cross_entropy(logits, self.targets) + 0.5 * self.reg * float(w @ w)
        grad = self._backward(w, acts, logits, self.targets, np.full(n, 1.0 / n), 1)[0]
        return loss, grad + self.reg * w

    def partition_gradients(self, w, *, batch_size: int | None = None, rng=None) -> np.ndarray:
        r"""The K partition gradients :math:`g_j(w)`, array (K, dim).

        With `batch_size`, partition j's data term comes from `batch_size` samples drawn
        uniformly with replacement, scaled by :math:`|P_j| / (n\,m)` (unbiased).
        """
        w = np.asarray(w, dtype=np.float64)
        sizes, n, K = self.partition_sizes, self.n_samples, self.partitions
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        if batch_size is None:
            m = int(sizes.max())
            offsets = np.arange(m)[None, :]
            real = offsets < sizes[:, None]
            index = starts[:, None] + np.where(real, offsets, 0)
            weights = np.where(real, 1.0 / n, 0.0)
        else:
            rng = np.random.default_rng(rng)
            draws = np.floor(rng.random((K, batch_size)) * sizes[:, None]).astype(np.int64)
            index = starts[:, None] + draws
            weights = np.broadcast_to((sizes / (n * batch_size))[:, None], index.shape)
        index = index.ravel()
        acts, logits = self._forward(w, self.features[index])
        grads = self._backward(w, acts, logits, self.targets[index], weights.ravel(), K)
        grads += (self.reg / K) * w[None, :]
        return grads

    def test_accuracy(self, w) -> float | None:
        """Fraction of the held-out samples classified correctly (None without a held-out split)."""
        if self.test_targets.size == 0:
            return None
        _, logits = self._forward(np.asarray(w, dtype=np.float64), self.test_features)
        return float(np.mean(np.argmax(logits, axis=1) == self.test_targets))

    def __repr__(self) -> str:
        return (
            f"MLPProblem({self.name!r}, layers={self.layer_sizes}, {self.activation}, n={self.n_samples}, "
            f"test={self.test_targets.size}, dim={self.dim}, K={self.partitions}, reg={self.reg:g})"
        )


def _cross_entropy(logits, labels) -> float:
    top = logits.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return float(np.mean(lse - logits[np.arange(labels.size), labels]))


def mlp_problem(
    features,
    targets,
    *,
    partitions: int,
    hidden=100,
    activation: str = "relu",
    reg: float = 1e-4,
    test_fraction: float = 0.2,
    rng=None,
    name: str | None = None,
) -> MLPProblem:
    """Build an :class:`MLPProblem`: shuffle, hold out a test split, partition, initialize.

    Parameters
    ----------
    features : array_like (n, p)
    targets : array_like (n,)
        Class indices 0..C-1 (C >= 2).
    partitions : int
        K, at most the number of training samples (sizes differ by at most one).
    hidden : int or sequence of one or two ints
        Hidden widths (see :func:`mlp_width` to reach a target dimension).
    activation : {"relu", "tanh"}
    reg : float
        L2 regularization :math:`\\rho >= 0`.
    test_fraction : float
        Share of the samples held out, in [0, 1).
    rng : None, int or Generator
        Shuffles the samples and draws the initial point.
    """
    X = check_features(features)
    choice("activation", activation, ACTIVATIONS)
    y = np.asarray(targets)
    if y.shape != (X.shape[0],):
        raise InputError(f"`targets` must have shape ({X.shape[0]},), got {y.shape}.")
    y, n_classes = class_labels(y, "an MLP problem")
    widths = (hidden,) if np.ndim(hidden) == 0 else tuple(hidden)
    _check_layers(len(widths))
    widths = tuple(positive_int("hidden", h) for h in widths)
    reg = float(reg)
    if not (math.isfinite(reg) and reg >= 0):
        raise InputError(f"`reg` must be a finite number >= 0, got {reg!r}.")
    test_fraction = float(test_fraction)
    if not 0.0 <= test_fraction < 1.0:
        raise InputError(f"`test_fraction` must be a number in [0, 1), got {test_fraction!r}.")
    rng = np.random.default_rng(rng)
    order = rng.permutation(X.shape[0])
    n_test = int(round(test_fraction * X.shape[0]))
    test, train = order[:n_test], order[n_test:]
    K = check_partitions(partitions, train.size)
    layer_sizes = (X.shape[1], *widths, n_classes)
    init = []
    for a, b in zip(layer_sizes[:-1], layer_sizes[1:], strict=False):
        scale = math.sqrt(2.0 / a) if activation == "relu" else math.sqrt(2.0 / (a + b))
        init += [scale * rng.standard_normal(a * b), np.zeros(b)]
    return MLPProblem(
        name=name or f"mlp-{activation}",
        features=X[train],
        targets=y[train],
        test_features=X[test],
        test_targets=y[test],
        partition_sizes=split_sizes(train.size, K),
        layer_sizes=layer_sizes,
        activation=activation,
        reg=reg,
        init=np.concatenate(init),
    )


def _hidden(dim, hidden, hidden_layers, n_features, n_classes):
    if dim is not None and hidden is not None:
        raise InputError("give `dim` (a target number of parameters) or `hidden` (the widths), not both.")
    if dim is None:
        return 100 if hidden is None else hidden
    width = mlp_width(dim, n_features, n_classes, hidden_layers=hidden_layers)
    return (width,) * _check_layers(hidden_layers)


def digits_mlp_problem(
    *,
    dim: int | None = None,
    hidden=None,
    hidden_layers: int = 1,
    activation: str = "relu",
    partitions: int = 50,
    reg: float = 1e-4,
    test_fraction: float = 0.2,
    rng=0,
) -> MLPProblem:
    """An MLP on scikit-learn's bundled digits (1797 images of 64 pixels in [0, 1], 10 classes).

    `dim` picks the hidden width (:func:`mlp_width`) so the model has about `dim`
    parameters (e.g. ``10**4`` to ``10**6``); otherwise `hidden` gives the widths
    (default one layer of 100). 20 % of the images are held out by default.
    Needs scikit-learn (``pip install gcdesign[studies]``).
    """
    pixels, digit = digits_data()
    widths = _hidden(dim, hidden, hidden_layers, pixels.shape[1], 10)
    return mlp_problem(
        pixels,
        digit,
        partitions=partitions,
        hidden=widths,
        activation=activation,
        reg=reg,
        test_fraction=test_fraction,
        rng=rng,
        name=f"digits-mlp-{activation}",
    )


def synthetic_mlp_problem(
    *,
    dim: int | None = None,
    hidden=None,
    hidden_layers: int = 1,
    activation: str = "relu",
    partitions: int = 50,
    n_samples: int = 2000,
    n_features: int = 1000,
    n_classes: int = 10,
    teacher_width: int = 32,
    reg: float = 1e-4,
    test_fraction: float = 0.2,
    rng=0,
) -> MLPProblem:
    """A seeded high-dimensional classification set labelled by a random teacher network.

    Features ``x ~ N(0, I_p)``; label ``argmax(tanh(x V) U + Gumbel)`` with
    ``V ~ N(0, 1/p)`` (p x `teacher_width`) and ``U ~ N(0, 4/width)``: a nonlinear
    decision rule with some label noise, no external data. `dim` / `hidden` as in
    :func:`digits_mlp_problem`.
    """
    gen = np.random.default_rng(rng)
    n = positive_int("n_samples", n_samples)
    p = positive_int("n_features", n_features)
    c = positive_int("n_classes", n_classes, minimum=2)
    width = positive_int("teacher_width", teacher_width)
    X = gen.standard_normal((n, p))
    V = gen.standard_normal((p, width)) / math.sqrt(p)
    U = 2.0 * gen.standard_normal((width, c)) / math.sqrt(width)
    y = np.argmax(np.tanh(X @ V) @ U + gen.gumbel(size=(n, c)), axis=1)
    y[:c] = np.arange(c)  # every class present
    widths = _hidden(dim, hidden, hidden_layers, p, c)
    return mlp_problem(
        X,
        y,
        partitions=partitions,
        hidden=widths,
        activation=activation,
        reg=reg,
        test_fraction=test_fraction,
        rng=gen,
        name=f"synthetic-mlp-{activation}",
    )


__all__ = [
    "ACTIVATIONS",
    "MLPProblem",
    "digits_mlp_problem",
    "mlp_dim",
    "mlp_problem",
    "mlp_width",
    "synthetic_mlp_problem",
]
