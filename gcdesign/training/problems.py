r"""Problems of the training harness: regularized least squares, logistic and softmax regression.

A :class:`Problem` holds a data set split into K partitions; the gradient of
partition j is

.. math::

    g_j(w) = \frac{1}{n} \sum_{s \in P_j} \nabla \ell_s(w) + \frac{\rho}{K} w,

so that :math:`\sum_j g_j = \nabla f(w)` for the regularized mean loss
:math:`f(w) = \frac{1}{n}\sum_s \ell_s(w) + \frac{\rho}{2}\|w\|^2`
(docs/math.md, section 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validate import InputError, choice, positive_int

PROBLEM_KINDS = ("least-squares", "logistic", "softmax")


@dataclass(frozen=True, eq=False)
class Problem:
    """A regularized empirical-risk problem split into K data partitions.

    Attributes
    ----------
    name : str
    kind : {"least-squares", "logistic", "softmax"}
    features : ndarray (n, p)
    targets : ndarray (n,)
        Real targets (least squares), 0/1 labels (logistic) or class indices (softmax).
    partition_features : ndarray (K, m, p)
        The samples of each partition, zero-padded to the largest partition size m.
    partition_targets : ndarray (K, m) or (K, m, C)
        Targets per partition (one-hot for softmax), zero-padded.
    partition_sizes : ndarray of int (K,)
    reg : float
        L2 regularization :math:`\rho`.
    n_classes : int
        C for softmax, 1 otherwise.
    optimum : ndarray (dim,) or None
        The minimizer (exact for least squares, Newton-CG to a gradient norm
        below 1e-10 for logistic and softmax), None if not computed.
    optimal_loss : float or None
    """

    name: str
    kind: str
    features: np.ndarray
    targets: np.ndarray
    partition_features: np.ndarray
    partition_targets: np.ndarray
    partition_sizes: np.ndarray
    reg: float
    n_classes: int = 1
    optimum: np.ndarray | None = None
    optimal_loss: float | None = None

    @property
    def n_samples(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def dim(self) -> int:
        """Model dimension d (number of gradient coordinates)."""
        return self.n_features * self.n_classes

    @property
    def partitions(self) -> int:
        return int(self.partition_sizes.size)

    def initial_point(self) -> np.ndarray:
        return np.zeros(self.dim)

    def _weights(self, w: np.ndarray) -> np.ndarray:
        return w.reshape(self.n_features, self.n_classes) if self.kind == "softmax" else w

    def loss(self, w) -> float:
        """:math:`f(w)`, the regularized mean loss over all samples."""
        w = np.asarray(w, dtype=np.float64)
        z = self.features @ self._weights(w)
        reg = 0.5 * self.reg * float(w @ w)
        if self.kind == "least-squares":
            return 0.5 * float(np.mean(np.square(z - self.targets))) + reg
        if self.kind == "logistic":
            return float(np.mean(np.logaddexp(0.0, z) - self.targets * z)) + reg
        top = z.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
        picked = z[np.arange(z.shape[0]), self.targets]
        return float(np.mean(lse - picked)) + reg

    def gradient(self, w) -> np.ndarray:
        r""":math:`\nabla f(w) = \sum_j g_j(w)`."""
        w = np.asarray(w, dtype=np.float64)
        z = self.features @ self._weights(w)
        if self.kind == "softmax":
            onehot = np.zeros_like(z)
            onehot[np.arange(z.shape[0]), self.targets] = 1.0
            resid = _residual(self.kind, z, onehot)
        else:
            resid = _residual(self.kind, z, self.targets)
        return (self.features.T @ resid).ravel() / self.n_samples + self.reg * w

    def loss_and_gradient(self, w) -> tuple[float, np.ndarray]:
        """``(f(w), grad f(w))``."""
        return self.loss(w), self.gradient(w)

    def test_accuracy(self, w) -> None:
        """None: the convex problems keep no held-out split (their reference is the optimum)."""
        return None

    def partition_gradients(self, w, *, batch_size: int | None = None, rng=None) -> np.ndarray:
        r"""The K partition gradients :math:`g_j(w)`, array (K, dim).

        With `batch_size`, each partition's data term is estimated without
        bias from `batch_size` samples drawn uniformly with replacement
        (mini-batch SGD): :math:`\frac{|P_j|}{n\,m} \sum_{s \in \text{batch}} \nabla \ell_s`.
        """
        w = np.asarray(w, dtype=np.float64)
        X, T = self.partition_features, self.partition_targets
        if batch_size is None:
            scale = np.full(self.partitions, 1.0 / self.n_samples)
        else:
            rng = np.random.default_rng(rng)
            idx = np.floor(rng.random((self.partitions, batch_size)) * self.partition_sizes[:, None])
            idx = idx.astype(np.int64)
            rows = np.arange(self.partitions)[:, None]
            X, T = X[rows, idx], T[rows, idx]
            scale = self.partition_sizes / (self.n_samples * batch_size)
        z = X @ self._weights(w)  # (K, m) or (K, m, C)
        resid = _residual(self.kind, z, T)
        if batch_size is None:  # zero the padding rows
            mask = np.arange(X.shape[1])[None, :] < self.partition_sizes[:, None]
            resid = resid * (mask[..., None] if resid.ndim == 3 else mask)
        if resid.ndim == 2:
            data = np.einsum("kmp,km->kp", X, resid)
        else:
            data = np.einsum("kmp,kmc->kpc", X, resid).reshape(self.partitions, -1)
        return data * scale[:, None] + (self.reg / self.partitions) * w[None, :]

    def _hessp(self, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Hessian-vector product of f at w (for the Newton-CG optimum)."""
        X = self.features
        z = X @ self._weights(w)
        xv = X @ self._weights(v)
        if self.kind == "least-squares":
            inner = xv
        elif self.kind == "logistic":
            s = _sigmoid(z)
            inner = s * (1.0 - s) * xv
        else:
            prob = softmax(z)
            inner = prob * xv - prob * np.sum(prob * xv, axis=1, keepdims=True)
        return (X.T @ inner).ravel() / self.n_samples + self.reg * v

    def __repr__(self) -> str:
        return (
            f"Problem({self.name!r}, kind={self.kind!r}, n={self.n_samples}, dim={self.dim}, "
            f"K={self.partitions}, reg={self.reg:g})"
        )


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


def softmax(z):
    """Row-wise softmax over the last axis (stable)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _residual(kind: str, z, targets):
    """d loss / d z per sample: z - y, sigmoid(z) - y, softmax(z) - onehot(y)."""
    if kind == "least-squares":
        return z - targets
    if kind == "logistic":
        return _sigmoid(z) - targets
    return softmax(z) - targets


def make_problem(
    kind: str,
    features,
    targets,
    *,
    partitions: int,
    reg: float = 1e-3,
    rng=None,
    name: str | None = None,
    solve: bool = True,
) -> Problem:
    """Build a :class:`Problem` from data: shuffle, split into `partitions`, solve for the optimum.

    Parameters
    ----------
    kind : {"least-squares", "logistic", "softmax"}
    features : array_like (n, p)
    targets : array_like (n,)
        Reals, 0/1 labels, or class indices 0..C-1 (C >= 2), by `kind`.
    partitions : int
        K, at most n (partition sizes differ by at most one).
    reg : float
        L2 regularization, >= 0 (> 0 for logistic and softmax, so the optimum exists).
    rng : None, int or Generator
        Shuffles the samples before the split.
    solve : bool
        Compute the optimum (exact for least squares, Newton-CG otherwise).
    """
    choice("problem kind", kind, PROBLEM_KINDS)
    X = check_features(features)
    n = X.shape[0]
    K = check_partitions(partitions, n)
    reg = float(reg)
    if not math.isfinite(reg) or reg < 0 or (kind != "least-squares" and reg == 0):
        raise InputError(f"`reg` must be a finite number > 0 (>= 0 for least squares), got {reg!r}.")
    y = np.asarray(targets)
    if y.shape != (n,):
        raise InputError(f"`targets` must have shape ({n},), got {y.shape}.")
    n_classes = 1
    if kind == "least-squares":
        y = y.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise InputError("`targets` must be finite.")
    elif kind == "logistic":
        if not np.all((y == 0) | (y == 1)):
            raise InputError("`targets` of a logistic problem must be 0/1 labels.")
        y = y.astype(np.float64)
    else:
        y, n_classes = class_labels(y, "a softmax problem")
    order = np.random.default_rng(rng).permutation(n)
    X, y = X[order], y[order]
    sizes = split_sizes(n, K)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    m = int(sizes.max())
    PX = np.zeros((K, m, X.shape[1]))
    PT = np.zeros((K, m, n_classes)) if kind == "softmax" else np.zeros((K, m))
    for j, (start, size) in enumerate(zip(starts, sizes, strict=True)):
        PX[j, :size] = X[start : start + size]
        if kind == "softmax":
            PT[j, np.arange(size), y[start : start + size]] = 1.0
        else:
            PT[j, :size] = y[start : start + size]
    problem = Problem(
        name=name or kind,
        kind=kind,
        features=X,
        targets=y,
        partition_features=PX,
        partition_targets=PT,
        partition_sizes=sizes,
        reg=reg,
        n_classes=n_classes,
    )
    if not solve:
        return problem
    w_star = _solve(problem)
    return Problem(**{**problem.__dict__, "optimum": w_star, "optimal_loss": problem.loss(w_star)})


def _solve(problem: Problem) -> np.ndarray:
    """The minimizer: normal equations (least squares) or Newton-CG (trust region)."""
    if problem.kind == "least-squares":
        X, n = problem.features, problem.n_samples
        H = X.T @ X / n + problem.reg * np.eye(problem.n_features)
        rhs = X.T @ problem.targets / n
        if problem.reg > 0:
            return np.linalg.solve(H, rhs)
        return np.linalg.lstsq(H, rhs, rcond=None)[0]
    from scipy.optimize import minimize

    res = minimize(
        lambda w: (problem.loss(w), problem.gradient(w)),
        problem.initial_point(),
        jac=True,
        hessp=problem._hessp,
        method="trust-ncg",
        options={"gtol": 1e-11, "maxiter": 500},
    )
    if not np.linalg.norm(problem.gradient(res.x)) <= 1e-8:
        raise RuntimeError(f"optimum of {problem.name!r} not found to precision: {res.message}")
    return res.x


def digits_problem(
    kind: str = "logistic", *, partitions: int = 50, reg: float = 1e-3, rng=0, solve: bool = True
) -> Problem:
    """scikit-learn's bundled handwritten digits (1797 images, 8 x 8 pixels; no download).

    Features: the 64 pixels scaled to [0, 1] plus a constant 1 (p = 65).
    Targets: ``"softmax"``: the digit (10 classes, dim 650); ``"logistic"``:
    digit >= 5 (dim 65); ``"least-squares"``: the digit value minus 4.5 (dim 65).
    Needs scikit-learn (``pip install gcdesign[studies]``).
    """
    choice("problem kind", kind, PROBLEM_KINDS)
    pixels, digit = digits_data()
    X = np.hstack([pixels, np.ones((pixels.shape[0], 1))])
    if kind == "softmax":
        y = digit
    elif kind == "logistic":
        y = (digit >= 5).astype(np.float64)
    else:
        y = digit - 4.5
    return make_problem(
        kind, X, y, partitions=partitions, reg=reg, rng=rng, name=f"digits-{kind}", solve=solve
    )


def synthetic_problem(
    kind: str = "least-squares",
    *,
    partitions: int = 8,
    n_samples: int = 400,
    n_features: int = 10,
    n_classes: int = 3,
    noise: float = 0.1,
    reg: float = 1e-2,
    rng=0,
    solve: bool = True,
) -> Problem:
    """Gaussian features with a planted model (no external data; for tests and quick runs).

    Least squares: ``y = X w0 + noise * N(0, 1)``; logistic: ``y ~ Bernoulli(sigmoid(X w0))``;
    softmax: ``y = argmax(X W0 + Gumbel)``, with ``w0 ~ N(0, 1 / p)``.
    """
    choice("problem kind", kind, PROBLEM_KINDS)
    rng = np.random.default_rng(rng)
    n = positive_int("n_samples", n_samples)
    p = positive_int("n_features", n_features)
    X = rng.standard_normal((n, p))
    if kind == "least-squares":
        w0 = rng.standard_normal(p) / math.sqrt(p)
        y = X @ w0 + noise * rng.standard_normal(n)
    elif kind == "logistic":
        w0 = 2.0 * rng.standard_normal(p) / math.sqrt(p)
        y = (rng.random(n) < _sigmoid(X @ w0)).astype(np.float64)
    else:
        c = positive_int("n_classes", n_classes, minimum=2)
        W0 = 2.0 * rng.standard_normal((p, c)) / math.sqrt(p)
        y = np.argmax(X @ W0 + rng.gumbel(size=(n, c)), axis=1)
        y[:c] = np.arange(c)  # every class present
    return make_problem(
        kind, X, y, partitions=partitions, reg=reg, rng=rng, name=f"synthetic-{kind}", solve=solve
    )


# ---------------------------------------------------------------- data (shared with the MLP)
def check_features(features) -> np.ndarray:
    """`features` as a finite float64 (n, p) array with n >= 1, or InputError."""
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or not np.all(np.isfinite(X)):
        raise InputError("`features` must be a finite 2-D array (samples x features) with at least one row.")
    return X


def check_partitions(partitions, n_samples: int) -> int:
    """K as an int in [1, n_samples], or InputError."""
    K = positive_int("partitions", partitions)
    if K > n_samples:
        raise InputError(f"`partitions` = {K} exceeds the number of samples {n_samples}.")
    return K


def class_labels(targets, what: str) -> tuple[np.ndarray, int]:
    """Class indices 0..C-1 (C >= 2) as int64, and C; InputError naming `what` otherwise."""
    y = np.asarray(targets)
    if not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0:
        raise InputError(f"`targets` of {what} must be class indices 0, 1, ...")
    y = y.astype(np.int64)
    n_classes = int(y.max()) + 1
    if n_classes < 2:
        raise InputError(f"{what} needs at least two classes.")
    return y, n_classes


def split_sizes(n_samples: int, partitions: int) -> np.ndarray:
    """Sizes of `partitions` consecutive blocks of `n_samples` that differ by at most one."""
    return np.array([len(c) for c in np.array_split(np.arange(n_samples), partitions)], dtype=np.int64)


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: the 64 pixels scaled to [0, 1] (1797 x 64) and the digit."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the digits data set needs scikit-learn: pip install 'gcdesign[studies]'") from None
    data = load_digits()
    return data.data / 16.0, data.target


__all__ = [
    "PROBLEM_KINDS",
    "Problem",
    "check_features",
    "check_partitions",
    "class_labels",
    "digits_data",
    "digits_problem",
    "make_problem",
    "softmax",
    "split_sizes",
    "synthetic_problem",
]
