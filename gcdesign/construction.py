r"""Sparse constructions of the optimal code (docs/math.md, section 5).

Given worker masses :math:`Y_i` (summing to K), build nonnegative weights
:math:`\alpha_{ij}` with row sums :math:`Y_i` and column sums 1.

* :func:`segment_layout` lays the masses end to end on [0, K] and gives
  worker i the overlap of its interval with each unit segment: at most
  N + K - 1 nonzeros, O(N + K) time, fully vectorized.
* :func:`hub_layout` is the layout of the authors' released code (K = N
  only), with the same load but negative weights when :math:`Y_i < 1`.
* :func:`decompose` views :math:`\alpha` as a bipartite graph (networkx) and
  returns its connected components; every component of a segment layout is a
  tree, so nnz = N + K - components.
* :func:`group_workers` orders the workers so that as many prefix sums of the
  masses as possible are whole numbers (exact MILP for small N, greedy for
  large N); the segment layout in that order splits into that many components.
* :func:`closest_segment_layout` picks the worker order, the start of the axis
  and which partition sits in which slot (the segment layout's free choices)
  that keep the most (worker, partition) pairs of a previous layout: the layout
  of a redesign that moves the least data
  (docs/math.md, section 13); :func:`closest_layout` polishes it by a MILP on
  its pairs and the old ones, and :func:`closest_layout_milp` without that
  restriction is the reference optimum over every layout (small N).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._validate import InputError

SNAP_TOL = 1e-9  # prefix sums this close to an integer are treated as integers


def segment_layout(row_mass, partitions: int, *, order=None, offset: float = 0.0, snap_tol: float = SNAP_TOL):
    """Segment-overlap construction: CSR matrix (N x K) with row sums `row_mass`.

    Parameters
    ----------
    row_mass : array_like (N,)
        Nonnegative masses summing to `partitions` (to rounding).
    partitions : int
        K.
    order : array_like of int, optional
        Order of the workers on the axis (a permutation of 0..N-1).
    offset : float
        Where the first worker's segment starts, in [0, K): the axis is a circle
        of length K and the segment that crosses K continues at 0 (at most one
        more nonzero than ``offset = 0``). Column sums stay 1.
    snap_tol : float
        Interior boundaries within this distance of an integer are moved onto
        it, saving one nonzero each (and splitting the graph).

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: section III-A, the closed-form sparse
       construction after Lemma 2, and section V-C (its sparsity); docs/math.md, section 5.

    Examples
    --------
    >>> segment_layout([1.5, 1.0, 0.5], 3).toarray().tolist()
    [[1.0, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 0.5]]
    >>> segment_layout([1.5, 1.0, 0.5], 3, offset=1.0).toarray().tolist()
    [[0.0, 1.0, 0.5], [0.5, 0.0, 0.5], [0.5, 0.0, 0.0]]
    """
    if offset:
        return _wrapped_segment_layout(row_mass, partitions, order, float(offset), snap_tol)
    y = np.asarray(row_mass, dtype=np.float64)
    n = y.size
    order = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
    bounds = np.empty(n + 1)
    bounds[0] = 0.0
    np.cumsum(y[order], out=bounds[1:])
    bounds[-1] = partitions
    nearest = np.rint(bounds)
    snap = np.abs(bounds - nearest) <= snap_tol
    bounds[snap] = nearest[snap]
    np.maximum.accumulate(bounds, out=bounds)  # guard monotonicity against rounding
    lo, hi = bounds[:-1], bounds[1:]
    first = np.minimum(np.floor(lo), partitions - 1).astype(np.int64)
    last = np.ceil(hi).astype(np.int64) - 1
    count = np.where(hi > lo, last - first + 1, 0)
    total = int(count.sum())
    starts = np.cumsum(count) - count
    pos = np.repeat(np.arange(n), count)  # position on the axis
    cols = np.repeat(first, count) + (np.arange(total) - np.repeat(starts, count))
    vals = np.minimum(hi[pos], cols + 1.0) - np.maximum(lo[pos], cols)
    keep = vals > 0
    rows = order[pos[keep]]
    return sp.csr_array((vals[keep], (rows, cols[keep])), shape=(n, partitions))


def _wrapped_segment_layout(row_mass, partitions, order, offset, snap_tol) -> sp.csr_array:
    """The segment layout started at `offset` on a circle of length K: a layout on [0, 2K)
    with two placeholder segments (``offset`` before, ``K - offset`` after), folded mod K."""
    y = np.asarray(row_mass, dtype=np.float64)
    n = y.size
    order = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
    offset = offset % partitions
    masses = np.concatenate([[offset], y[order], [partitions - offset]])
    wide = sp.coo_array(segment_layout(masses, 2 * partitions, snap_tol=snap_tol))
    real = (wide.row >= 1) & (wide.row <= n)
    rows = order[wide.row[real] - 1]
    cols = wide.col[real] % partitions
    out = sp.csr_array((wide.data[real], (rows, cols)), shape=(n, partitions))  # duplicates summed
    out.sum_duplicates()
    return out


def layout_pairs(encoding) -> set:
    """The (worker, partition) pairs that hold data: the layout of docs/math.md, section 16."""
    enc = sp.coo_array(encoding)
    keep = enc.data != 0
    return set(zip(enc.row[keep].tolist(), enc.col[keep].tolist(), strict=True))


def moved_partitions(previous, encoding) -> int:
    r"""Partition copies a move from `previous` to `encoding` needs: :math:`|L_{new} \setminus L_{old}|`."""
    return len(layout_pairs(encoding) - layout_pairs(previous))


def _moved_count(previous_mask: sp.csr_array, encoding: sp.csr_array) -> int:
    """:func:`moved_partitions` with sparse arithmetic (the search evaluates hundreds of layouts)."""
    new = _pattern(encoding, np.int8)
    return int(new.nnz - new.multiply(previous_mask).nnz)


def segment_geometry(encoding) -> tuple[np.ndarray, float]:
    """The worker order and the offset of a segment layout (what :func:`segment_layout` was given).

    Workers are sorted by their first partition (a segment that wraps past K
    starts at its partition after the gap), then by their last; workers without
    data come last. The offset is read off a segment that crosses a partition
    boundary: it ends at ``last + weight in the last partition``. Workers inside
    one partition may be listed in another order than the original, which gives
    the same layout.

    Examples
    --------
    >>> order, offset = segment_geometry(segment_layout([1.5, 1.0, 0.5], 3, order=[2, 0, 1], offset=0.25))
    >>> order.tolist(), round(offset, 12)
    ([2, 0, 1], 0.25)
    """
    enc = sp.csr_array(encoding)
    n, k = enc.shape
    first = np.full(n, np.inf)
    last = np.full(n, np.inf)
    last_weight = np.zeros(n)
    for i in range(n):
        cols = enc.indices[enc.indptr[i] : enc.indptr[i + 1]]
        vals = enc.data[enc.indptr[i] : enc.indptr[i + 1]]
        keep = vals != 0
        cols, vals = cols[keep], np.abs(vals[keep])
        if not cols.size:
            continue
        sort = np.argsort(cols)
        cols, vals = cols[sort], vals[sort]
        gaps = np.flatnonzero(np.diff(cols) > 1)
        if gaps.size:  # wrapped: [cols after the gap ..., K - 1, 0, ...]
            cut = gaps[-1] + 1
            cols = np.concatenate([cols[cut:], cols[:cut] + k])
            vals = np.concatenate([vals[cut:], vals[:cut]])
        first[i], last[i], last_weight[i] = cols[0], cols[-1], vals[-1]
    order = np.lexsort((np.arange(n), last, first))
    mass = np.abs(enc).sum(axis=1)
    ends = np.cumsum(mass[order])
    spanning = np.flatnonzero(last[order] > first[order])
    if spanning.size:
        pos = spanning[0]
        worker = order[pos]
        offset = (last[worker] + last_weight[worker] - ends[pos]) % k
    else:  # every boundary is a whole number: the first segment starts on one
        offset = float(first[order[0]] % k) if np.isfinite(first[order[0]]) else 0.0
    if abs(offset - round(offset)) <= SNAP_TOL:
        offset = float(round(offset)) % k
    return order, float(offset)


def closest_segment_layout(
    row_mass,
    partitions: int,
    previous,
    *,
    orders=(),
    max_offsets: int = 256,
    snap_tol: float = SNAP_TOL,
    relabel: bool = True,
    exhaustive: int = 6,
    max_solves: int | None = 32,
    max_cases: int | None = 4096,
):
    r"""The segment layout with masses `row_mass` that keeps the most pairs of `previous`.

    A segment layout is free in three things that leave the design (masses,
    decoder, bits, error bound, unbiasedness) unchanged: the cyclic worker order
    on the circle of length K, where the first segment starts (`offset`), and
    which partition sits in which unit slot of the axis (the partitions are
    interchangeable: any column permutation of a layout is a layout with the
    same row and column sums). For one worker order and one offset the best
    column permutation is a maximum-weight assignment of slots to partitions,
    weight ``|holders(slot) ∩ old holders(partition)|``; slots and partitions
    with the same holder sets are grouped, which makes it a min-cost flow on
    O(N + K) arcs (OR-Tools), solved exactly. The offset matters only modulo 1
    (an integer shift is a column permutation) and only through which boundary
    crosses an integer: the offsets that put a boundary on an integer and the
    midpoints between them cover every case. Each candidate (order, offset)
    first gets the bound ``sum_i max(0, n'_i - n_i)`` (``n'_i`` slots of worker
    i, ``n_i`` partitions it held); candidates are solved in the order of their
    bound and the search stops when the bound reaches the best count found, so
    the result is the exact optimum over the candidate orders and every offset
    and permutation.

    The orders tried: the old one (recovered from the support of `previous`,
    which need not be in axis order), the one :func:`segment_geometry` reads
    off `previous`, every order in `orders` (e.g. the fresh layout's), and,
    when at most `exhaustive` workers have mass, every cyclic order (up to
    reversal, which is a column permutation): then the result is the optimum
    over all segment layouts. The fresh layout (offset 0 in its order,
    identity permutation) is a candidate when its order is given, so the result
    never moves more than it. ``relabel=False`` is the search without
    permutations (partitions in axis order; offsets that put one worker's new
    segment where its old one started, at most `max_offsets` per order).

    Parameters
    ----------
    row_mass : array_like (N,)
        The new masses (summing to K).
    partitions : int
    previous : sparse or dense (N, K)
        The layout in place (its nonzero pattern is what is kept).
    orders : sequence of int arrays
        More worker orders to try.
    max_offsets : int
        Offsets tried per order when ``relabel=False``.
    relabel : bool
        Search the column permutations (and every offset) too.
    exhaustive : int
        Try every cyclic order when at most this many workers have mass (then
        `max_solves` does not apply).
    max_solves : int or None
        Most candidates solved (the fresh layouts of `orders` always are); None:
        until the bound stops the search (exact over the candidate orders; about
        20 s at N = 1000 against 0.4 s for 32).
    max_cases : int or None
        Most offsets screened per order (there are about 2N; beyond this many an
        evenly spread subset, and no claim of exactness).

    Returns
    -------
    (scipy.sparse.csr_array, dict)
        The layout and ``{"order", "offset", "moved", "columns", "exact",
        "bound", "lower_bound", "solved"}``: the layout is ``segment_layout(row_mass, K, order=order,
        offset=offset)`` with its slot ``t`` moved to partition ``columns[t]``;
        ``exact``: the search ended by the bound (the result is the optimum
        over the candidate orders), else ``bound`` is the least count any
        unsolved candidate could reach; ``lower_bound`` is
        ``sum_i max(0, ceil(Y_i) - n_i)``, which no layout with these masses
        beats (a worker of mass Y needs at least ceil(Y) partitions);
        ``solved``: the assignments solved.

    Examples
    --------
    >>> import numpy as np
    >>> old = segment_layout([1.5, 1.0, 0.5], 3)
    >>> new, info = closest_segment_layout([1.4, 1.1, 0.5], 3, old)
    >>> info["moved"]
    0
    """
    y = np.asarray(row_mass, dtype=np.float64)
    previous = sp.csr_array(previous)
    mask = _pattern(previous, np.int8)
    old_order, old_offset = segment_geometry(previous)
    if not relabel:
        return _rigid_closest(
            y, partitions, previous, mask, old_order, old_offset, orders, max_offsets, snap_tol
        )
    held = np.diff(mask.indptr)
    given = [np.asarray(o, dtype=np.int64) for o in orders]
    candidates = [_support_order(mask), old_order] + given
    active = np.flatnonzero(y > 0)
    if 2 <= active.size <= exhaustive:
        candidates += _cyclic_orders(active, y.size)
    seen, screened, complete = set(), [], True
    for order in candidates:
        order_key = tuple(order.tolist())
        if order_key in seen:
            continue
        seen.add(order_key)
        cases = _offset_cases(y, order, partitions, snap_tol)
        if max_cases is not None and cases.size > max_cases:  # large N: evenly spread, 0 kept
            complete = False
            cases = np.unique(
                np.concatenate([[0.0], cases[np.linspace(0, cases.size - 1, max_cases).astype(int)]])
            )
        for offset in cases:
            slots = _slot_counts(y, order, partitions, offset, snap_tol)
            bound = int(np.maximum(slots - held, 0).sum())
            screened.append((bound, int(slots.sum()), len(screened), order, offset, slots))
    screened.sort(key=lambda c: c[:3])
    old_types = _holder_types(mask)
    # the fresh layouts (offset 0 in a given order) first, so that the cap never loses them
    if 2 <= active.size <= exhaustive:
        max_solves = None  # every cyclic order: solve what the bound leaves, the optimum is the point
    given_keys = {tuple(o.tolist()) for o in given}
    first = [c for c in screened if c[4] == 0.0 and tuple(c[3].tolist()) in given_keys]
    queue = first + [c for c in screened if not any(c is f for f in first)]
    best, solved, exact, counted = None, 0, True, True
    for bound, _, _, order, offset, slots in queue:
        if best is not None and bound >= best[0][0] and solved >= len(first):
            break
        if max_solves is not None and solved >= max(max_solves, len(first)):
            exact = False
            break
        layout0 = segment_layout(y, partitions, order=order, offset=offset, snap_tol=snap_tol)
        # the bound is only as good as the slot count (rounding could add a sliver): no claim if it was off
        counted &= bool(np.array_equal(np.diff(layout0.indptr), slots))
        assignment = _ColumnAssignment(layout0, old_types)
        solved += 1
        key = (assignment.moved, assignment.nnz)
        if best is None or key < best[0]:
            best = (key, layout0, assignment, order, offset)
    (moved, _), layout0, assignment, order, offset = best
    columns = assignment.columns()
    layout = _permute_columns(layout0, columns)
    unsolved = [c[0] for c in queue[solved:]]
    lower = int(np.maximum(np.ceil(y - snap_tol) - held, 0).sum())
    bound = int(moved) if exact else int(min([moved] + unsolved))
    info = {
        "order": order,
        "offset": float(offset),
        "moved": int(moved),
        "columns": columns,
        "exact": exact and counted and complete,
        "bound": bound if counted and complete else lower,
        "lower_bound": lower,
        "solved": solved,
    }
    return layout, info


def _rigid_closest(y, partitions, previous, mask, old_order, old_offset, orders, max_offsets, snap_tol):
    """The search without column permutations: the old axis order and `orders`, each with the offsets
    that put one worker's new segment where its old one started (and 0)."""
    old_mass = np.abs(previous).sum(axis=1)
    old_starts = np.empty(y.size)
    old_starts[old_order] = old_offset + np.concatenate([[0.0], np.cumsum(old_mass[old_order])[:-1]])
    candidates = [old_order] + [np.asarray(o, dtype=np.int64) for o in orders]
    best = None
    for order in candidates:
        starts = np.concatenate([[0.0], np.cumsum(y[order])[:-1]])
        offsets = np.unique(np.round((old_starts[order] - starts) % partitions, 12))
        if offsets.size > max_offsets:
            offsets = offsets[np.linspace(0, offsets.size - 1, max_offsets).astype(np.int64)]
        for offset in np.concatenate([[0.0], offsets]):
            layout = segment_layout(y, partitions, order=order, offset=float(offset), snap_tol=snap_tol)
            key = (_moved_count(mask, layout), layout.nnz)
            if best is None or key < best[0]:
                best = (key, layout, order, float(offset))
    (moved, _), layout, order, offset = best
    columns = np.arange(partitions)
    return layout, {"order": order, "offset": offset, "moved": int(moved), "columns": columns}


def _support_order(mask: sp.csr_array) -> np.ndarray:
    """The worker order of a segment layout read off its pattern alone (any column order).

    The holders of a partition are consecutive on the axis: those that hold
    other partitions too are at the two ends, the others (inside it) between
    them. Chaining them gives paths (one per component; one cycle when the
    layout wraps with no whole boundary), walked from the end that holds the
    lowest partition. Workers without data come last. On a layout that is not a
    segment layout this is still an order (a depth-first walk), only a worse one.
    """
    n, k = mask.shape
    held = np.diff(mask.indptr)
    low = np.full(n, k, dtype=np.int64)
    rows = np.repeat(np.arange(n), held)
    np.minimum.at(low, rows, mask.indices)
    csc = mask.tocsc()
    neighbours = [[] for _ in range(n)]
    for j in range(k):
        holders = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
        if holders.size < 2:
            continue
        ends = [int(i) for i in holders if held[i] > 1]
        inner = [int(i) for i in holders if held[i] == 1]
        chain = ends[:1] + inner + ends[1:] if len(ends) <= 2 else ends + inner
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            neighbours[a].append(b)
            neighbours[b].append(a)
    for adj in neighbours:
        adj.sort(key=lambda i: (low[i], i))
    degree = np.array([len(set(adj)) for adj in neighbours])
    starts = sorted(np.flatnonzero(held > 0).tolist(), key=lambda i: (degree[i] > 1, low[i], i))
    order, seen = [], np.zeros(n, dtype=bool)
    for s in starts:
        stack = [s]
        while stack:
            i = stack.pop()
            if seen[i]:
                continue
            seen[i] = True
            order.append(i)
            stack.extend(j for j in reversed(neighbours[i]) if not seen[j])
    order += np.flatnonzero(held == 0).tolist()
    return np.asarray(order, dtype=np.int64)


def _cyclic_orders(active: np.ndarray, n: int) -> list[np.ndarray]:
    """Every cyclic order of the workers in `active` up to reversal (the rest appended)."""
    from itertools import permutations

    rest = np.setdiff1d(np.arange(n), active)
    first, others = int(active[0]), active[1:].tolist()
    out = []
    for perm in permutations(others):
        if len(perm) >= 2 and perm[0] > perm[-1]:
            continue  # the reversed cycle: a mirror image, i.e. a column permutation
        out.append(np.concatenate([[first], perm, rest]).astype(np.int64))
    return out


def _boundaries(y, order, partitions, offset, snap_tol) -> np.ndarray:
    """The segment ends on the axis, snapped as :func:`segment_layout` snaps them."""
    bounds = offset + np.concatenate([[0.0], np.cumsum(y[order])])
    bounds[-1] = offset + partitions
    nearest = np.rint(bounds)
    snap = np.abs(bounds - nearest) <= snap_tol
    bounds[snap] = nearest[snap]
    return np.maximum.accumulate(bounds)


def _offset_cases(y, order, partitions, snap_tol) -> np.ndarray:
    """Offsets in [0, 1) that give every distinct layout up to a column permutation: those that put a
    boundary on an integer and the midpoints between consecutive ones."""
    frac = _boundaries(y, order, partitions, 0.0, snap_tol)[:-1] % 1.0
    breaks = np.unique((1.0 - frac) % 1.0)
    breaks = breaks[np.concatenate([[True], np.diff(breaks) > 4 * snap_tol])]
    breaks = breaks[(breaks < 1.0 - 4 * snap_tol) | (breaks == 0.0)]
    ahead = np.concatenate([breaks[1:], [breaks[0] + 1.0]])
    mids = ((breaks + ahead) / 2) % 1.0
    return np.concatenate([breaks, mids])


def _slot_counts(y, order, partitions, offset, snap_tol) -> np.ndarray:
    """Partitions each worker holds in ``segment_layout(y, K, order=order, offset=offset)``, without
    building it: a segment [lo, hi) touches ceil(hi) - floor(lo) unit slots."""
    bounds = _boundaries(y, order, partitions, offset, snap_tol)
    lo, hi = bounds[:-1], bounds[1:]
    count = np.where((hi > lo) & (y[order] > 0), np.ceil(hi) - np.floor(lo), 0).astype(np.int64)
    out = np.empty(y.size, dtype=np.int64)
    out[order] = np.minimum(count, partitions)
    return out


def _holder_types(pattern) -> tuple[np.ndarray, sp.csr_array, np.ndarray]:
    """Each column's holder set as a type id (columns with equal holder sets share one), the
    (types x N) 0/1 membership matrix of the types, and the holders of each type (rows padded
    with -1)."""
    csc = sp.csc_array(pattern)
    csc.sort_indices()
    n, k = csc.shape
    count = np.diff(csc.indptr)
    width = max(int(count.max(initial=0)), 1)
    table = np.full((k, width), -1, dtype=np.int64)
    col = np.repeat(np.arange(k), count)
    table[col, np.arange(csc.nnz) - np.repeat(csc.indptr[:-1], count)] = csc.indices
    keys, ids = _unique_rows(table)
    rows, cols = np.nonzero(keys >= 0)
    member = sp.csr_array((np.ones(rows.size), (rows, keys[rows, cols])), shape=(keys.shape[0], n))
    return ids, member, keys


def _unique_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(table, axis=0, return_inverse=True)`` by one lexsort of the integer columns."""
    order = np.lexsort(table.T[::-1])
    ranked = table[order]
    new = np.concatenate([[True], np.any(ranked[1:] != ranked[:-1], axis=1)])
    ids = np.empty(table.shape[0], dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ranked[new], ids


class _ColumnAssignment:
    r"""The column permutation of a new layout that keeps the most pairs of the old pattern.

    Slot t of the new layout goes to partition ``columns[t]``; the count kept is
    :math:`\sum_t |H_t \cap O_{columns[t]}|` (H: new holders of the slot, O: old
    holders of the partition). Slots and partitions with equal holder sets are
    interchangeable, so the assignment is a transportation problem between the
    slot types and the partition types: a min-cost flow (OR-Tools) with an arc
    for each pair of types that share a worker (cost minus the workers shared)
    and a zero-cost hub for the rest. Exact: the flow polytope is integral.
    """

    def __init__(self, layout: sp.csr_array, old_types):
        from ortools.graph.python import min_cost_flow

        pattern = _pattern(layout, np.int8)
        self.nnz = int(pattern.nnz)
        self.new_ids, new_member, new_keys = _holder_types(pattern)
        self.old_ids, old_member, old_keys = old_types
        ns, no = new_member.shape[0], old_member.shape[0]
        supply = np.bincount(self.new_ids, minlength=ns)
        demand = np.bincount(self.old_ids, minlength=no)
        # equal holder sets first: some optimal assignment matches them (for a slot of holders A, a
        # partition x, a slot of holders C: |A n x| + |A n C| <= |A| + |A n C n x| <= |A| + |C n x|)
        width = max(new_keys.shape[1], old_keys.shape[1])
        both = np.full((ns + no, width), -1, dtype=np.int64)
        both[:ns, : new_keys.shape[1]] = new_keys
        both[ns:, : old_keys.shape[1]] = old_keys
        _, key_ids = _unique_rows(both)
        old_of_key = np.full(ns + no, -1, dtype=np.int64)
        old_of_key[key_ids[ns:]] = np.arange(no)
        s_same = np.flatnonzero(old_of_key[key_ids[:ns]] >= 0)
        q_same = old_of_key[key_ids[s_same]]
        m_same = np.minimum(supply[s_same], demand[q_same])
        supply[s_same] -= m_same
        demand[q_same] -= m_same
        same_kept = int(((new_keys[s_same] >= 0).sum(axis=1) * m_same).sum())
        self.same = {(int(s), int(q)): int(m) for s, q, m in zip(s_same, q_same, m_same, strict=True) if m}
        shared = sp.coo_array(new_member[supply > 0] @ old_member[demand > 0].T)
        srows, qrows = np.flatnonzero(supply > 0), np.flatnonzero(demand > 0)
        ns, no = srows.size, qrows.size
        hub = ns + no
        self.pairs = np.stack([srows[shared.row], qrows[shared.col]], axis=1).astype(np.int64)
        self.srows = srows
        tails = np.concatenate([shared.row, np.arange(ns), np.full(no, hub)])
        heads = np.concatenate([ns + shared.col, np.full(ns, hub), ns + np.arange(no)])
        caps = np.concatenate(
            [np.minimum(supply[srows][shared.row], demand[qrows][shared.col]), supply[srows], demand[qrows]]
        )
        costs = np.concatenate([-np.rint(shared.data).astype(np.int64), np.zeros(ns + no, dtype=np.int64)])
        self.flow = min_cost_flow.SimpleMinCostFlow()
        self.arcs = self.flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
        self.flow.set_nodes_supplies(np.arange(hub + 1), np.concatenate([supply[srows], -demand[qrows], [0]]))
        if self.flow.solve() != self.flow.OPTIMAL:  # pragma: no cover - a balanced transport is feasible
            raise RuntimeError("the column assignment's min-cost flow did not solve")
        self.kept = same_kept - int(self.flow.optimal_cost())
        self.moved = self.nnz - self.kept
        self.ns = ns

    def columns(self) -> np.ndarray:
        """A permutation the flow allows; slots keep their own partition where it allows that."""
        amounts = self.flow.flows(self.arcs)
        npairs = len(self.pairs)
        left = {(int(s), int(q)): int(f) for (s, q), f in zip(self.pairs, amounts[:npairs], strict=True) if f}
        for pair, m in self.same.items():
            left[pair] = left.get(pair, 0) + m
        hubbed = {int(self.srows[s]): int(f) for s, f in enumerate(amounts[npairs : npairs + self.ns]) if f}
        new_ids, old_ids = self.new_ids, self.old_ids
        k = new_ids.size
        columns = np.full(k, -1, dtype=np.int64)
        for t in range(k):  # a slot keeps its own partition when the flow allows
            pair = (int(new_ids[t]), int(old_ids[t]))
            if left.get(pair, 0) > 0:
                left[pair] -= 1
                columns[t] = t
        pool: dict[int, list[int]] = {}
        for j in np.setdiff1d(np.arange(k), columns[columns >= 0])[::-1].tolist():
            pool.setdefault(int(old_ids[j]), []).append(j)
        targets: dict[int, list[list[int]]] = {}
        for (s, q), f in left.items():
            if f > 0:
                targets.setdefault(s, []).append([q, f])
        for t in np.flatnonzero(columns < 0).tolist():
            options = targets.get(int(new_ids[t]), [])
            while options and options[-1][1] == 0:
                options.pop()
            if options:  # a slot on a sharing arc takes a partition of that arc's type
                options[-1][1] -= 1
                columns[t] = pool[options[-1][0]].pop()
        rest = [j for q in sorted(pool) for j in pool[q]]  # what the hub routed: any partition left
        free = np.flatnonzero(columns < 0)
        assert free.size == len(rest) and sum(hubbed.values()) == free.size
        columns[free] = rest
        return columns


def _permute_columns(layout: sp.csr_array, columns: np.ndarray) -> sp.csr_array:
    """`layout` with its column t moved to column ``columns[t]``."""
    coo = sp.coo_array(layout)
    out = sp.csr_array((coo.data, (coo.row, columns[coo.col])), shape=layout.shape)
    out.sum_duplicates()
    return out


def closest_layout_milp(
    row_mass, partitions: int, previous, *, pairs=None, time_limit: float = 60.0, tol: float = 1e-7
):
    r"""The fewest copies over *every* layout with masses `row_mass` and a segment layout's load.

    A mixed integer program (scipy.optimize.milp, HiGHS) over all nonnegative
    ``b`` with row sums ``Y_i`` and column sums 1 (the same design: masses,
    decoder, bits, bound), where worker i holds at most ``ceil(Y_i) + 1``
    partitions and all of them together at most ``N + K`` (what every segment
    layout guarantees). Binary ``z_ij`` marks a held pair,
    ``b_ij <= min(1, Y_i) z_ij``; minimize the held pairs outside the old
    pattern. Without `pairs` it is the reference for
    :func:`closest_segment_layout` (small N: 2 N K variables); with `pairs` (an
    N x K pattern) only those pairs may be held, which makes it a polish of
    given layouts (pass the old pattern plus their pairs: at least as good as
    the best of them that fits the load).

    Returns
    -------
    (scipy.sparse.csr_array or None, dict)
        The layout and ``{"moved", "bound", "optimal"}``: the solver's best
        count and its proven lower bound over the layouts allowed (equal when
        ``optimal``); no layout when the time ran out before one was found.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    y = np.asarray(row_mass, dtype=np.float64)
    n, k = y.size, int(partitions)
    old = sp.csr_array(previous)
    allowed = np.ones((n, k), dtype=bool) if pairs is None else sp.csr_array(pairs).toarray() != 0
    r, c = np.nonzero(allowed)
    m = r.size  # x (continuous) then z (binary), one of each per allowed pair
    col = np.arange(m)
    rows_x = sp.csr_array((np.ones(m), (r, col)), shape=(n, m))  # sum_j x_ij
    cols_x = sp.csr_array((np.ones(m), (c, col)), shape=(k, m))  # sum_i x_ij
    cap = np.minimum(1.0, y)[r]
    constraints = [
        LinearConstraint(sp.hstack([rows_x, sp.csr_array((n, m))]), y, y),
        LinearConstraint(sp.hstack([cols_x, sp.csr_array((k, m))]), np.ones(k), np.ones(k)),
        LinearConstraint(sp.hstack([sp.eye_array(m), -sp.diags_array(cap)]), -np.inf, 0.0),
        LinearConstraint(sp.hstack([sp.csr_array((n, m)), rows_x]), 0.0, np.ceil(y - SNAP_TOL) + 1),
        LinearConstraint(sp.hstack([sp.csr_array((1, m)), np.ones((1, m))]), 0.0, n + k),
    ]
    was_held = np.asarray(old[r, c]).ravel() != 0
    cost = np.concatenate([np.zeros(m), (~was_held).astype(np.float64)])
    res = milp(
        cost,
        constraints=constraints,
        integrality=np.concatenate([np.zeros(m), np.ones(m)]),
        bounds=Bounds(np.zeros(2 * m), np.concatenate([cap, np.ones(m)])),
        options={"time_limit": float(time_limit)},
    )
    bound = getattr(res, "mip_dual_bound", None)
    bound = np.nan if bound is None else float(bound)  # None: stopped before the first bound
    if res.x is None:
        return None, {"moved": None, "bound": bound, "optimal": False}
    x = res.x[:m].copy()
    x[x <= tol] = 0.0
    layout = sp.csr_array((x, (r, c)), shape=(n, k))
    layout.eliminate_zeros()
    return layout, {"moved": moved_partitions(previous, layout), "bound": bound, "optimal": res.status == 0}


def closest_layout(row_mass, partitions: int, previous, *, orders=(), polish_time: float = 10.0, **search):
    """The closest segment layout, then polished by :func:`closest_layout_milp` on its pairs.

    :func:`closest_segment_layout` (with `orders` and `search`) gives a segment
    layout; the MILP then looks for fewer copies among the layouts that hold
    only pairs of the old layout or of that one, with the same load guarantee
    (worker i at most ``ceil(Y_i) + 1`` partitions, ``N + K`` in all), for at
    most `polish_time` seconds (0: no polish). The polished layout has the
    same masses, so the same design; it need not be a segment layout. Returns
    ``(layout, info)``: the segment search's info with ``moved`` the copies of
    the layout returned, ``segment_moved`` those of the segment layout and
    ``polished`` whether the MILP's layout won.

    Examples
    --------
    >>> old = segment_layout([1.5, 1.0, 0.5], 3)
    >>> new, info = closest_layout([1.4, 1.1, 0.5], 3, old)
    >>> info["moved"], info["segment_moved"], info["polished"]
    (0, 0, False)
    """
    layout, info = closest_segment_layout(row_mass, partitions, previous, orders=orders, **search)
    info = dict(info, segment_moved=info["moved"], polished=False)
    if polish_time <= 0 or info["moved"] == 0:
        return layout, info
    pairs = _pattern(previous, np.int8) + _pattern(layout, np.int8)
    polished, milp = closest_layout_milp(row_mass, partitions, previous, pairs=pairs, time_limit=polish_time)
    if polished is not None and milp["moved"] < info["moved"]:
        info.update(moved=milp["moved"], polished=True)
        return polished, info
    return layout, info


def hub_layout(row_mass, partitions: int, *, order=None):
    """The released code's hub layout: ``alpha[i, hub] = Y_i - 1``, one own partition each.

    Needs K = N. The first worker in `order` is the hub (it holds only the hub
    partition, with weight ``Y_hub``); every other worker holds its own
    partition with weight 1 and the hub partition with weight ``Y_i - 1``,
    which is negative when ``Y_i < 1``. Row sums are ``Y_i``, column sums 1,
    nnz <= 2N - 1. Documented alternative only; the segment layout is nonnegative.
    """
    y = np.asarray(row_mass, dtype=np.float64)
    n = y.size
    if partitions != n:
        raise InputError(f"the hub layout needs K = N, got K = {partitions}, N = {n}.")
    order = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
    hub, others = order[0], order[1:]
    rows = np.concatenate([[hub], others, others])
    cols = np.concatenate([[0], np.zeros(n - 1, dtype=np.int64), np.arange(1, n)])
    vals = np.concatenate([[y[hub]], y[others] - 1.0, np.ones(n - 1)])
    mat = sp.csr_array((vals, (rows, cols)), shape=(n, n))
    mat.eliminate_zeros()
    return mat


def count_components(encoding) -> int:
    """Connected components of the worker-partition graph (scipy, fast path).

    Isolated workers (no data) and isolated partitions count as components.
    """
    from scipy.sparse.csgraph import connected_components

    pattern = _pattern(encoding)
    n, k = pattern.shape
    # workers 0..n-1, partitions n..n+k-1; one direction suffices for directed=False (no block
    # matrix and transpose: at N = 10^6 that was 0.5 s of design())
    indptr = np.concatenate([pattern.indptr, np.full(k, pattern.indptr[-1])])
    adjacency = sp.csr_array((pattern.data, pattern.indices + n, indptr), shape=(n + k, n + k))
    return int(connected_components(adjacency, directed=False)[0])


def decompose(encoding) -> list[tuple[np.ndarray, np.ndarray]]:
    """Connected components of the bipartite worker-partition graph (networkx).

    Returns a list of ``(workers, partitions)`` index arrays, one per
    component, sorted by their smallest worker (then partition) index.
    """
    import networkx as nx

    enc = sp.coo_array(encoding)
    n, k = enc.shape
    graph = nx.Graph()
    graph.add_nodes_from((("w", i) for i in range(n)), bipartite=0)
    graph.add_nodes_from((("p", j) for j in range(k)), bipartite=1)
    graph.add_edges_from(
        (("w", int(i)), ("p", int(j))) for i, j, v in zip(enc.row, enc.col, enc.data, strict=True) if v != 0
    )
    comps = []
    for nodes in nx.connected_components(graph):
        workers = np.array(sorted(i for kind, i in nodes if kind == "w"), dtype=np.int64)
        parts = np.array(sorted(j for kind, j in nodes if kind == "p"), dtype=np.int64)
        comps.append((workers, parts))
    comps.sort(key=lambda c: (c[0][0] if c[0].size else n, c[1][0] if c[1].size else k))
    return comps


def is_forest(encoding) -> bool:
    """True when every component has exactly |rows| + |cols| - 1 edges (a spanning tree)."""
    pattern = _pattern(encoding)
    n, k = pattern.shape
    return pattern.nnz == n + k - count_components(pattern)


def _pattern(encoding, dtype=np.float64) -> sp.csr_array:
    """The 0/1 edge pattern of the nonzero entries (stored zeros are not edges; input untouched)."""
    enc = sp.csr_array(encoding)
    nonzero = (enc.data != 0).astype(dtype)
    pattern = sp.csr_array((nonzero, enc.indices.copy(), enc.indptr.copy()), shape=enc.shape)
    pattern.eliminate_zeros()
    return pattern


def group_workers(
    row_mass, *, method: str = "auto", tol: float = SNAP_TOL, exact_limit: int = 14
) -> list[np.ndarray]:
    """Split workers into as many groups as possible whose masses sum to whole numbers.

    Laying the groups one after the other makes each group boundary an integer
    prefix sum, so the segment layout splits at every boundary.

    Parameters
    ----------
    row_mass : array_like (N,)
    method : {"auto", "exact", "greedy"}
        ``"exact"`` solves an integer program (scipy.optimize.milp / HiGHS) that
        maximizes the number of groups; ``"greedy"`` isolates whole masses,
        pairs complementary fractional parts, then closes a group whenever a
        running sum is whole. ``"auto"`` is exact when at most `exact_limit`
        workers have a fractional mass.
    tol : float
        A sum within `tol` of an integer counts as whole.

    Returns
    -------
    list of int arrays, the groups in axis order (concatenate them for `order`).
    """
    if method not in ("auto", "exact", "greedy"):
        raise InputError(f"Unknown grouping method {method!r}; choose one of: auto, exact, greedy.")
    y = np.asarray(row_mass, dtype=np.float64)
    frac = y - np.rint(y)
    frac = np.where(np.abs(frac) <= tol, 0.0, frac - np.floor(frac))  # in [0, 1)
    whole = np.flatnonzero(frac == 0.0)
    rest = np.flatnonzero(frac > 0.0)
    groups = [np.array([i]) for i in whole]
    if rest.size < 2:  # one fractional mass cannot pair with anything: it is its own group
        return groups + [rest] if rest.size else groups
    if method == "exact" or (method == "auto" and rest.size <= exact_limit):
        groups += [rest[g] for g in _group_exact(frac[rest], tol)]
    else:
        groups += [rest[g] for g in _group_greedy(frac[rest], tol)]
    return groups


def _is_whole(total: float, tol: float) -> bool:
    return abs(total - round(total)) <= tol


def _group_greedy(frac: np.ndarray, tol: float) -> list[np.ndarray]:
    """Pairs of complementary fractional parts, then runs whose sums are whole.

    Vectorized: fractional parts are keyed on a grid of step `tol`; only the
    distinct values that have a complement are visited in Python.
    """
    grid = np.rint(frac / tol).astype(np.int64)
    whole_key = int(round(1.0 / tol))
    shift = max(1, int(frac.size - 1).bit_length())
    if int(grid.max(initial=0)) < (1 << (62 - shift)):
        # one plain sort of (key, index) packed in an int64: the indices grouped by key, in index
        # order within a key -- what a stable argsort gives, at a third of its cost
        packed = np.sort((grid << shift) | np.arange(grid.size))
        members = packed & ((1 << shift) - 1)
        sorted_grid = packed >> shift
    else:
        members = np.argsort(grid, kind="stable")
        sorted_grid = grid[members]
    first = np.concatenate([[True], sorted_grid[1:] != sorted_grid[:-1]])
    keys = sorted_grid[first]
    starts = np.concatenate([np.flatnonzero(first), [grid.size]])
    comp = whole_key - keys
    pos = np.minimum(np.searchsorted(keys, comp), keys.size - 1)
    paired = np.zeros(frac.size, dtype=bool)
    groups = []
    for a in np.flatnonzero((keys[pos] == comp) & (keys <= comp)):
        b = int(pos[a])
        ia = members[starts[a] : starts[a + 1]]
        ib = members[starts[b] : starts[b + 1]]
        if a == b:
            m = ia.size // 2
            left, right = ia[:m], ia[m : 2 * m]
        else:
            m = min(ia.size, ib.size)
            left, right = ia[:m], ib[:m]
        ok = np.abs(frac[left] + frac[right] - 1.0) <= tol
        groups += [np.array([i, j]) for i, j in zip(left[ok], right[ok], strict=True)]
        paired[left[ok]] = paired[right[ok]] = True
    rest = np.flatnonzero(~paired)
    if rest.size:
        running = np.cumsum(frac[rest])
        closes = np.flatnonzero(np.abs(running - np.rint(running)) <= tol)
        cuts = np.concatenate([[0], closes + 1])
        groups += [rest[lo:hi] for lo, hi in zip(cuts[:-1], cuts[1:], strict=True) if hi > lo]
        if cuts[-1] < rest.size:  # the masses sum to K: the tail is whole up to rounding
            tail = rest[cuts[-1] :]
            if groups and not _is_whole(frac[tail].sum(), 100 * tol):
                groups[-1] = np.concatenate([groups[-1], tail])
            else:
                groups.append(tail)
    return groups


def _group_exact(frac: np.ndarray, tol: float) -> list[np.ndarray]:
    """Maximum number of groups with whole sums: a MILP over assignments."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = frac.size
    g = n // 2  # every group of fractional masses holds at least two workers
    # variables: x[i, c] (n*g binaries), used[c] (g binaries), whole[c] (g integers)
    nx_ = n * g
    nvar = nx_ + 2 * g
    c = np.zeros(nvar)
    c[nx_ : nx_ + g] = -1.0
    rows, lbs, ubs = [], [], []

    def add(coeffs, lb, ub):
        rows.append(coeffs)
        lbs.append(lb)
        ubs.append(ub)

    for i in range(n):  # each worker in exactly one group
        a = np.zeros(nvar)
        a[i * g : (i + 1) * g] = 1.0
        add(a, 1.0, 1.0)
    for k in range(g):
        a = np.zeros(nvar)  # group sum is whole
        a[np.arange(n) * g + k] = frac
        a[nx_ + g + k] = -1.0
        add(a, -tol, tol)
        a = np.zeros(nvar)  # used only if nonempty: used <= sum x
        a[np.arange(n) * g + k] = -1.0
        a[nx_ + k] = 1.0
        add(a, -np.inf, 0.0)
        a = np.zeros(nvar)  # x <= used (aggregated)
        a[np.arange(n) * g + k] = 1.0
        a[nx_ + k] = -float(n)
        add(a, -np.inf, 0.0)
        if k + 1 < g:  # symmetry breaking
            a = np.zeros(nvar)
            a[nx_ + k] = -1.0
            a[nx_ + k + 1] = 1.0
            add(a, -np.inf, 0.0)
    upper = np.concatenate([np.ones(nx_ + g), np.full(g, float(n))])
    res = milp(
        c,
        constraints=LinearConstraint(np.array(rows), lbs, ubs),
        integrality=np.ones(nvar),
        bounds=Bounds(np.zeros(nvar), upper),
        options={"time_limit": 30.0},
    )
    if res.x is None:
        return [np.arange(n)]
    assign = np.rint(res.x[:nx_]).reshape(n, g).argmax(axis=1)
    groups = [np.flatnonzero(assign == k) for k in range(g)]
    groups = [grp for grp in groups if grp.size]
    # the solver's feasibility tolerance is looser than ours: merge what is not whole
    good = [grp for grp in groups if _is_whole(frac[grp].sum(), tol)]
    bad = [grp for grp in groups if not _is_whole(frac[grp].sum(), tol)]
    if bad:
        good.append(np.concatenate(bad))
    return good


__all__ = [
    "SNAP_TOL",
    "closest_layout",
    "closest_layout_milp",
    "closest_segment_layout",
    "count_components",
    "decompose",
    "group_workers",
    "hub_layout",
    "is_forest",
    "layout_pairs",
    "moved_partitions",
    "segment_geometry",
    "segment_layout",
]
