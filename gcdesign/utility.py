r"""The worker utility :math:`u_i = (1 - p_i) / (p_i + \delta_i)` (docs/math.md, section 3).

One home for the quantity that both the bit allocation (upstream: it
maximizes :math:`\sum_i u_i(b_i)`) and the optimal structure (downstream: the
masses are :math:`K u_i / S`) are built on.
"""

from __future__ import annotations

import numpy as np

from ._validate import InputError, probabilities, real_array


def utilities(straggler_probs, delta) -> np.ndarray:
    r"""Worker utilities :math:`(1 - p_i) / (p_i + \delta_i)`; 0 where ``p_i = 1`` or ``delta_i = inf``.

    `straggler_probs` is N probabilities in [0, 1]; `delta` one number >= 0 or N of them
    (``inf``: an idle worker). Both are checked here, the public boundary;
    :func:`utility_values` is the unchecked core the allocators call on their tables.

    Raises
    ------
    InputError
        For a bad input (named by position), or if some worker has ``p_i = 0`` and
        ``delta_i = 0`` (infinite utility).
    """
    p = probabilities("straggler_probs", straggler_probs)
    d = real_array("delta", delta, ndim=None, low=0, finite=False)
    if d.ndim > 1 or (d.ndim == 1 and d.shape != p.shape):
        raise InputError(
            f"`delta` must be one number or {p.size} of them (one per worker), got shape {d.shape}."
        )
    return utility_values(p, d)


def utility_values(straggler_probs, delta) -> np.ndarray:
    """:func:`utilities` without the checks (broadcasting arrays the caller has validated)."""
    p = np.asarray(straggler_probs, dtype=np.float64)
    delta = np.asarray(delta, dtype=np.float64)
    # one full-size array (the denominator, then the result in place): at N = 10^6 workers
    # x 31 levels the utility table is 250 MB and every temporary of that size counts
    denom = np.asarray(p + delta)
    zero = denom == 0.0
    if zero.any():
        i = int(np.argwhere(zero)[0][0]) if zero.ndim else 0
        raise InputError(
            f"worker {i} has straggler probability 0 and quantization error 0: its utility "
            "is infinite. Use a quantization model other than 'none', or give it p > 0."
        )
    del zero
    with np.errstate(invalid="ignore"):
        u = np.divide(1.0 - p, denom, out=denom)
    idle = ~np.isfinite(delta)  # delta = inf: an idle worker (or a level of 0 bits)
    if idle.any():
        u[np.broadcast_to(idle, u.shape)] = 0.0
    return u


__all__ = [
    "utilities",
]
