r"""Optimizers of the training harness: GD, mini-batch SGD and Adam with two-track decoding.

Two-track decoding (Adam, docs/math.md section 7): the first moment uses the
decoded gradient :math:`\hat g`; the second moment uses
:math:`\hat g' = \sum_i a'_i Q(x_i)` with :math:`a' = c\,a` and the shrinkage
:math:`c` of :func:`second_moment_shrinkage`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._validate import InputError, choice, positive_int, real
from ..design import DEFAULT_QUANTIZATION
from ..quantization import error_factors, resolve_quantization

OPTIMIZERS = ("gd", "sgd", "adam")
SCHEDULES = ("constant", "sqrt", "inverse")


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
    """Adam; with `two_track` the second moment uses the shrunken decoder (docs/math.md, 7).

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: section V-E and Proposition 2 (the two-track
       decoder of the second moment); docs/math.md, section 7.
    """
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


def make_step(optimizer: Optimizer, dim: int, shrink: float = 1.0):
    """The update rule of one run: ``step(w, estimate, t) -> w_next`` (Adam keeps its moments).

    GD and SGD: ``w - lr_t * estimate``. Adam: the moments of the decoded gradient,
    the second one of ``shrink * estimate`` (two-track decoding, section 7), with
    the usual bias corrections.
    """
    if optimizer.method != "adam":
        return lambda w, estimate, t: w - optimizer.step_size(t) * estimate
    beta1, beta2 = optimizer.beta1, optimizer.beta2
    moments = {"m": np.zeros(dim), "v": np.zeros(dim)}

    def adam_step(w, estimate, t):
        m = moments["m"] = beta1 * moments["m"] + (1 - beta1) * estimate
        v = moments["v"] = beta2 * moments["v"] + (1 - beta2) * np.square(shrink * estimate)
        m_hat = m / (1 - beta1 ** (t + 1))
        v_hat = v / (1 - beta2 ** (t + 1))
        return w - optimizer.step_size(t) * m_hat / (np.sqrt(v_hat) + optimizer.eps)

    return adam_step


def second_moment_shrinkage(scheme, lam: float = 1.0, *, dim: int | None) -> float:
    r"""The factor c of the two-track decoder :math:`a' = c\,a` (docs/math.md, section 7).

    For a scheme with a fixed decoder ``a`` and the stochastic quantizer, the
    objective of section 7 restricted to :math:`a' = c\,a`,
    :math:`\lambda (c E - K)^2 + c^2 V` with
    :math:`E = \sum_i (1 - p_i) a_i s_i`, :math:`V = \sum_i a_i^2 s_i^2 (1 - p_i)(p_i + \delta_i)`,
    :math:`s_i = \sum_j b_{ij}` and :math:`\delta_i` from the house's default quantization
    model (:data:`gcdesign.design.DEFAULT_QUANTIZATION`) at the scheme's own budget,
    dimension `dim` and bucket size, gives
    :math:`c = \lambda K E / (\lambda E^2 + V)`. For a :class:`~gcdesign.Design`
    built with that default model and no idle worker, (U) gives :math:`E = K` and
    :math:`V = K^2 / S`, so this is the paper's closed form

    .. math::  c = \frac{\lambda S}{1 + \lambda S}, \qquad S = \sum_i u_i = K^2 / \text{bound}.

    Arrival-dependent decoders, the sign quantizer and unquantized schemes get
    ``c = 1`` (two-track off), as do :math:`\lambda = \infty` and an unknown
    dimension (``dim=None``: the quantization error cannot be modelled).

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: Proposition 2 (the shrunken decoder of the
       second moment); docs/math.md, section 7.
    """
    lam = float(lam)
    if not lam > 0:
        raise InputError(f"`lam` must be a number > 0 (or math.inf), got {lam!r}.")
    from ..schemes import check_scheme

    check_scheme(scheme)
    if dim is None:
        return 1.0
    return shrinkage_factor(scheme, lam, positive_int("dim", dim))


def shrinkage_factor(scheme, lam: float, dim: int) -> float:
    """:func:`second_moment_shrinkage` on checked inputs (the round loop's call)."""
    if math.isinf(lam) or scheme.decoding is None or scheme.quantizer != "stochastic":
        return 1.0
    bits = np.asarray(scheme.bits)
    p = np.asarray(scheme.straggler_probs, dtype=np.float64)
    active = bits > 0
    beta = scheme.bucket_size
    model = resolve_quantization(
        DEFAULT_QUANTIZATION, p[active], float(bits[active].sum()), dim, bucket_size=beta
    )
    delta = np.where(active, error_factors(bits, model, dim, beta), 0.0)  # idle: no message, no error
    row_sums = np.asarray(sp.csr_array(scheme.encoding).sum(axis=1)).ravel()
    a = np.asarray(scheme.decoding, dtype=np.float64)
    K = scheme.encoding.shape[1]
    E = float(np.sum((1.0 - p) * a * row_sums))
    V = float(np.sum(a**2 * row_sums**2 * (1.0 - p) * (p + delta)))
    if E <= 0 or lam * E * E + V <= 0:
        return 1.0
    return lam * K * E / (lam * E * E + V)


__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Optimizer",
    "adam",
    "gd",
    "make_step",
    "second_moment_shrinkage",
    "sgd",
    "shrinkage_factor",
]
