r"""Stochastic quantization with b bits per coordinate (docs/math.md, section 2).

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
NORM_BITS = 32  # the norm travels as one float32


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


def quantize(x, bits: int, *, rng=None) -> np.ndarray:
    """Stochastic b-bit quantization of the vector `x` (numpy reference).

    Returns the dequantized vector :math:`Q_b(x)` (float64). ``bits >= 2``;
    ``bits = 1`` is the sign quantizer of :func:`quantize_sign`.
    """
    bits = _check_bits(bits)
    rng = np.random.default_rng(rng)
    x = np.asarray(x, dtype=np.float64)
    norm = float(np.linalg.norm(x))
    if norm == 0.0:
        return np.zeros_like(x)
    s = float(levels(bits))
    y = s * np.abs(x) / norm
    low = np.floor(y)
    xi = low + (rng.random(x.shape) < (y - low))
    return norm * np.sign(x) * xi / s


def quantization_variance(x, bits: int) -> float:
    r"""Exact :math:`E\|Q_b(x) - x\|^2 = (\|x\|^2 / s^2) \sum_k f_k (1 - f_k)`."""
    bits = _check_bits(bits)
    x = np.asarray(x, dtype=np.float64)
    norm2 = float(x @ x)
    if norm2 == 0.0:
        return 0.0
    s = float(levels(bits))
    y = s * np.abs(x) / math.sqrt(norm2)
    f = y - np.floor(y)
    return norm2 / s**2 * float(np.sum(f * (1.0 - f)))


def quantize_sign(x, *, rng=None) -> np.ndarray:
    r"""1-bit sign quantizer: :math:`\|x\| h_k`, :math:`P(h_k = 1) = (1 + x_k/\|x\|)/2`."""
    rng = np.random.default_rng(rng)
    x = np.asarray(x, dtype=np.float64)
    norm = float(np.linalg.norm(x))
    if norm == 0.0:
        return np.zeros_like(x)
    h = np.where(rng.random(x.shape) < 0.5 * (1.0 + x / norm), 1.0, -1.0)
    return norm * h


def sign_quantization_variance(x) -> float:
    r"""Exact variance of the sign quantizer.

    :math:`E\|Q(x)-x\|^2 = \sum_k (\|x\|^2 - x_k^2) = (d - 1)\|x\|^2`.
    """
    x = np.asarray(x, dtype=np.float64)
    return float((x.size - 1) * (x @ x))


def payload_bits(bits, dim: int) -> np.ndarray | int:
    """Bits one message occupies: the norm (32 bits) plus ``b`` bits per coordinate.

    Idle workers (``b = 0``) send nothing.
    """
    b = np.asarray(bits, dtype=np.int64)
    out = np.where(b > 0, NORM_BITS + b * dim, 0)
    return int(out) if out.ndim == 0 else out


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
