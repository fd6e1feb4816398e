r"""The paper's fast heuristic (Algorithm 1, Sec. III-B2; docs/allocation.md, "Heuristic").

Workers are sorted from most to least reliable. For every candidate size k of
the top-k set (the others stay at ``b_min``, or idle when an idle level is
allowed) the residual bits are split among the top k by

(a) Lagrangian water-filling of the continuous relaxation, rounded down and
    topped up bit by bit by marginal gain;
(b) an equal split (the remainder to the most reliable);

the better of (a) and (b) is refined by (c) 1-bit moves between workers while
any move gains, and the best candidate over k is returned.

The continuous relaxation interpolates the table linearly between levels, so
the heuristic serves any table. Maximizing ``u_i(x) - lambda x`` over such a
piecewise-linear ``u_i`` picks the vertices of its upper concave envelope whose
left slope exceeds lambda; the multiplier that spends exactly ``R`` bits is
found by ordering all envelope segments by slope once (exactly what bisection
on lambda converges to, without the iterations). Cost per k: one pass over the
segments, ``O(k T)`` for the top-up and ``O(N)`` per local-search move.
"""

from __future__ import annotations

import numpy as np

from .._validate import InputError
from . import register_allocator
from ._common import level_layout, reliability_order, residuals_by_k, to_level_index


def _prepare(table: np.ndarray, levels: np.ndarray, budget: int, method: str):
    layout = level_layout(levels, method)
    order = reliability_order(table, levels)
    active = np.ascontiguousarray(table[order, layout.offset :])
    n = table.shape[0]
    floor_value = table[order, 0]
    rest_value = np.zeros(n + 1)
    # utility of workers k..N-1 left at their floor level (base, or idle)
    rest_value[:n] = np.cumsum(floor_value[::-1])[::-1]
    ks, residuals = residuals_by_k(n, budget, layout)
    return layout, order, active, rest_value, ks, residuals


def sorted_segments(active: np.ndarray):
    """Envelope segments of every row, by decreasing slope (ties: more reliable, then lower t)."""
    from ._kernels import envelope_segments

    worker, start, length, slope = envelope_segments(active)
    order = np.lexsort((start, worker, -slope))
    return worker[order], start[order], length[order], slope[order]


def envelope_reference(row: np.ndarray) -> list[tuple[int, int]]:
    """Vertices ``(start, end)`` of the upper concave envelope of one row (plain Python)."""
    hull: list[int] = []
    for t in range(row.size):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b is dropped when it lies on or below the chord from a to t
            if (row[b] - row[a]) * (t - a) <= (row[t] - row[a]) * (b - a):
                hull.pop()
            else:
                break
        hull.append(t)
    return list(zip(hull[:-1], hull[1:], strict=True))


def local_search_reference(active: np.ndarray, t: np.ndarray, max_moves: int) -> int:
    """The 1-bit local search in numpy (O(k) per move; same moves and ties as the kernel)."""
    top = active.shape[1] - 1
    rows = np.arange(active.shape[0])
    tol = 1e-13 * max(float(np.max(np.abs(active))), 1e-300)
    moves = 0
    while moves < max_moves:
        up = np.where(t < top, active[rows, np.minimum(t + 1, top)] - active[rows, t], -np.inf)
        down = np.where(t > 0, active[rows, np.maximum(t - 1, 0)] - active[rows, t], -np.inf)
        j, i = int(np.argmax(up)), int(np.argmax(down))
        if up[j] == -np.inf or down[i] == -np.inf:
            break
        if i == j:
            up_rest, down_rest = up.copy(), down.copy()
            up_rest[j] = down_rest[i] = -np.inf
            j2, i2 = int(np.argmax(up_rest)), int(np.argmax(down_rest))
            options = [(up_rest[j2] + down[i], i, j2), (up[j] + down_rest[i2], i2, j)]
            gain, i, j = options[1] if options[1][0] > options[0][0] else options[0]
        else:
            gain = up[j] + down[i]
        if not gain > tol:
            break
        t[i] -= 1
        t[j] += 1
        moves += 1
    return moves


def _multipliers(slopes: np.ndarray, count: int = 256) -> np.ndarray:
    """A grid of multipliers for the dual bounds: quantiles of the envelope slopes."""
    if slopes.size == 0:
        return np.zeros(1)
    return np.unique(np.quantile(slopes, np.linspace(0.0, 1.0, count)))


def heuristic(table: np.ndarray, levels: np.ndarray, budget: int, options: dict):
    """Registered solver ``"heuristic"``.

    Options: ``refine`` (``"both"``, default: local search from both starts (a)
    and (b); ``"better"``: only from the better one, as in the paper),
    ``prune`` (default True: skip top-k sets whose Lagrangian upper bound
    cannot beat the best found), ``max_moves`` (cap on local-search moves per
    start, default ``N (b_max - b_min) + 1``).
    """
    from ._kernels import dual_bounds, heuristic_kernel

    n = table.shape[0]
    max_moves = options.pop("max_moves", None)
    refine = options.pop("refine", "both")
    if refine not in ("both", "better"):
        raise InputError(f"heuristic option `refine` must be 'both' or 'better', got {refine!r}.")
    prune = options.pop("prune", True)
    if not isinstance(prune, (bool, np.bool_)):
        raise InputError(f"heuristic option `prune` must be True or False, got {prune!r}.")
    layout, order, active, rest_value, ks, residuals = _prepare(table, levels, budget, "heuristic")
    if max_moves is None:
        max_moves = n * max(layout.top, 1) + 1
    if isinstance(max_moves, bool) or not isinstance(max_moves, (int, np.integer)) or max_moves < 0:
        raise InputError(f"heuristic option `max_moves` must be an integer >= 0, got {max_moves!r}.")
    worker, start, length, slope = sorted_segments(active)
    if prune:
        bounds = dual_bounds(active, _multipliers(slope), ks, residuals, rest_value)
        trial_order = np.argsort(-bounds, kind="stable")
    else:
        bounds = np.full(ks.size, np.inf)
        trial_order = np.arange(ks.size)
    t, k, moves, tried = heuristic_kernel(
        active,
        rest_value,
        ks,
        residuals,
        bounds,
        trial_order,
        worker,
        start,
        length,
        slope,
        int(max_moves),
        refine == "both",
    )
    in_use = np.arange(n) < k if layout.idle else np.ones(n, dtype=bool)
    index = np.empty(n, dtype=np.int64)
    index[order] = to_level_index(t, in_use, layout)
    return (
        index,
        None,
        f"heuristic: best top-k set k = {k}; {tried} of {ks.size} candidate sets evaluated, "
        f"{moves} local-search moves",
    )


register_allocator("heuristic", heuristic, options=("max_moves", "refine", "prune"))
