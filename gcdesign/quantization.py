r"""The quantizer: stochastic (optionally bucketed) and sign, with exact variances and payloads.

This module is the one home of the quantizer (docs/math.md, sections 2, 2b, 2c):
:func:`quantize_rows` is the numpy reference every consumer calls (the training
harness, the runtime codec, the Monte-Carlo reference; the numba kernels are its
twins), :func:`row_variances` the exact variance, :func:`payload_bits` the wire
size, :data:`QUANTIZERS` the names.

One sign bit plus ``b - 1`` magnitude bits give :math:`s(b) = 2^{b-1} - 1`
levels. For :math:`x \ne 0`, coordinate :math:`k`:

.. math::

    y_k = s |x_k| / \|x\|_2, \quad
    \xi_k = \lfloor y_k \rfloor + \mathrm{Bernoulli}(y_k - \lfloor y_k \rfloor), \quad
    Q(x)_k = \|x\|_2 \, \mathrm{sign}(x_k) \, \xi_k / s.

The quantizer is unbiased and :math:`E\|Q(x)-x\|^2 \le \delta_{raw}(b) \|x\|^2`
with :math:`\delta_{raw}(b) = d / (4 s(b)^2)`. The design uses
:math:`\delta_i = \kappa \, \delta_{raw}(b_i)` with a kappa policy.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._validate import InputError

KAPPA_POLICIES = ("raw", "balanced", "none")
QUANTIZERS = ("stochastic", "sign", "none")
NORM_BITS = 32  # the norm travels as one float32
MAX_BITS = 32  # a float32 coordinate: the most a message spends per coordinate


def levels(bits) -> np.ndarray | float:
    """Number of magnitude levels :math:`s(b) = 2^{b-1} - 1` (float; b may be fractional)."""
    return np.exp2(np.asarray(bits, dtype=np.float64) - 1.0) - 1.0


def delta_raw(bits, dim: int) -> np.ndarray | float:
    """Worst-case relative variance bound :math:`d / (4 s(b)^2)` of the b-bit quantizer.

    ``bits`` may be an array and fractional (``B / N``); it must exceed 1.
    Zero bits (an idle worker, which sends nothing) gives ``inf``.
    """
    b = np.asarray(bits, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(b > 1.0, dim / (4.0 * np.square(levels(b))), np.inf)
    return float(out) if out.ndim == 0 else out


def error_factors(bits, kappa: float, dim: int) -> np.ndarray:
    r"""Per-worker design factors :math:`\delta_i = \kappa\,\delta_{raw}(b_i)`.

    ``inf`` for an idle worker (0 bits: it sends nothing and gets mass 0), and
    0 for every other worker when ``kappa = 0`` (no quantization modelled).
    """
    b = np.asarray(bits)
    delta = kappa * delta_raw(np.where(b == 0, 2, b), dim) if kappa else np.zeros(b.shape)
    return np.where(b == 0, np.inf, delta)


def quantize(x, bits: int, *, bucket_size: int | None = None, rng=None) -> np.ndarray:
    """Stochastic b-bit quantization of the vector `x` (one row of :func:`quantize_rows`).

    Returns the dequantized vector :math:`Q_b(x)` (float64). ``bits >= 2``;
    ``bits = 1`` is the sign quantizer of :func:`quantize_sign`.
    """
    bits = _check_bits(bits)
    x = np.asarray(x, dtype=np.float64)
    return quantize_rows(x.reshape(1, -1), [bits], bucket_size=bucket_size, rng=rng).reshape(x.shape)


def quantization_variance(x, bits: int, *, bucket_size: int | None = None) -> float:
    r"""Exact :math:`E\|Q_b(x) - x\|^2 = (\|x\|^2 / s^2) \sum_k f_k (1 - f_k)` (per bucket with buckets)."""
    bits = _check_bits(bits)
    x = np.asarray(x, dtype=np.float64).reshape(1, -1)
    return float(row_variances(x, [bits], "stochastic", bucket_size)[0])


def quantize_sign(x, *, rng=None) -> np.ndarray:
    r"""1-bit sign quantizer: :math:`\|x\| h_k`, :math:`P(h_k = 1) = (1 + x_k/\|x\|)/2`."""
    x = np.asarray(x, dtype=np.float64)
    return quantize_rows(x.reshape(1, -1), [1], rng=rng).reshape(x.shape)


def sign_quantization_variance(x) -> float:
    r"""Exact variance of the sign quantizer.

    :math:`E\|Q(x)-x\|^2 = \sum_k (\|x\|^2 - x_k^2) = (d - 1)\|x\|^2`.
    """
    x = np.asarray(x, dtype=np.float64).reshape(1, -1)
    return float(row_variances(x, [1], "sign")[0])


def payload_bits(bits, dim: int, quantizer: str = "stochastic", bucket_size: int | None = None):
    """Bits one message occupies on the wire (docs/math.md, sections 2 and 2c).

    * ``"stochastic"``: ``b d`` plus one float32 norm per bucket,
      ``b d + 32 ceil(d / beta)`` (``beta = None``: one bucket, ``b d + 32``);
    * ``"sign"``: ``d + 32`` (one bit per coordinate plus the norm);
    * ``"none"``: ``32 d``, a float32 per coordinate (the paper's count; the runtime
      sends exactly this).

    Idle workers (``b = 0``) send nothing. `bits` may be an array (one entry per worker).

    Examples
    --------
    >>> payload_bits(4, 1000)
    4032
    >>> payload_bits(4, 1000, bucket_size=512)
    4064
    >>> payload_bits([0, 32], 10, "none").tolist()
    [0, 320]
    """
    b = np.asarray(bits, dtype=np.int64)
    if quantizer == "none":
        out = np.where(b > 0, MAX_BITS * dim, 0)
    else:
        buckets = 1 if bucket_size is None or quantizer == "sign" else -(-dim // bucket_size)
        out = np.where(b > 0, NORM_BITS * buckets + b * dim, 0)
    return int(out) if out.ndim == 0 else out


def coordinate_norms(x: np.ndarray, bucket_size: int | None = None) -> np.ndarray:
    """The norm each coordinate is quantized against: its bucket's norm, per row.

    `x` is (n, d). Returns (n, 1) for one bucket (``bucket_size`` None or >= d), else
    (n, d) with ``||x_c||`` repeated over the coordinates of bucket ``c``.
    """
    n, d = x.shape
    if bucket_size is None or bucket_size >= d:
        return np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    buckets = -(-d // bucket_size)
    padded = np.zeros((n, buckets * bucket_size))
    padded[:, :d] = x
    blocks = padded.reshape(n, buckets, bucket_size)
    norms = np.sqrt(np.einsum("ijk,ijk->ij", blocks, blocks))
    return np.repeat(norms, bucket_size, axis=1)[:, :d]


def quantize_rows(x, bits, *, quantizer: str = "stochastic", bucket_size: int | None = None, rng=None,
                  uniforms=None) -> np.ndarray:
    """Quantize every row of `x` with its own bit width, all at once (the numpy reference).

    Row i with ``bits[i] >= 2`` gets the stochastic quantizer (bucketed when
    `bucket_size` is given, docs/math.md section 2c), ``bits[i] == 1`` the sign
    quantizer; ``quantizer="none"`` returns `x` unchanged (as float64). The
    uniforms come from ``rng.random(x.shape)`` unless given (`uniforms`, same
    shape as `x`: the runtime passes its counter-based stream). With the same
    generator the result equals quantizing the rows one after the other with
    :func:`quantize` / :func:`quantize_sign`.

    Examples
    --------
    >>> x = np.array([[3.0, -4.0], [0.0, 0.0]])
    >>> quantize_rows(x, [2, 2], rng=0)  # s = 1: each coordinate becomes 0 or +-||x||
    array([[ 0., -5.],
           [ 0.,  0.]])
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if quantizer == "none" or x.shape[0] == 0:
        return x.copy()
    bits = np.asarray(bits)
    u = np.random.default_rng(rng).random(x.shape) if uniforms is None else np.asarray(uniforms)
    sign_rows = bits == 1
    norms = coordinate_norms(x, None if sign_rows.all() else bucket_size)
    safe = np.where(norms > 0, norms, 1.0)
    s = np.where(sign_rows, 1.0, levels(np.maximum(bits, 2)))
    out = np.sign(x) * stochastic_levels(x, s[:, None], safe, u) * (norms / s[:, None])
    if sign_rows.any():
        row_norms = coordinate_norms(x[sign_rows])
        xs = x[sign_rows] / np.where(row_norms > 0, row_norms, 1.0)
        out[sign_rows] = row_norms * np.where(u[sign_rows] < 0.5 * (1.0 + xs), 1.0, -1.0)
    out[np.broadcast_to(norms == 0, x.shape)] = 0.0
    return out


def stochastic_levels(x, s, norms, uniforms) -> np.ndarray:
    r"""The integer levels :math:`\xi_k = \lfloor y_k \rfloor + [u_k < y_k - \lfloor y_k \rfloor]` (float64).

    ``y_k = s |x_k| / norm_k`` with `norms` the (positive) norm each coordinate is
    quantized against and `uniforms` the draws; all arguments broadcast. This is the
    rounding step shared by :func:`quantize_rows` and the runtime codec's numpy twin
    (which quantizes against the float32 norms that travel).

    Examples
    --------
    >>> stochastic_levels(np.array([3.0, -4.0]), 1.0, 5.0, np.array([0.5, 0.9])).tolist()
    [1.0, 0.0]
    """
    y = s * np.abs(x) / norms
    low = np.floor(y)
    return low + (uniforms < y - low)


def row_variances(x, bits, quantizer: str = "stochastic", bucket_size: int | None = None) -> np.ndarray:
    r"""Exact :math:`V_i = E\|Q(x_i) - x_i\|^2` for every row of `x` (vectorized).

    Stochastic: ``sum_c (||x_c||^2 / s^2) sum_{k in c} f_k (1 - f_k)`` (one bucket:
    ``(||x||^2 / s^2) sum_k f_k (1 - f_k)``); sign: ``(d - 1) ||x||^2``; none: 0.
    Idle workers (0 bits) send nothing: 0.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    bits = np.asarray(bits)
    norm_sq = np.einsum("ij,ij->i", x, x)
    out = np.zeros(x.shape[0])
    if quantizer == "none":
        return out
    if quantizer == "sign":
        return np.where(bits > 0, (x.shape[1] - 1) * norm_sq, 0.0)
    active = (bits >= 2) & (norm_sq > 0)
    if not active.any():
        return out
    rows = x[active]
    s = np.asarray(levels(bits[active]), dtype=np.float64)
    norms = coordinate_norms(rows, bucket_size)
    y = s[:, None] * np.abs(rows) / np.where(norms > 0, norms, 1.0)
    f = y - np.floor(y)
    if norms.shape[1] == 1:
        out[active] = norm_sq[active] / s**2 * np.sum(f * (1.0 - f), axis=1)
    else:
        out[active] = np.sum(np.square(norms) * f * (1.0 - f), axis=1) / s**2
    return out


def resolve_kappa(policy, straggler_probs, budget: float, dim: int, *, c: float = 1.0) -> float:
    r"""The scaling :math:`\kappa` in :math:`\delta_i = \kappa\,\delta_{raw}(b_i)`.

    Parameters
    ----------
    policy : {"raw", "balanced", "none"} or float
        ``"raw"``: :math:`\kappa = 1` (the honest worst-case bound).
        ``"balanced"``: :math:`\kappa = c\,\bar p / \delta_{raw}(B/N)`, so the
        quantization term equals :math:`c\,\bar p` at the average bit width.
        ``"none"``: :math:`\kappa = 0` (no quantization modelled; the structure
        is then the unquantized optimum of OSGC).
        A float: used as given (must be finite and >= 0).
    c : float
        Constant of the balanced policy (default 1; the authors' code uses 0.005).
    """
    if isinstance(policy, numbers.Real) and not isinstance(policy, bool):
        kappa = float(policy)
        if not math.isfinite(kappa) or kappa < 0:
            raise InputError(f"`kappa` must be a finite number >= 0, got {policy!r}.")
        return kappa
    if isinstance(policy, str):
        try:
            return resolve_kappa(float(policy), straggler_probs, budget, dim, c=c)
        except ValueError:
            pass
    if policy not in KAPPA_POLICIES:
        raise InputError(
            f"Unknown kappa policy {policy!r}; choose one of: balanced, none, raw, or a number >= 0."
        )
    if policy == "raw":
        return 1.0
    if policy == "none":
        return 0.0
    c = float(c)
    if not math.isfinite(c) or c <= 0:
        raise InputError(f"`kappa_c` must be a finite number > 0, got {c!r}.")
    p = np.asarray(straggler_probs, dtype=np.float64)
    avg_bits = budget / p.size
    if avg_bits <= 1.0:
        raise InputError(f"the balanced kappa policy needs B / N > 1 bit, got {avg_bits!r}.")
    return c * float(p.mean()) / float(delta_raw(avg_bits, dim))


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or bits < 2:
        raise InputError(f"`bits` must be an integer >= 2, got {bits!r}.")
    return int(bits)
