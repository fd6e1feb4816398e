"""Simple allocation baselines on a utility table (docs/allocation.md, "Baselines").

All of them handle a table whose levels are consecutive integers, optionally
preceded by one idle level. With an idle level, ``equal``, ``greedy`` and
``relaxation`` keep as many workers active as the budget allows (the least
reliable go idle only when ``B < N b_min``); ``topk-equal`` chooses the number
of active workers.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_bit_range, check_budget
from .common import (
    LevelLayout,
    level_layout,
    reliability_order,
    residuals_by_k,
    to_level_index,
    top_k_setup,
)
from .registry import register_allocator

__all__ = ["equal", "equal_bits", "equal_offsets", "greedy", "relaxation", "reliability_order", "topk_equal"]


def _most_active(n: int, budget: int, layout: LevelLayout) -> tuple[int, int]:
    """Largest feasible number m of active workers (N without an idle level) and their residual."""
    ks, residuals = residuals_by_k(n, budget, layout)
    if not layout.idle:
        return n, int(residuals[0])
    return int(ks[-1]), int(residuals[-1])


def equal_offsets(m: int, residual: int, n: int) -> np.ndarray:
    """The equal split of `residual` bits over the first m of n positions (the one split).

    ``floor(residual / m)`` each, one more for the first ``residual mod m``
    (positions are in reliability order); positions m..n-1 get 0.
    """
    q, extra = divmod(residual, m)
    t = np.zeros(n, dtype=np.int64)
    t[:m] = q
    t[:extra] += 1
    return t


def equal_bits(straggler_probs, budget, *, b_min: int = 2, b_max: int = 32) -> np.ndarray:
    """Equal split of a budget by straggler probability: the one used by every baseline scheme.

    ``floor(B / N)`` bits each, one more for the ``B mod N`` most reliable
    workers (smallest p; ties by index): :func:`equal_offsets` above ``b_min``.

    Raises
    ------
    InputError
        Unless ``N b_min <= B <= N b_max`` (``b_max`` at most 62; 32 by default,
        the float32 a message would otherwise be).

    Examples
    --------
    >>> equal_bits([0.3, 0.1, 0.2, 0.1], 10)
    array([2, 3, 2, 3])
    """
    p = np.asarray(straggler_probs, dtype=np.float64)
    b_min, b_max = check_bit_range(b_min, b_max)
    n = p.size
    budget = check_budget(budget, n, b_min, b_max)
    bits = np.empty(n, dtype=np.int64)
    bits[np.argsort(p, kind="stable")] = b_min + equal_offsets(n, budget - n * b_min, n)
    return bits


def _finish(order, t, m, layout, n):
    active = np.arange(n) < m
    index = np.empty(n, dtype=np.int64)
    index[order] = to_level_index(t, active, layout)
    return index


def equal(table: np.ndarray, levels: np.ndarray, budget: int, options: dict):
    """Equal split: every worker gets floor(B / N); the remainder goes to the most reliable."""
    n = table.shape[0]
    layout = level_layout(levels, "equal")
    order = reliability_order(table, levels)
    m, residual = _most_active(n, budget, layout)
    t = equal_offsets(m, residual, n)
    idle = f", {n - m} idle" if m < n else ""
    q, extra = divmod(residual, m)
    return (
        _finish(order, t, m, layout, n),
        None,
        f"equal split: {layout.base + q} bits each, +1 for the {extra} most reliable{idle}",
    )


def greedy(table: np.ndarray, levels: np.ndarray, budget: int, options: dict):
    """Greedy by marginal gain: from ``b_min`` each, every next bit to the largest gain."""
    from ._kernels import greedy_kernel

    n = table.shape[0]
    layout = level_layout(levels, "greedy")
    order = reliability_order(table, levels)
    m, residual = _most_active(n, budget, layout)
    active = np.ascontiguousarray(table[order, layout.offset :])
    t = greedy_kernel(active, m, residual)
    return _finish(order, t, m, layout, n), None, f"greedy by marginal gain over {m} active workers"


def relaxation_offsets(active: np.ndarray, m: int, residual: int) -> np.ndarray:
    """Continuous relaxation then largest-remainder rounding, for the first m rows of `active`.

    The relaxation interpolates each row linearly between levels; its Lagrangian
    solution fills the segments of the upper concave envelopes in order of
    slope. Segments whose slope ties the multiplier share the last bits in
    proportion to their length, so identical workers get identical fractions.
    Floors first, then one bit each to the largest fractional parts (ties: the
    more reliable).
    """
    from .heuristic import sorted_segments

    n = active.shape[0]
    worker, start, length, slope = sorted_segments(np.ascontiguousarray(active[:m]))
    x = np.zeros(n)
    if residual > 0:
        cum = np.cumsum(length)
        pos = int(np.searchsorted(cum, residual))  # first segment that reaches the residual
        lam = slope[pos]
        full = slope > lam
        tie = slope == lam
        np.add.at(x, worker[full], length[full])
        left = residual - int(length[full].sum())
        share = left * length[tie] / length[tie].sum()
        np.add.at(x, worker[tie], share)
    t = np.floor(x + 1e-9).astype(np.int64)
    frac = x - t
    extra = residual - int(t.sum())
    if extra > 0:
        # largest remainder first; ties to the more reliable (smaller row)
        pick = np.lexsort((np.arange(n), -frac))[:extra]
        t[pick] += 1
    return t


def relaxation(table: np.ndarray, levels: np.ndarray, budget: int, options: dict):
    """Continuous relaxation (Lagrangian water-filling) plus largest-remainder rounding."""
    n = table.shape[0]
    layout = level_layout(levels, "relaxation")
    order = reliability_order(table, levels)
    m, residual = _most_active(n, budget, layout)
    active = table[order, layout.offset :]
    t = relaxation_offsets(active, m, residual)
    return (
        _finish(order, t, m, layout, n),
        None,
        f"continuous relaxation + largest remainder over {m} active workers",
    )


def topk_equal(table: np.ndarray, levels: np.ndarray, budget: int, options: dict):
    """Best over k of: the k most reliable share the residual equally, the rest stay at the floor."""
    n = table.shape[0]
    layout, order, active, rest_value, ks, residuals = top_k_setup(table, levels, budget, "topk-equal")
    q, extra = np.divmod(residuals, ks)
    # prefix sums over workers of every column: value of rows [0, j) at offset c
    prefix = np.zeros((n + 1, active.shape[1] + 1))
    prefix[1:, : active.shape[1]] = np.cumsum(active, axis=0)
    value = prefix[extra, q + 1] + (prefix[ks, q] - prefix[extra, q]) + rest_value[ks]
    best = int(np.argmax(value))
    k = int(ks[best])
    t = equal_offsets(k, int(residuals[best]), n)
    return _finish(order, t, k, layout, n), None, f"top-k equal: best k = {k}"


register_allocator("equal", equal)
register_allocator("greedy", greedy)
register_allocator("relaxation", relaxation)
register_allocator("topk-equal", topk_equal)
