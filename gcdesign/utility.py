r"""The worker utility :math:`u_i = (1 - p_i) / (p_i + \delta_i)` (docs/math.md, section 3).

One home for the quantity that both the bit allocation (upstream: it
maximizes :math:`\sum_i u_i(b_i)`) and the optimal structure (downstream: the
masses are :math:`K u_i / S`) are built on.
"""

from __future__ import annotations

import numpy as np

from ._validate import InputError


def utilities(straggler_probs, delta) -> np.ndarray:
    r"""Worker utilities :math:`(1 - p_i) / (p_i + \delta_i)`; 0 where ``p_i = 1`` or ``delta_i = inf``.

    Raises
    ------
    InputError
        If some worker has ``p_i = 0`` and ``delta_i = 0`` (infinite utility).
    """
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
