"""The one stochastic-rounding routine of the numba kernels (Monte Carlo, codec, training).

:func:`stochastic_level` rounds one coordinate of the stochastic quantizer (with the one clip
rule, to ``s``) and :func:`sign_draw` draws one sign of the sign quantizer; the codec kernels
(:mod:`gcdesign._codec_kernels`, the wire codes and the training harness's rows) call them,
the Monte-Carlo kernel (:mod:`gcdesign._mc_kernels`) their parts (see *Thresholds*), and
numba inlines them there.
Their numpy twins are :func:`gcdesign.quantization.stochastic_levels` and the sign branch
of :func:`gcdesign.quantization.quantize_rows`. They live apart from
:mod:`gcdesign.quantization`, the quantizer spec, so that ``import gcdesign`` does not import
numba.
An edit here invalidates the cached kernels that call these functions
(:func:`gcdesign._jit.kernel_sources_stamp`).

**Thresholds.** A draw compares a uniform ``u = m 2^-53`` of the counter-based stream (``m``
its 53 bits, :func:`gcdesign._mc_kernels.uniform_bits`) with a probability ``p``:
``u < p`` exactly when ``m < ceil(p 2^53)`` (``m`` is an integer and scaling by a power of
two is exact). The Monte-Carlo kernel, whose messages do not change from round to round,
computes :func:`draw_threshold` of every coordinate's ``p`` once (the fractional part of
:func:`stochastic_split`, or :func:`sign_probability`) and then draws by one integer
comparison; the draws are those of :func:`stochastic_level` and :func:`sign_draw`, bit
for bit.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

TWO_53 = 9007199254740992.0  # 2^53: the uniforms are multiples of 2^-53


@njit(inline="always")
def stochastic_split(magnitude, ratio):  # pragma: no cover - compiled; twin: stochastic_levels
    """``(floor(y), y - floor(y))`` for ``y = magnitude * ratio``, ``ratio = s / norm``."""
    y = magnitude * ratio
    low = np.floor(y)
    return low, y - low


@njit(inline="always")
def stochastic_level(magnitude, s, norm, u):  # pragma: no cover - compiled; twin: stochastic_levels
    r"""The level :math:`\min(\lfloor y \rfloor + [u < y - \lfloor y \rfloor], s)`, ``y = |x| (s / norm)``.

    `magnitude` is ``|x_k| <= norm`` (``norm > 0``), `u` the coordinate's uniform draw. The
    clip to `s` only acts when rounding puts ``y`` a hair above ``s`` (``|x_k|`` equal to or
    within an ulp of the norm, and ``u`` below that hair: probability about 2^-51).
    The codec and training kernels round with this function, the Monte-Carlo kernel with
    its parts (:func:`stochastic_split`, then :func:`draw_threshold` of the fractional
    part); its numpy twin is :func:`stochastic_levels`. ``y`` is ``|x|`` times the
    reciprocal ``s / norm``, not ``s |x| / norm``: in a kernel's loop over a bucket the
    division is loop-invariant and leaves the loop; the two differ in the last bit of ``y``
    at most, and the numpy twin computes the same product.
    """
    low, frac = stochastic_split(magnitude, s / norm)
    return clip_level(low + 1.0 if u < frac else low, s)


@njit(inline="always")
def clip_level(xi, s):  # pragma: no cover - compiled
    """``min(xi, s)``, the one clip rule (a NaN level stays NaN, as in ``np.minimum``)."""
    return s if xi > s else xi


@njit(inline="always")
def sign_draw(x, norm, u):  # pragma: no cover - compiled; twin: the sign branch of quantize_rows
    """The sign quantizer's draw: True (send ``+norm``) when ``u < (1 + x / norm) / 2``."""
    return u < sign_probability(x, norm)


@njit(inline="always")
def sign_probability(x, norm):  # pragma: no cover - compiled
    """The probability ``(1 + x / norm) / 2`` that the sign quantizer sends ``+norm``."""
    return 0.5 * (1.0 + x / norm)


@njit(inline="always")
def draw_threshold(p):  # pragma: no cover - compiled
    """The integer ``t`` (uint64) with ``m 2^-53 < p`` exactly when ``m < t``, for every ``m < 2^53``.

    ``ceil(p 2^53)``, clipped to ``[0, 2^53]`` (NaN gives 0: a NaN probability draws False, as
    ``u < NaN`` does).
    """
    f = np.ceil(p * TWO_53)
    if f > 0.0:
        return np.uint64(f if f < TWO_53 else TWO_53)
    return np.uint64(0)
