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
  in the same order).

Quantizer codes are the wire codes of :data:`gcdesign.quantization.QUANTIZER_SPECS`:
stochastic (``b`` bits, ``s = 2^(b-1) - 1`` levels, one norm per bucket of ``beta``
coordinates), sign (1 bit), none (exact messages). The kernel rounds with the package's one
numba routine, :func:`gcdesign._rounding.stochastic_level` (sign:
:func:`gcdesign._rounding.sign_draw`), which the codec kernels call too.
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import njit
from ._rounding import sign_draw, stochastic_level
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
def uniform(key, counter):
    """The `counter`-th uniform in [0, 1) of the stream `key` (uint64 arguments)."""
    z = key + (counter + _ONE) * GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return (z >> _S11) * _TO_UNIT


def uniforms(key, counters) -> np.ndarray:
    """numpy reference of the counter-based generator (vectorized over `counters`)."""
    with np.errstate(over="ignore"):
        z = np.asarray(key, dtype=np.uint64) + (np.asarray(counters, dtype=np.uint64) + _ONE) * GOLDEN
        z = (z ^ (z >> _S30)) * _MIX1
        z = (z ^ (z >> _S27)) * _MIX2
        z = z ^ (z >> _S31)
    return (z >> _S11).astype(np.float64) * _TO_UNIT


# ------------------------------------------------------------------ the kernel
# The per-bucket loops live in functions of their own and run on contiguous slices: LLVM then
# sees unit strides, no aliasing and no loop-invariant branches, and vectorizes the whole
# draw-round-accumulate loop (AVX-512 here; 3x the inline loop, studies/bench_kernels.py), and
# the rounding routine's ``s / norm`` leaves the loop. The results stay bit for bit those of the
# twin: the sign is applied by copysign to ``xi * scale``, which equals ``sign(x_k) * xi * scale``
# exactly (a sign flip does not round; x_k = 0 gives xi = 0 and a zero either way).
@njit()
def _add_stochastic(xs, out, key, at, s, nrm, w):  # pragma: no cover - compiled
    """``out[k] += w Q(xs)[k]`` for one bucket of the stochastic quantizer (draws from `at` on)."""
    scale = nrm / s
    for k in range(xs.size):
        xk = xs[k]
        xi = stochastic_level(abs(xk), s, nrm, uniform(key, at + np.uint64(k)))
        out[k] += w * np.copysign(xi * scale, xk)


@njit()
def _add_sign(xs, out, key, at, nrm, w):  # pragma: no cover - compiled
    """``out[k] += w Q(xs)[k]`` for one bucket of the sign quantizer."""
    for k in range(xs.size):
        q = nrm * (1.0 if sign_draw(xs[k], nrm, uniform(key, at + np.uint64(k))) else -1.0)
        out[k] += w * q


@njit()
def _add_exact(xs, out, w):  # pragma: no cover - compiled
    for k in range(xs.size):
        out[k] += w * xs[k]


@njit(parallel=True)
def simulate_rounds(
    x, bits, bucket, norms, levels, quantizer, weights, keys, chunk, target, errors, dev_sum
):  # pragma: no cover - compiled; its twin simulate_rounds_reference is the readable version
    """Quantize, decode and score ``T`` rounds, chunk by chunk (parallel over chunks).

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
        ``||ghat_t - g||^2``.
    dev_sum : float64 (C, d) (output)
        Per chunk, the sum over its rounds of ``ghat - g``.

    Draw positions: uniform ``((t_local * N + i) * d + k)`` of the chunk's stream
    quantizes coordinate k of worker i in the chunk's round ``t_local``. The
    arithmetic is :func:`gcdesign.quantization.quantize_rows`' operation for
    operation, so the twin (which calls it) agrees bit for bit.
    """
    n_rounds, n = weights.shape
    d = x.shape[1]
    n_buckets = norms.shape[1]
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
                if w == 0.0:
                    continue
                base = np.uint64((local * n + i) * d)
                if quantizer == NONE:
                    _add_exact(x[i], ghat, w)
                    continue
                for b in range(n_buckets):
                    nrm = norms[i, b]
                    if nrm == 0.0:
                        continue  # Q(0) = 0
                    lo = b * bucket
                    hi = min(lo + bucket, d)
                    at = base + np.uint64(lo)
                    if quantizer == STOCHASTIC:
                        _add_stochastic(x[i, lo:hi], ghat[lo:hi], key, at, levels[i], nrm, w)
                    else:
                        _add_sign(x[i, lo:hi], ghat[lo:hi], key, at, nrm, w)
            err = 0.0
            for k in range(d):
                dev = ghat[k] - target[k]
                err += dev * dev
                dev_sum[c, k] += dev
            errors[t] = err


def simulate_rounds_reference(
    x, bits, bucket, norms, levels, quantizer, weights, keys, chunk, target, errors, dev_sum
):
    """numpy twin of :func:`simulate_rounds`: same arguments, same draws, the same bits out.

    Each round quantizes the arrived messages with the package's one quantizer,
    :func:`gcdesign.quantization.quantize_rows`, fed the kernel's uniforms (so
    `norms` and `levels` are recomputed there, not read). The squared error is
    summed in coordinate order (``cumsum``), as the kernel does.
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
            errors[t] = np.cumsum(dev * dev)[-1]
            dev_sum[c] += dev
