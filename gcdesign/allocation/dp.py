r"""Exact dynamic programming over a utility table (docs/allocation.md, "Exact DP").

With ``steps[l] = levels[l] - levels[0]`` and the residual budget
``R = B - N levels[0]``,

.. math::

    F_i(r) = \max_{l:\, steps_l \le r} F_{i-1}(r - steps_l) + u_i(levels_l),
    \qquad F_0(0) = 0,\; F_0(r > 0) = -\infty,

and the optimum is :math:`F_N(R)`. Time :math:`O(N R L)` (``L = b_max - b_min + 1``,
the paper's :math:`O(N R^2)` with the step capped), memory one byte per
(worker, residual) for the argmax choices (two bytes if ``L > 127``) plus two
float64 rows. At N = 10^4, B = 4N: 2 x 10^8 bytes.

Works for any increasing level set (e.g. with the idle level 0 below
``b_min``). Ties go to the smallest level index of the last worker first.
"""

from __future__ import annotations

import numpy as np

from .._validate import InputError
from .registry import register_allocator


def dp_work(n: int, budget: int, levels) -> int:
    """The DP's work units ``N R L`` (workers x residual bits x levels) for `budget` over `levels`."""
    return n * (int(budget) - n * int(levels[0])) * len(levels)


def _choice_dtype(n_levels: int):
    return np.int8 if n_levels <= 127 else np.int16


def dp_solve(table: np.ndarray, levels: np.ndarray, budget: int) -> tuple[np.ndarray, float]:
    """Optimal level index per worker and the optimal value (numba kernel).

    Parameters
    ----------
    table : ndarray (N, L)
        Utilities ``table[i, l]`` of worker i at ``levels[l]``.
    levels : ndarray of int (L,)
        Increasing levels.
    budget : int
        ``sum_i levels[index_i]`` must equal this.
    """
    from ._kernels import dp_backtrack, dp_forward

    table = np.ascontiguousarray(table, dtype=np.float64)
    steps = np.asarray(levels, dtype=np.int64) - int(levels[0])
    residual = int(budget) - table.shape[0] * int(levels[0])
    choice = np.empty((table.shape[0], residual + 1), dtype=_choice_dtype(steps.size))
    value = dp_forward(table, steps, residual, choice)
    if value == -np.inf:  # no path: the choices off the reachable window were never written
        return np.zeros(table.shape[0], dtype=np.int64), float(value)
    return dp_backtrack(choice, steps, residual), float(value)


def dp_reference(table: np.ndarray, levels: np.ndarray, budget: int) -> tuple[np.ndarray, float]:
    """The same recurrence in plain numpy (readable, for tests): vectorized over r."""
    table = np.asarray(table, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.int64)
    n = table.shape[0]
    steps = levels - levels[0]
    residual = int(budget) - n * int(levels[0])
    value = np.full(residual + 1, -np.inf)
    value[0] = 0.0
    choices = np.zeros((n, residual + 1), dtype=np.int64)
    for i in range(n):
        new = np.full(residual + 1, -np.inf)
        for l, s in enumerate(steps):
            if s > residual:
                break
            candidate = np.full(residual + 1, -np.inf)
            candidate[s:] = value[: residual + 1 - s] + table[i, l]
            better = candidate > new
            new[better] = candidate[better]
            choices[i, better] = l
        value = new
    index = np.empty(n, dtype=np.int64)
    r = residual
    for i in range(n - 1, -1, -1):
        index[i] = choices[i, r]
        r -= steps[index[i]]
    return index, float(value[residual])


def dp(table: np.ndarray, levels: np.ndarray, budget: int, options: dict):
    """Registered solver ``"dp"``: exact; options: ``reference=True`` uses the numpy version.

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: Lemma 3 and section III-B1 (the optimal dynamic
       program); docs/math.md, section 6.
    """
    reference = bool(options.pop("reference", False))
    index, value = (dp_reference if reference else dp_solve)(table, levels, budget)
    if value == -np.inf:
        raise InputError(f"`budget` = {budget} cannot be written as a sum of N = {table.shape[0]} levels.")
    n_levels = levels.size
    return index, True, f"exact DP over {table.shape[0]} workers x {n_levels} levels"


register_allocator("dp", dp, options=("reference",))


__all__ = [
    "dp",
    "dp_reference",
    "dp_solve",
    "dp_work",
]
