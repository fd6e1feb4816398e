r"""How good is a code for given gradients: the exact expected error (docs/evaluation.md).

A *scheme* (anything :func:`gcdesign.schemes.check_scheme` accepts: a
:class:`~gcdesign.Design`, a :class:`~gcdesign.schemes.Scheme`, ...)
sends ``Q_{b_i}(x_i)``, ``x_i = sum_j b_ij g_j``, and the master forms
``ghat = sum_i a_i(I) I_i Q(x_i)`` where ``I_i ~ Bernoulli(1 - p_i)`` are
independent arrivals and the decoder ``a(I)`` may depend on who arrived.

**Exact error.** Quantization is independent across workers and unbiased
given the arrivals, so with ``m(I) = sum_i a_i(I) I_i x_i``

.. math::

    E\|\hat g - g\|^2 = E_I \|m(I) - g\|^2 + \sum_i E[a_i(I)^2 I_i] \, V_i,
    \qquad V_i = E\|Q(x_i) - x_i\|^2 \text{ (exact, MATH 2)}.

Write ``w_i = a_i(I) I_i`` (the round's effective weights), ``mu = E w`` and
``C = Cov(w)``. Then ``E_I ||m(I) - g||^2 = ||mu^T X - g||^2 + tr(C X X^T)``:

* ``bias_sq = ||sum_i mu_i x_i - g||^2`` (zero iff (U) holds for these gradients);
* ``straggler_variance = sum_{i,j} C_ij <x_i, x_j>``;
* ``quantization_variance = sum_i (mu_i^2 + C_ii) V_i``.

For a fixed decoder ``mu_i = (1 - p_i) a_i`` and ``C = diag(a_i^2 p_i (1 - p_i))``
(this is MATH 3 plus the bias term). For an arrival-dependent decoder ``mu``
and ``C`` are computed exactly by enumerating the arrival patterns. When the
decoder is *local* (its weights on a connected component of the
worker-partition graph depend only on the arrivals in that component), the
arrivals of different components are independent, ``C`` is block diagonal and
the enumeration runs component by component (``2^{n_c}`` patterns each, only
over workers with ``0 < p_i < 1``). Beyond :data:`MAX_ENUMERATION` random
workers in one component the exact value is out of reach and
:func:`expected_error` raises :class:`EvaluationError` (use
:func:`gcdesign.montecarlo.monte_carlo_error`).

The quantizer variances ``V_i`` are exact for the scheme's quantizer and bucket
size (:func:`gcdesign.quantization.row_variances`, MATH 2 and 2c). The Monte-Carlo
estimator that these values are tested against lives in :mod:`gcdesign.montecarlo`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ._validate import InputError, generator, positive_int, real
from .quantization import delta_raw, row_variances
from .structure import UNBIASED_TOL, error_bound

MAX_ENUMERATION = 16  # random workers per component enumerated exactly (2^16 decoder calls)


class EvaluationError(InputError):
    """The requested exact evaluation is not possible (too many arrival patterns)."""


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class ErrorResult:
    r"""Exact expected squared error of a scheme for given gradients.

    Attributes
    ----------
    scheme : str
    error : float
        :math:`E\|\hat g - g\|^2`.
    relative_error : float
        ``error / ||g||^2``.
    bias_sq : float
        :math:`\|E\hat g - g\|^2`.
    straggler_variance : float
        Variance due to random arrivals (and the decoder's response to them).
    quantization_variance : float
        Variance due to quantization, with the exact quantizer variance.
    bound : float or None
        Lemma 1 with the honest worst-case quantizer bound
        :math:`G^2 \sum_i (1 - p_i)(p_i + \delta_{raw}(b_i; \beta)) W_i^2`, ``G = max_j ||g_j||``
        (``delta_raw(b; beta) = min(beta, d) / (4 s^2)``, MATH 2c).
        It bounds ``straggler_variance + quantization_variance`` (hence
        ``error`` when the scheme is unbiased). None for arrival-dependent
        decoders or negative weights, where Lemma 1 does not apply.
    relative_bound : float or None
    grad_norm_sq : float
        ``||g||^2``.
    max_partition_norm : float
        ``G``.
    unbiased : bool
        Whether (U) ``sum_i E[a_i I_i] b_ij = 1`` holds for every partition (to 1e-9).
    method : str
        ``"closed-form"`` (fixed decoder) or ``"enumeration"``.
    patterns : int
        Decoder evaluations used by the enumeration (0 for closed form).
    message : str
        One line: how the error was computed and whether (U) holds.
    """

    scheme: str
    error: float
    relative_error: float
    bias_sq: float
    straggler_variance: float
    quantization_variance: float
    bound: float | None
    relative_bound: float | None
    grad_norm_sq: float
    max_partition_norm: float
    unbiased: bool
    method: str
    patterns: int
    message: str


# ---------------------------------------------------------------- inputs
def synthetic_gradients(
    partitions: int, dim: int, *, rng=None, norm_bound: float = 1.0, correlation: float = 0.5
) -> np.ndarray:
    r"""Random partition gradients ``g_j`` (K x d) with ``||g_j|| <= norm_bound``.

    ``g_j = r_j v_j / ||v_j||`` with ``v_j = sqrt(c) m + sqrt(1 - c) z_j``
    (``m``, ``z_j`` standard normal directions shared / per partition, ``c`` =
    `correlation`) and norms ``r_j ~ U(G/2, G)``, so partition gradients point
    roughly the same way, as real ones do.
    """
    k = positive_int("partitions", partitions)
    d = positive_int("dim", dim)
    norm_bound = real("norm_bound", norm_bound, low=0, low_open=True)
    correlation = float(correlation)
    if not 0.0 <= correlation <= 1.0:
        raise InputError(f"`correlation` must lie in [0, 1], got {correlation!r}.")
    rng = generator(rng)
    common = rng.standard_normal(d)
    v = math.sqrt(correlation) * common + math.sqrt(1.0 - correlation) * rng.standard_normal((k, d))
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    radii = rng.uniform(0.5 * norm_bound, norm_bound, size=(k, 1))
    return v / norms * radii


def evaluation_inputs(scheme, gradients) -> np.ndarray:
    """Check `scheme` (:func:`~gcdesign.schemes.check_scheme`) and `gradients`; return them as float64.

    The one entry check of :func:`expected_error` and
    :func:`~gcdesign.montecarlo.monte_carlo_error`: `gradients` must be a finite
    (K, d) array, one row per partition of the scheme.
    """
    from .schemes import check_scheme

    check_scheme(scheme)
    try:
        grads = np.asarray(gradients, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("`gradients` must be a two-dimensional array of finite numbers (K x d).") from None
    k = scheme.encoding.shape[1]
    if grads.ndim != 2 or grads.shape[0] != k or grads.shape[1] == 0:
        raise InputError(
            f"`gradients` must have shape (K, d) = ({k}, d) with d >= 1 (one row per partition), "
            f"got {grads.shape}."
        )
    if not np.all(np.isfinite(grads)):
        raise InputError("`gradients` must be finite.")
    return grads


def fixed_decoding(scheme) -> np.ndarray | None:
    """The fixed decoding vector as float64, or None for an arrival-dependent decoder."""
    return None if scheme.decoding is None else np.asarray(scheme.decoding, dtype=np.float64)


def arrival_probs(scheme) -> np.ndarray:
    """``P(worker i's message arrives)``: ``1 - p_i``, and 0 for idle workers (0 bits)."""
    q = 1.0 - np.asarray(scheme.straggler_probs, dtype=np.float64)
    return np.where(np.asarray(scheme.bits) > 0, q, 0.0)


def worker_messages(scheme, gradients) -> np.ndarray:
    """``X = B G``: the unquantized message ``x_i`` of every worker (N x d)."""
    return np.asarray(sp.csr_array(scheme.encoding) @ gradients)


# ---------------------------------------------------------------- decoder moments
@dataclass(frozen=True)
class DecoderMoments:
    """Mean and covariance of the round's effective weights ``w_i = a_i(I) I_i``.

    The covariance is ``diag(variance)`` plus the blocks: ``blocks`` lists
    ``(workers, covariance)`` pairs of independent components. ``patterns``
    counts decoder calls.
    """

    mean: np.ndarray
    variance: np.ndarray
    blocks: tuple
    patterns: int
    method: str

    def second_moment_diag(self) -> np.ndarray:
        out = self.mean**2 + self.variance
        for idx, cov in self.blocks:
            out[idx] += np.diag(cov)
        return out


def decoder_moments(scheme, *, max_enumeration: int = MAX_ENUMERATION) -> DecoderMoments:
    """Exact mean and covariance of the effective decoder weights over the arrival patterns.

    Raises
    ------
    EvaluationError
        When a component has more than `max_enumeration` workers with ``0 < p < 1``.
    """
    from .schemes import check_scheme

    check_scheme(scheme)
    max_enumeration = positive_int("max_enumeration", max_enumeration, minimum=0)
    return _decoder_moments(scheme, max_enumeration)


def _decoder_moments(scheme, max_enumeration: int) -> DecoderMoments:
    q = arrival_probs(scheme)
    n = q.size
    fixed = fixed_decoding(scheme)
    if fixed is not None:
        a = np.where(q > 0, fixed, 0.0)
        return DecoderMoments(
            mean=a * q, variance=a**2 * q * (1.0 - q), blocks=(), patterns=0, method="closed-form"
        )
    if scheme.local_decoder:
        labels = _worker_components(scheme.encoding)
    else:
        labels = np.zeros(n, dtype=np.int64)
    random = (q > 0) & (q < 1)
    # the arrivals outside the component being enumerated (irrelevant to a local decoder)
    base = q > 0
    mean = np.zeros(n)
    blocks = []
    patterns = 0
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        free = members[random[members]]
        if free.size > max_enumeration:
            what = "a connected component" if scheme.local_decoder else "the scheme"
            raise EvaluationError(
                f"exact evaluation of scheme {scheme.name!r} needs 2^{free.size} arrival "
                f"patterns ({what} has {free.size} workers with 0 < p < 1; the limit is "
                f"{max_enumeration}). Use monte_carlo_error instead."
            )
        states = ((np.arange(2**free.size)[:, None] >> np.arange(free.size)) & 1).astype(bool)
        probs = np.prod(np.where(states, q[free], 1.0 - q[free]), axis=1)
        weights = np.empty((states.shape[0], members.size))
        mask = base.copy()
        for row, state in enumerate(states):
            mask[free] = state
            weights[row] = np.asarray(scheme.decode_weights(mask), dtype=np.float64)[members]
        patterns += states.shape[0]
        mu = probs @ weights
        centered = weights - mu
        cov = centered.T @ (probs[:, None] * centered)
        mean[members] = mu
        if np.any(cov != 0):
            blocks.append((members, cov))
    return DecoderMoments(
        mean=mean, variance=np.zeros(n), blocks=tuple(blocks), patterns=patterns, method="enumeration"
    )


def _worker_components(encoding) -> np.ndarray:
    """Component label of every worker in the worker-partition graph."""
    enc = sp.csr_array(encoding)
    pattern = sp.csr_array((np.ones(enc.nnz), enc.indices, enc.indptr), shape=enc.shape)
    _, labels = connected_components(sp.csr_array(pattern @ pattern.T), directed=False)
    return labels


# ---------------------------------------------------------------- exact error
def expected_error(scheme, gradients, *, max_enumeration: int = MAX_ENUMERATION) -> ErrorResult:
    r"""Exact :math:`E\|\hat g - g\|^2` for the partition gradients `gradients` (K x d).

    Parameters
    ----------
    scheme : Design or Scheme
    gradients : array (K, d)
        ``g_j``, one row per partition; ``g = sum_j g_j``.
    max_enumeration : int
        Largest number of random workers (``0 < p < 1``) per enumerated
        component, for arrival-dependent decoders.

    Returns
    -------
    ErrorResult

    Raises
    ------
    EvaluationError
        An arrival-dependent decoder whose exact expectation would need more
        than ``2^max_enumeration`` patterns per component.

    Examples
    --------
    >>> from gcdesign import design, load_example
    >>> d = design(load_example("toy-n8"), bits_per_worker=4)
    >>> g = synthetic_gradients(d.partitions, 100, rng=0)
    >>> r = expected_error(d, g)
    >>> r.unbiased, r.bias_sq < 1e-20, r.error <= r.bound
    (True, True, True)
    """
    grads = evaluation_inputs(scheme, gradients)
    max_enumeration = positive_int("max_enumeration", max_enumeration, minimum=0)
    moments = _decoder_moments(scheme, max_enumeration)
    messages = worker_messages(scheme, grads)
    target = grads.sum(axis=0)
    bits = np.asarray(scheme.bits, dtype=np.int64)
    quantizer = scheme.quantizer
    bias_vec = moments.mean @ messages - target
    bias_sq = float(bias_vec @ bias_vec)
    straggler = float(moments.variance @ np.einsum("ij,ij->i", messages, messages))
    for idx, cov in moments.blocks:
        sub = messages[idx]
        straggler += float(np.sum(cov * (sub @ sub.T)))
    variances = row_variances(messages, bits, quantizer, scheme.bucket_size)
    quant = float(moments.second_moment_diag() @ variances)
    error = bias_sq + straggler + quant
    grad_norm_sq = float(target @ target)
    big_g = float(np.max(np.linalg.norm(grads, axis=1)))
    column = moments.mean @ sp.csr_array(scheme.encoding)
    unbiased = bool(np.max(np.abs(column - 1.0)) <= UNBIASED_TOL)
    bound = _lemma1_bound(scheme, big_g, grads.shape[1], quantizer)
    rel = (lambda v: v / grad_norm_sq) if grad_norm_sq > 0 else (lambda v: math.inf)
    return ErrorResult(
        scheme=scheme.name,
        error=error,
        relative_error=rel(error),
        bias_sq=bias_sq,
        straggler_variance=straggler,
        quantization_variance=quant,
        bound=bound,
        relative_bound=None if bound is None else rel(bound),
        grad_norm_sq=grad_norm_sq,
        max_partition_norm=big_g,
        unbiased=unbiased,
        method=moments.method,
        patterns=moments.patterns,
        message=(
            "closed form (fixed decoder)"
            if moments.method == "closed-form"
            else f"enumeration of the arrival patterns ({moments.patterns} decoder calls)"
        )
        + ("; unbiased: (U) holds" if unbiased else "; biased: (U) fails"),
    )


def _lemma1_bound(scheme, big_g: float, dim: int, quantizer: str) -> float | None:
    """Lemma 1: ``G^2 sum_i (1 - p_i)(p_i + delta_i) W_i^2`` (fixed nonnegative decoders only).

    ``delta_i = delta_raw(b_i; beta) = min(beta, d) / (4 s^2)``: the honest per-bucket bound (MATH 2c).
    """
    a = fixed_decoding(scheme)
    enc = sp.csr_array(scheme.encoding)
    if a is None or np.any(a < 0) or np.any(enc.data < 0):
        return None
    bits = np.asarray(scheme.bits, dtype=np.int64)
    row_sum = a * np.asarray(enc.sum(axis=1)).ravel()
    if quantizer == "stochastic":
        delta = np.where(bits >= 2, delta_raw(bits, dim, scheme.bucket_size), 0.0)
    elif quantizer == "sign":
        delta = np.full(bits.size, dim - 1.0)
    elif quantizer == "none":
        delta = np.zeros(bits.size)
    else:  # a quantizer without a stated worst-case bound: none to report
        return None
    # an idle worker (0 bits) counts as always late: its term vanishes
    return big_g**2 * error_bound(1.0 - arrival_probs(scheme), delta, row_sum)


__all__ = [
    "DecoderMoments",
    "ErrorResult",
    "EvaluationError",
    "arrival_probs",
    "decoder_moments",
    "evaluation_inputs",
    "expected_error",
    "fixed_decoding",
    "synthetic_gradients",
    "worker_messages",
]
