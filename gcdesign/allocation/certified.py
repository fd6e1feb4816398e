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

Identical workers (a hardware class: thousands of workers with the same straggler
probability, or the same table row) are interchangeable, so the solver works on classes with
counts: the multiplier weighs each class's envelope by its size, a class tied at the
multiplier moves up in bulk (part of it may: a subgroup of its own), and in the core a class
of ``c`` workers that may move offers each of its cheap moves up to ``min(c, m)`` times, as
rows of 1, 2, 4, ... copies (binary splitting of a bounded knapsack) when ``c`` is at least
the most movers an optimal allocation needs, else as one row per worker. Any DP solution that
takes more workers from a class than it has contains a block of moves whose shifts sum to 0;
dropping it costs nothing (reduced costs are >= 0), and what remains fits. The core is then a
few dozen rows whatever the class sizes.

The core DP minimizes the utility lost by the moves (every allocation it weighs spends the
same extra bits, so its reduced cost is that loss plus ``lam`` times the deficit): exact
where ``lam steps`` dwarfs the utilities and reduced costs round to whole units.

Two levels of a class whose Lagrangian values differ by rounding only (relative
:data:`~gcdesign.allocation._kernels.TIE_REL`) are tied: the multiplier is the slope of one
envelope segment and its two ends then agree to the last few bits.

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
from .common import evenly_spaced, slope_bracket
from .registry import register_allocator

SAMPLE_ROWS = 20_000
"""Rows whose envelopes bracket the multiplier (every row up to 2.5x this many)."""

MAX_CORE_WORK = 200_000_000
"""Default cap on the core DP's cells (core workers x residual bits x options): about 0.2-0.4 s."""


def _empty_table():
    return np.zeros((0, 0))


def _classes(table, p):
    """Workers with identical utilities, grouped: ``(rows, count, inverse)`` -- one worker per
    class (in the order of first appearance), the class sizes, and each worker's class; None
    when every worker is distinct. A class is a distinct straggler probability (utilities from
    ``(p, delta)``) or a distinct table row. Above 2.5 :data:`SAMPLE_ROWS` workers a sample of
    that many decides: no repeat in it, no grouping (a few repeats left ungrouped only
    make the core a little larger)."""
    if table.shape[0] > 0:
        key = np.ascontiguousarray(table).view(np.dtype((np.void, table.dtype.itemsize * table.shape[1])))
        key = key.ravel()
    else:
        key = p
    n = key.size
    sample_rows = SAMPLE_ROWS
    if n > 2.5 * sample_rows:
        sample = key[evenly_spaced(n, sample_rows)]
        if np.unique(sample).size == sample.size:
            return None
    _, first, inverse, count = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    if first.size == n:
        return None
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], count[order].astype(np.int64), rank[inverse.ravel()]


def _multiplier(table, p, delta, steps, residual, count):
    """The minimizer of the Lagrangian bound: the slope of the envelope segment that spends bit R.

    Row i stands for ``count[i]`` workers. Above 2.5 :data:`SAMPLE_ROWS` rows a sample brackets the
    slope: every row heavier than ``1 / SAMPLE_ROWS`` of the workers, and ``SAMPLE_ROWS`` of the
    others, weighted to stand for all of them."""
    from ._kernels import bracket_segments, envelope_segments

    n = count.size
    sample_rows = SAMPLE_ROWS
    if n <= 2.5 * sample_rows:
        slopes, lengths = envelope_segments(table, p, delta, steps, np.arange(n), count.astype(np.float64))
        return _crossing(slopes, lengths, 0, residual, np.inf)
    workers = int(count.sum())
    heavy = np.flatnonzero(count * sample_rows > workers)
    light = np.flatnonzero(count * sample_rows <= workers)
    sampled = light[evenly_spaced(light.size, sample_rows)]
    rows = np.concatenate([heavy, sampled])
    weight = np.concatenate([count[heavy], count[sampled] * (light.size / sampled.size)]).astype(np.float64)
    slopes, lengths = envelope_segments(table, p, delta, steps, rows, weight)
    order = np.argsort(-slopes, kind="stable")
    slopes, lengths = slopes[order], lengths[order]
    cum = np.cumsum(lengths)  # estimated bits spent down to each slope
    margin = 0.02 * residual + 4 * steps[-1] * np.sqrt(workers)
    for _ in range(40):
        lam_lo, lam_hi, between = slope_bracket(slopes, cum, residual - margin, residual + margin)
        expected = between * (n / rows.size)
        cap = int(min(max(4 * expected, 1 << 16), n * (steps.size - 1) + 1))
        above, seg_s, seg_l, overflow = bracket_segments(table, p, delta, steps, count, lam_lo, lam_hi, cap)
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


def _kth_smallest(values, count, k):
    """The k-th smallest (k >= 1) of `values`, value i repeated ``count[i]`` times."""
    if count is None:
        return float(np.partition(values, k - 1)[k - 1])
    order = np.argsort(values, kind="stable")
    j = int(np.searchsorted(np.cumsum(count[order]), k, side="left"))
    return float(values[order[min(j, order.size - 1)]])


def _most_movers(runner_up, count, loose, cap):
    """How many workers an allocation of total reduced cost <= `loose` can move, up to `cap`:
    each mover costs at least its runner-up, so the largest m <= cap whose m smallest
    runner-ups (with repeats) sum to at most `loose`."""
    if cap <= 0:
        return 0
    small = np.flatnonzero(runner_up <= loose)
    values = runner_up[small]
    if count is None:
        if values.size > cap:  # only the cap smallest matter
            values = np.partition(values, cap - 1)[:cap]
        return int(np.searchsorted(np.cumsum(np.sort(values)), loose, side="right"))
    order = np.argsort(values, kind="stable")
    values = values[order]
    sizes = count[small][order]
    spent = np.cumsum(values * sizes)
    j = int(np.searchsorted(spent, loose, side="right"))  # classes that fit whole
    most = int(sizes[:j].sum())
    if j < values.size:  # part of the next class (its runner-up is > 0: the sum went past loose)
        most += int(min(sizes[j], (loose - (spent[j - 1] if j else 0.0)) // values[j]))
    return min(most, cap)


def _core_rows(sub, level, shift, cost, copies, sub_count, movers):
    """The DP rows of the core: a subgroup of fewer than `movers` workers gives one row per worker
    that may move (each row: stay, or one of the subgroup's moves); a larger one gives, for each
    of its moves, rows of 1, 2, 4, ... copies (binary splitting of ``copies`` takes, each row:
    stay or take). Returns ``(shifts, costs, width, levels_of, row_sub, row_mult)``."""
    order = np.lexsort((level, sub))
    sub, level, shift, cost, copies = sub[order], level[order], shift[order], cost[order], copies[order]
    cores, first, per = np.unique(sub, return_index=True, return_counts=True)
    rows = []  # (subgroup, multiplicity, [(level, shift, cost), ...])
    for s, start, k in zip(cores.tolist(), first.tolist(), per.tolist(), strict=True):
        moves = list(
            zip(
                level[start : start + k].tolist(),
                shift[start : start + k].tolist(),
                cost[start : start + k].tolist(),
                copies[start : start + k].tolist(),
                strict=True,
            )
        )
        if sub_count[s] < movers or sub_count[s] == 1:
            options = [(lv, d, c) for lv, d, c, _ in moves]
            rows.extend((s, 1, options) for _ in range(min(int(sub_count[s]), sum(m[3] for m in moves))))
            continue
        for lv, d, c, m in moves:
            chunk = 1
            while m > 0:
                take = min(chunk, m)
                rows.append((s, take, [(lv, take * d, take * c)]))
                m -= take
                chunk *= 2
    w = 1 + max((len(r[2]) for r in rows), default=0)
    shifts = np.zeros((len(rows), w), dtype=np.int64)
    costs = np.zeros((len(rows), w))
    levels_of = np.zeros((len(rows), w), dtype=np.int64)
    width = np.ones(len(rows), dtype=np.int64)
    for j, (_, _, options) in enumerate(rows):
        width[j] = 1 + len(options)
        for k, (lv, d, c) in enumerate(options, start=1):
            shifts[j, k], costs[j, k], levels_of[j, k] = d, c, lv
    row_sub = np.array([r[0] for r in rows], dtype=np.int64)
    row_mult = np.array([r[1] for r in rows], dtype=np.int64)
    return shifts, costs, width, levels_of, row_sub, row_mult


def _core_rows_single(sub, level, shift, cost):
    """:func:`_core_rows` when every subgroup is one worker (vectorized: cores of many workers)."""
    core, row = np.unique(sub, return_inverse=True)
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
    return shifts, costs, width, levels_of, core, np.ones(core.size, dtype=np.int64)


def _drop_zero_blocks(moves, target):
    """Movers ``[(subgroup, level, shift, cost), ...]`` totalling `target`, with every block of
    movers whose shifts sum to 0 removed (at no extra cost: costs are >= 0): ordered so that the
    partial sums stay within the largest shift of [min(0, target), max(0, target)], at most
    ``2 max(D, |target|) + 1`` movers remain."""
    while True:
        ups = [m for m in moves if m[2] > 0]
        downs = [m for m in moves if m[2] < 0]
        ordered, partial, seen = [], 0, {0: 0}
        repeat = None
        while ups or downs:
            take = ups.pop() if (partial < target and ups) or not downs else downs.pop()
            ordered.append(take)
            partial += take[2]
            if partial in seen:
                repeat = (seen[partial], len(ordered))
                break
            seen[partial] = len(ordered)
        if repeat is None:
            return moves
        ordered.extend(ups + downs)
        moves = ordered[: repeat[0]] + ordered[repeat[1] :]


def certify(table, p, delta, levels, budget, *, max_core_work=MAX_CORE_WORK, incumbent=None):
    """Solve ``max sum_i u_i(levels[index_i])`` s.t. ``sum_i levels[index_i] = budget`` with a proof.

    Utilities come from `table` (N, L) or, when `table` is None, from ``(1 - p_i) / (p_i + delta_l)``.
    Workers with identical utilities (hardware classes) are solved as one class with a count.

    Returns ``(index, proven, info)``: the level index per worker, whether it is proven optimal,
    and a dict with the multiplier ``lam``, the Lagrangian bound ``bound`` (objective units), the
    solution's total reduced cost ``gap`` (``bound - objective``), the final threshold ``G``,
    the number of ``classes`` (N when no two workers are identical), the ``core`` size (classes
    or workers the DP saw), the DP ``rounds`` and ``cells``. `incumbent` (a function returning
    level indices) is called when the proof does not close within `max_core_work`; the better of
    its allocation and the best one found is returned.
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
    info = {"lam": None, "bound": None, "gap": 0.0, "G": 0.0, "workers": n, "classes": n, "core": 0}
    info.update(rounds=0, cells=0)
    if residual == 0 or residual == n * int(steps[-1]):  # a single feasible allocation
        index = np.full(n, 0 if residual == 0 else steps.size - 1, dtype=np.int64)
        return index, True, info
    classes = _classes(table, p)
    if classes is None:
        count, inverse = None, None
        ones = np.ones(n, dtype=np.int64)
        ctable, cp = table, p
    else:
        rows, count, inverse = classes
        ones = count
        ctable = table[rows] if table.shape[0] else table
        cp = p[rows]
    m = ones.size  # classes (rows of the problem)
    info["classes"] = m
    lam = _multiplier(ctable, cp, delta, steps, residual, ones)
    best, top, runner_up, total = lagrangian_pass(ctable, cp, delta, steps, lam, ones)
    info.update(lam=lam, bound=lam * residual + total)
    base = best.astype(np.int64)
    top = top.astype(np.int64)
    target = residual - int((steps[base] * ones).sum())  # bits the moves must add (or remove, if < 0)
    # classes with two best levels (ties at the multiplier) move up for free until the deficit
    # is smaller than one such move; of a class, part may move (a subgroup of its own)
    sub_group, sub_base, sub_count = np.arange(m), base, ones
    tied = np.flatnonzero(top != base)
    if tied.size and target > 0:
        up = steps[top[tied]] - steps[base[tied]]
        cum = np.cumsum(up * ones[tied])
        whole = int(np.searchsorted(cum, target, side="right"))  # a prefix (up > 0)
        base = base.copy()
        base[tied[:whole]] = top[tied[:whole]]
        target -= int(cum[whole - 1]) if whole else 0
        sub_base = base
        if whole < tied.size and target >= up[whole]:  # part of the next class
            g, k = int(tied[whole]), target // int(up[whole])
            sub_group = np.append(sub_group, g)
            sub_base = np.append(base, top[g])
            sub_count = np.append(ones, k)
            sub_count[g] -= k
            target -= k * int(up[whole])
    threshold = _kth_smallest(runner_up, count, min(n, 16))
    k_grow = 16
    found, found_cost = None, np.inf
    proven = False
    while True:
        info["rounds"] += 1
        info["G"] = threshold
        loose = threshold * (1 + 1e-9)  # margins against the rounding of sums
        sub, level, shift, cost, loss = cheap_moves(
            ctable, cp, delta, steps, lam, sub_group, sub_base, runner_up, loose
        )
        # at most 2 max(D, |target|) workers move, D the largest shift: ordered so that their
        # partial sums stay within [-D, D] (a positive shift while the sum is <= 0, else a
        # negative one), more movers would repeat a partial sum, and the block between the two
        # repeats sums to 0 and can be dropped at no extra cost (ties among identical workers)
        movers = 2 * max(int(np.abs(shift).max(initial=0)), abs(target))
        # and at most `most` of them (counted up to `movers`): each costs its runner-up or more
        most = _most_movers(runner_up, count, loose, movers)
        # the DP then sees every allocation (up to such dropped blocks), feasible or not
        every_move = shift.size == sub_group.size * (steps.size - 1) and most >= min(n, movers)
        # of the moves that shift a worker by the same number of bits only the `most` cheapest
        # matter: a mover outside them can hand its shift to one of them that does not move
        # (moves of one shift differ in reduced cost by their utility loss: the order of `loss`)
        copies = np.minimum(sub_count[sub], most)
        keep = keep_cheapest(shift, loss, most, copies)
        kept = keep > 0
        sub, level, shift, loss, copies = sub[kept], level[kept], shift[kept], loss[kept], keep[kept]
        # the DP minimizes the utility lost: every allocation it weighs spends `target` more bits,
        # so its reduced cost is that loss plus lam target (the same for all of them)
        if count is None:
            shifts, costs, width, levels_of, row_sub, row_mult = _core_rows_single(sub, level, shift, loss)
        else:
            shifts, costs, width, levels_of, row_sub, row_mult = _core_rows(
                sub, level, shift, loss, copies, sub_count, movers
            )
        reach = int(np.abs(shifts).max(axis=1).sum()) if row_sub.size else 0
        bound = max(min(most * int(np.abs(shift).max(initial=0)), reach), abs(target))
        cells = int(width.sum()) * (2 * bound + 1)
        info.update(core=int(np.unique(row_sub).size))
        if info["cells"] + cells > max_core_work:
            break
        info["cells"] += cells
        pick, lost = shift_dp(shifts, costs, width, target, bound)
        cost_total = lost + lam * target
        if cost_total < found_cost:
            chosen = np.flatnonzero(pick > 0)
            moves = [
                (
                    int(row_sub[j]),
                    int(levels_of[j, pick[j]]),
                    int(shifts[j, pick[j]]) // int(row_mult[j]),
                    float(costs[j, pick[j]]) / int(row_mult[j]),
                )
                for j in chosen
                for _ in range(int(row_mult[j]))
            ]
            moved = np.bincount([mv[0] for mv in moves], minlength=sub_count.size)
            if np.any(moved > sub_count):  # binary splitting took more than a class has
                moves = _drop_zero_blocks(moves, target)
            found = (m, sub_group, sub_base, sub_count, moves)
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
            k_grow = min(4 * k_grow, positive.size)
            grown = float(np.partition(positive, k_grow - 1)[k_grow - 1]) if k_grow else np.inf
            scale = 1e-12 * max(abs(info["bound"]), 1e-300)
            threshold = max(4 * threshold, min(grown, np.inf), scale)
    if found is not None:
        found = _spread(found, inverse)
    if not proven and incumbent is not None:
        other = np.asarray(incumbent(), dtype=np.int64)
        other_cost = float(solution_reduced_cost(table, p, delta, steps, lam, other))
        if other_cost < found_cost:
            found, found_cost = other, other_cost
    info["gap"] = found_cost
    return found, proven, info


def _spread(found, inverse):
    """Level index per worker from the subgroups' levels and the core's moves."""
    from ._kernels import spread_classes

    m, sub_group, sub_base, sub_count, moves = found
    if inverse is None:  # every subgroup is one worker
        index = sub_base.copy()
        for s, level, _, _ in moves:
            index[sub_group[s]] = level
        return index
    per_class = {}
    for s in range(m, sub_group.size):  # the part of a class that moved up (a second subgroup)
        per_class.setdefault(int(sub_group[s]), {})
    for s, _, _, _ in moves:
        per_class.setdefault(int(sub_group[s]), {})
    # the touched classes' subgroups: class g's first is subgroup g, a second one comes after m
    for s in [*per_class, *range(m, sub_group.size)]:
        held = per_class[int(sub_group[s])]
        held[int(sub_base[s])] = held.get(int(sub_base[s]), 0) + int(sub_count[s])
    for s, level, _, _ in moves:
        held = per_class[int(sub_group[s])]
        held[int(sub_base[s])] -= 1
        held[level] = held.get(level, 0) + 1
    if any(v < 0 for held in per_class.values() for v in held.values()):
        raise RuntimeError("certified: a class moved more workers than it has")  # a solver bug
    sizes = np.zeros(m + 1, dtype=np.int64)
    plan_level, plan_count = [], []
    for g in sorted(per_class):
        items = [(lv, c) for lv, c in sorted(per_class[g].items()) if c > 0]
        sizes[g + 1] = len(items)
        plan_level.extend(lv for lv, _ in items)
        plan_count.extend(c for _, c in items)
    index = sub_base[:m][inverse].astype(np.int64)
    return spread_classes(
        inverse,
        index,
        np.cumsum(sizes),
        np.array(plan_level, dtype=np.int64),
        np.array(plan_count, dtype=np.int64),
    )


def _message(info, proven: bool) -> str:
    if info["lam"] is None:
        return "certified: the budget admits a single allocation"
    bound = f"Lagrangian bound {info['bound']:.17g} at multiplier {info['lam']:.6g}"
    grouped = info["classes"] < info["workers"]
    unit = "classes" if grouped else "workers"
    classes = f" ({info['workers']} workers in {info['classes']} classes of identical utilities)"
    bound += classes if grouped else ""
    if proven:
        return (
            f"certified optimal: {bound}; the optimum is {info['gap']:.3g} below it, and a DP over a "
            f"core of {info['core']} {unit} covered every allocation within {info['G']:.3g} of it "
            f"({info['rounds']} round(s), {info['cells']} cells)"
        )
    return (
        f"not proven: {bound}; the last core tried ({info['core']} {unit}, reduced-cost threshold "
        f"{info['G']:.3g}) was past the DP's cell budget after {info['rounds']} round(s), "
        f"{info['cells']} cells; remaining gap to the bound {info['gap']:.3g}"
    )


FALLBACK_DP_WORK = 50_000_000
"""Up to this many DP work units ``N R L`` the fallback is the exact DP, above it the heuristic."""


def _fallback(table, levels, budget):
    """An allocation when the proof does not close (level indices): the exact DP where it is
    affordable (it also says when no allocation spends the budget), the paper's heuristic above."""
    from .dp import dp, dp_work
    from .heuristic import heuristic

    work = dp_work(table.shape[0], budget, levels)
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
