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
segments, ``O(k T)`` for the top-up and ``O(log k)`` per local-search move.

Above N = 200 workers the default (``scan="auto"``) is the windowed scan: the
exact relaxation of every candidate in one Fenwick-tree pass, then only the
candidates near the end of each run of "new" ones (plus a geometric grid),
pruned by that bound (docs/allocation.md, "Scaling: the windowed scan").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import InputError
from .common import (
    evenly_spaced,
    level_layout,
    residuals_by_k,
    rest_values,
    slope_bracket,
    to_level_index,
    top_k_setup,
)
from .registry import register_allocator


@dataclass(frozen=True)
class SegmentOrder:
    """The envelope segments of every row, by decreasing slope (ties: more reliable, then lower t).

    Segment r of worker w runs from ``vert[w, r]`` to ``vert[w, r + 1]`` (r <
    ``count[w]``) and has the id ``w << rbits | r``; ``ids`` lists them in order.
    Nothing else is stored: slopes are recomputed from the table by one formula
    (:func:`~gcdesign.allocation._kernels.segment_slope`), 6 bytes per segment
    instead of 32 (at N = 10^6 workers x 30 levels: 150 MB instead of 770 MB).
    """

    vert: np.ndarray
    count: np.ndarray
    ids: np.ndarray
    rbits: int


def segment_order(active: np.ndarray) -> SegmentOrder:
    """Sort the envelope segments of `active` (numba: envelopes, then a bucket sort on exact slope keys)."""
    from ._kernels import envelope_vertices, sorted_segment_ids

    n, width = active.shape
    vert, count = envelope_vertices(active)
    rbits = max(1, int(width - 2).bit_length())
    ibits = max(1, int(n - 1).bit_length()) + rbits
    if ibits > 62:
        raise InputError(f"the table is too large for the heuristic: {n} workers x {width} levels.")
    ids = np.empty(int(count.sum()), dtype=np.int32 if ibits <= 31 else np.int64)
    sorted_segment_ids(active, vert, count, rbits, ids)
    return SegmentOrder(vert, count, ids, rbits)


def sorted_segments(active: np.ndarray, order: SegmentOrder | None = None):
    """Envelope segments of every row as arrays ``(worker, start, length, slope)``, by decreasing slope."""
    order = segment_order(active) if order is None else order
    ids = order.ids.astype(np.int64)
    worker = ids >> order.rbits
    r = ids & ((1 << order.rbits) - 1)
    start = order.vert[worker, r].astype(np.int64)
    end = order.vert[worker, r + 1].astype(np.int64)
    slope = (active[worker, end] - active[worker, start]) / (end - start)
    return worker, start, end - start, slope


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


def greedy_top_up_reference(active: np.ndarray, t: np.ndarray, k: int, bits: int) -> None:
    """:func:`~gcdesign.allocation._kernels.greedy_top_up` in numpy: each bit to the largest next gain."""
    top = active.shape[1] - 1
    rows = np.arange(k)
    for _ in range(bits):
        gain = np.where(t[:k] < top, active[rows, np.minimum(t[:k] + 1, top)] - active[rows, t[:k]], -np.inf)
        t[int(np.argmax(gain))] += 1  # argmax: the first of equal gains, the smaller row


def dual_bounds_reference(active, lambdas, ks, residuals, rest_value) -> np.ndarray:
    """:func:`~gcdesign.allocation._kernels.dual_bounds` in numpy, one multiplier at a time.

    ``bound_k(lambda) = lambda R_k + sum_{i<k} max_t (U_i(t) - lambda t) + rest_value[k]``,
    the smallest over `lambdas`.
    """
    steps = np.arange(active.shape[1])
    bound = np.full(ks.size, np.inf)
    for lam in lambdas:
        prefix = np.cumsum(np.max(active - lam * steps, axis=1))
        bound = np.minimum(bound, lam * residuals + prefix[ks - 1] + rest_value[ks])
    return bound


def heuristic_kernel_reference(active, rest_value, ks, residuals, bounds, order, segments, max_moves, both):
    """:func:`~gcdesign.allocation._kernels.heuristic_kernel` in plain numpy, step by step.

    `segments` are the arrays ``(worker, start, length, slope)`` of
    :func:`sorted_segments`; the other arguments and the result are the kernel's.
    """
    n, width = active.shape
    top = width - 1
    best_value, best_k, best_t = -np.inf, -1, np.zeros(n, dtype=np.int64)
    moves = tried = 0
    worker, start, length, slope = segments

    def total(values):  # summed left to right, as the kernel does
        return float(np.cumsum(values)[-1]) if values.size else 0.0

    def objective(t, k):
        return total(active[np.arange(k), t[:k]])

    def beats(bound):
        return not bound <= best_value + 1e-12 * abs(best_value)

    for c in order:
        if not beats(bounds[c]):
            break  # candidates come by decreasing bound: none after this one can win
        tried += 1
        k, budget = int(ks[c]), int(residuals[c])
        # (a) water-filling: whole envelope segments of the top k by slope, the partial one dropped
        t_a = np.zeros(n, dtype=np.int64)
        filled, gain, partial = 0, 0.0, 0.0
        for w, s, length_s, slope_s in zip(worker, start, length, slope, strict=True):
            if filled == budget:
                break
            if w >= k:
                continue
            if filled + length_s > budget:
                partial = (budget - filled) * slope_s
                break
            t_a[w] = s + length_s
            filled += length_s
            gain += length_s * slope_s
        relaxed = total(active[:k, 0]) + gain + partial + rest_value[k]
        if not beats(relaxed):
            continue  # the relaxation bounds this candidate: it cannot win
        greedy_top_up_reference(active, t_a, k, budget - filled)
        # (b) equal split of the residual, the remainder to the most reliable
        q, extra = divmod(budget, k)
        t_b = np.zeros(n, dtype=np.int64)
        t_b[:k] = np.minimum(q + (np.arange(k) < extra), top)
        if not both and objective(t_a, k) < objective(t_b, k):
            t_a = t_b.copy()
        # (c) 1-bit local search on the better start, or on both
        for t in (t_a, t_b) if both else (t_a,):
            sub = t[:k].copy()
            moves += local_search_reference(active[:k], sub, max_moves)
            t[:k] = sub
            value = objective(t, k) + rest_value[k]
            if value > best_value or (value == best_value and k < best_k):
                best_value, best_k = value, k
                best_t = np.zeros(n, dtype=np.int64)
                best_t[:k] = t[:k]
    return best_t, best_k, moves, tried


def relaxation_by_k_reference(n, ks, residuals, seg_worker, seg_len, seg_slope):
    """:func:`~gcdesign.allocation._kernels.relaxation_by_k` by a plain scan per candidate."""
    gain = np.zeros(ks.size)
    used = np.zeros(ks.size, dtype=bool)
    for c, (k, budget) in enumerate(zip(ks, residuals, strict=True)):
        filled, total, touched = 0, 0.0, set()
        for w, length, slope in zip(seg_worker, seg_len, seg_slope, strict=True):
            if filled == budget:
                break
            if w >= k:
                continue
            touched.add(int(w))
            if filled + length > budget:
                total += (budget - filled) * slope
                break
            filled += length
            total += length * slope
        gain[c] = total
        used[c] = k - 1 in touched
    return gain, used


def windowed_candidates(new: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Which candidates the windowed search tries, and their distance to the last new one.

    Candidate c is *new* (``new[c]``) when its least reliable worker takes part
    in the water-filling or its residual differs from the one of candidate
    c - 1. A candidate that is not new starts (a) from the same relaxation as
    the one before it and has the same relaxation bound, so bounds cannot prune
    the (often long) run of such candidates when the relaxation is not tight.
    The search keeps every new candidate (they are pruned by bound), the
    ``window`` candidates after each new one, a geometric grid further out
    (distances ``window * 2^j``) and the last candidate.
    """
    m = new.size
    idx = np.arange(m)
    last_new = np.maximum.accumulate(np.where(new, idx, -1))
    dist = idx - last_new  # distance to the last new candidate (idx + 1 when none yet)
    ratio = dist // window
    grid = (dist % window == 0) & (ratio > 0) & ((ratio & (ratio - 1)) == 0)
    eligible = new | (dist <= window) | grid | (idx == m - 1)
    return eligible, dist


def dual_multipliers(slopes: np.ndarray, count: int = 256) -> np.ndarray:
    """A grid of multipliers for the dual bounds: quantiles of the envelope slopes."""
    if slopes.size == 0:
        return np.zeros(1)
    return np.unique(np.quantile(slopes, np.linspace(0.0, 1.0, count)))


FULL_SCAN_MAX_N = 200
"""Up to this many workers ``scan="auto"`` tries every top-k candidate (the paper's scan)."""


def heuristic(table: np.ndarray, levels: np.ndarray, budget: int, options: dict):
    """Registered solver ``"heuristic"``.

    Options: ``refine`` (``"both"``, default: local search from both starts (a)
    and (b); ``"better"``: only from the better one, as in the paper),
    ``prune`` (default True: skip top-k sets whose Lagrangian upper bound
    cannot beat the best found), ``max_moves`` (cap on local-search moves per
    start, default ``N (b_max - b_min) + 1``), ``scan`` (``"auto"``, default:
    ``"full"`` up to N = 200 workers, ``"windowed"`` above; ``"full"``: every
    candidate set, as in the paper; ``"windowed"``: see
    :func:`windowed_candidates`), ``window`` (default 8).

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: Algorithm 1 (section III-B2, the low-complexity
       allocation); docs/math.md, section 6.
    """
    n = table.shape[0]
    opts = _options(options, n)
    layout, order, active, rest_value, ks, residuals = top_k_setup(table, levels, budget, "heuristic")
    lazy = opts["scan"] == "windowed" and opts["prune"] and not layout.idle
    none = np.zeros(0)
    t, k, moves, tried = _scan(active, none, none, lazy, layout, opts, ks, residuals, rest_value)
    return _result(t, k, moves, tried, layout, order, opts["scan"], ks)


def heuristic_from_utilities(p, delta, levels, budget: int, options: dict):
    """The heuristic on utilities ``(1 - p_i) / (p_i + delta_l)``: the same result as on their
    table, which is built only where the scan needs it (the full scan, the idle level, or a
    fallback of the windowed one); the windowed scan reads the utilities it needs."""
    from ..utility import utility_values
    from ._kernels import argsort_nonnegative

    p = np.asarray(p, dtype=np.float64)
    delta = np.asarray(delta, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.int64)
    n = p.size
    given = dict(options)
    opts = _options(options, n)
    layout = level_layout(levels, "heuristic")
    order = argsort_nonnegative(p)  # by reliability (the utility falls with p); stable
    p_sorted = np.ascontiguousarray(p[order])
    lazy = opts["scan"] == "windowed" and opts["prune"] and not layout.idle
    if lazy:
        positive = np.flatnonzero(levels > 0)
        first = utility_values(p_sorted, delta[int(positive[0]) if positive.size else 0])
        lazy = bool(np.all(first[1:] <= first[:-1]))  # else the table's order (ties by row) differs
    if not lazy:  # the table, rows by increasing p (as allocate_bits hands them to the table solver)
        index, optimal, message = heuristic(
            utility_values(p_sorted[:, None], delta[None, :]), levels, budget, given
        )
        out = np.empty(n, dtype=np.int64)
        out[order] = index
        return out, optimal, message
    ks, residuals = residuals_by_k(n, budget, layout)
    t, k, moves, tried = _scan(np.zeros((0, 0)), p_sorted, delta, True, layout, opts, ks, residuals, None)
    return _result(t, k, moves, tried, layout, order, opts["scan"], ks)


def _options(options: dict, n: int) -> dict:
    """The heuristic's options, checked (see :func:`heuristic`); `options` is emptied."""
    max_moves = options.pop("max_moves", None)
    refine = options.pop("refine", "both")
    if refine not in ("both", "better"):
        raise InputError(f"heuristic option `refine` must be 'both' or 'better', got {refine!r}.")
    prune = options.pop("prune", True)
    if not isinstance(prune, (bool, np.bool_)):
        raise InputError(f"heuristic option `prune` must be True or False, got {prune!r}.")
    scan = options.pop("scan", "auto")
    if scan not in ("auto", "full", "windowed"):
        raise InputError(f"heuristic option `scan` must be 'auto', 'full' or 'windowed', got {scan!r}.")
    window = options.pop("window", 8)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise InputError(f"heuristic option `window` must be an integer >= 1, got {window!r}.")
    if isinstance(max_moves, bool) or not (max_moves is None or isinstance(max_moves, (int, np.integer))):
        raise InputError(f"heuristic option `max_moves` must be an integer >= 0, got {max_moves!r}.")
    if max_moves is not None and max_moves < 0:
        raise InputError(f"heuristic option `max_moves` must be an integer >= 0, got {max_moves!r}.")
    if scan == "auto":
        scan = "full" if n <= FULL_SCAN_MAX_N else "windowed"
    return {"max_moves": max_moves, "both": refine == "both", "prune": bool(prune), "scan": scan,
            "window": int(window)}  # fmt: skip


def _scan(table, p, delta, lazy, layout, opts, ks, residuals, rest_value):
    """``(t, k, moves, tried)`` of the scan `opts` names: the sort-free windowed scan
    (:func:`_lazy_scan`) when `lazy`, else the sorted one on the table (built from ``p``,
    ``delta`` when `table` is empty)."""
    from ..utility import utility_values

    n = table.shape[0] or p.size
    width = layout.top + 1
    max_moves = opts["max_moves"]
    max_moves = int(n * max(layout.top, 1) + 1 if max_moves is None else max_moves)
    if lazy:
        try:
            return _lazy_scan(table, p, delta, n, width, ks, int(residuals[0]), max_moves, opts["both"],
                              opts["window"])  # fmt: skip
        except _Fallback:
            pass
    if not table.shape[0]:
        table = utility_values(p[:, None], delta[None, layout.offset :])
    if rest_value is None:
        rest_value = rest_values(table[:, 0])
    run = _windowed if opts["scan"] == "windowed" else _full_scan
    return run(table, rest_value, ks, residuals, segment_order(table), max_moves, opts["both"], opts["prune"],
               opts["window"])  # fmt: skip


def _result(t, k, moves, tried, layout, order, scan, ks):
    n = t.size
    in_use = np.arange(n) < k if layout.idle else np.ones(n, dtype=bool)
    index = np.empty(n, dtype=np.int64)
    index[order] = to_level_index(t, in_use, layout)
    return (
        index,
        None,
        f"heuristic ({scan} scan): best top-k set k = {k}; {tried} of {ks.size} candidate sets "
        f"evaluated, {moves} local-search moves",
    )


def _full_scan(active, rest_value, ks, residuals, segments, max_moves, both, prune, window):
    """The paper's scan over every candidate, in order of a dual bound (pruned when `prune`)."""
    from ._kernels import dual_bounds, heuristic_kernel

    seg = (segments.vert, segments.ids, segments.rbits)
    if prune:
        slope = sorted_segments(active, segments)[3]
        bounds = dual_bounds(active, dual_multipliers(slope), ks, residuals, rest_value)
        trial_order = np.argsort(-bounds, kind="stable")
    else:
        bounds = np.full(ks.size, np.inf)
        trial_order = np.arange(ks.size)
    return heuristic_kernel(active, rest_value, ks, residuals, bounds, trial_order, *seg, max_moves, both)


def _windowed(active, rest_value, ks, residuals, segments, max_moves, both, prune, window):
    """The scaled search (docs/allocation.md, "Scaling"): exact relaxation bounds for every
    candidate in one pass, then only the candidates of :func:`windowed_candidates`, in order of
    decreasing bound (pruned when `prune`); if the best one lies on the geometric grid, its
    neighbours are tried too, until the best stays put."""
    from ._kernels import heuristic_kernel, relaxation_by_k

    if np.any(np.diff(residuals) > 0):  # a solver bug, not bad input
        raise RuntimeError("relaxation_by_k needs residuals that do not grow with k")
    seg = (segments.vert, segments.ids, segments.rbits)
    gain, used = relaxation_by_k(active, segments.vert, segments.count, *seg[1:], ks, residuals)
    base_prefix = np.concatenate([[0.0], np.cumsum(active[:, 0])])
    bounds = base_prefix[ks] + gain + rest_value[ks] if prune else np.full(ks.size, np.inf)
    # with an idle level the residual changes with k, and so does the relaxation: every candidate is new
    new = used | np.concatenate([[True], residuals[1:] != residuals[:-1]])
    eligible, dist = windowed_candidates(new, window)
    chosen = np.flatnonzero(eligible)
    trial_order = chosen[np.argsort(-bounds[chosen], kind="stable")]
    t, k, moves, tried = heuristic_kernel(
        active, rest_value, ks, residuals, bounds, trial_order, *seg, max_moves, both
    )

    def value(t, k):
        return float(active[np.arange(k), t[:k]].sum() + rest_value[k])

    best = value(t, k)
    seen = eligible.copy()
    while True:
        c = int(np.searchsorted(ks, k))
        if dist[c] <= window:
            break
        near = np.arange(max(c - window, 0), min(c + window + 1, ks.size))
        near = near[~seen[near]]
        if near.size == 0:
            break
        seen[near] = True
        t2, k2, moves2, tried2 = heuristic_kernel(
            active, rest_value, ks, residuals, np.full(ks.size, np.inf), near, *seg, max_moves, both
        )
        moves += moves2
        tried += tried2
        v2 = value(t2, k2)
        if not v2 > best:
            break
        t, k, best = t2, k2, v2
    return t, k, moves, tried


# ------------------------------------------------------ the windowed scan without a segment sort
BRACKET_SAMPLE = 2048
"""Rows (evenly spaced in the reliability order) whose envelopes estimate the multiplier's bracket."""


def _bracket(table, p, delta, rows, width, residual, widen):
    """Multipliers ``lam_lo < lam_hi`` around the slope at which the water-filling of the top-`rows`
    set spends `residual` bits, with room below for the relaxations of smaller sets, and a
    capacity for the segments between them: estimated from the envelopes of BRACKET_SAMPLE rows
    evenly spaced in the order of reliability (within 3e-4 R of the true count at N = 10^5 and
    10^6 on paper-like and random profiles; the margin is ten times that, plus T sqrt(N))."""
    from ._kernels import envelope_segments

    top = width - 1
    if rows <= BRACKET_SAMPLE:
        sample = np.arange(rows)
        margin = 0.0
    else:
        sample = evenly_spaced(rows, BRACKET_SAMPLE)
        margin = 0.003 * residual + top * np.sqrt(rows)
    factor = rows / sample.size
    margin = (margin + top) * widen
    room = (64 * top + 0.001 * residual) * widen
    slopes, lengths = envelope_segments(
        table, p, delta, np.arange(width), sample, np.full(sample.size, factor)
    )
    order = np.argsort(-slopes, kind="stable")
    slopes = slopes[order]
    cum = np.cumsum(lengths[order])
    lam_lo, lam_hi, between = slope_bracket(slopes, cum, residual - margin, residual + margin + room)
    cap = int(min(max(4 * between * factor, 1 << 12) * widen, rows * top + 1))
    return lam_lo, lam_hi, cap


def _utilities_of(table, p, delta, t, k):
    """``u_i(t_i)`` of rows 0..k-1 (numpy; the same numbers as the kernels' ``utility_at``)."""
    if table.shape[0]:
        return table[np.arange(k), t[:k]]
    from ..utility import utility_values

    return utility_values(p[:k], delta[t[:k]])


class _Fallback(Exception):
    """The sort-free scan cannot settle the instance (its bracket ran out): use the sorted one."""


def _relaxation_of_all(table, p, delta, n, width, rows, residual):
    """The water-filling relaxation of the top-`rows` set from one pass over the rows (the
    segments of slope inside a bracket around its multiplier sorted, the others only counted)."""
    from ._kernels import envelope_pass, take_segments

    for attempt in range(5):
        lam_lo, lam_hi, cap = _bracket(table, p, delta, rows, width, residual, 4.0**attempt)
        vert = np.empty((rows, width), dtype=np.int8 if width <= 128 else np.int16)
        count, taken, scale, base, above_bits, total, comp, absum, slope, worker, seg, length, over = (
            envelope_pass(table, p, delta, n, vert, lam_lo, lam_hi, cap)
        )
        if over or above_bits > residual:
            continue
        order = np.argsort(-slope, kind="stable")  # listed by (worker, segment): ties stay so
        cum = above_bits + np.cumsum(length[order])
        j = int(np.searchsorted(cum, residual, side="right"))  # the first segment left out
        if j < order.size:
            break
    else:
        raise _Fallback
    worker, seg, length, slope = worker[order], seg[order], length[order], slope[order]
    total, comp = take_segments(worker, length, slope, 0, j, taken, total, comp)
    absum += float(np.abs(length[:j] * slope[:j]).sum())
    filled = int(cum[j - 1]) if j else int(above_bits)
    some = taken[::-1] > 0
    last = int(np.argmax(some))  # from the end: the last row the relaxation reaches
    reached = n - last if some[last] else 0
    return {
        "reached": reached,
        "vert": vert,
        "count": count,
        "taken": taken,
        "scale": scale,
        "base": base,
        "worker": worker,
        "seg": seg,
        "length": length,
        "slope": slope,
        "absum": absum,
        "j": j,
        "filled": filled,
        "total": total,
        "comp": comp,
    }


def _lazy_scan(table, p, delta, n, width, ks, residual, max_moves, both, window):
    """The windowed scan of :func:`_windowed` (its candidates, order, bounds and result) without
    the table, the segment sort or the relaxation of every candidate (docs/allocation.md, "Without
    the table").

    Every candidate from the last *new* one, c*, on shares the water-filling relaxation of the
    largest candidate set: one pass over the rows finds it (:func:`_relaxation_of_all`) and with
    it c* (one more than the last worker it reaches). Candidates below c* come in only when their
    bound might beat the incumbent: their relaxations follow from c*'s by taking one worker out at
    a time (:func:`~gcdesign.allocation._kernels.relaxation_step_down`), and, since relaxations
    grow with k, the last one computed bounds all below it. Raises :class:`_Fallback` where the
    bracket is too narrow for that.

    `table` is the (N, T + 1) table with rows by reliability, or empty with ``p`` sorted and
    ``delta`` the T + 1 error factors. Returns ``(t, k, moves, tried)`` like
    :func:`~gcdesign.allocation._kernels.heuristic_kernel`.
    """
    import heapq

    from ._kernels import prefix_sums, refine_candidate, relaxation_step_down, water_filling_start

    top = width - 1
    ks0, m = int(ks[0]), ks.size
    if residual in (0, n * top):  # one allocation: every worker at the base, or at the top
        return np.full(n, 0 if residual == 0 else top, dtype=np.int64), ks0, 0, 1
    rel = _relaxation_of_all(table, p, delta, n, width, int(ks[-1]), residual)
    vert, taken = rel["vert"], rel["taken"]
    worker, seg, length, slope = rel["worker"], rel["seg"], rel["length"], rel["slope"]
    j_n = rel["j"]

    def gain_of(j, filled, total, comp):
        gain = total + comp
        rem = residual - filled
        if rem > 0:
            if j >= worker.size:
                raise _Fallback
            gain += rem * slope[j]
        return gain

    def used(k, j, filled):
        """Whether worker k - 1 gets bits in the relaxation of the top-k set (below c*)."""
        w = k - 1
        if taken[w] + extra[w] > 0:
            return True
        return residual > filled and j < worker.size and worker[j] == w and seg[j] == 0

    gain_n = gain_of(j_n, rel["filled"], rel["total"], rel["comp"])
    # c*: the candidate of the last worker the relaxation reaches (its first segment may be the
    # partial one); after it every candidate adds a worker without bits: no new relaxation
    k_star = rel["reached"]
    if residual > rel["filled"] and seg[j_n] == 0:
        k_star = max(k_star, int(worker[j_n]) + 1)
    c_star = max(0, k_star - ks0)
    base_prefix, rest_value = prefix_sums(rel["base"])

    def bound(c, gain):
        k = ks0 + c
        return float(base_prefix[k] + gain + rest_value[k])

    def on_grid(dist):
        ratio = dist // window
        return dist % window == 0 and ratio > 0 and (ratio & (ratio - 1)) == 0

    start = {}  # c -> (end of the bracket segments taken, bits filled) of its water-filling
    heap = []
    above = [c_star + d for d in range(window + 1)]
    d = 2 * window
    while c_star + d < m:
        above.append(c_star + d)
        d *= 2
    for c in sorted({c for c in above if c < m} | {m - 1}):
        start[c] = (rel["j"], rel["filled"])
        heap.append((-bound(c, gain_n), c))
    heapq.heapify(heap)
    # below c*: computed from the top down, one at a time, while their bound might count
    floors = []  # the largest base_prefix[k] + rest_value[k] up to each candidate (made once needed)
    low = {key: rel[key] for key in ("j", "filled", "total", "comp")}
    low.update(c=c_star, gain=gain_n)
    extra = np.zeros(n, dtype=np.int16)
    pending = []  # (bound, c): computed, not new; eligible or not by the next new one below
    dist_below = {}  # c -> distance to the last new candidate at or below it

    def unknown_bound():  # of the candidates below low["c"]: relaxations grow with k
        c = low["c"]
        if c == 0:
            return -np.inf
        if not floors:
            floors.append(np.maximum.accumulate(base_prefix[ks] + rest_value[ks]))
        floor = floors[0]
        slack = 1e-14 * (abs(floor[c - 1]) + abs(low["gain"]) + rel["absum"])
        return float(floor[c - 1] + low["gain"] + slack)

    def step_down():
        c = low["c"]
        j, filled, total, comp = relaxation_step_down(
            table, p, delta, vert, taken, extra, worker, length, slope,
            low["j"], ks0 + c, residual, low["filled"], low["total"], low["comp"],
        )  # fmt: skip
        if j >= worker.size and filled < residual:
            raise _Fallback
        gain = gain_of(j, filled, total, comp)
        c -= 1
        low.update(c=c, gain=gain, j=j, filled=filled, total=total, comp=comp)
        start[c] = (j, filled)
        b = bound(c, gain)
        if c == 0 or used(ks0 + c, j, filled):
            dist_below[c] = 0
            for b2, c2 in pending:
                dist_below[c2] = c2 - c
                if c2 - c <= window or on_grid(c2 - c):
                    heapq.heappush(heap, (-b2, c2))
            pending.clear()
            heapq.heappush(heap, (-b, c))
        else:
            pending.append((b, c))

    def evaluate(c):
        k = ks0 + c
        j, filled = start[c]
        t_a = np.zeros(n, dtype=np.int64)
        t_b = np.zeros(n, dtype=np.int64)
        water_filling_start(vert, taken, worker, seg, rel["j"], j, k, t_a)
        value_a, value_b, moves = refine_candidate(
            table, p, delta, top, t_a, t_b, k, residual, filled, rel["scale"][k - 1], max_moves, both
        )
        return k, ((t_a, value_a), (t_b, value_b))[: 2 if both else 1], moves

    best_value, best_k, best_t = -np.inf, -1, np.zeros(n, dtype=np.int64)
    moves = tried = 0
    while True:
        threshold = best_value + 1e-12 * abs(best_value)
        head = heap[0] if heap else None
        waiting = min(pending, key=lambda e: (-e[0], e[1])) if pending else None
        ub = unknown_bound()
        largest = max(ub, -head[0] if head else -np.inf, waiting[0] if waiting else -np.inf)
        if largest <= threshold:
            break  # the next candidate in order cannot beat the incumbent
        if (waiting and (head is None or (-waiting[0], waiting[1]) < head)) or (
            low["c"] > 0 and (head is None or ub >= -head[0])
        ):
            step_down()
            continue
        heapq.heappop(heap)
        tried += 1
        k, results, mv = evaluate(head[1])
        moves += mv
        for t, v in results:
            value = v + rest_value[k]
            if value > best_value or (value == best_value and k < best_k):
                best_value, best_k, best_t = value, k, t

    # the best on the geometric grid: its neighbours too, until the best stays put
    def value_of(t, k):
        return float(_utilities_of(table, p, delta, t, k).sum() + rest_value[k])

    t, k = best_t, best_k
    best = None
    seen = set(start)
    while True:
        c = k - ks0
        dist = c - c_star if c >= c_star else dist_below.get(c, window + 1)
        if dist <= window:
            break
        if best is None:
            best = value_of(t, k)
        if c < c_star:
            raise _Fallback  # a grid point below c* (not met in practice)
        near = [c2 for c2 in range(max(c - window, 0), min(c + window + 1, m)) if c2 not in seen]
        if not near:
            break
        seen.update(near)
        local, local_k, local_t = -np.inf, -1, None
        for c2 in near:
            tried += 1
            if bound(c2, gain_n) <= local + 1e-12 * abs(local):
                continue
            start[c2] = (rel["j"], rel["filled"])
            k2, results, mv = evaluate(c2)
            moves += mv
            for t2, v in results:
                value = v + rest_value[k2]
                if value > local or (value == local and k2 < local_k):
                    local, local_k, local_t = value, k2, t2
        v2 = value_of(local_t, local_k)
        if not v2 > best:
            break
        t, k, best = local_t, local_k, v2
    return t, k, moves, tried


register_allocator(
    "heuristic",
    heuristic,
    options=("max_moves", "refine", "prune", "scan", "window"),
    sorts_by_reliability=True,
    from_utilities=heuristic_from_utilities,
)


__all__ = [
    "FULL_SCAN_MAX_N",
    "SegmentOrder",
    "dual_bounds_reference",
    "dual_multipliers",
    "envelope_reference",
    "greedy_top_up_reference",
    "heuristic",
    "heuristic_from_utilities",
    "heuristic_kernel_reference",
    "local_search_reference",
    "relaxation_by_k_reference",
    "segment_order",
    "sorted_segments",
    "windowed_candidates",
]
