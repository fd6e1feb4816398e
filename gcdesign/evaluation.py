r"""How good is a code for given gradients: exact expected error and Monte Carlo (docs/evaluation.md).

A *scheme* (a :class:`~gcdesign.Design` or a :class:`~gcdesign.schemes.Scheme`)
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
:func:`monte_carlo_error`).

**Monte Carlo.** :func:`monte_carlo_error` draws arrivals, decodes, quantizes
coordinate by coordinate in a numba kernel (:mod:`gcdesign._mc_kernels`) and
reports the mean error with its standard error and the empirical bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ._validate import InputError, positive_int, real
from .quantization import delta_raw, levels, row_variances
from .structure import error_bound

MAX_ENUMERATION = 16  # random workers per component enumerated exactly (2^16 decoder calls)
MC_CHUNK = 16  # trials per random stream: fixed, so results do not depend on the thread count
BIAS_GROUPS = 32  # batch means for the bias test (chunk c goes to group c mod BIAS_GROUPS)
BIAS_ALPHA = 1e-3  # level of the bias confidence bound
UNBIASED_TOL = 1e-9


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
        :math:`G^2 \sum_i (1 - p_i)(p_i + \delta_{raw}(b_i)) W_i^2`, ``G = max_j ||g_j||``.
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


@dataclass(frozen=True)
class MonteCarloResult:
    r"""Monte-Carlo estimate of the expected squared error.

    Attributes
    ----------
    scheme : str
    mean : float
        Average of ``||ghat_t - g||^2`` over the trials.
    standard_error : float
        Sample standard deviation / sqrt(trials).
    relative_error, relative_standard_error : float
        The same divided by ``||g||^2``.
    bias : float
        Empirical bias ``||mean_t(ghat_t) - g||``.
    bias_bound : float
        If the scheme is unbiased, ``bias <= bias_bound`` with probability
        about ``1 - 1e-3``. Batch means: the chunks of trials form ``G`` groups
        (``G = min(32, chunks)``) with means ``m_g`` over ``n_g`` trials;
        ``s^2 = sum_g n_g ||m_g - m||^2 / (G - 1)`` estimates
        ``tr Cov(ghat)`` and ``bias_bound = sqrt(q s^2 / T)`` with ``q`` the
        ``1 - 1e-3`` quantile of ``F(1, G - 1)``. This is the exact level when
        the noise of ``ghat`` lies along one direction (the least favourable
        case) and conservative otherwise; it needs no independence between
        coordinates, which straggling breaks (every coordinate moves with the
        same arrivals).
    biased : bool
        ``bias > bias_bound``: the data reject unbiasedness.
    trials : int
    chunk : int
        Trials per random stream.
    grad_norm_sq : float
    errors : ndarray (trials,)
        ``||ghat_t - g||^2`` per trial.
    """

    scheme: str
    mean: float
    standard_error: float
    relative_error: float
    relative_standard_error: float
    bias: float
    bias_bound: float
    biased: bool
    trials: int
    chunk: int
    grad_norm_sq: float
    errors: np.ndarray


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
    rng = np.random.default_rng(rng)
    common = rng.standard_normal(d)
    v = math.sqrt(correlation) * common + math.sqrt(1.0 - correlation) * rng.standard_normal((k, d))
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    radii = rng.uniform(0.5 * norm_bound, norm_bound, size=(k, 1))
    return v / norms * radii


def _evaluation_iv(scheme, gradients) -> np.ndarray:
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


def _quantizer(scheme) -> str:
    return scheme.quantizer


def _fixed_decoding(scheme) -> np.ndarray | None:
    """The fixed decoding vector, or None for an arrival-dependent decoder."""
    return None if scheme.decoding is None else np.asarray(scheme.decoding, dtype=np.float64)


def _arrival_probs(scheme) -> np.ndarray:
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
    q = _arrival_probs(scheme)
    n = q.size
    fixed = _fixed_decoding(scheme)
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
    grads = _evaluation_iv(scheme, gradients)
    max_enumeration = positive_int("max_enumeration", max_enumeration, minimum=0)
    moments = decoder_moments(scheme, max_enumeration=max_enumeration)
    messages = worker_messages(scheme, grads)
    target = grads.sum(axis=0)
    bits = np.asarray(scheme.bits, dtype=np.int64)
    quantizer = _quantizer(scheme)
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
    )


def _lemma1_bound(scheme, big_g: float, dim: int, quantizer: str) -> float | None:
    """Lemma 1: ``G^2 sum_i (1 - p_i)(p_i + delta_i) W_i^2`` (fixed nonnegative decoders only)."""
    a = _fixed_decoding(scheme)
    enc = sp.csr_array(scheme.encoding)
    if a is None or np.any(a < 0) or np.any(enc.data < 0):
        return None
    bits = np.asarray(scheme.bits, dtype=np.int64)
    row_sum = a * np.asarray(enc.sum(axis=1)).ravel()
    if quantizer == "stochastic":
        delta = np.where(bits >= 2, delta_raw(bits, dim), 0.0)
    elif quantizer == "sign":
        delta = np.full(bits.size, dim - 1.0)
    else:
        delta = np.zeros(bits.size)
    # an idle worker (0 bits) counts as always late: its term vanishes
    return big_g**2 * error_bound(1.0 - _arrival_probs(scheme), delta, row_sum)


# ---------------------------------------------------------------- Monte Carlo
def monte_carlo_error(
    scheme,
    gradients,
    *,
    trials: int,
    rng=None,
    workers: int | Callable | None = None,
    reference: bool = False,
) -> MonteCarloResult:
    r"""Monte-Carlo estimate of :math:`E\|\hat g - g\|^2` (numba kernel, parallel over trials).

    Parameters
    ----------
    scheme : Design or Scheme
    gradients : array (K, d)
    trials : int
        Number of simulated rounds.
    rng : None, int or numpy.random.Generator
        Seeds one random stream per chunk of :data:`MC_CHUNK` trials. Same
        seed, same result, whatever the number of threads.
    workers : None, int or map-like callable
        None: numba's default thread count; an int: that many threads (at
        most ``NUMBA_NUM_THREADS``); a map-like callable (``map``,
        ``Pool.map``, ``Client.map``): batches of chunks are mapped over it
        (:func:`simulate_batch` is a module-level function, so it pickles;
        the baseline decoders are picklable classes). Use a ``spawn`` (or
        ``forkserver``) process pool: forking a process whose numba kernels
        already ran on the OpenMP threading layer aborts the child.
    reference : bool
        Use the numpy reference of the kernel instead of numba (slow; tests).

    Returns
    -------
    MonteCarloResult

    Notes
    -----
    Arrivals are drawn first (counter-based uniforms, one stream per chunk),
    then the decoder weights of every round are computed in Python (so
    arrival-dependent decoders such as least squares work), then the kernel
    quantizes coordinate by coordinate and scores each round.
    """
    grads = _evaluation_iv(scheme, gradients)
    trials = positive_int("trials", trials, minimum=2)
    rng = np.random.default_rng(rng)
    n_chunks = -(-trials // MC_CHUNK)
    keys = rng.integers(0, 2**64, size=(n_chunks, 2), dtype=np.uint64, endpoint=False)
    problem = _mc_problem(scheme, grads, reference=bool(reference))
    target = problem.target
    d = target.size
    # Batches of chunks bound the memory of the per-chunk sums (C x d) and of the
    # weights (T x N). Chunk results are reduced one by one in chunk order, so the
    # batching (and the thread count) never changes a bit of the result.
    per_batch = max(1, (1 << 22) // max(d, problem.messages.shape[0]))
    if callable(workers):
        per_batch = min(per_batch, max(1, -(-n_chunks // 8)))
    batches = [(problem, c0, keys[c0 : c0 + per_batch], trials) for c0 in range(0, n_chunks, per_batch)]
    outputs = workers(simulate_batch, batches) if callable(workers) else _run_with_threads(batches, workers)
    errors = []
    groups = min(BIAS_GROUPS, n_chunks)
    group_sums = np.zeros((groups, d))
    chunk = 0
    for batch_errors, chunk_sums in outputs:
        errors.append(batch_errors)
        for row in chunk_sums:
            group_sums[chunk % groups] += row
            chunk += 1
    errors = np.concatenate(errors)
    group_sizes = np.bincount(
        np.arange(n_chunks) % groups, weights=np.diff(np.minimum(np.arange(n_chunks + 1) * MC_CHUNK, trials))
    )
    return _summarize(scheme.name, errors, group_sums, group_sizes, target)


@dataclass(frozen=True)
class _McProblem:
    messages: np.ndarray
    norms: np.ndarray
    levels: np.ndarray
    quantizer: int
    target: np.ndarray
    arrival: np.ndarray
    fixed: np.ndarray | None
    decode: Callable | None
    reference: bool


def _mc_problem(scheme, grads: np.ndarray, *, reference: bool = False) -> _McProblem:
    """Everything the Monte-Carlo rounds of `scheme` need, computed once (`grads` validated)."""
    from ._mc_kernels import QUANTIZER_CODES

    messages = worker_messages(scheme, grads)
    bits = np.asarray(scheme.bits, dtype=np.int64)
    fixed = _fixed_decoding(scheme)
    return _McProblem(
        messages=messages,
        norms=np.linalg.norm(messages, axis=1),
        levels=np.where(bits >= 2, levels(np.maximum(bits, 2)), 1.0).astype(np.float64),
        quantizer=QUANTIZER_CODES[_quantizer(scheme)],
        target=grads.sum(axis=0),
        arrival=_arrival_probs(scheme),
        fixed=fixed,
        decode=None if fixed is not None else scheme.decode_weights,
        reference=reference,
    )


def round_weights(arrival: np.ndarray, fixed, decode, keys: np.ndarray, first_trial: int, trials: int):
    """Arrivals and decoder weights (T_batch x N) for the chunks whose arrival keys are `keys`.

    Round ``t_local`` of a chunk uses uniform ``t_local * N + i`` of the chunk's
    arrival stream for worker i (arrives when it is below ``1 - p_i``).
    """
    from ._mc_kernels import uniforms

    n = arrival.size
    # every chunk's stream at once: row c holds uniforms 0 .. MC_CHUNK * N - 1 of key c
    u = uniforms(np.asarray(keys, dtype=np.uint64)[:, None], np.arange(MC_CHUNK * n)[None, :])
    count = min(len(keys) * MC_CHUNK, trials - first_trial)
    arrived = (u.reshape(-1, n) < arrival)[:count]
    if fixed is not None:
        return np.where(arrived, fixed, 0.0)
    weights = np.empty(arrived.shape)
    cache: dict[bytes, np.ndarray] = {}
    for t, mask in enumerate(arrived):
        tag = np.packbits(mask).tobytes()
        if tag not in cache:
            cache[tag] = np.where(mask, np.asarray(decode(mask), dtype=np.float64), 0.0)
        weights[t] = cache[tag]
    return weights


def simulate_batch(args):
    """Run a batch of chunks: ``(problem, first_chunk, keys, trials) -> (errors, dev_sum)``.

    ``dev_sum`` holds, per chunk (C_batch x d), the sum over its rounds of ``ghat - g``.
    """
    from ._mc_kernels import simulate_rounds, simulate_rounds_reference

    problem, first_chunk, keys, trials = args
    arguments = kernel_arguments(problem, first_chunk, keys, trials)
    kernel = simulate_rounds_reference if problem.reference else simulate_rounds
    kernel(*arguments)
    errors, dev_sum = arguments[-2:]
    return errors, dev_sum


def kernel_arguments(problem: _McProblem, first_chunk: int, keys: np.ndarray, trials: int) -> tuple:
    """The arguments of :func:`~gcdesign._mc_kernels.simulate_rounds` for a batch of chunks.

    The last two, ``errors`` and ``dev_sum``, are zeroed outputs.
    """
    first_trial = first_chunk * MC_CHUNK
    count = min(len(keys) * MC_CHUNK, trials - first_trial)
    weights = round_weights(problem.arrival, problem.fixed, problem.decode, keys[:, 0], first_trial, trials)
    return (
        problem.messages,
        problem.norms,
        problem.levels,
        problem.quantizer,
        weights,
        np.ascontiguousarray(keys[:, 1]),
        MC_CHUNK,
        problem.target,
        np.zeros(count),
        np.zeros((len(keys), problem.target.size)),
    )


def _run_with_threads(batches, workers):
    import numba

    if workers is None:
        return map(simulate_batch, batches)
    threads = positive_int("workers", workers)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        return [simulate_batch(b) for b in batches]
    finally:
        numba.set_num_threads(previous)


def _summarize(name, errors, group_sums, group_sizes, target) -> MonteCarloResult:
    from scipy.stats import f as f_dist

    trials = errors.size
    grad_norm_sq = float(target @ target)
    mean = float(errors.mean())
    se = float(errors.std(ddof=1) / math.sqrt(trials))
    bias_vec = group_sums.sum(axis=0) / trials
    bias = float(np.linalg.norm(bias_vec))
    groups = group_sizes.size
    if groups >= 2:
        spread = group_sums / group_sizes[:, None] - bias_vec
        trace_cov = float(np.sum(group_sizes * np.einsum("gk,gk->g", spread, spread))) / (groups - 1)
        quantile = float(f_dist.ppf(1.0 - BIAS_ALPHA, 1, groups - 1))
        bias_bound = math.sqrt(quantile * trace_cov / trials)
    else:
        bias_bound = math.inf
    rel = (lambda v: v / grad_norm_sq) if grad_norm_sq > 0 else (lambda v: math.inf)
    return MonteCarloResult(
        scheme=name,
        mean=mean,
        standard_error=se,
        relative_error=rel(mean),
        relative_standard_error=rel(se),
        bias=bias,
        bias_bound=bias_bound,
        biased=bool(bias > bias_bound),
        trials=trials,
        chunk=MC_CHUNK,
        grad_norm_sq=grad_norm_sq,
        errors=errors,
    )


__all__ = [
    "DecoderMoments",
    "ErrorResult",
    "EvaluationError",
    "MonteCarloResult",
    "decoder_moments",
    "expected_error",
    "monte_carlo_error",
    "synthetic_gradients",
    "worker_messages",
]
