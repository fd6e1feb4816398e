r"""Training harness: GD, SGD and Adam on coded, quantized, straggling gradients.

The harness makes the paper's claims checkable on small convex problems
(docs/math.md, sections 3, 7 and 8; docs/guide.md shows a complete run).

Setting
-------
A :class:`Problem` holds a data set split into K partitions; the gradient of
partition j is

.. math::

    g_j(w) = \frac{1}{n} \sum_{s \in P_j} \nabla \ell_s(w) + \frac{\rho}{K} w,

so that :math:`\sum_j g_j = \nabla f(w)` for the regularized mean loss
:math:`f(w) = \frac{1}{n}\sum_s \ell_s(w) + \frac{\rho}{2}\|w\|^2`.
Each round of :func:`train`:

1. every worker's arrival is drawn: Bernoulli with the scheme's straggler
   probabilities, or round times :math:`T_i = t_0 + \mathrm{Exp}(\mu_i)`
   against a deadline (:class:`RoundTimes`);
2. every arrived worker i computes :math:`x_i = \sum_j b_{ij} g_j` and sends
   :math:`Q_{b_i}(x_i)` (stochastic b-bit quantizer, the sign quantizer for
   1 bit, no quantization for ``quantizer == "none"``); all arrived workers are
   quantized at once in numpy (:func:`quantize_rows`);
3. the master decodes :math:`\hat g = \sum_i a_i Q(x_i)` with
   ``a = scheme.decode_weights(arrived)`` and takes an optimizer step.

Two-track decoding (Adam, docs/math.md section 7): the first moment uses
:math:`\hat g`; the second moment uses :math:`\hat g' = \sum_i a'_i Q(x_i)`
with :math:`a' = c\,a` and the shrinkage :math:`c` of
:func:`second_moment_shrinkage` (:math:`c = \lambda S / (1 + \lambda S)` for a
:class:`~gcdesign.Design`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._validate import InputError, choice, positive_int, real, real_array
from .profile import ClusterProfile
from .quantization import error_factors, payload_bits, quantize_rows, resolve_kappa

PROBLEM_KINDS = ("least-squares", "logistic", "softmax")
OPTIMIZERS = ("gd", "sgd", "adam")
SCHEDULES = ("constant", "sqrt", "inverse")
#: The schemes the harness knows by name, in plotting order. All but
#: ``"centralized"`` and ``"joint"`` come from :func:`gcdesign.schemes.make_scheme`.
TRAINING_SCHEMES = (
    "centralized",
    "joint",
    "osgc",
    "sgc",
    "sgc-1bit",
    "bgc",
    "ehd",
    "od",
    "is-sgd",
    "exact-cyclic",
)


# ====================================================================== problems
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
            prob = _softmax(z)
            inner = prob * xv - prob * np.sum(prob * xv, axis=1, keepdims=True)
        return (X.T @ inner).ravel() / self.n_samples + self.reg * v

    def __repr__(self) -> str:
        return (
            f"Problem({self.name!r}, kind={self.kind!r}, n={self.n_samples}, dim={self.dim}, "
            f"K={self.partitions}, reg={self.reg:g})"
        )


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _residual(kind: str, z, targets):
    """d loss / d z per sample: z - y, sigmoid(z) - y, softmax(z) - onehot(y)."""
    if kind == "least-squares":
        return z - targets
    if kind == "logistic":
        return _sigmoid(z) - targets
    return _softmax(z) - targets


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
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or not np.all(np.isfinite(X)):
        raise InputError("`features` must be a finite 2-D array (samples x features) with at least one row.")
    n = X.shape[0]
    K = positive_int("partitions", partitions)
    if K > n:
        raise InputError(f"`partitions` = {K} exceeds the number of samples {n}.")
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
        if not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0:
            raise InputError("`targets` of a softmax problem must be class indices 0, 1, ...")
        y = y.astype(np.int64)
        n_classes = int(y.max()) + 1
        if n_classes < 2:
            raise InputError("a softmax problem needs at least two classes.")
    order = np.random.default_rng(rng).permutation(n)
    X, y = X[order], y[order]
    sizes = np.array([len(c) for c in np.array_split(np.arange(n), K)], dtype=np.int64)
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
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the digits data set needs scikit-learn: pip install 'gcdesign[studies]'") from None
    data = load_digits()
    X = np.hstack([data.data / 16.0, np.ones((data.data.shape[0], 1))])
    digit = data.target
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


# ====================================================================== schemes
@dataclass(frozen=True, eq=False)
class Centralized:
    """The ideal reference: the exact gradient every round, no stragglers, no quantization.

    It still carries the profile so the simulated clock can charge it the
    wait-for-everyone round time (see :class:`RoundTimes`).
    """

    profile: ClusterProfile
    name = "centralized"
    quantizer = "none"

    @property
    def straggler_probs(self) -> np.ndarray:
        return np.zeros(self.profile.n_workers)

    @property
    def n_workers(self) -> int:
        return self.profile.n_workers

    @property
    def partitions(self) -> int:
        return self.profile.partitions


def training_scheme(
    name: str, profile: ClusterProfile, budget: int, *, rng=None, replication: int = 2, **options
):
    """A scheme for :func:`train` by name (see :data:`TRAINING_SCHEMES`).

    ``"centralized"`` is :class:`Centralized`; ``"joint"`` is
    :func:`gcdesign.design` with its default, the paper's ``"heuristic"``
    allocator, unless options say otherwise (``allocator``, ``kappa``, ... are
    passed on); every other name goes to :func:`gcdesign.schemes.make_scheme`.
    """
    if name == "centralized":
        return Centralized(profile)
    if name == "joint":
        from .design import design

        return design(profile, budget, **options)
    from .schemes import make_scheme

    return make_scheme(name, profile, budget, rng=rng, replication=replication, **options)


def available_schemes(names=TRAINING_SCHEMES) -> tuple[list[str], list[str]]:
    """Split `names` into those the harness can build now and those not registered (yet)."""
    from . import schemes as _schemes  # importing it registers the baselines and exact codes

    ok, missing = [], []
    for name in names:
        (ok if name in ("centralized", "joint") or name in _schemes.SCHEMES else missing).append(name)
    return ok, missing


def second_moment_shrinkage(scheme, lam: float = 1.0, *, dim: int | None = None) -> float:
    r"""The factor c of the two-track decoder :math:`a' = c\,a` (docs/math.md, section 7).

    For a :class:`~gcdesign.Design` (exactly the paper's closed form)

    .. math::  c = \frac{\lambda S}{1 + \lambda S}, \qquad S = \sum_i u_i = K^2 / \text{bound}.

    For another scheme with a fixed decoder ``a`` and the stochastic
    quantizer, the same objective restricted to :math:`a' = c\,a`,
    :math:`\lambda (c E - K)^2 + c^2 V` with
    :math:`E = \sum_i (1 - p_i) a_i s_i`, :math:`V = \sum_i a_i^2 s_i^2 (1 - p_i)(p_i + \delta_i)`,
    :math:`s_i = \sum_j b_{ij}` and :math:`\delta_i` from the balanced kappa
    policy at the scheme's own budget, gives :math:`c = \lambda K E / (\lambda E^2 + V)`
    (equal to the closed form for a design). Arrival-dependent decoders, the
    sign quantizer and unquantized schemes get ``c = 1`` (two-track off).
    """
    lam = float(lam)
    if not lam > 0:
        raise InputError(f"`lam` must be a number > 0 (or math.inf), got {lam!r}.")
    if math.isinf(lam):
        return 1.0
    from .design import Design

    if isinstance(scheme, Design):
        total_utility = scheme.partitions**2 / scheme.bound
        return lam * total_utility / (1.0 + lam * total_utility)
    decoding = getattr(scheme, "decoding", None)
    if decoding is None or getattr(scheme, "quantizer", "none") != "stochastic":
        return 1.0
    bits = np.asarray(scheme.bits)
    if np.any((bits > 0) & (bits < 2)) or dim is None:
        return 1.0
    p = np.asarray(scheme.straggler_probs, dtype=np.float64)
    active = bits > 0
    kappa = resolve_kappa("balanced", p[active], float(bits[active].sum()), dim)
    delta = np.where(active, error_factors(bits, kappa, dim), 0.0)  # idle: no message, no error
    row_sums = np.asarray(sp.csr_array(scheme.encoding).sum(axis=1)).ravel()
    a = np.asarray(decoding, dtype=np.float64)
    K = scheme.encoding.shape[1]
    E = float(np.sum((1.0 - p) * a * row_sums))
    V = float(np.sum(a**2 * row_sums**2 * (1.0 - p) * (p + delta)))
    if E <= 0 or lam * E * E + V <= 0:
        return 1.0
    return lam * K * E / (lam * E * E + V)


# ====================================================================== stragglers
@dataclass(frozen=True)
class RoundTimes:
    r"""Round times :math:`T_i = t_0 + \mathrm{Exp}(\mu_i)` against a deadline :math:`\tau`.

    Worker i arrives iff :math:`T_i \le \tau`, so :math:`p_i = e^{-\mu_i(\tau - t_0)}`
    (docs/math.md, section 8). A coded round lasts :math:`\min(\tau, \max_i T_i)`;
    the centralized reference waits for everyone, :math:`\max_i T_i`.
    Without a :class:`RoundTimes`, :func:`train` draws Bernoulli arrivals from the
    scheme's probabilities and counts every round as 1 time unit.
    """

    rates: tuple
    deadline: float
    shift: float = 0.0

    def __post_init__(self):
        rates = real_array("rates", self.rates, low=0, low_open=True, min_size=1)
        object.__setattr__(self, "rates", tuple(rates.tolist()))
        object.__setattr__(self, "deadline", real("deadline", self.deadline, low=0, low_open=True))
        object.__setattr__(self, "shift", real("shift", self.shift, low=0))

    @property
    def straggler_probs(self) -> np.ndarray:
        slack = self.deadline - self.shift
        rates = np.asarray(self.rates)
        return np.exp(-rates * slack) if slack > 0 else np.ones_like(rates)

    def profile(self, *, dim: int, partitions: int | None = None) -> ClusterProfile:
        """The cluster profile these round times imply (to design a code for them)."""
        model = "shifted-exponential" if self.shift > 0 else "exponential"
        return ClusterProfile.from_latency_model(
            model, rates=self.rates, deadline=self.deadline, shift=self.shift, dim=dim, partitions=partitions
        )


# ====================================================================== optimizers
@dataclass(frozen=True)
class Optimizer:
    r"""Optimizer settings (use :func:`gd`, :func:`sgd` or :func:`adam`).

    Step size at round t (0-based): ``lr`` (``"constant"``),
    ``lr / sqrt(1 + t / decay_scale)`` (``"sqrt"``) or ``lr / (1 + t / decay_scale)``
    (``"inverse"``). ``batch_size`` is the mini-batch per partition (None: the
    full partition). Adam: ``beta1, beta2, eps``; ``two_track`` turns on the
    second-moment decoder with parameter ``lam`` (:math:`\lambda`).
    """

    method: str
    lr: float
    schedule: str = "constant"
    decay_scale: float = 10.0
    batch_size: int | None = None
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    two_track: bool = False
    lam: float = 1.0

    def __post_init__(self):
        choice("optimizer", self.method, OPTIMIZERS)
        choice("schedule", self.schedule, SCHEDULES)
        real("lr", self.lr, low=0, low_open=True)
        real("decay_scale", self.decay_scale, low=0, low_open=True)
        if self.batch_size is not None:
            positive_int("batch_size", self.batch_size)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise InputError("`beta1` and `beta2` must lie in [0, 1).")
        if not self.lam > 0:
            raise InputError(f"`lam` must be > 0, got {self.lam!r}.")

    def step_size(self, t: int) -> float:
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "sqrt":
            return self.lr / math.sqrt(1.0 + t / self.decay_scale)
        return self.lr / (1.0 + t / self.decay_scale)

    @property
    def label(self) -> str:
        extra = ""
        if self.method == "adam" and self.two_track:
            extra = f", two-track lambda={self.lam:g}"
        batch = "" if self.batch_size is None else f", batch {self.batch_size}"
        return f"{self.method} lr={self.lr:g} {self.schedule}{batch}{extra}"


def gd(lr: float, *, schedule: str = "constant", decay_scale: float = 10.0) -> Optimizer:
    """Gradient descent on the decoded full-partition gradients."""
    return Optimizer("gd", lr, schedule=schedule, decay_scale=decay_scale)


def sgd(
    lr: float, *, batch_size: int = 8, schedule: str = "constant", decay_scale: float = 10.0
) -> Optimizer:
    """Mini-batch SGD: every partition gradient from `batch_size` samples."""
    return Optimizer("sgd", lr, schedule=schedule, decay_scale=decay_scale, batch_size=batch_size)


def adam(
    lr: float,
    *,
    two_track: bool = True,
    lam: float = 1.0,
    batch_size: int | None = None,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    schedule: str = "constant",
    decay_scale: float = 10.0,
) -> Optimizer:
    """Adam; with `two_track` the second moment uses the shrunken decoder (docs/math.md, 7)."""
    return Optimizer(
        "adam",
        lr,
        schedule=schedule,
        decay_scale=decay_scale,
        batch_size=batch_size,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        two_track=two_track,
        lam=lam,
    )


# ====================================================================== history
@dataclass(frozen=True, eq=False)
class History:
    """Per-round record of one training run; index 0 is the initial point.

    Attributes
    ----------
    scheme, optimizer, problem : str
    loss : ndarray (steps + 1,)
        :math:`f(w_t)`.
    grad_norm : ndarray (steps + 1,)
        :math:`\\|\\nabla f(w_t)\\|_2` (the true gradient).
    distance : ndarray (steps + 1,) or None
        :math:`\\|w_t - w^*\\|_2` when the problem knows its optimum.
    bits : ndarray of int (steps + 1,)
        Bits delivered to the master in round t (the messages that arrived; 0 at t = 0).
    wall_clock : ndarray (steps + 1,)
        Cumulative simulated time (see :class:`RoundTimes`).
    arrived : ndarray of int (steps + 1,)
        Workers that arrived in round t.
    optimal_loss : float or None
    shrinkage : float
        The two-track factor c of the run (1: two-track off).
    """

    scheme: str
    optimizer: str
    problem: str
    loss: np.ndarray
    grad_norm: np.ndarray
    distance: np.ndarray | None
    bits: np.ndarray
    wall_clock: np.ndarray
    arrived: np.ndarray
    optimal_loss: float | None = None
    shrinkage: float = 1.0

    @property
    def steps(self) -> int:
        return int(self.loss.size - 1)

    @property
    def total_bits(self) -> np.ndarray:
        """Cumulative bits delivered up to each round."""
        return np.cumsum(self.bits)

    @property
    def suboptimality(self) -> np.ndarray | None:
        """``loss - optimal_loss`` (None if the optimum is unknown)."""
        return None if self.optimal_loss is None else self.loss - self.optimal_loss

    def as_rows(self) -> list[dict]:
        """One dict per round (for CSV files)."""
        total = self.total_bits
        rows = []
        for t in range(self.loss.size):
            rows.append(
                {
                    "round": t,
                    "loss": float(self.loss[t]),
                    "grad_norm": float(self.grad_norm[t]),
                    "distance": None if self.distance is None else float(self.distance[t]),
                    "bits": int(self.bits[t]),
                    "total_bits": int(total[t]),
                    "wall_clock": float(self.wall_clock[t]),
                    "arrived": int(self.arrived[t]),
                }
            )
        return rows


# ====================================================================== the loop
class _Rounds:
    """Draws arrivals, encodes, quantizes and decodes: one gradient estimate per call."""

    def __init__(self, problem: Problem, scheme, stragglers: RoundTimes | None):
        self.problem = problem
        self.scheme = scheme
        self.centralized = isinstance(scheme, Centralized)
        n_workers = scheme.n_workers if hasattr(scheme, "n_workers") else scheme.encoding.shape[0]
        self.n_workers = int(n_workers)
        if stragglers is not None and len(stragglers.rates) != self.n_workers:
            raise InputError(
                f"`stragglers` has {len(stragglers.rates)} rates but the scheme has {self.n_workers} workers."
            )
        self.stragglers = stragglers
        if self.centralized:
            if scheme.partitions != problem.partitions:
                raise InputError(
                    f"the profile has K = {scheme.partitions} partitions, the problem {problem.partitions}."
                )
            return
        encoding = sp.csr_array(scheme.encoding)
        if encoding.shape[1] != problem.partitions:
            raise InputError(
                f"the scheme {scheme.name!r} encodes K = {encoding.shape[1]} partitions but the problem "
                f"has {problem.partitions}; build the profile with partitions={problem.partitions}."
            )
        small = encoding.shape[0] * encoding.shape[1] <= 4_000_000
        self.encoding = encoding.toarray() if small else encoding
        self.bits = np.asarray(scheme.bits, dtype=np.int64)
        self.quantizer = scheme.quantizer
        row_nnz = np.diff(encoding.indptr)
        self.active = (self.bits > 0) & (row_nnz > 0) if self.quantizer != "none" else row_nnz > 0
        self.payload = payload_bits(self.bits, problem.dim, self.quantizer)
        self.probs = np.asarray(scheme.straggler_probs, dtype=np.float64)

    def arrivals(self, rng) -> tuple[np.ndarray, float]:
        """Arrival mask and the round's simulated duration."""
        if self.stragglers is None:
            if self.centralized:
                return np.ones(self.n_workers, dtype=bool), 1.0
            return rng.random(self.n_workers) >= self.probs, 1.0
        st = self.stragglers
        times = st.shift + rng.exponential(1.0 / np.asarray(st.rates))
        if self.centralized:
            return np.ones(self.n_workers, dtype=bool), float(times.max())
        return times <= st.deadline, float(min(st.deadline, times.max()))

    def estimate(self, w, optimizer_batch, rng) -> tuple[np.ndarray, int, int, float]:
        """One round: (decoded gradient, bits delivered, workers arrived, duration)."""
        arrived, duration = self.arrivals(rng)
        grads = self.problem.partition_gradients(w, batch_size=optimizer_batch, rng=rng)
        if self.centralized:
            return grads.sum(axis=0), 0, self.n_workers, duration
        senders = arrived & self.active
        weights = self.scheme.decode_weights(arrived)
        use = senders & (weights != 0)
        idx = np.flatnonzero(use)
        coded = self.encoding[idx] @ grads
        quantized = quantize_rows(coded, self.bits[idx], quantizer=self.quantizer, rng=rng)
        estimate = weights[idx] @ quantized
        return estimate, int(self.payload[senders].sum()), int(arrived.sum()), duration


def train(
    problem: Problem,
    scheme,
    *,
    steps: int,
    optimizer: Optimizer,
    rng=None,
    stragglers: RoundTimes | None = None,
    x0=None,
) -> History:
    """Run `steps` rounds of `optimizer` on `problem` with gradients coded by `scheme`.

    Parameters
    ----------
    problem : Problem
    scheme : Design, Scheme or Centralized
        Anything with the scheme interface (:mod:`gcdesign.schemes`) whose
        encoding has ``problem.partitions`` columns; see :func:`training_scheme`.
    steps : int
        Number of rounds (optimizer updates).
    optimizer : Optimizer
        From :func:`gd`, :func:`sgd` or :func:`adam`.
    rng : None, int or Generator
        The only source of randomness (arrivals, mini-batches, quantization):
        the same seed gives the same history.
    stragglers : RoundTimes, optional
        Draw round times against a deadline instead of Bernoulli arrivals.
    x0 : array_like, optional
        Initial model (default zeros).

    Returns
    -------
    History

    Examples
    --------
    >>> from gcdesign import ClusterProfile, design
    >>> from gcdesign.training import synthetic_problem, train, gd
    >>> prob = synthetic_problem("least-squares", partitions=4, rng=0)
    >>> code = design(ClusterProfile([0.1, 0.2, 0.3, 0.4], dim=prob.dim), bits_per_worker=6)
    >>> hist = train(prob, code, steps=50, optimizer=gd(0.3), rng=1)
    >>> bool(hist.loss[-1] < hist.loss[0])
    True
    """
    if not isinstance(problem, Problem):
        raise InputError("`problem` must be a Problem (see make_problem, digits_problem, synthetic_problem).")
    if not isinstance(optimizer, Optimizer):
        raise InputError("`optimizer` must be an Optimizer (use gd(...), sgd(...) or adam(...)).")
    steps = positive_int("steps", steps)
    rng = np.random.default_rng(rng)
    rounds = _Rounds(problem, scheme, stragglers)
    w = problem.initial_point() if x0 is None else np.array(x0, dtype=np.float64)
    if w.shape != (problem.dim,):
        raise InputError(f"`x0` must have shape ({problem.dim},), got {w.shape}.")
    shrink = 1.0
    if optimizer.method == "adam" and optimizer.two_track and not rounds.centralized:
        shrink = second_moment_shrinkage(scheme, optimizer.lam, dim=problem.dim)
    loss = np.empty(steps + 1)
    grad_norm = np.empty(steps + 1)
    distance = None if problem.optimum is None else np.empty(steps + 1)
    bits = np.zeros(steps + 1, dtype=np.int64)
    clock = np.zeros(steps + 1)
    arrived = np.zeros(steps + 1, dtype=np.int64)

    def record(t: int) -> None:
        loss[t] = problem.loss(w)
        grad_norm[t] = np.linalg.norm(problem.gradient(w))
        if distance is not None:
            distance[t] = np.linalg.norm(w - problem.optimum)

    record(0)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    batch = optimizer.batch_size if optimizer.method != "gd" else None
    for t in range(steps):
        estimate, bits[t + 1], arrived[t + 1], duration = rounds.estimate(w, batch, rng)
        clock[t + 1] = clock[t] + duration
        lr = optimizer.step_size(t)
        if optimizer.method == "adam":
            m = optimizer.beta1 * m + (1 - optimizer.beta1) * estimate
            v = optimizer.beta2 * v + (1 - optimizer.beta2) * np.square(shrink * estimate)
            m_hat = m / (1 - optimizer.beta1 ** (t + 1))
            v_hat = v / (1 - optimizer.beta2 ** (t + 1))
            w = w - lr * m_hat / (np.sqrt(v_hat) + optimizer.eps)
        else:
            w = w - lr * estimate
        record(t + 1)
        if not np.isfinite(loss[t + 1]):  # diverged: keep the record honest and stop computing
            loss[t + 2 :] = np.inf
            grad_norm[t + 2 :] = np.inf
            if distance is not None:
                distance[t + 2 :] = np.inf
            clock[t + 2 :] = clock[t + 1]
            break
    return History(
        scheme=str(getattr(scheme, "name", type(scheme).__name__)),
        optimizer=optimizer.label,
        problem=problem.name,
        loss=loss,
        grad_norm=grad_norm,
        distance=distance,
        bits=bits,
        wall_clock=clock,
        arrived=arrived,
        optimal_loss=problem.optimal_loss,
        shrinkage=shrink,
    )


def gradient_estimates(
    problem: Problem,
    scheme,
    w,
    *,
    rounds: int,
    rng=None,
    stragglers: RoundTimes | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """`rounds` independent decoded gradients at the fixed model `w`: array (rounds, dim).

    Their mean estimates :math:`E[\\hat g]`; for an unbiased scheme it matches
    ``problem.gradient(w)`` within its standard error.
    """
    rounds = positive_int("rounds", rounds)
    rng = np.random.default_rng(rng)
    engine = _Rounds(problem, scheme, stragglers)
    w = np.asarray(w, dtype=np.float64)
    out = np.empty((rounds, problem.dim))
    for r in range(rounds):
        out[r] = engine.estimate(w, batch_size, rng)[0]
    return out


def seeds(rng, count: int) -> list[int]:
    """`count` independent integer seeds drawn from `rng` (for repeated runs)."""
    count = positive_int("count", count)
    rng = np.random.default_rng(rng)  # a Generator is returned as is
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=count)]


__all__ = [
    "Centralized",
    "History",
    "OPTIMIZERS",
    "Optimizer",
    "PROBLEM_KINDS",
    "Problem",
    "RoundTimes",
    "TRAINING_SCHEMES",
    "adam",
    "available_schemes",
    "digits_problem",
    "gd",
    "gradient_estimates",
    "make_problem",
    "second_moment_shrinkage",
    "seeds",
    "sgd",
    "synthetic_problem",
    "train",
    "training_scheme",
]
