"""numba kernels of the allocators (module-level functions cached by :func:`gcdesign._jit.njit`, no fastmath).

Every kernel here has a readable numpy reference (``*_reference`` in the solver
modules) that the tests run on the same input. Inputs are trusted: the public
functions validate them first.

Conventions: ``table`` is float64 (N, L); ``steps = levels - levels[0]`` (int64,
increasing, ``steps[0] = 0``); ``residual = B - N levels[0]``. For the heuristic
and greedy kernels ``active`` is the float64 (N, T + 1) table of the contiguous
levels ``base .. base + T`` with rows in reliability order.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit


# --------------------------------------------------------------------- exact DP
@njit()
def max_plus_relax(src, dst, row, u, l):
    """``dst[r] = max(dst[r], src[r] + u)``, recording `l` in ``row[r]`` where it wins.

    The DP's inner loop, on contiguous slices in a function of its own: LLVM then
    sees unit strides and no aliasing and vectorizes it (4-5x the same loop
    written inline in :func:`dp_forward`, measured in studies/bench_kernels.py).
    """
    for r in range(dst.size):
        v = src[r] + u
        if v > dst[r]:
            dst[r] = v
            row[r] = l


@njit()
def dp_forward(table, steps, residual, choice):
    """Fill ``choice[i, r]`` (the level index of worker i when workers 0..i use r
    residual bits) and return the optimal value ``F_N(R)``.

    Recurrence (docs/allocation.md): ``F_i(r) = max_l F_{i-1}(r - steps[l]) + table[i, l]``.
    Only residuals that are reachable from below and can still reach ``R`` are
    computed; the others stay ``-inf``. Ties go to the smallest level index.
    """
    n, n_levels = table.shape
    max_step = steps[n_levels - 1]
    prev = np.full(residual + 1, -np.inf)
    prev[0] = 0.0
    cur = np.empty(residual + 1)
    for i in range(n):
        lo = max(0, residual - (n - 1 - i) * max_step)
        hi = min(residual, (i + 1) * max_step)
        cur[:] = -np.inf
        row = choice[i]
        row[lo : hi + 1] = 0
        for l in range(n_levels):
            s = steps[l]
            start = max(lo, s)
            if start > hi:
                break
            max_plus_relax(
                prev[start - s : hi + 1 - s], cur[start : hi + 1], row[start : hi + 1], table[i, l], l
            )
        prev, cur = cur, prev
    return prev[residual]


@njit()
def dp_backtrack(choice, steps, residual):
    """Level index per worker along the optimal path stored in `choice`."""
    n = choice.shape[0]
    index = np.empty(n, dtype=np.int64)
    r = residual
    for i in range(n - 1, -1, -1):
        l = np.int64(choice[i, r])
        index[i] = l
        r -= steps[l]
    return index


# --------------------------------------------------------------------- sorting
@njit()
def argsort_nonnegative(x):
    """``np.argsort(x, kind="stable")`` of numbers >= 0 (no NaN; -0.0 counts as 0.0): an LSD radix
    sort on the bits of ``x + 0.0``, which are in the order of the numbers, 11 bits a pass (passes
    whose digit is the same for every key are skipped). 4-5x numpy's at 10^6."""
    n = x.size
    keys = (x + 0.0).view(np.uint64)
    index = np.arange(n)
    other_keys = np.empty(n, dtype=np.uint64)
    other_index = np.empty(n, dtype=np.int64)
    mask = np.uint64(2047)
    for shift in range(0, 64, 11):
        s = np.uint64(shift)
        count = np.zeros(2049, dtype=np.int64)
        for i in range(n):
            count[((keys[i] >> s) & mask) + 1] += 1
        if count.max() == n:
            continue  # one digit for every key: the pass would not move anything
        for d in range(2048):
            count[d + 1] += count[d]
        for i in range(n):
            d = (keys[i] >> s) & mask
            q = count[d]
            other_keys[q] = keys[i]
            other_index[q] = index[i]
            count[d] = q + 1
        keys, other_keys = other_keys, keys
        index, other_index = other_index, index
    return index


# ------------------------------------------------------------- concave envelope
@njit()
def envelope_vertices(active):
    """Vertices of the upper concave envelope of each row of `active` over t = 0..T.

    Returns ``(vert, count)``: row i's envelope has the ``count[i]`` segments
    ``vert[i, r] .. vert[i, r + 1]`` (r < count[i]), with slopes strictly
    decreasing (collinear points are merged). The Lagrangian of the
    piecewise-linear relaxation picks, for a multiplier lambda, exactly the
    segments with slope > lambda. Segment r of worker i is identified by the
    integer ``i << rbits | r`` (:func:`sorted_segment_ids`).
    Reference: :func:`gcdesign.allocation.heuristic.envelope_reference`.
    """
    n, width = active.shape
    vert = np.zeros((n, width), dtype=np.int16)
    count = np.zeros(n, dtype=np.int64)
    hull = np.empty(width, dtype=np.int64)
    for i in range(n):
        size = 0
        for t in range(width):
            # pop while the last hull point lies on or below the chord to t
            while size >= 2:
                a = hull[size - 2]
                b = hull[size - 1]
                cross = (active[i, b] - active[i, a]) * (t - a) - (active[i, t] - active[i, a]) * (b - a)
                if cross <= 0.0:
                    size -= 1
                else:
                    break
            hull[size] = t
            size += 1
        for h in range(size):
            vert[i, h] = hull[h]
        count[i] = size - 1
    return vert, count


@njit(inline="always")
def segment_slope(active, vert, w, r):
    """Slope of segment r of worker w's envelope (the one formula every kernel uses)."""
    a = vert[w, r]
    b = vert[w, r + 1]
    return (active[w, b] - active[w, a]) / (b - a)


@njit(inline="always")
def _slope_key(active, vert, w, r, buf, bits_of):
    """An order-reversing uint64 image of the slope (ascending keys: decreasing slopes; -0.0 as +0.0)."""
    buf[0] = segment_slope(active, vert, w, r) + 0.0
    bits = bits_of[0]
    if bits & (np.uint64(1) << np.uint64(63)):
        return bits
    return ~(bits | (np.uint64(1) << np.uint64(63)))


@njit()
def sorted_segment_ids(active, vert, count, rbits, ids):
    """Write the segment ids ``w << rbits | r`` into `ids` by decreasing slope, ties by id.

    A two-level bucket sort on the exact 64-bit slope keys (no truncated key,
    so nothing collides). The key range is cut into at most 2^16 cells (each a
    slope ratio of about 1.016 or less) and the (key, id) pairs are scattered
    into their cells in id order (few cells hold segments, so their write
    positions stay in cache). Each cell is then copied to a scratch buffer and
    scattered back into about one bucket per 16 of its segments (a linear cut
    of the cell), so the buckets stay small however the slopes spread; each
    bucket is sorted by key, stably (insertion sort; a large bucket, e.g. a run
    of equal slopes, is left as it is when in order, else sorted by a stable
    merge sort). Slopes are computed from rows read in order: the table is
    never read out of order.
    """
    n = count.size
    total = ids.size
    if total == 0:
        return
    buf = np.empty(1, dtype=np.float64)
    bits_of = buf.view(np.uint64)
    lo = ~np.uint64(0)
    hi = np.uint64(0)
    for w in range(n):
        for r in range(count[w]):
            key = _slope_key(active, vert, w, r, buf, bits_of)
            lo = min(lo, key)
            hi = max(hi, key)
    span = hi - lo
    cshift = 0
    while (span >> np.uint64(cshift)) >= np.uint64(1 << 16):
        cshift += 1
    ucshift = np.uint64(cshift)
    cmask = (np.uint64(1) << ucshift) - np.uint64(1)
    ncells = np.int64(span >> ucshift) + 1
    cstart = np.zeros(ncells + 1, dtype=np.int64)
    for w in range(n):
        for r in range(count[w]):
            cstart[np.int64((_slope_key(active, vert, w, r, buf, bits_of) - lo) >> ucshift) + 1] += 1
    largest = 0
    for c in range(ncells):
        largest = max(largest, cstart[c + 1])
        cstart[c + 1] += cstart[c]
    keys = np.empty(total, dtype=np.uint64)
    fill = cstart[:ncells].copy()
    for w in range(n):
        for r in range(count[w]):
            key = _slope_key(active, vert, w, r, buf, bits_of)
            c = np.int64((key - lo) >> ucshift)
            keys[fill[c]] = key
            ids[fill[c]] = (w << rbits) | r
            fill[c] += 1
    scratch_keys = np.empty(largest, dtype=np.uint64)
    scratch_ids = np.empty(largest, dtype=ids.dtype)
    start = np.zeros((1 << 16) + 2, dtype=np.int64)
    for c in range(ncells):
        q0 = cstart[c]
        size = cstart[c + 1] - q0
        if size <= 1:
            continue
        parts = 0  # log2 of the cell's buckets: about one per 16 segments, at most 2^cshift
        while parts < cshift and parts < 16 and (16 << parts) < size:
            parts += 1
        nb = 1 << parts
        sub = np.uint64(cshift - parts)
        start[: nb + 1] = 0
        for j in range(size):
            key = keys[q0 + j]
            scratch_keys[j] = key
            scratch_ids[j] = ids[q0 + j]
            start[np.int64(((key - lo) & cmask) >> sub) + 1] += 1
        for b in range(nb):
            start[b + 1] += start[b]
        for j in range(size):  # back into the cell's buckets, in id order
            key = scratch_keys[j]
            b = np.int64(((key - lo) & cmask) >> sub)
            keys[q0 + start[b]] = key
            ids[q0 + start[b]] = scratch_ids[j]
            start[b] += 1
        q = q0  # start[b] is now the end of bucket b
        for b in range(nb):
            e = q0 + start[b]
            _sort_bucket(keys, ids, q, e)
            q = e


@njit()
def _sort_bucket(keys, ids, q, e):
    """Sort ``keys[q:e]`` ascending, stably, with `ids` alongside."""
    if e - q <= 64:  # insertion sort; the bucket is in id order, kept on ties
        for j in range(q + 1, e):
            key = keys[j]
            x = ids[j]
            i = j
            while i > q and keys[i - 1] > key:
                keys[i] = keys[i - 1]
                ids[i] = ids[i - 1]
                i -= 1
            keys[i] = key
            ids[i] = x
        return
    for j in range(q + 1, e):
        if keys[j - 1] > keys[j]:
            break
    else:
        return  # e.g. a run of equal slopes: already in id order
    perm = np.argsort(keys[q:e], kind="mergesort")
    run = ids[q:e].copy()
    for j in range(e - q):
        ids[q + j] = run[perm[j]]


# -------------------------------------------------------------- local search
# A tournament tree keeps the largest of `count` values (ties: the smaller index). Its leaves are
# blocks of BLOCK values, each holding the pair (value, index) of its best; an update rescans one
# block (contiguous) and walks up a tree BLOCK times smaller than one leaf per value, which stays
# in cache (at 10^6 workers 2 MB instead of 32 MB), stopping where the winner does not change.
BLOCK = 16
_EMPTY = float(2**62)  # the index of an empty leaf (after every real one)


@njit(inline="always")
def _right_wins(tree, left):
    """1 if node ``left + 1`` beats node `left` (larger value, or equal value and smaller
    index), else 0."""
    a = tree[left, 0]
    b = tree[left + 1, 0]
    return np.int64((b > a) | ((b == a) & (tree[left + 1, 1] < tree[left, 1])))


@njit(inline="always")
def _block_best(values, b):
    """``(value, index)`` of the best of block b (the first of equal ones)."""
    lo = b * BLOCK
    hi = min(lo + BLOCK, values.size)
    best = lo
    for i in range(lo + 1, hi):
        if values[i] > values[best]:
            best = i
    return values[best], best


@njit()
def _tree_new(values):
    """``(tree, size)``: the tree over `values` (kept by the caller, changed only through
    :func:`_tree_set`); node j holds ``(value, index)`` in ``tree[j]`` (the index as a float,
    exact below 2^53), block b is node ``size + b``."""
    blocks = (values.size + BLOCK - 1) // BLOCK
    size = 1
    while size < blocks:
        size *= 2
    tree = np.empty((2 * size, 2))
    for b in range(size):
        if b < blocks:
            tree[size + b, 0], best = _block_best(values, b)
            tree[size + b, 1] = best
        else:
            tree[size + b, 0] = -np.inf
            tree[size + b, 1] = _EMPTY
    for node in range(size - 1, 0, -1):
        left = 2 * node
        left += _right_wins(tree, left)
        tree[node, 0] = tree[left, 0]
        tree[node, 1] = tree[left, 1]
    return tree, size


@njit()
def _tree_set(values, tree, size, pos, value):
    """Set ``values[pos]`` to `value` and repair the path to the root.

    The winner climbs in registers: each level reads only the sibling's pair, not the node just
    written (a store-to-load chain through the path would cost its latency at every level)."""
    values[pos] = value
    node = pos // BLOCK + size
    win_value, best = _block_best(values, pos // BLOCK)
    win_index = float(best)
    tree[node, 0] = win_value
    tree[node, 1] = win_index
    while node > 1:
        sibling = node ^ 1
        other_value = tree[sibling, 0]
        other_index = tree[sibling, 1]
        # the better of the two (larger value, or equal value and smaller index)
        if other_value > win_value or (other_value == win_value and other_index < win_index):
            win_value = other_value
            win_index = other_index
        node >>= 1
        if tree[node, 1] == win_index and tree[node, 0] == win_value:
            break  # the winner here is unchanged, and so is everything above
        tree[node, 0] = win_value
        tree[node, 1] = win_index


@njit(inline="always")
def _tree_top(tree):
    """The winner's index."""
    return np.int64(tree[1, 1])


@njit()
def _runner_up(values, tree, size, first):
    """Best index other than `first` (temporarily removes it from the tree); -1 if none."""
    saved = values[first]
    _tree_set(values, tree, size, first, -np.inf)
    second = tree[1, 1]
    _tree_set(values, tree, size, first, saved)
    # when every other value is -inf the tree's tie rule may hand back `first` itself
    if second == _EMPTY or second == first or values[np.int64(second)] == -np.inf:
        return -1
    return np.int64(second)


@njit(inline="always")
def _gain_up(table, p, delta, t, i, top):
    if t[i] < top:
        return utility_at(table, p, delta, i, t[i] + 1) - utility_at(table, p, delta, i, t[i])
    return -np.inf


@njit(inline="always")
def _gain_down(table, p, delta, t, i):
    if t[i] > 0:
        return utility_at(table, p, delta, i, t[i] - 1) - utility_at(table, p, delta, i, t[i])
    return -np.inf


@njit()
def _gains(table, p, delta, t, i, top):
    """``(u(t_i + 1) - u(t_i), u(t_i - 1) - u(t_i))`` of row i (-inf beyond the levels)."""
    here = utility_at(table, p, delta, i, t[i])
    up = utility_at(table, p, delta, i, t[i] + 1) - here if t[i] < top else -np.inf
    down = utility_at(table, p, delta, i, t[i] - 1) - here if t[i] > 0 else -np.inf
    return up, down


@njit()
def row_scale(table, p, delta, n, width):
    """``scale[i] = max |u_j(t)|`` over rows j <= i and every column: the local search's tolerance scale."""
    scale = np.empty(n)
    m = 0.0
    for i in range(n):
        for c in range(width):
            m = max(m, abs(utility_at(table, p, delta, i, c)))
        scale[i] = m
    return scale


@njit()
def local_search(active, t, lo, hi, max_moves):
    """1-bit moves between workers ``lo .. hi - 1`` while the best move gains.

    A move takes one bit from donor i (``t_i > 0``) and gives it to receiver
    j != i (``t_j < T``); best improvement first, ties to the smaller index.
    Gains below a relative 1e-13 of the table scale count as none (no cycling
    on rounding noise). Two tournament trees keep the best receiver and donor,
    so a move costs O(log k). Modifies `t` in place; returns the number of moves.
    Reference: :func:`gcdesign.allocation.heuristic.local_search_reference`.
    """
    scale = 0.0
    for i in range(lo, hi):
        for c in range(active.shape[1]):
            scale = max(scale, abs(active[i, c]))
    none = np.zeros(0)
    return local_search_at(active, none, none, active.shape[1] - 1, t, lo, hi, max_moves, scale)


@njit()
def local_search_at(table, p, delta, top, t, lo, hi, max_moves, scale):
    """:func:`local_search` on utilities read by :func:`utility_at` (columns 0..top), with the
    tolerance scale given (the largest ``|u|`` of the rows ``lo .. hi - 1``)."""
    count = hi - lo
    if count < 2:
        return 0
    tol = 1e-13 * max(scale, 1e-300)
    up = np.empty(count)
    down = np.empty(count)
    for w in range(count):
        up[w], down[w] = _gains(table, p, delta, t, lo + w, top)
    # most starts are local optima already: look for one improving move before building the trees
    j1 = 0
    i1 = 0
    for w in range(1, count):
        if up[w] > up[j1]:
            j1 = w
        if down[w] > down[i1]:
            i1 = w
    if j1 != i1 and not up[j1] + down[i1] > tol:
        return 0
    up_tree, size = _tree_new(up)
    down_tree, _ = _tree_new(down)
    moves = 0
    while moves < max_moves:
        j1 = _tree_top(up_tree)
        i1 = _tree_top(down_tree)
        up1 = up[j1]
        down1 = down[i1]
        if up1 == -np.inf or down1 == -np.inf:
            break
        if j1 != i1:
            gain = up1 + down1
            donor = i1
            receiver = j1
        else:
            gain = -np.inf
            donor = -1
            receiver = -1
            j2 = _runner_up(up, up_tree, size, j1)
            i2 = _runner_up(down, down_tree, size, i1)
            if j2 >= 0 and up[j2] + down1 > gain:
                gain = up[j2] + down1
                donor = i1
                receiver = j2
            if i2 >= 0 and up1 + down[i2] > gain:
                gain = up1 + down[i2]
                donor = i2
                receiver = j1
        if donor < 0 or not gain > tol:
            break
        # the donor's new gain up is minus its old gain down, and the other way round for the
        # receiver (exactly: a - b = -(b - a) in floating point)
        donor_up = -down[donor]
        receiver_down = -up[receiver]
        t[lo + donor] -= 1
        t[lo + receiver] += 1
        _tree_set(up, up_tree, size, donor, donor_up)
        _tree_set(down, down_tree, size, donor, _gain_down(table, p, delta, t, lo + donor))
        _tree_set(up, up_tree, size, receiver, _gain_up(table, p, delta, t, lo + receiver, top))
        _tree_set(down, down_tree, size, receiver, receiver_down)
        moves += 1
    return moves


@njit()
def greedy_top_up(active, t, k, bits):
    """Give `bits` single bits, each to the worker among the first k with the largest marginal gain.

    Ties go to the smaller row. Modifies `t` in place.
    Reference: :func:`gcdesign.allocation.heuristic.greedy_top_up_reference`.
    """
    none = np.zeros(0)
    top_up_at(active, none, none, active.shape[1] - 1, t, k, bits)


@njit()
def top_up_at(table, p, delta, top, t, k, bits):
    """:func:`greedy_top_up` on utilities read by :func:`utility_at`: a tournament tree keeps the
    best next gain (ties: the smaller row), so a bit costs O(log k) after an O(k) build."""
    if bits <= 0:
        return
    gain = np.empty(k)
    for w in range(k):
        gain[w] = _gain_up(table, p, delta, t, w, top)
    tree, size = _tree_new(gain)
    for _ in range(bits):
        w = _tree_top(tree)
        t[w] += 1
        _tree_set(gain, tree, size, w, _gain_up(table, p, delta, t, w, top))


@njit()
def _objective(table, p, delta, t, lo, hi):
    total = 0.0
    for w in range(lo, hi):
        total += utility_at(table, p, delta, w, t[w])
    return total


@njit()
def refine_candidate(table, p, delta, top, t_a, t_b, k, budget, filled, scale, max_moves, both):
    """Steps (a)-(c) of Algorithm 1 for the top-k set, from the water-filling start `t_a` (whole
    envelope segments, `filled` bits): top-up, equal split `t_b`, local search on the better start
    or on both. Returns ``(value_a, value_b, moves)``: the sums of ``u`` over rows 0..k-1
    (``value_b`` is -inf unless `both`); `t_a`, `t_b` hold the refined offsets."""
    # ... the water-filling start topped up bit by bit by marginal gain
    top_up_at(table, p, delta, top, t_a, k, budget - filled)
    # (b) equal split, the remainder to the most reliable
    q = budget // k
    extra = budget - q * k
    for w in range(k):
        t_b[w] = min(q + (1 if w < extra else 0), top)
    if not both:
        # the paper: keep the better of (a) and (b), then refine it
        if _objective(table, p, delta, t_a, 0, k) < _objective(table, p, delta, t_b, 0, k):
            t_a[:k] = t_b[:k]
    # (c) 1-bit local search within the top-k (on both starts when `both`:
    # the worse start sometimes leads to the better local optimum)
    moves = local_search_at(table, p, delta, top, t_a, 0, k, max_moves, scale)
    value_a = _objective(table, p, delta, t_a, 0, k)
    value_b = -np.inf
    if both:
        moves += local_search_at(table, p, delta, top, t_b, 0, k, max_moves, scale)
        value_b = _objective(table, p, delta, t_b, 0, k)
    return value_a, value_b, moves


# ----------------------------------------------------------------- heuristic
@njit()
def dual_bounds(active, lambdas, ks, residuals, rest_value):
    """Upper bound on the value of every top-k candidate, by weak Lagrangian duality.

    For any multiplier lambda, ``max {sum_{i<k} U_i(t_i) : sum t_i = R_k} <=
    lambda R_k + sum_{i<k} max_t (U_i(t) - lambda t)``; the bound is the
    smallest over `lambdas`, plus the utility ``rest_value[k]`` of the others.
    Reference: :func:`gcdesign.allocation.heuristic.dual_bounds_reference`.
    """
    n, width = active.shape
    bound = np.full(ks.size, np.inf)
    for g in range(lambdas.size):
        lam = lambdas[g]
        prefix = 0.0
        c = 0
        for i in range(n):
            best = -np.inf
            for t in range(width):
                best = max(best, active[i, t] - lam * t)
            prefix += best
            while c < ks.size and ks[c] == i + 1:
                bound[c] = min(bound[c], lam * residuals[c] + prefix + rest_value[i + 1])
                c += 1
    return bound


@njit()
def heuristic_kernel(
    active,
    rest_value,
    ks,
    residuals,
    bounds,
    order,
    vert,
    ids,
    rbits,
    max_moves,
    both,
):
    """The paper's Algorithm 1 over the candidate top-k sets ``ks`` (docs/allocation.md).

    Parameters
    ----------
    active : (N, T + 1) utilities of the contiguous levels, rows by reliability.
    rest_value : (N + 1,) ``rest_value[k]`` = total utility of workers k..N-1
        left at their floor level (``base``, or idle).
    ks, residuals : candidate set sizes and the residual bits the top-k share.
    bounds, order : an upper bound on each candidate's value and the order in
        which to try them (decreasing bound); a candidate whose bound cannot
        beat the incumbent by more than 1e-12 relative is skipped, and so are
        all after it. Pass ``bounds = inf`` to try every candidate.
    vert, ids, rbits : the envelope vertices (:func:`envelope_vertices`) and the
        segment ids ``w << rbits | r`` by decreasing slope (ties: worker, then
        start). The water-filling pass also yields the exact value of
        the candidate's relaxation; a candidate that cannot beat the incumbent
        by its relaxation is skipped before the top-up and the local search.
    both : refine both starts (a) and (b) by local search instead of the better one.

    Returns ``(t, k, moves, tried)``: the offsets above ``base`` of the best
    candidate (rows >= k are at the floor), its k, the local-search moves and
    the number of candidates evaluated.
    Reference: :func:`gcdesign.allocation.heuristic.heuristic_kernel_reference`.
    """
    n, width = active.shape
    top = width - 1
    rmask = (1 << rbits) - 1
    best_value = -np.inf
    best_t = np.zeros(n, dtype=np.int64)
    best_k = -1
    total_moves = 0
    tried = 0
    t_a = np.zeros(n, dtype=np.int64)
    t_b = np.zeros(n, dtype=np.int64)
    base_prefix = np.zeros(n + 1)
    for w in range(n):
        base_prefix[w + 1] = base_prefix[w] + active[w, 0]
    none = np.zeros(0)
    scale = row_scale(active, none, none, n, width)
    for c in order:
        if bounds[c] <= best_value + 1e-12 * abs(best_value):
            break
        tried += 1
        k = ks[c]
        budget = residuals[c]
        # (a) Lagrangian water-filling on the concave envelope of the top-k:
        # whole segments in order of slope, the partial one rounded down ...
        t_a[:k] = 0
        filled = 0
        gain = 0.0
        partial = 0.0
        for q in range(ids.size):
            if filled == budget:
                break
            e = ids[q]
            w = e >> rbits
            if w >= k:
                continue
            r = e & rmask
            length = vert[w, r + 1] - vert[w, r]
            slope = segment_slope(active, vert, w, r)
            if filled + length > budget:
                partial = (budget - filled) * slope
                break
            t_a[w] = vert[w, r + 1]
            filled += length
            gain += length * slope
        # the relaxation's value is an exact upper bound for this candidate
        relaxed = base_prefix[k] + gain + partial + rest_value[k]
        if relaxed <= best_value + 1e-12 * abs(best_value):
            continue
        # ... then topped up, and refined (steps (a)-(c))
        value_a, value_b, moves = refine_candidate(
            active, none, none, top, t_a, t_b, k, budget, filled, scale[k - 1], max_moves, both
        )
        total_moves += moves
        for which in range(2 if both else 1):
            t = t_a if which == 0 else t_b
            value = (value_a if which == 0 else value_b) + rest_value[k]
            if value > best_value or (value == best_value and k < best_k):
                best_value = value
                best_k = k
                best_t[:] = 0
                best_t[:k] = t[:k]
    return best_t, best_k, total_moves, tried


@njit(inline="always")
def _before(active, vert, w, r, e, rbits):
    """Whether segment (w, r) precedes segment id `e` in the order of `ids`."""
    we = e >> rbits
    re = e & ((1 << rbits) - 1)
    s1 = segment_slope(active, vert, w, r)
    s2 = segment_slope(active, vert, we, re)
    return s1 > s2 or (s1 == s2 and (w < we or (w == we and r < re)))


@njit()
def relaxation_by_k(active, vert, count, ids, rbits, ks, residuals):
    """The water-filling relaxation of every top-k candidate, in one pass over k.

    ``ids`` are the envelope segments by decreasing slope (as for
    :func:`heuristic_kernel`); ``ks`` must increase and ``residuals`` must not
    (true of every candidate list: the residual is constant, or falls with k
    when an idle level exists). Candidate k's relaxation takes, in the order
    of ``ids``, the segments of workers 0..k-1 while they fit in ``R_k``, then
    part of the next one -- the scan of :func:`heuristic_kernel`. Adding
    workers and shrinking ``R_k`` only moves the first segment that does not
    fit towards the front, so one pointer walks ``ids`` once over all
    candidates: O(S + N T) in all (a Neumaier-compensated running sum keeps the
    gains exact to rounding).

    Returns ``(gain, used)``: ``gain[c]`` is the relaxation's value above the
    base level (whole segments plus the partial one) and ``used[c]`` tells
    whether the least reliable worker of the set, ``ks[c] - 1``, gets any of
    the relaxation's bits. When it does not (and ``R_k`` is the same), the
    water-filling start of candidate c equals the one of the candidate before.
    Reference: :func:`gcdesign.allocation.heuristic.relaxation_by_k_reference`.
    """
    size = ids.size
    rmask = (1 << rbits) - 1
    gain = np.zeros(ks.size)
    used = np.zeros(ks.size, dtype=np.bool_)
    pos = size  # segments before pos (of inserted workers) are taken whole
    taken = 0  # their total length
    total = 0.0  # their total gain, with the compensation term below
    comp = 0.0
    inserted = 0
    for c in range(ks.size):
        k = ks[c]
        while inserted < k:
            w = inserted
            for r in range(count[w]):
                if pos < size and not _before(active, vert, w, r, ids[pos], rbits):
                    break  # this and the worker's later segments lie at or after pos
                length = vert[w, r + 1] - vert[w, r]
                total, comp = _add(total, comp, length * segment_slope(active, vert, w, r))
                taken += length
            inserted += 1
        budget = residuals[c]
        while taken > budget:
            pos -= 1
            e = ids[pos]
            w = e >> rbits
            if w < k:
                r = e & rmask
                length = vert[w, r + 1] - vert[w, r]
                total, comp = _add(total, comp, -(length * segment_slope(active, vert, w, r)))
                taken -= length
        rem = budget - taken
        value = total + comp
        if rem > 0 and pos < size:
            e = ids[pos]
            value += rem * segment_slope(active, vert, e >> rbits, e & rmask)
        gain[c] = value
        last = k - 1
        if count[last] > 0:
            if pos == size or _before(active, vert, last, 0, ids[pos], rbits):
                used[c] = True
            elif ids[pos] == (last << rbits) and rem > 0:
                used[c] = True
    return gain, used


# ------------------------------------------- heuristic without the table or the segment sort
# The windowed scan needs the water-filling relaxation of the full set only: every candidate from
# the last "new" one on shares it (docs/allocation.md, "Without the table"). These kernels read
# utilities through :func:`utility_at`, from a table or from ``(p, delta)`` (rows by reliability).
@njit(inline="always")
def _add(total, comp, x):
    """One step of Neumaier's compensated sum: ``(total, comp)`` after adding x."""
    t = total + x
    if abs(total) >= abs(x):
        comp += (total - t) + x
    else:
        comp += (x - t) + total
    return t, comp


@njit()
def envelope_pass(table, p, delta, n, vert, lam_lo, lam_hi, cap):
    """One pass over the rows: each row's envelope (:func:`envelope_vertices`), its largest
    ``|u|``, its utility at column 0, and the envelope segments split by slope against the
    bracket ``lam_lo < lam_hi``. Only the first `rows` rows (the largest candidate set), ``vert``
    of shape (rows, T + 1) and an integer type that holds T, get envelopes; of the others only
    the utility at column 0 is read.

    Returns ``(count, above, scale, base, above_bits, total, comp, absum, slope, worker, seg,
    length, overflow)``: ``above[i]`` is the number of row i's segments of slope >
    ``lam_hi`` (a prefix of its envelope), ``above_bits`` their bits and ``total + comp`` the
    compensated sum of their ``length * slope`` (``absum``: of the absolute values), and the
    segments with ``lam_lo < slope <= lam_hi`` are listed in ``(worker, seg)`` order (at most
    `cap`; ``overflow`` says some were left out). ``scale[i]`` is the largest ``|u|`` of rows
    0..i (the local search's tolerance scale).
    """
    rows, width = vert.shape
    steps = np.arange(width)
    count = np.zeros(rows, dtype=np.int16)
    above = np.zeros(n, dtype=np.int16)
    scale = np.empty(n)
    base = np.empty(n)
    row = np.empty((1, width))
    hull = np.empty(width, dtype=np.int64)
    vals = np.empty(width)
    slope = np.empty(cap)
    worker = np.empty(cap, dtype=np.int64)
    seg = np.empty(cap, dtype=np.int64)
    length = np.empty(cap, dtype=np.int64)
    above_bits = 0
    total = 0.0
    comp = 0.0
    absum = 0.0
    q = 0
    overflow = False
    m = 0.0
    for i in range(rows, n):
        base[i] = utility_at(table, p, delta, i, 0)
        scale[i] = 0.0  # not read: no candidate reaches these rows
    for i in range(rows):
        for c in range(width):
            u = utility_at(table, p, delta, i, c)
            row[0, c] = u
            m = max(m, abs(u))
        scale[i] = m
        base[i] = row[0, 0]
        size = _row_hull(row, p, delta, 0, steps, hull, vals)
        for h in range(size):
            vert[i, h] = hull[h]
        count[i] = size - 1
        for r in range(size - 1):
            ln = hull[r + 1] - hull[r]
            s = (vals[r + 1] - vals[r]) / ln
            if s > lam_hi:
                above[i] += 1
                above_bits += ln
                x = ln * s
                total, comp = _add(total, comp, x)
                absum += abs(x)
            elif s > lam_lo:
                if q < cap:
                    slope[q] = s
                    worker[q] = i
                    seg[q] = r
                    length[q] = ln
                    q += 1
                else:
                    overflow = True
            else:
                break  # slopes decrease along the envelope
    return (
        count,
        above,
        scale,
        base,
        above_bits,
        total,
        comp,
        absum,
        slope[:q],
        worker[:q],
        seg[:q],
        length[:q],
        overflow,
    )


@njit()
def prefix_sums(base):
    """``(base_prefix, rest_value)``: ``base_prefix[k]`` the sum of ``base[:k]`` left to right,
    ``rest_value[k]`` the sum of ``base[k:]`` right to left (``np.cumsum``'s sums, n + 1 each)."""
    n = base.size
    base_prefix = np.empty(n + 1)
    rest_value = np.empty(n + 1)
    total = 0.0
    base_prefix[0] = 0.0
    for i in range(n):
        total += base[i]
        base_prefix[i + 1] = total
    total = 0.0
    rest_value[n] = 0.0
    for i in range(n - 1, -1, -1):
        total += base[i]
        rest_value[i] = total
    return base_prefix, rest_value


@njit()
def segment_sum(table, p, delta, vert, w, n_seg, total, comp):
    """``(total, comp)`` minus ``length * slope`` of row w's first `n_seg` envelope segments."""
    for r in range(n_seg):
        a = vert[w, r]
        b = vert[w, r + 1]
        s = (utility_at(table, p, delta, w, b) - utility_at(table, p, delta, w, a)) / (b - a)
        total, comp = _add(total, comp, -((b - a) * s))
    return total, comp


@njit()
def relaxation_step_down(
    table, p, delta, vert, taken, extra, worker, length, slope, j, k, residual, filled, total, comp
):
    """The water-filling relaxation of the top-(k - 1) set from the one of the top-k set.

    ``worker``, ``length``, ``slope`` are the bracket's segments by decreasing slope (ties:
    worker, then segment), ``j`` the position of the top-k relaxation's first segment left out;
    row w has ``taken[w] + extra[w]`` whole segments in it, ``filled`` bits and the compensated
    sum ``(total, comp)``. Row k - 1 leaves (its segments are subtracted) and the segments after
    position j of rows < k - 1 are taken while they fit. Returns ``(j, filled, total, comp)``
    for the top-(k - 1) set; `extra` is updated. ``j == worker.size`` with ``filled <
    residual`` means the bracket ran out.
    """
    w = k - 1
    total, comp = segment_sum(table, p, delta, vert, w, taken[w] + extra[w], total, comp)
    filled -= vert[w, taken[w] + extra[w]]
    size = worker.size
    while j < size:
        e = worker[j]
        if e >= k - 1:
            j += 1
            continue
        if filled + length[j] > residual:
            break
        filled += length[j]
        total, comp = _add(total, comp, length[j] * slope[j])
        extra[e] += 1
        j += 1
    return j, filled, total, comp


@njit()
def take_segments(worker, length, slope, j0, j1, counts, total, comp):
    """``(total, comp)`` plus ``length * slope`` of the segments ``j0 .. j1 - 1``; each counted
    in ``counts[worker]``."""
    for q in range(j0, j1):
        total, comp = _add(total, comp, length[q] * slope[q])
        counts[worker[q]] += 1
    return total, comp


@njit()
def water_filling_start(vert, taken, worker, seg, j0, j1, k, t):
    """The water-filling start of the top-k set: row w < k at the end of its ``taken[w]``
    whole segments, moved on by the bracket's segments ``j0 .. j1 - 1`` of rows < k."""
    for w in range(k):
        t[w] = vert[w, taken[w]]
    for q in range(j0, j1):
        w = worker[q]
        if w < k:
            t[w] = vert[w, seg[q] + 1]


# -------------------------------------------------------------------- greedy
@njit()
def greedy_kernel(active, m, budget):
    """Start the first m workers at offset 0, then give each of `budget` bits to
    the largest marginal gain (a binary max-heap keyed by the next gain)."""
    top = active.shape[1] - 1
    t = np.zeros(active.shape[0], dtype=np.int64)
    heap_gain = np.empty(m, dtype=np.float64)
    heap_w = np.empty(m, dtype=np.int64)
    size = 0
    for w in range(m):
        if top > 0:
            heap_gain[size] = active[w, 1] - active[w, 0]
            heap_w[size] = w
            # sift up (ties: smaller worker index, i.e. more reliable, first)
            c = size
            size += 1
            while c > 0:
                p = (c - 1) // 2
                if heap_gain[c] > heap_gain[p] or (heap_gain[c] == heap_gain[p] and heap_w[c] < heap_w[p]):
                    heap_gain[c], heap_gain[p] = heap_gain[p], heap_gain[c]
                    heap_w[c], heap_w[p] = heap_w[p], heap_w[c]
                    c = p
                else:
                    break
    for _ in range(budget):
        w = heap_w[0]
        t[w] += 1
        if t[w] < top:
            heap_gain[0] = active[w, t[w] + 1] - active[w, t[w]]
        else:
            size -= 1
            heap_gain[0] = heap_gain[size]
            heap_w[0] = heap_w[size]
        # sift down
        c = 0
        while True:
            left = 2 * c + 1
            if left >= size:
                break
            best = left
            right = left + 1
            if right < size and (
                heap_gain[right] > heap_gain[left]
                or (heap_gain[right] == heap_gain[left] and heap_w[right] < heap_w[left])
            ):
                best = right
            if heap_gain[best] > heap_gain[c] or (
                heap_gain[best] == heap_gain[c] and heap_w[best] < heap_w[c]
            ):
                heap_gain[c], heap_gain[best] = heap_gain[best], heap_gain[c]
                heap_w[c], heap_w[best] = heap_w[best], heap_w[c]
                c = best
            else:
                break
    return t


# ------------------------------------------------------- certified (Lagrangian)
# The certified solver reads utilities either from a table (``table`` of shape (N, L)) or,
# when ``table`` is empty (shape (0, 0)), straight from the straggler probabilities and error
# factors: ``u_i(levels[l]) = (1 - p_i) / (p_i + delta_l)`` -- the same float64 operations as
# :func:`gcdesign.utility.utilities`, so both give the same numbers bit for bit, and the
# 250 MB table of N = 10^6 workers is never built. A row stands for ``count[i]`` identical
# workers (a hardware class; 1 for a row of its own).

TIE_REL = 1e-13
"""Two levels of a row whose Lagrangian values ``u(l) - lam steps[l]`` differ by at most
``TIE_REL (max_l |u(l)| + |lam| steps[-1])`` are tied (reduced cost 0): the multiplier is the
slope of an envelope segment, and its two ends then differ only by rounding."""


@njit(inline="always")
def utility_at(table, p, delta, i, l):
    """``u_i(levels[l])`` from `table`, or from ``p`` and ``delta`` when `table` is empty."""
    if table.shape[0] > 0:
        return table[i, l]
    return (1.0 - p[i]) / (p[i] + delta[l])


@njit(inline="always")
def _row_hull(table, p, delta, i, steps, hull, vals):
    """Upper concave envelope of worker i's points ``(steps[l], u_i(l))``: its size; level
    indices in ``hull[:size]``, utilities in ``vals[:size]`` (collinear points dropped)."""
    size = 0
    for l in range(steps.size):
        u = utility_at(table, p, delta, i, l)
        while size >= 2:
            a = hull[size - 2]
            b = hull[size - 1]
            cross = (vals[size - 1] - vals[size - 2]) * (steps[l] - steps[a]) - (u - vals[size - 2]) * (
                steps[b] - steps[a]
            )
            if cross <= 0.0:
                size -= 1
            else:
                break
        hull[size] = l
        vals[size] = u
        size += 1
    return size


@njit()
def envelope_segments(table, p, delta, steps, rows, weight):
    """Slopes and weighted lengths (bits x ``weight[j]``) of the envelope segments of the rows `rows`."""
    n_levels = steps.size
    slopes = np.empty(rows.size * (n_levels - 1) + 1)
    lengths = np.empty(rows.size * (n_levels - 1) + 1)
    hull = np.empty(n_levels, dtype=np.int64)
    vals = np.empty(n_levels)
    q = 0
    for j in range(rows.size):
        i = rows[j]
        size = _row_hull(table, p, delta, i, steps, hull, vals)
        for r in range(size - 1):
            length = steps[hull[r + 1]] - steps[hull[r]]
            slopes[q] = (vals[r + 1] - vals[r]) / length
            lengths[q] = length * weight[j]
            q += 1
    return slopes[:q], lengths[:q]


@njit()
def bracket_segments(table, p, delta, steps, count, lam_lo, lam_hi, cap):
    """One pass over every row's envelope for a bracket ``lam_lo < lam_hi`` of multipliers.

    Returns ``(above, slopes, lengths, overflow)``: ``above`` is the number of bits on
    envelope segments of slope > ``lam_hi`` (what the Lagrangian relaxation spends at
    ``lam_hi``); ``slopes``, ``lengths`` are the segments with ``lam_lo < slope <= lam_hi``
    (at most `cap` of them; ``overflow`` says some were left out). Row i counts ``count[i]`` times.
    """
    n = p.size if table.shape[0] == 0 else table.shape[0]
    n_levels = steps.size
    hull = np.empty(n_levels, dtype=np.int64)
    vals = np.empty(n_levels)
    slopes = np.empty(cap)
    lengths = np.empty(cap, dtype=np.int64)
    above = 0
    q = 0
    overflow = False
    for i in range(n):
        size = _row_hull(table, p, delta, i, steps, hull, vals)
        for r in range(size - 1):
            length = (steps[hull[r + 1]] - steps[hull[r]]) * count[i]
            slope = (vals[r + 1] - vals[r]) / (steps[hull[r + 1]] - steps[hull[r]])
            if slope > lam_hi:
                above += length
            elif slope > lam_lo:
                if q < cap:
                    slopes[q] = slope
                    lengths[q] = length
                    q += 1
                else:
                    overflow = True
            else:
                break  # slopes decrease along the envelope
    return above, slopes[:q], lengths[:q], overflow


@njit(inline="always")
def _lagrangian_values(table, p, delta, i, steps, lam, vals):
    """``vals[l] = u_i(l) - lam steps[l]``; returns their maximum and the tie tolerance."""
    b1 = -np.inf
    scale = 0.0
    for l in range(steps.size):
        u = utility_at(table, p, delta, i, l)
        scale = max(scale, abs(u))
        vals[l] = u - lam * steps[l]
        b1 = max(b1, vals[l])
    return b1, TIE_REL * (scale + abs(lam) * steps[steps.size - 1])


@njit()
def lagrangian_pass(table, p, delta, steps, lam, count):
    """For the multiplier `lam`: every row's best level ``argmax_l u_i(l) - lam steps[l]``
    (the smallest of the tied ones, see :data:`TIE_REL`), the largest tied level, the reduced
    cost of its runner-up (how much worse the best untied level is; 0 when two levels tie)
    and ``sum_i count[i] max_l (u_i(l) - lam steps[l])`` (Neumaier-compensated). ``lam R``
    plus that sum is the Lagrangian upper bound ``L(lam)``."""
    n = p.size if table.shape[0] == 0 else table.shape[0]
    n_levels = steps.size
    best = np.empty(n, dtype=np.int32)
    top = np.empty(n, dtype=np.int32)
    runner_up = np.empty(n)
    vals = np.empty(n_levels)
    total = 0.0
    comp = 0.0
    for i in range(n):
        b1, tol = _lagrangian_values(table, p, delta, i, steps, lam, vals)
        first = -1
        last = 0
        b2 = -np.inf
        for l in range(n_levels):
            if vals[l] >= b1 - tol:
                if first < 0:
                    first = l
                last = l
            else:
                b2 = max(b2, vals[l])
        best[i] = first
        top[i] = last
        runner_up[i] = 0.0 if last != first else b1 - b2
        term = b1 * count[i]
        t = total + term
        comp += (total - t) + term if abs(total) >= abs(term) else (term - t) + total
        total = t
    return best, top, runner_up, total + comp


@njit()
def reduced_costs(table, p, delta, steps, lam, rows):
    """Reduced costs ``max_m (u_i(m) - lam steps[m]) - (u_i(l) - lam steps[l])`` (>= 0) of every
    level l of the workers `rows`: array (len(rows), L)."""
    n_levels = steps.size
    out = np.empty((rows.size, n_levels))
    for j in range(rows.size):
        i = rows[j]
        b1 = -np.inf
        for l in range(n_levels):
            v = utility_at(table, p, delta, i, l) - lam * steps[l]
            out[j, l] = v
            b1 = max(b1, v)
        for l in range(n_levels):
            out[j, l] = b1 - out[j, l]
    return out


@njit()
def cheap_moves(table, p, delta, steps, lam, group, base, runner_up, threshold):
    """Every move of reduced cost <= `threshold` away from a subgroup's level.

    Subgroup s is workers of row ``group[s]`` at level ``base[s]`` (a level of reduced cost 0).
    Scans the subgroups whose row's runner-up costs at most `threshold`; returns the arrays
    ``(subgroup, level, shift, cost, loss)`` of the levels l != base[s] with ``c(l) <= threshold``
    (``shift = steps[l] - steps[base[s]]``; a tied level costs 0; ``loss = u(base[s]) - u(l)``,
    the reduced cost less ``lam shift``, free of the rounding of ``lam steps``).
    """
    n_levels = steps.size
    count = 0
    for s in range(group.size):
        if runner_up[group[s]] <= threshold:
            count += 1
    size = count * (n_levels - 1)
    sub = np.empty(size, dtype=np.int64)
    level = np.empty(size, dtype=np.int64)
    shift = np.empty(size, dtype=np.int64)
    cost = np.empty(size)
    loss = np.empty(size)
    vals = np.empty(n_levels)
    q = 0
    for s in range(group.size):
        i = group[s]
        if runner_up[i] > threshold:
            continue
        b1, tol = _lagrangian_values(table, p, delta, i, steps, lam, vals)
        b = base[s]
        u_base = utility_at(table, p, delta, i, b)
        for l in range(n_levels):
            c = b1 - vals[l]
            if c <= tol:
                c = 0.0
            if l != b and c <= threshold:
                sub[q] = s
                level[q] = l
                shift[q] = steps[l] - steps[b]
                cost[q] = c
                loss[q] = u_base - utility_at(table, p, delta, i, l)
                q += 1
    return sub[:q], level[:q], shift[:q], cost[:q], loss[:q]


@njit()
def keep_cheapest(shift, loss, per_shift, copies):
    """How many copies of each move to keep so that every shift keeps its `per_shift` cheapest
    ones, moves of one shift taken by increasing `loss`, ties by index (a move offers at most
    ``copies[q] >= 1``). O(moves): the moves are bucketed by shift, and of a bucket only those
    up to its `per_shift`-th smallest loss are sorted."""
    m = shift.size
    keep = np.zeros(m, dtype=np.int64)
    if m == 0 or per_shift <= 0:
        return keep
    low = shift[0]
    high = shift[0]
    for q in range(m):
        low = min(low, shift[q])
        high = max(high, shift[q])
    start = np.zeros(high - low + 2, dtype=np.int64)
    for q in range(m):
        start[shift[q] - low + 1] += 1
    for j in range(1, start.size):
        start[j] += start[j - 1]
    fill = start[:-1].copy()
    members = np.empty(m, dtype=np.int64)
    for q in range(m):  # by shift, in index order within a shift
        j = shift[q] - low
        members[fill[j]] = q
        fill[j] += 1
    for j in range(start.size - 1):
        ids = members[start[j] : start[j + 1]]
        if ids.size > per_shift:
            values = loss[ids]
            kth = np.partition(values.copy(), per_shift - 1)[per_shift - 1]
            ids = ids[values <= kth]  # at least per_shift moves, each offering >= 1 copy
        order = np.argsort(loss[ids], kind="mergesort")
        taken = 0
        for t in order:
            q = ids[t]
            k = min(copies[q], per_shift - taken)
            if k <= 0:
                break
            keep[q] = k
            taken += k
    return keep


@njit()
def shift_dp(shifts, costs, width, target, bound):
    """Exact DP over the core: row j takes one of its ``width[j]`` moves (move 0 is
    ``(shift 0, cost 0)``), the shifts must total `target`; partial sums are kept
    within ``[-bound, bound]``. Minimizes the total cost; returns ``(move per row,
    cost)``, cost inf when no choice reaches `target`. Ties: the smaller move of the
    last row first."""
    m = shifts.shape[0]
    size = 2 * bound + 1
    prev = np.full(size, np.inf)
    prev[bound] = 0.0
    cur = np.empty(size)
    choice = np.zeros((m, size), dtype=np.int16)
    lo = bound  # reachable partial sums, as indices
    hi = bound
    for j in range(m):
        smin = 0
        smax = 0
        for k in range(width[j]):
            smin = min(smin, shifts[j, k])
            smax = max(smax, shifts[j, k])
        new_lo = max(0, lo + smin)
        new_hi = min(size - 1, hi + smax)
        cur[new_lo : new_hi + 1] = np.inf
        row = choice[j]
        for k in range(width[j]):
            d = shifts[j, k]
            c = costs[j, k]
            for r in range(max(new_lo, lo + d), min(new_hi, hi + d) + 1):
                v = prev[r - d] + c
                if v < cur[r]:
                    cur[r] = v
                    row[r] = k
        prev, cur = cur, prev
        lo = new_lo
        hi = new_hi
    pick = np.zeros(m, dtype=np.int64)
    r = bound + target
    if r < lo or r > hi or prev[r] == np.inf:
        return pick, np.inf
    total = prev[r]
    for j in range(m - 1, -1, -1):
        k = np.int64(choice[j, r])
        pick[j] = k
        r -= shifts[j, k]
    return pick, total


@njit()
def solution_reduced_cost(table, p, delta, steps, lam, index):
    """``sum_i`` of the reduced cost of level ``index[i]`` under `lam` (0 for a Lagrangian choice)."""
    total = 0.0
    for i in range(p.size if table.shape[0] == 0 else table.shape[0]):
        b1 = -np.inf
        for l in range(steps.size):
            b1 = max(b1, utility_at(table, p, delta, i, l) - lam * steps[l])
        l = index[i]
        total += b1 - (utility_at(table, p, delta, i, l) - lam * steps[l])
    return total


@njit()
def spread_classes(inverse, index, plan_start, plan_level, plan_count):
    """Hand out the levels of the rows that do not all sit at one level: the workers of row g
    (``inverse[i] == g``, in worker order) take ``plan_count[k]`` times ``plan_level[k]`` for k in
    ``plan_start[g] .. plan_start[g + 1] - 1``, in that order (``index[i]`` keeps its level for
    the other rows, whose ``plan_start`` range is empty)."""
    pointer = plan_start[:-1].copy()
    used = np.zeros(plan_level.size, dtype=np.int64)
    for i in range(inverse.size):
        g = inverse[i]
        k = pointer[g]
        if k < plan_start[g + 1]:
            index[i] = plan_level[k]
            used[k] += 1
            if used[k] == plan_count[k]:
                pointer[g] = k + 1
    return index
