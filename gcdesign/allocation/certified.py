r"""Certified exact allocation at scale: a Lagrangian bound and an exact core (docs/allocation.md,
"Certified").

The allocation ``max sum_i u_i(b_i)`` s.t. ``sum_i b_i = B`` is a separable knapsack. For a
multiplier :math:`\lambda`,

.. math::

    L(\lambda) = \lambda R + \sum_i \max_l \big(u_i(l) - \lambda s_l\big),
    \qquad s_l = levels_l - levels_0,\; R = B - N\,levels_0,

bounds the optimum from above (weak duality); its minimum is attained at the slope
:math:`\lambda^*` where the upper concave envelopes of the rows, taken segment by segment in
order of slope, spend exactly R bits. With the reduced cost
:math:`c_i(l) = \max_m (u_i(m) - \lambda^* s_m) - (u_i(l) - \lambda^* s_l) \ge 0`, every
allocation satisfies :math:`F(b) = L(\lambda^*) - \sum_i c_i(b_i)`. So an allocation whose
reduced costs total at most G beats every allocation in which some worker takes a level of
reduced cost above G. The solver therefore

1. finds :math:`\lambda^*` (a sample of the rows brackets it, one pass over every row collects
   the envelope segments inside the bracket, a sort of those pins it down);
2. in one more pass, every worker's Lagrangian level and the reduced cost of its runner-up;
3. for a threshold G (starting at the 16th smallest runner-up cost) lists the moves of reduced
   cost <= G off the Lagrangian levels, keeps of each shift (bits added or removed) only the m
   cheapest, m the most workers an allocation of cost <= G can move (its smallest runner-ups
   sum to G), and solves the deficit exactly by a DP over the workers those moves touch;
4. stops when that optimum costs at most G -- then it is the global optimum (any cheaper
   allocation would have been in the DP) -- and otherwise raises G (to the cost found, or
   fourfold) and repeats.

Every number is exact in float64 up to the rounding of the reduced costs themselves. If the
core grows beyond ``max_core_work`` DP cells before the proof closes, the result is the best
allocation found (the paper's heuristic when the core never became feasible) with the
remaining gap to the Lagrangian bound, and ``optimal`` is None.

Utilities come from a table or, through :func:`certified_from_utilities` (what
:func:`~gcdesign.allocation.allocate_bits` calls), straight from the straggler probabilities
and error factors: the N x L table (250 MB at N = 10^6) is never built.
"""

from __future__ import annotations

import numpy as np

from .._validate import InputError
from .registry import register_allocator

SAMPLE_ROWS = 20_000
"""Rows whose envelopes bracket the multiplier (every row up to 2.5x this many)."""

MAX_CORE_WORK = 200_000_000
"""Default cap on the core DP's cells (core workers x residual bits x options): about 0.2-0.4 s."""


def _empty_table():
    return np.zeros((0, 0))


def _multiplier(table, p, delta, steps, residual, sample_rows=SAMPLE_ROWS):
    """The minimizer of the Lagrangian bound: the slope of the envelope segment that spends bit R."""
    from ._kernels import bracket_segments, envelope_segments

    n = p.size
    if n <= 2.5 * sample_rows:
        slopes, lengths = envelope_segments(table, p, delta, steps, np.arange(n))
        return _crossing(slopes, lengths, 0, residual, np.inf)
    rows = np.unique(np.linspace(0, n - 1, sample_rows).round().astype(np.int64))
    slopes, lengths = envelope_segments(table, p, delta, steps, rows)
    order = np.argsort(-slopes, kind="stable")
    slopes, lengths = slopes[order], lengths[order]
    cum = np.cumsum(lengths) * (n / rows.size)  # estimated bits spent down to each slope
    margin = 0.02 * residual + 4 * steps[-1] * np.sqrt(n)
    for _ in range(40):
        hi_pos, lo_pos = residual - margin, residual + margin
        j_hi = int(np.searchsorted(cum, hi_pos, side="left"))
        j_lo = int(np.searchsorted(cum, lo_pos, side="left"))
        lam_hi = np.inf if hi_pos <= 0 or j_hi == 0 else float(slopes[j_hi - 1])
        lam_lo = -np.inf if j_lo >= slopes.size else float(slopes[j_lo])
        expected = (j_lo - j_hi + 1) * (n / rows.size)
        cap = int(min(max(4 * expected, 1 << 16), n * (steps.size - 1) + 1))
        above, seg_s, seg_l, overflow = bracket_segments(table, p, delta, steps, lam_lo, lam_hi, cap)
        inside = int(seg_l.sum())
        if above > residual:  # the bracket lies too high: widen it
            margin *= 4
            continue
        if above + inside < residual and not overflow:
            margin *= 4
            continue
        if overflow:
            margin /= 4
            continue
        return _crossing(seg_s, seg_l, above, residual, lam_hi)
    raise RuntimeError("no bracket of the Lagrange multiplier found")  # not reached in practice


def _crossing(slopes, lengths, above, residual, lam_hi):
    """The slope at which segments taken by decreasing slope (after `above` bits) reach `residual`."""
    if slopes.size == 0:
        return 0.0 if not np.isfinite(lam_hi) else float(lam_hi)
    order = np.argsort(-slopes, kind="stable")
    cum = above + np.cumsum(lengths[order])
    j = int(np.searchsorted(cum, residual, side="left"))
    return float(slopes[order[min(j, slopes.size - 1)]])


def certify(table, p, delta, levels, budget, *, max_core_work=MAX_CORE_WORK, incumbent=None):
    """Solve ``max sum_i u_i(levels[index_i])`` s.t. ``sum_i levels[index_i] = budget`` with a proof.

    Utilities come from `table` (N, L) or, when `table` is None, from ``(1 - p_i) / (p_i + delta_l)``.

    Returns ``(index, proven, info)``: the level index per worker, whether it is proven optimal,
    and a dict with the multiplier ``lam``, the Lagrangian bound ``bound`` (objective units), the
    solution's total reduced cost ``gap`` (``bound - objective``), the final threshold ``G``,
    the ``core`` size, the DP ``rounds`` and ``cells``. `incumbent` (a function returning level
    indices) is called when the proof does not close within `max_core_work`; the better of its
    allocation and the best one found is returned.
    """
    from ._kernels import cheap_moves, keep_cheapest, lagrangian_pass, shift_dp, solution_reduced_cost

    if table is None:
        table = _empty_table()
        p = np.ascontiguousarray(p, dtype=np.float64)
        delta = np.ascontiguousarray(delta, dtype=np.float64)
    else:
        table = np.ascontiguousarray(table, dtype=np.float64)
        p = np.zeros(table.shape[0])  # only its length is read
        delta = np.zeros(table.shape[1])
    levels = np.asarray(levels, dtype=np.int64)
    steps = levels - levels[0]
    n = p.size
    residual = int(budget) - n * int(levels[0])
    info = {"lam": None, "bound": None, "gap": 0.0, "G": 0.0, "core": 0, "rounds": 0, "cells": 0}
    if residual == 0 or residual == n * int(steps[-1]):  # a single feasible allocation
        index = np.full(n, 0 if residual == 0 else steps.size - 1, dtype=np.int64)
        return index, True, info
    lam = _multiplier(table, p, delta, steps, residual)
    best, top, runner_up, total = lagrangian_pass(table, p, delta, steps, lam)
    info.update(lam=lam, bound=lam * residual + total)
    best = best.astype(np.int64)
    target = residual - int(steps[best].sum())  # bits the moves must add (or remove, if < 0)
    # workers with two best levels (ties at the multiplier: identical workers) move up for free
    # until the deficit is smaller than one such move
    tied = np.flatnonzero(top != best)
    if tied.size and target > 0:
        up = steps[top[tied]] - steps[best[tied]]
        count = int(np.searchsorted(np.cumsum(up), target, side="right"))  # a prefix (up > 0)
        best[tied[:count]] = top[tied[:count]]
        target -= int(up[:count].sum())
    k = min(n, 16)
    threshold = float(np.partition(runner_up, k - 1)[k - 1])
    found, found_cost = None, np.inf
    proven = False
    while True:
        info["rounds"] += 1
        info["G"] = threshold
        loose = threshold * (1 + 1e-9)  # margins against the rounding of sums
        # at most `most` workers move in an allocation of total reduced cost <= G: each mover
        # costs at least its runner-up, and the `most` smallest runner-ups already sum to G
        small = np.sort(runner_up[runner_up <= loose])
        most = int(np.searchsorted(np.cumsum(small), loose, side="right"))
        worker, level, shift, cost = cheap_moves(table, p, delta, steps, lam, best, runner_up, loose)
        every_move = shift.size == n * (steps.size - 1) and most >= n
        # and at most 2 max(D, |target|) workers, D the largest shift: ordered so that their
        # partial sums stay within [-D, D] (a positive shift while the sum is <= 0, else a
        # negative one), more movers would repeat a partial sum, and the block between the two
        # repeats sums to 0 and can be dropped at no extra cost (ties among identical workers)
        most = min(most, 2 * max(int(np.abs(shift).max(initial=0)), abs(target)))
        # of the moves that shift a worker by the same number of bits only the `most` cheapest
        # matter: a mover outside them can hand its shift to one of them that does not move
        keep = keep_cheapest(shift, np.argsort(cost, kind="stable"), most)
        worker, level, shift, cost = worker[keep], level[keep], shift[keep], cost[keep]
        core, row = np.unique(worker, return_inverse=True)
        width = 1 + np.bincount(row, minlength=core.size)
        w = int(width.max()) if core.size else 1
        by_row = np.argsort(row, kind="stable")
        rows_sorted = row[by_row]
        slot = 1 + np.arange(row.size) - np.searchsorted(rows_sorted, rows_sorted)  # 0: stay
        shifts = np.zeros((core.size, w), dtype=np.int64)
        costs = np.zeros((core.size, w))
        levels_of = np.zeros((core.size, w), dtype=np.int64)
        shifts[rows_sorted, slot] = shift[by_row]
        costs[rows_sorted, slot] = cost[by_row]
        levels_of[rows_sorted, slot] = level[by_row]
        reach = int(np.abs(shifts).max(axis=1).sum()) if core.size else 0
        bound = max(min(most * int(np.abs(shift).max(initial=0)), reach), abs(target))
        cells = int(width.sum()) * (2 * bound + 1)
        info.update(core=int(core.size))
        if info["cells"] + cells > max_core_work:
            break
        info["cells"] += cells
        pick, cost_total = shift_dp(shifts, costs, width, target, bound)
        if cost_total < found_cost:
            found = best.copy()
            moved = pick > 0
            found[core[moved]] = levels_of[moved, pick[moved]]
            found_cost = float(cost_total)
        if found is not None and found_cost <= threshold:
            proven = True
            break
        if not np.isfinite(found_cost) and every_move:  # the DP saw every allocation: none spends B
            raise InputError(f"`budget` = {budget} cannot be written as a sum of N = {n} levels.")
        # no allocation within G: raise it (to the cost of one found, whose moves then all count)
        if np.isfinite(found_cost):
            threshold = found_cost
        else:  # fourfold, and at least to the k-th smallest positive runner-up (k = 16, 64, ...)
            positive = runner_up[runner_up > threshold]
            k = min(4 * k, positive.size)
            grown = float(np.partition(positive, k - 1)[k - 1]) if k else np.inf
            scale = 1e-12 * max(abs(info["bound"]), 1e-300)
            threshold = max(4 * threshold, min(grown, np.inf), scale)
    if not proven and incumbent is not None:
        other = np.asarray(incumbent(), dtype=np.int64)
        other_cost = float(solution_reduced_cost(table, p, delta, steps, lam, other))
        if other_cost < found_cost:
            found, found_cost = other, other_cost
    info["gap"] = found_cost
    return found, proven, info


def _message(info, proven: bool) -> str:
    if info["lam"] is None:
        return "certified: the budget admits a single allocation"
    bound = f"Lagrangian bound {info['bound']:.17g} at multiplier {info['lam']:.6g}"
    if proven:
        return (
            f"certified optimal: {bound}; the optimum is {info['gap']:.3g} below it, and a DP over a "
            f"core of {info['core']} workers covered every allocation within {info['G']:.3g} of it "
            f"({info['rounds']} round(s), {info['cells']} cells)"
        )
    return (
        f"not proven: {bound}; the last core tried ({info['core']} workers, reduced-cost threshold "
        f"{info['G']:.3g}) was past the DP's cell budget after {info['rounds']} round(s), "
        f"{info['cells']} cells; remaining gap to the bound {info['gap']:.3g}"
    )


FALLBACK_DP_WORK = 50_000_000
"""Up to this many DP work units ``N R L`` the fallback is the exact DP, above it the heuristic."""


def _fallback(table, levels, budget):
    """An allocation when the proof does not close (level indices): the exact DP where it is
    affordable (it also says when no allocation spends the budget), the paper's heuristic above."""
    from .dp import dp
    from .heuristic import heuristic

    n = table.shape[0]
    work = n * (int(budget) - n * int(levels[0])) * len(levels)
    index, _, _ = (dp if work <= FALLBACK_DP_WORK else heuristic)(table, np.asarray(levels), budget, {})
    return index


def _options(options: dict) -> int:
    work = options.pop("max_core_work", MAX_CORE_WORK)
    if isinstance(work, bool) or not isinstance(work, (int, np.integer)) or work < 0:
        raise InputError(f"certified option `max_core_work` must be an integer >= 0, got {work!r}.")
    return int(work)


def _result(index, proven, info):
    if index is None:  # no allocation found and no fallback
        raise InputError("the certified solver found no allocation that spends the budget.")
    gap = 0.0 if proven else info["gap"]
    return index, (True if proven else None), _message(info, proven), gap


def certified(table: np.ndarray, levels: np.ndarray, budget: int, options: dict):
    """Registered solver ``"certified"`` on a table. Option ``max_core_work`` (DP cells, default
    :data:`MAX_CORE_WORK`)."""
    work = _options(options)
    index, proven, info = certify(
        table,
        None,
        None,
        levels,
        budget,
        max_core_work=work,
        incumbent=lambda: _fallback(table, levels, budget),
    )
    return _result(index, proven, info)


def certified_from_utilities(p, delta, levels, budget: int, options: dict):
    """The same solver on utilities ``(1 - p_i) / (p_i + delta_l)`` without building the table."""
    from ..utility import utility_values

    def fallback():
        return _fallback(utility_values(np.asarray(p)[:, None], np.asarray(delta)[None, :]), levels, budget)

    work = _options(options)
    index, proven, info = certify(None, p, delta, levels, budget, max_core_work=work, incumbent=fallback)
    return _result(index, proven, info)


register_allocator(
    "certified", certified, options=("max_core_work",), from_utilities=certified_from_utilities
)


__all__ = [
    "MAX_CORE_WORK",
    "SAMPLE_ROWS",
    "certified",
    "certified_from_utilities",
    "certify",
]
