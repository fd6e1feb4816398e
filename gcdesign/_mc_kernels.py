"""numba kernels of the Monte-Carlo estimator, each with a readable numpy reference.

Randomness is *counter based*: the u-th uniform of a stream with key ``k`` is
``splitmix64(k + (u + 1) * GOLDEN) / 2^64`` (53-bit resolution). Every chunk of
trials owns one key, and the position of every draw inside the chunk is
fixed (trial, worker, coordinate), so

* the result does not depend on how chunks are spread over threads
  (``NUMBA_NUM_THREADS = 1`` and ``2`` give bit-identical per-trial results);
* the numba kernel and the numpy reference draw **the same** uniforms and
  produce bit-identical estimates ``ghat``, chunk sums of ``ghat - g`` and
  per-round squared errors (the reference quantizes with
  :func:`gcdesign.quantization.quantize_rows`, the one quantizer, whose
  arithmetic the kernel repeats operation for operation, and both accumulate
  in the same order; the squared error in :data:`ERROR_LANES` lanes,
  :func:`squared_norm_in_lanes`).

Quantizer codes are the wire codes of :data:`gcdesign.quantization.QUANTIZER_SPECS`:
stochastic (``b`` bits, ``s = 2^(b-1) - 1`` levels, one norm per bucket of ``beta``
coordinates), sign (1 bit), none (exact messages). The kernel rounds with the parts of the
package's one numba routine :func:`gcdesign._rounding.stochastic_level` (which the codec
kernels call): :func:`~gcdesign._rounding.stochastic_split` and
:func:`~gcdesign._rounding.clip_level` tabulate a coordinate's two values once, and
:func:`~gcdesign._rounding.draw_threshold` turns the draw ``u < frac`` into an integer
comparison of the uniform's bits (:func:`uniform_bits`); sign:
:func:`~gcdesign._rounding.sign_probability`, the probability of
:func:`~gcdesign._rounding.sign_draw`.
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import njit
from ._rounding import clip_level, draw_threshold, sign_probability, stochastic_split
from .quantization import QUANTIZER, QUANTIZER_SPECS, quantize_rows

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE = np.uint64(1)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53

STOCHASTIC, SIGN, NONE = (QUANTIZER[name].code for name in ("stochastic", "sign", "none"))


# ------------------------------------------------------------------ random numbers
@njit(inline="always")
def weyl(key, counter):
    """The splitmix64 state of the `counter`-th uniform of the stream `key`:
    ``key + (counter + 1) GOLDEN`` (mod 2^64); the next uniform's is this plus GOLDEN."""
    return key + (counter + _ONE) * GOLDEN


@njit(inline="always")
def mix_bits(z):
    """The 53 bits of the uniform of splitmix64 state `z` (the finalizer, then ``>> 11``)."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return z >> _S11


@njit(inline="always")
def uniform_bits(key, counter):
    """The 53 bits ``m`` of the `counter`-th uniform ``m 2^-53`` of the stream `key` (uint64)."""
    return mix_bits(weyl(key, counter))


@njit(inline="always")
def uniform(key, counter):
    """The `counter`-th uniform in [0, 1) of the stream `key` (uint64 arguments)."""
    return uniform_bits(key, counter) * _TO_UNIT


def uniforms(key, counters) -> np.ndarray:
    """numpy reference of the counter-based generator (vectorized over `counters`)."""
    with np.errstate(over="ignore"):
        z = np.asarray(key, dtype=np.uint64) + (np.asarray(counters, dtype=np.uint64) + _ONE) * GOLDEN
        z = (z ^ (z >> _S30)) * _MIX1
        z = (z ^ (z >> _S27)) * _MIX2
        z = z ^ (z >> _S31)
    return (z >> _S11).astype(np.float64) * _TO_UNIT


# ------------------------------------------------------------------ the kernel
# Work plan (studies/bench_kernels.py measures it against a bare loop of the same uniforms).
# A message does not change from round to round, so everything about a coordinate but its
# uniform is computed once per *group* of chunks and block of coordinates: the threshold
# ``t_k = draw_threshold(p_k)`` (the draw is ``uniform_bits < t_k``, see gcdesign._rounding)
# and the two values the coordinate can take, ``lo_k`` and ``hi_k``, with the arithmetic of
# quantize_rows (``copysign(min(level, s) * (norm / s), x_k)``; sign: ``-+norm``), times the
# decoder weight where a worker's weight is the same in every round of the group (a fixed
# decoder: the same product ``w q``, computed once). A draw is then the uniform's bits (its
# splitmix64 state stepped, ``z += GOLDEN``, not recomputed from the counter), one
# integer comparison, a select and ``out += (w) q``. The loops run on unit-stride rows of 2-D
# tables with indices that start at 0 or are unsigned (numba then adds no wrap-around test, and
# no array is sliced: a slice costs two atomic reference counts), inlined into the group loop;
# LLVM vectorizes them (AVX-512 here). The tables of a block (every arriving worker's row)
# stay in the core's L2 cache. A group covers up to MAX_GROUP chunks (1024 rounds), so the
# tables are built once per many draws.
# Each round's squared error is summed in ERROR_LANES lanes (coordinate k into lane
# k mod ERROR_LANES, each lane in coordinate order, then the lanes in order), which
# vectorizes; the numpy twin sums in the same order (squared_norm_in_lanes).
# Results do not depend on the grouping: every number belongs to one chunk, and a
# chunk's draws have fixed positions.
ERROR_LANES = 64  # lanes of the per-round squared error (a multiple of 8: one vector each 8)
MAX_BLOCK = 256  # coordinates per block (a multiple of ERROR_LANES)
TABLE_BYTES = 1 << 19  # the tables of a block: at most this much (L2) unless a block is one lane
MAX_GROUP = 64  # chunks per group
MIN_GROUPS = 8  # groups per call: a multiple of it, where there are enough chunks


@njit()
def _fill_stochastic(x, i, start, stop, at, s, nrm, w, thr, lo, hi, row):  # pragma: no cover - compiled
    """Tables of coordinates ``start .. stop - 1`` (one bucket) of message i, from column `at` on.

    The values are multiplied by `w` (the worker's decoder weight where it is the same in
    every round of the group, else 1: exact)."""
    ratio = s / nrm  # the reciprocal, as stochastic_level takes it
    scale = nrm / s
    for j in range(stop - start):
        k = start + np.uint64(j)
        col = at + np.uint64(j)
        xk = x[i, k]
        low, frac = stochastic_split(abs(xk), ratio)
        thr[row, col] = draw_threshold(frac)
        lo[row, col] = w * np.copysign(clip_level(low, s) * scale, xk)
        hi[row, col] = w * np.copysign(clip_level(low + 1.0, s) * scale, xk)


@njit()
def _fill_sign(x, i, start, stop, at, nrm, w, thr, lo, hi, row):  # pragma: no cover - compiled
    """Tables of the sign quantizer (``+norm`` when ``uniform < sign_probability``), times `w`."""
    for j in range(stop - start):
        k = start + np.uint64(j)
        col = at + np.uint64(j)
        thr[row, col] = draw_threshold(sign_probability(x[i, k], nrm))
        lo[row, col] = w * -nrm
        hi[row, col] = w * nrm


@njit()
def _fill_zero(start, stop, at, w, thr, lo, hi, row):  # pragma: no cover - compiled
    """A bucket of norm 0: Q(0) = 0, times `w` (drawn, never used: both values are equal)."""
    for j in range(stop - start):
        col = at + np.uint64(j)
        thr[row, col] = 0
        lo[row, col] = w * 0.0
        hi[row, col] = w * 0.0


@njit(inline="always")
def _drawn(thr, lo, hi, row, k, z):  # pragma: no cover - compiled
    """``Q_k`` of the tables row `row` drawn with the uniform of splitmix64 state `z`."""
    m = mix_bits(z)
    a = lo[row, k]
    b = hi[row, k]
    return b if m < thr[row, k] else a


@njit(inline="always")
def _draw(thr, lo, hi, row, out, n, key, at, w, first, weighted):  # pragma: no cover - compiled
    """``out[k] (+)= w Q_k`` for the block's `n` coordinates of one message (tables row `row`).

    The first message of a round writes ``0 + w Q_k`` (the twin adds to zeros: same bits).
    `weighted`: the tables hold ``w Q_k`` already (the same product, computed once).
    The states of the uniforms ``at, at + 1, ...`` are a Weyl sequence: ``z += GOLDEN`` per
    coordinate (the same states as :func:`weyl`, one multiplication fewer per draw).
    """
    z = weyl(key, at)
    if weighted:
        if first:
            for k in range(n):
                out[k] = 0.0 + _drawn(thr, lo, hi, row, k, z)
                z += GOLDEN
        else:
            for k in range(n):
                out[k] += _drawn(thr, lo, hi, row, k, z)
                z += GOLDEN
    elif first:
        for k in range(n):
            out[k] = 0.0 + w * _drawn(thr, lo, hi, row, k, z)
            z += GOLDEN
    else:
        for k in range(n):
            out[k] += w * _drawn(thr, lo, hi, row, k, z)
            z += GOLDEN


@njit()
def _add_exact(x, i, k0, out, n, w, first):  # pragma: no cover - compiled
    """The exact message (quantizer none): ``out[k] (+)= w x_i[k0 + k]``."""
    if first:
        for k in range(n):
            out[k] = 0.0 + w * x[i, k0 + np.uint64(k)]
    else:
        for k in range(n):
            out[k] += w * x[i, k0 + np.uint64(k)]


@njit(inline="always")
def _score(out, n, target, k0, dev_sum, c, acc, r):  # pragma: no cover - compiled
    """``dev = out - g`` on the block: ``dev_sum[c] += dev``, lanes ``acc[r] += dev^2``."""
    full = n // ERROR_LANES
    for q in range(full):
        base = k0 + np.uint64(q * ERROR_LANES)
        for j in range(ERROR_LANES):
            k = base + np.uint64(j)
            dev = out[q * ERROR_LANES + j] - target[k]
            acc[r, j] += dev * dev
            dev_sum[c, k] += dev
    tail = full * ERROR_LANES
    for j in range(n - tail):
        k = k0 + np.uint64(tail + j)
        dev = out[tail + j] - target[k]
        acc[r, j] += dev * dev
        dev_sum[c, k] += dev


@njit()
def _simulate_group(
    x, bucket, norms, levels, quantizer, weights, keys, chunk, target, errors, dev_sum, c0, c1
):  # pragma: no cover - compiled
    """Rounds of chunks ``c0 .. c1 - 1``, block of coordinates by block (see the work plan)."""
    n_rounds, n = weights.shape
    d = x.shape[1]
    t0 = c0 * chunk
    n_local = min(c1 * chunk, n_rounds) - t0
    # the arrived messages of every round (weight != 0), in worker order; a table row per worker
    starts = np.zeros(n_local + 1, dtype=np.int64)
    for r in range(n_local):
        count = 0
        for i in range(n):
            if weights[t0 + r, i] != 0.0:
                count += 1
        starts[r + 1] = starts[r] + count
    who = np.empty(starts[n_local], dtype=np.int64)
    row_of = np.full(n, -1, dtype=np.int64)
    weight_of = np.ones(n)  # the worker's weight, where it is the same in every round
    weighted = True  # every worker's weight is (a fixed decoder): tables hold w Q
    rows = 0
    for r in range(n_local):
        p = starts[r]
        for i in range(n):
            w = weights[t0 + r, i]
            if w != 0.0:
                who[p] = i
                p += 1
                if row_of[i] < 0:
                    row_of[i] = rows
                    rows += 1
                    weight_of[i] = w
                elif w != weight_of[i]:
                    weighted = False
    if not weighted:
        weight_of[:] = 1.0
    per_row = TABLE_BYTES // (24 * max(rows, 1))
    block = max(ERROR_LANES, min(MAX_BLOCK, per_row // ERROR_LANES * ERROR_LANES))
    thr = np.empty((max(rows, 1), block), dtype=np.uint64)
    lo = np.empty((max(rows, 1), block))
    hi = np.empty((max(rows, 1), block))
    out = np.empty(block)
    acc = np.zeros((n_local, ERROR_LANES))
    ubucket = np.uint64(bucket)
    for kb in range(0, d, block):
        k0 = np.uint64(kb)
        k1 = np.uint64(min(kb + block, d))
        n_block = min(block, d - kb)
        if quantizer != NONE:
            for i in range(n):
                row = row_of[i]
                if row < 0:
                    continue
                start = k0
                while start < k1:  # one bucket at a time
                    b = start // ubucket
                    stop = min((b + np.uint64(1)) * ubucket, k1)
                    nrm = norms[i, b]
                    w = weight_of[i]
                    if nrm == 0.0:
                        _fill_zero(start, stop, start - k0, w, thr, lo, hi, row)
                    elif quantizer == STOCHASTIC:
                        _fill_stochastic(x, i, start, stop, start - k0, levels[i], nrm, w, thr, lo, hi, row)
                    else:
                        _fill_sign(x, i, start, stop, start - k0, nrm, w, thr, lo, hi, row)
                    start = stop
        for r in range(n_local):
            t = t0 + r
            c = t // chunk
            local = t - c * chunk
            key = keys[c]
            if starts[r] == starts[r + 1]:
                out[:n_block] = 0.0
            for p in range(starts[r], starts[r + 1]):
                i = who[p]
                first = p == starts[r]
                if quantizer == NONE:
                    _add_exact(x, i, k0, out, n_block, weights[t, i], first)
                else:
                    at = np.uint64((local * n + i) * d + kb)
                    _draw(thr, lo, hi, row_of[i], out, n_block, key, at, weights[t, i], first, weighted)
            _score(out, n_block, target, k0, dev_sum, c, acc, r)
    for r in range(n_local):
        err = 0.0
        for j in range(ERROR_LANES):
            err += acc[r, j]
        errors[t0 + r] = err


@njit(parallel=True)
def simulate_rounds(
    x, bits, bucket, norms, levels, quantizer, weights, keys, chunk, target, errors, dev_sum
):  # pragma: no cover - compiled; its twin simulate_rounds_reference is the readable version
    """Quantize, decode and score ``T`` rounds, chunk by chunk (parallel over groups of chunks).

    Parameters
    ----------
    x : float64 (N, d)
        Worker messages before quantization, ``x_i = sum_j b_ij g_j``.
    bits : int64 (N,)
        Bits per coordinate (read by the reference; the kernel uses `levels`).
    bucket : int
        Bucket length beta (``d``: one bucket); bucket c holds coordinates
        ``c beta .. min((c + 1) beta, d) - 1``.
    norms : float64 (N, ceil(d / bucket))
        ``||x_{i,c}||``, the norm of every bucket of every message.
    levels : float64 (N,)
        The number of levels ``s_i`` (stochastic quantizer).
    quantizer : int
        The wire code (:data:`STOCHASTIC`, :data:`SIGN`, :data:`NONE`).
    weights : float64 (T, N)
        Decoder weight of worker i in round t, zero when it did not arrive.
    keys : uint64 (C,)
        One random stream per chunk of `chunk` consecutive rounds.
    target : float64 (d,)
        The true gradient ``g``.
    errors : float64 (T,) (output)
        ``||ghat_t - g||^2``, summed in :data:`ERROR_LANES` lanes
        (:func:`squared_norm_in_lanes`).
    dev_sum : float64 (C, d) (output, zeroed)
        Per chunk, the sum over its rounds of ``ghat - g``.

    Draw positions: uniform ``((t_local * N + i) * d + k)`` of the chunk's stream
    quantizes coordinate k of worker i in the chunk's round ``t_local``. The
    arithmetic is :func:`gcdesign.quantization.quantize_rows`' operation for
    operation, so the twin (which calls it) agrees bit for bit.
    """
    n_chunks = keys.shape[0]
    # Equal groups of at most MAX_GROUP chunks, as many as a multiple of MIN_GROUPS (where
    # there are enough chunks), so that 1, 2, 4 or 8 threads get equal shares (numba hands
    # each thread an equal run of iterations); the thread count is not read, as a kernel
    # that reads it cannot be cached.
    n_groups = -(-n_chunks // MAX_GROUP)
    n_groups = min(n_chunks, -(-n_groups // MIN_GROUPS) * MIN_GROUPS)
    for g in numba.prange(n_groups):
        _simulate_group(
            x,
            bucket,
            norms,
            levels,
            quantizer,
            weights,
            keys,
            chunk,
            target,
            errors,
            dev_sum,
            g * n_chunks // n_groups,
            (g + 1) * n_chunks // n_groups,
        )


def squared_norm_in_lanes(v) -> float:
    """``sum(v^2)`` in the kernel's order: :data:`ERROR_LANES` lanes (coordinate k in lane
    ``k mod ERROR_LANES``, each summed in coordinate order), then the lanes in order."""
    sq = np.asarray(v, dtype=np.float64) ** 2
    lanes = np.concatenate([sq, np.zeros(-sq.size % ERROR_LANES)]).reshape(-1, ERROR_LANES)
    return float(np.cumsum(np.cumsum(lanes, axis=0)[-1])[-1])


def simulate_rounds_reference(
    x, bits, bucket, norms, levels, quantizer, weights, keys, chunk, target, errors, dev_sum
):
    """numpy twin of :func:`simulate_rounds`: same arguments, same draws, the same bits out.

    Each round quantizes the arrived messages with the package's one quantizer,
    :func:`gcdesign.quantization.quantize_rows`, fed the kernel's uniforms (so
    `norms` and `levels` are recomputed there, not read). The squared error is
    summed in the kernel's lanes (:func:`squared_norm_in_lanes`).
    """
    n_rounds, n = weights.shape
    d = x.shape[1]
    name = QUANTIZER_SPECS[quantizer].name
    bucket_size = None if bucket >= d else int(bucket)
    for c, key in enumerate(keys):
        start = c * chunk
        for t in range(start, min(start + chunk, n_rounds)):
            local = t - start
            active = np.flatnonzero(weights[t] != 0.0)
            u = uniforms(key, (local * n + active[:, None]) * d + np.arange(d))
            q = quantize_rows(x[active], bits[active], quantizer=name, bucket_size=bucket_size, uniforms=u)
            ghat = np.zeros(d)
            for row, i in enumerate(active):
                ghat += weights[t, i] * q[row]
            dev = ghat - target
            errors[t] = squared_norm_in_lanes(dev)
            dev_sum[c] += dev
