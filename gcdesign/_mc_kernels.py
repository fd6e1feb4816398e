"""numba kernels of the Monte-Carlo estimator, each with a readable numpy reference.

Randomness is *counter based*: the u-th uniform of a stream with key ``k`` is
``splitmix64(k + (u + 1) * GOLDEN) / 2^64`` (53-bit resolution). Every chunk of
trials owns one key, and the position of every draw inside the chunk is
fixed (trial, worker, coordinate), so

* the result does not depend on how chunks are spread over threads
  (``NUMBA_NUM_THREADS = 1`` and ``2`` give bit-identical per-trial results);
* the numba kernel and the numpy reference draw **the same** uniforms and
  produce bit-identical estimates ``ghat`` and chunk sums of ``ghat - g``
  (both accumulate round by round in the same order); the per-round squared
  errors agree to rounding (numba sums the coordinates sequentially, numpy
  pairwise).

Quantizer codes: 0 stochastic (``b`` bits, ``s = 2^(b-1) - 1`` levels),
1 sign (1 bit), 2 none (exact messages).
"""

from __future__ import annotations

import numba
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE = np.uint64(1)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53

STOCHASTIC, SIGN, EXACT = 0, 1, 2
QUANTIZER_CODES = {"stochastic": STOCHASTIC, "sign": SIGN, "none": EXACT}


# ------------------------------------------------------------------ random numbers
@numba.njit(cache=True, inline="always")
def uniform(key, counter):
    """The `counter`-th uniform in [0, 1) of the stream `key` (uint64 arguments)."""
    z = key + (counter + _ONE) * GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return (z >> _S11) * _TO_UNIT


_uniform = uniform  # the kernel's older name (the runtime codec imports `uniform`)


def uniforms(key, counters) -> np.ndarray:
    """numpy reference of the counter-based generator (vectorized over `counters`)."""
    with np.errstate(over="ignore"):
        z = np.asarray(key, dtype=np.uint64) + (np.asarray(counters, dtype=np.uint64) + _ONE) * GOLDEN
        z = (z ^ (z >> _S30)) * _MIX1
        z = (z ^ (z >> _S27)) * _MIX2
        z = z ^ (z >> _S31)
    return (z >> _S11).astype(np.float64) * _TO_UNIT


# ------------------------------------------------------------------ the kernel
@numba.njit(cache=True, parallel=True)
def simulate_rounds(x, norms, levels, quantizer, weights, keys, chunk, target, errors, dev_sum):
    """Quantize, decode and score ``T`` rounds, chunk by chunk (parallel over chunks).

    Parameters
    ----------
    x : float64 (N, d)
        Worker messages before quantization, ``x_i = sum_j b_ij g_j``.
    norms, levels : float64 (N,)
        ``||x_i||`` and the number of levels ``s_i`` (stochastic quantizer).
    quantizer : int
        0 stochastic, 1 sign, 2 none.
    weights : float64 (T, N)
        Decoder weight of worker i in round t, zero when it did not arrive.
    keys : uint64 (C,)
        One random stream per chunk of `chunk` consecutive rounds.
    target : float64 (d,)
        The true gradient ``g``.
    errors : float64 (T,) (output)
        ``||ghat_t - g||^2``.
    dev_sum : float64 (C, d) (output)
        Per chunk, the sum over its rounds of ``ghat - g``.

    Draw positions: uniform ``((t_local * N + i) * d + k)`` of the chunk's stream
    quantizes coordinate k of worker i in the chunk's round ``t_local``.
    """
    n_rounds, n = weights.shape
    d = x.shape[1]
    n_chunks = keys.shape[0]
    for c in numba.prange(n_chunks):
        ghat = np.empty(d)
        key = keys[c]
        start = c * chunk
        stop = min(start + chunk, n_rounds)
        for t in range(start, stop):
            ghat[:] = 0.0
            local = t - start
            for i in range(n):
                w = weights[t, i]
                nrm = norms[i]
                if w == 0.0 or nrm == 0.0:
                    continue
                base = np.uint64((local * n + i) * d)
                if quantizer == 0:
                    s = levels[i]
                    for k in range(d):
                        xk = x[i, k]
                        y = s * abs(xk) / nrm
                        low = np.floor(y)
                        u = _uniform(key, base + np.uint64(k))
                        xi = low + 1.0 if u < y - low else low
                        q = nrm * np.sign(xk) * xi / s
                        ghat[k] += w * q
                elif quantizer == 1:
                    for k in range(d):
                        u = _uniform(key, base + np.uint64(k))
                        h = 1.0 if u < 0.5 * (1.0 + x[i, k] / nrm) else -1.0
                        ghat[k] += w * (nrm * h)
                else:
                    for k in range(d):
                        ghat[k] += w * x[i, k]
            err = 0.0
            for k in range(d):
                dev = ghat[k] - target[k]
                err += dev * dev
                dev_sum[c, k] += dev
            errors[t] = err


def simulate_rounds_reference(x, norms, levels, quantizer, weights, keys, chunk, target, errors, dev_sum):
    """numpy reference of :func:`simulate_rounds` (same arguments, same draws, loops over rounds)."""
    n_rounds, n = weights.shape
    d = x.shape[1]
    for c, key in enumerate(keys):
        start = c * chunk
        for t in range(start, min(start + chunk, n_rounds)):
            ghat = np.zeros(d)
            local = t - start
            for i in range(n):
                w, nrm = weights[t, i], norms[i]
                if w == 0.0 or nrm == 0.0:
                    continue
                if quantizer == EXACT:
                    ghat += w * x[i]
                    continue
                u = uniforms(key, (local * n + i) * d + np.arange(d))
                if quantizer == STOCHASTIC:
                    s = levels[i]
                    y = s * np.abs(x[i]) / nrm
                    low = np.floor(y)
                    xi = np.where(u < y - low, low + 1.0, low)
                    q = nrm * np.sign(x[i]) * xi / s
                else:
                    h = np.where(u < 0.5 * (1.0 + x[i] / nrm), 1.0, -1.0)
                    q = nrm * h
                ghat += w * q
            dev = ghat - target
            errors[t] = np.sum(dev * dev)
            dev_sum[c] += dev
