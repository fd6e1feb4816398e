"""The one stochastic-rounding routine of the numba kernels (Monte Carlo, codec, training).

:func:`stochastic_level` rounds one coordinate of the stochastic quantizer (with the one clip
rule, to ``s``) and :func:`sign_draw` draws one sign of the sign quantizer; the Monte-Carlo
kernel (:mod:`gcdesign._mc_kernels`) and the codec kernels (:mod:`gcdesign._codec_kernels`,
the wire codes and the training harness's rows) call them, and numba inlines them there.
Their numpy twins are :func:`gcdesign.quantization.stochastic_levels` and the sign branch
of :func:`gcdesign.quantization.quantize_rows`. They live apart from
:mod:`gcdesign.quantization`, the quantizer spec, so that ``import gcdesign`` does not import
numba.
An edit here invalidates the cached kernels that call these functions
(:func:`gcdesign._jit.kernel_sources_stamp`).
"""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit(inline="always")
def stochastic_level(magnitude, s, norm, u):  # pragma: no cover - compiled; twin: stochastic_levels
    r"""The level :math:`\min(\lfloor y \rfloor + [u < y - \lfloor y \rfloor], s)`, ``y = |x| (s / norm)``.

    `magnitude` is ``|x_k| <= norm`` (``norm > 0``), `u` the coordinate's uniform draw. The
    clip to `s` only acts when rounding puts ``y`` a hair above ``s`` (``|x_k|`` equal to or
    within an ulp of the norm, and ``u`` below that hair: probability about 2^-51).
    Every numba kernel (Monte Carlo, codec, training) rounds with this function; its numpy
    twin is :func:`stochastic_levels`. ``y`` is ``|x|`` times the reciprocal ``s / norm``, not
    ``s |x| / norm``: in a kernel's loop over a bucket the division is loop-invariant and
    leaves the loop (1.3-1.4x per draw in the Monte-Carlo kernel); the two differ in the
    last bit of ``y`` at most, and the numpy twin computes the same product.
    """
    y = magnitude * (s / norm)
    low = np.floor(y)
    xi = low + 1.0 if u < y - low else low
    return s if xi > s else xi  # NaN stays NaN, as in np.minimum


@njit(inline="always")
def sign_draw(x, norm, u):  # pragma: no cover - compiled; twin: the sign branch of quantize_rows
    """The sign quantizer's draw: True (send ``+norm``) when ``u < (1 + x / norm) / 2``."""
    return u < 0.5 * (1.0 + x / norm)
