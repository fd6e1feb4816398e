r"""Monte-Carlo estimate of a scheme's error: simulated rounds, chunked streams, a bias test.

:func:`monte_carlo_error` draws the arrivals of ``T`` rounds, decodes each round in
Python (so arrival-dependent decoders such as least squares work), then a numba
kernel (:mod:`gcdesign._mc_kernels`) quantizes every arrived message with the
scheme's quantizer and bucket size (one norm per bucket, docs/math.md 2c),
decodes and scores the round. It reports the mean of ``||ghat_t - g||^2`` with
its standard error and a batch-means test of unbiasedness. The exact value it
estimates is :func:`gcdesign.evaluation.expected_error`.

**Randomness.** Trials run in chunks of :data:`MC_CHUNK`; every chunk owns two
counter-based streams (arrivals, quantization) whose keys are drawn from `rng`
up front, and each draw has a fixed position in its stream. So the result is
bitwise the same whatever the thread count, the batching, and whatever runs the
batches (``workers=``: serial, a spawn process pool, ``map``, a Dask client; see
:mod:`gcdesign.parallel`). Chunk results are reduced one by one in chunk order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._validate import generator, positive_int
from .evaluation import arrival_probs, evaluation_inputs, fixed_decoding, worker_messages
from .parallel import numba_threads, parallel_imap, process_count
from .quantization import quantizer_spec, row_bucket_norms

MC_CHUNK = 16  # trials per random stream: fixed, so results do not depend on the thread count
BIAS_GROUPS = 32  # batch means for the bias test (chunk c goes to group c mod BIAS_GROUPS)
BIAS_ALPHA = 1e-3  # level of the bias confidence bound
MIN_BATCHES = 8  # batches handed to parallel workers (at least), so they can share the load


# ---------------------------------------------------------------- result
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
    message : str
        One line: the trials and the verdict of the bias test.
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
    message: str


# ---------------------------------------------------------------- the estimator
def monte_carlo_error(
    scheme,
    gradients,
    *,
    trials: int,
    rng=None,
    workers=None,
    scheduler=None,
    threads: int | None = None,
    reference: bool = False,
) -> MonteCarloResult:
    r"""Monte-Carlo estimate of :math:`E\|\hat g - g\|^2` (numba kernel, parallel over chunks of trials).

    Parameters
    ----------
    scheme : SchemeLike
        A :class:`~gcdesign.Design`, a :class:`~gcdesign.schemes.Scheme`, or anything
        :func:`~gcdesign.schemes.check_scheme` accepts. Its ``quantizer`` and
        ``bucket_size`` are simulated as they are.
    gradients : array (K, d)
        ``g_j``, one row per partition; ``g = sum_j g_j``.
    trials : int
        Number of simulated rounds (>= 2).
    rng : None, int or numpy.random.Generator
        Seeds one pair of random streams per chunk of :data:`MC_CHUNK` trials.
        Same seed, same result, whatever runs the trials.
    workers : None, int, map-like callable or dask.distributed.Client
        Who runs the batches of chunks (:func:`gcdesign.parallel.parallel_map`):
        None or 1 in this process; ``n >= 2`` (-1: every core) a spawn process pool;
        a map-like callable such as ``map``, ``multiprocessing.Pool.map`` (of a spawn
        pool), ``ProcessPoolExecutor.map`` or ``client.map``; a Client. The batches
        pickle (the baseline decoders and :class:`~gcdesign.Design` do; a
        :class:`~gcdesign.schemes.Scheme` whose decoder is a lambda does not).
    scheduler : str or dask.distributed.Client, optional
        A Dask scheduler address (connected for this call) instead of `workers`.
    threads : int, optional
        numba threads inside each batch, in whichever process runs it (scoped: the
        previous count is restored). Default: numba's own count in this process, 1 per
        process in a process pool. `workers` decides which processes run the batches,
        `threads` how many threads each uses (the convention of :mod:`gcdesign.parallel`).
    reference : bool
        Use the numpy reference of the kernel instead of numba (slow; tests).

    Returns
    -------
    MonteCarloResult

    Notes
    -----
    Arrivals are drawn first (counter-based uniforms, one stream per chunk), then
    the decoder weights of every round are computed in Python, then the kernel
    quantizes coordinate by coordinate and scores each round.

    Examples
    --------
    >>> from gcdesign import design, expected_error, load_example, synthetic_gradients
    >>> d = design(load_example("toy-n8"), bits_per_worker=4, bucket_size=16)
    >>> g = synthetic_gradients(d.partitions, 40, rng=0)
    >>> mc = monte_carlo_error(d, g, trials=2000, rng=1)
    >>> abs(mc.mean - expected_error(d, g).error) <= 3 * mc.standard_error, mc.biased
    (True, False)
    >>> monte_carlo_error(d, g, trials=2000, rng=1, workers=map).mean == mc.mean
    True
    """
    grads = evaluation_inputs(scheme, gradients)
    trials = positive_int("trials", trials, minimum=2)
    pool = workers is not None and not callable(workers) and _is_process_count(workers)
    batch_threads = threads if threads is not None or not pool else 1
    with numba_threads(threads):  # validates `threads`; batches in this process run with it
        rng = generator(rng)
        n_chunks = -(-trials // MC_CHUNK)
        keys = rng.integers(0, 2**64, size=(n_chunks, 2), dtype=np.uint64, endpoint=False)
        problem = monte_carlo_problem(scheme, grads, reference=bool(reference))
        target = problem.target
        d = target.size
        # Batches of chunks bound the memory of the per-chunk sums (C x d) and of the
        # weights (T x N); parallel runs get at least MIN_BATCHES of them. Chunk results
        # are reduced one by one in chunk order, so the batching never changes a bit.
        per_batch = max(1, (1 << 22) // max(d, problem.messages.shape[0]))
        if workers is not None or scheduler is not None:
            per_batch = min(per_batch, max(1, -(-n_chunks // MIN_BATCHES)))
        batches = [
            (problem, c0, keys[c0 : c0 + per_batch], trials, batch_threads)
            for c0 in range(0, n_chunks, per_batch)
        ]
        errors = []
        groups = min(BIAS_GROUPS, n_chunks)
        group_sums = np.zeros((groups, d))
        chunk = 0
        for batch_errors, chunk_sums in parallel_imap(
            simulate_batch, batches, workers=workers, scheduler=scheduler
        ):
            errors.append(batch_errors)
            for row in chunk_sums:
                group_sums[chunk % groups] += row
                chunk += 1
    errors = np.concatenate(errors)
    group_sizes = np.bincount(
        np.arange(n_chunks) % groups, weights=np.diff(np.minimum(np.arange(n_chunks + 1) * MC_CHUNK, trials))
    )
    return _summarize(scheme.name, errors, group_sums, group_sizes, target)


def _is_process_count(workers) -> bool:
    """True when `workers` asks for a local process pool (an int other than 1)."""
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer):
        return False
    return process_count(workers) != 1


@dataclass(frozen=True)
class MonteCarloProblem:
    """Everything the simulated rounds of a scheme need, computed once (it pickles).

    ``norms`` (N, number of buckets) and ``levels`` (N,) are what
    :func:`~gcdesign.quantization.quantize_rows` computes for each message (bucket
    norms, ``s(b_i)``); ``bucket`` is the bucket length (``d`` for one bucket).
    """

    messages: np.ndarray
    bits: np.ndarray
    bucket: int
    norms: np.ndarray
    levels: np.ndarray
    quantizer: int
    target: np.ndarray
    arrival: np.ndarray
    fixed: np.ndarray | None
    decode: Callable | None
    reference: bool


def monte_carlo_problem(scheme, grads: np.ndarray, *, reference: bool = False) -> MonteCarloProblem:
    """The :class:`MonteCarloProblem` of a checked `scheme` and validated `grads` (K x d)."""
    messages = worker_messages(scheme, grads)
    d = messages.shape[1]
    bits = np.asarray(scheme.bits, dtype=np.int64)
    spec = quantizer_spec(scheme.quantizer)
    bucket = d if scheme.bucket_size is None else min(int(scheme.bucket_size), d)
    fixed = fixed_decoding(scheme)
    return MonteCarloProblem(
        messages=messages,
        bits=bits,
        bucket=bucket,
        # the bucket norms exactly as quantize_rows computes them (one column per bucket)
        norms=np.ascontiguousarray(row_bucket_norms(messages, bucket)),
        # idle workers (0 bits) at the smallest width, as quantize_rows does
        levels=np.asarray(spec.levels(np.where(bits > 0, bits, spec.bits[0])), dtype=np.float64),
        quantizer=spec.code,
        target=grads.sum(axis=0),
        arrival=arrival_probs(scheme),
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
    """Run a batch of chunks: ``(problem, first_chunk, keys, trials, threads) -> (errors, dev_sum)``.

    ``dev_sum`` holds, per chunk (C_batch x d), the sum over its rounds of ``ghat - g``.
    A module-level function, so it pickles to process pools and Dask workers.
    """
    from ._mc_kernels import simulate_rounds, simulate_rounds_reference

    problem, first_chunk, keys, trials, threads = args
    arguments = kernel_arguments(problem, first_chunk, keys, trials)
    kernel = simulate_rounds_reference if problem.reference else simulate_rounds
    with numba_threads(threads):
        kernel(*arguments)
    errors, dev_sum = arguments[-2:]
    return errors, dev_sum


def kernel_arguments(problem: MonteCarloProblem, first_chunk: int, keys: np.ndarray, trials: int) -> tuple:
    """The arguments of :func:`~gcdesign._mc_kernels.simulate_rounds` for a batch of chunks.

    `keys` is (C_batch, 2): the arrival and the quantization key of every chunk. The
    last two arguments, ``errors`` and ``dev_sum``, are zeroed outputs.
    """
    first_trial = first_chunk * MC_CHUNK
    count = min(len(keys) * MC_CHUNK, trials - first_trial)
    weights = round_weights(problem.arrival, problem.fixed, problem.decode, keys[:, 0], first_trial, trials)
    return (
        problem.messages,
        problem.bits,
        problem.bucket,
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
        message=f"{trials} trials; bias {bias:.3g} "
        + (
            f"above the bound {bias_bound:.3g}: the data reject unbiasedness"
            if bias > bias_bound
            else f"within the bound {bias_bound:.3g}: no evidence of bias"
        ),
    )


__all__ = [
    "BIAS_ALPHA",
    "BIAS_GROUPS",
    "MC_CHUNK",
    "MonteCarloProblem",
    "MonteCarloResult",
    "kernel_arguments",
    "monte_carlo_error",
    "monte_carlo_problem",
    "round_weights",
    "simulate_batch",
]
