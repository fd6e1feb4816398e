"""Bit allocation: exact DP, CP-SAT, the heuristic and the baselines (docs/allocation.md)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gcdesign import ClusterProfile, InputError, allocate_bits, allocate_table, design, load_example
from gcdesign.allocation import ALLOCATORS, allowed_levels, utility_table
from gcdesign.allocation.dp import dp_reference, dp_solve
from gcdesign.allocation.instances import random_instance

METHODS = ["dp", "cpsat", "heuristic", "greedy", "relaxation", "equal", "topk-equal"]


def brute_force(table, levels, budget):
    """Best objective over every assignment of levels (tiny instances only)."""
    n, n_levels = table.shape
    grids = np.array(list(itertools.product(range(n_levels), repeat=n)))
    spent = levels[grids].sum(axis=1)
    ok = spent == budget
    if not ok.any():
        return -np.inf
    values = table[np.arange(n), grids[ok]].sum(axis=1)
    return float(values.max())


def small_table(rng, n, *, b_max, allow_idle):
    p = rng.uniform(0.01, 0.95, n)
    if rng.random() < 0.3:  # hardware classes: ties
        p = rng.choice(p[:2], n)
    dim = int(10 ** rng.uniform(2, 6))
    kappa = float(10 ** rng.uniform(-4, 0))
    levels = allowed_levels(2, b_max, allow_idle=allow_idle)
    return utility_table(p, kappa, dim, levels), levels, p


def rel_gap(best, value):
    return (best - value) / abs(best)


# ------------------------------------------------------------------ exact DP
def test_registry_has_every_method():
    assert set(METHODS) <= set(ALLOCATORS)


def test_dp_equals_brute_force_for_small_n():
    rng = np.random.default_rng(3)
    checked = 0
    for n in range(1, 7):
        for _ in range(12):
            allow_idle = bool(rng.random() < 0.3)
            b_max = int(rng.integers(2, 6 if n <= 4 else 5))
            table, levels, _ = small_table(rng, n, b_max=b_max, allow_idle=allow_idle)
            low = 2 if allow_idle else 2 * n
            budget = int(rng.integers(low, n * b_max + 1))
            best = brute_force(table, levels, budget)
            if best == -np.inf:
                continue
            result = allocate_table(table, levels, budget, method="dp")
            assert result.bits.sum() == budget
            assert result.objective == pytest.approx(best, rel=1e-12, abs=1e-300)
            assert result.optimal is True
            checked += 1
    assert checked >= 60


def test_numba_dp_equals_numpy_reference():
    rng = np.random.default_rng(4)
    for _ in range(25):
        n = int(rng.integers(1, 40))
        inst = random_instance(rng, n=n)
        index, value = dp_solve(inst.table, inst.levels, inst.budget)
        ref_index, ref_value = dp_reference(inst.table, inst.levels, inst.budget)
        np.testing.assert_array_equal(index, ref_index)
        assert value == ref_value


def test_dp_on_non_contiguous_levels():
    rng = np.random.default_rng(5)
    levels = np.array([0, 3, 4, 7, 8])
    table = np.sort(rng.random((5, levels.size)), axis=1)
    for budget in (3, 10, 17, 30):
        best = brute_force(table, levels, budget)
        result = allocate_table(table, levels, budget, method="dp")
        assert result.objective == pytest.approx(best, rel=1e-12)
    with pytest.raises(InputError, match="cannot be written as a sum"):
        allocate_table(table, levels, 1, method="dp")


def test_optimal_allocation_is_monotone_in_reliability():
    """Rearranging the DP's bits so that more reliable workers get more never loses."""
    rng = np.random.default_rng(6)
    for _ in range(40):
        inst = random_instance(rng, n_range=(2, 40))
        result = allocate_table(inst.table, inst.levels, inst.budget, method="dp")
        order = np.argsort(inst.probs, kind="stable")
        monotone = np.empty_like(result.bits)
        monotone[order] = np.sort(result.bits)[::-1]
        index = np.searchsorted(inst.levels, monotone)
        value = inst.table[np.arange(inst.table.shape[0]), index].sum()
        assert value == pytest.approx(result.objective, rel=1e-12)


# ------------------------------------------------------------------- CP-SAT
@pytest.mark.parametrize("n", [3, 12, 30])
def test_cpsat_equals_dp(n):
    rng = np.random.default_rng(n)
    for _ in range(2):
        inst = random_instance(rng, n=n, b_max=int(rng.choice([8, 16])))
        exact = allocate_table(inst.table, inst.levels, inst.budget, method="dp")
        result = allocate_table(inst.table, inst.levels, inst.budget, method="cpsat")
        assert result.optimal is True
        assert result.bits.sum() == inst.budget
        # the integer objective is rounded to 1e-9 of the largest utility range
        assert rel_gap(exact.objective, result.objective) <= n * 1e-9
        assert result.objective <= exact.objective * (1 + 1e-12)


def test_cpsat_options_are_checked():
    table, levels, _ = small_table(np.random.default_rng(0), 4, b_max=6, allow_idle=False)
    with pytest.raises(InputError, match="`time_limit` must be a finite number > 0"):
        allocate_table(table, levels, 12, method="cpsat", options={"time_limit": -1})
    with pytest.raises(InputError, match="`threads` must be an integer >= 1"):
        allocate_table(table, levels, 12, method="cpsat", options={"threads": 0.5})
    # `workers`, the option's old name, still works for one release
    new = allocate_table(table, levels, 12, method="cpsat", options={"threads": 1})
    with pytest.warns(DeprecationWarning, match="`workers=` is deprecated.*use `threads=`"):
        old = allocate_table(table, levels, 12, method="cpsat", options={"workers": 1})
    np.testing.assert_array_equal(old.bits, new.bits)


# ---------------------------------------------------------------- heuristic
def test_heuristic_matches_dp_on_random_instances():
    rng = np.random.default_rng(7)
    gaps = []
    for _ in range(80):
        inst = random_instance(rng, n_range=(5, 60))
        exact = allocate_table(inst.table, inst.levels, inst.budget, method="dp")
        result = allocate_table(inst.table, inst.levels, inst.budget, method="heuristic")
        assert result.bits.sum() == inst.budget
        gaps.append(rel_gap(exact.objective, result.objective))
    gaps = np.array(gaps)
    assert gaps.min() >= -1e-12  # never better than the optimum
    assert np.mean(gaps <= 1e-9) >= 0.97


def test_heuristic_pruning_does_not_change_the_value():
    rng = np.random.default_rng(8)
    for _ in range(30):
        inst = random_instance(rng, n_range=(5, 60))
        pruned = allocate_table(inst.table, inst.levels, inst.budget, method="heuristic")
        full = allocate_table(
            inst.table, inst.levels, inst.budget, method="heuristic", options={"prune": False}
        )
        assert pruned.objective >= full.objective * (1 - 1e-12)


def test_heuristic_windowed_scan_equals_full_scan():
    """The scaled search (default above N = 200) finds the value of the paper's full scan."""
    rng = np.random.default_rng(31)
    messages = set()
    for i in range(14):
        inst = random_instance(
            rng, n_range=(200, 1500), bits_per_worker=float(rng.uniform(2.0, 6.0)), allow_idle=i % 3 == 0
        )
        args = (inst.table, inst.levels, inst.budget)
        full = allocate_table(*args, method="heuristic", options={"scan": "full"})
        fast = allocate_table(*args, method="heuristic")
        assert fast.bits.sum() == inst.budget
        assert fast.objective >= full.objective - 1e-12 * abs(full.objective), inst.description
        messages.add(fast.message.split(":")[0])
    assert messages == {"heuristic (windowed scan)"}


def test_heuristic_windowed_scan_matches_dp():
    rng = np.random.default_rng(32)
    for _ in range(8):
        inst = random_instance(rng, n_range=(200, 600), bits_per_worker=float(rng.uniform(2.0, 4.0)))
        args = (inst.table, inst.levels, inst.budget)
        exact = allocate_table(*args, method="dp")
        fast = allocate_table(*args, method="heuristic", options={"scan": "windowed"})
        assert rel_gap(exact.objective, fast.objective) <= 1e-9, inst.description


def test_windowed_candidates():
    from gcdesign.allocation.heuristic import windowed_candidates

    used = np.array([True, True, True] + [False] * 40)
    eligible, dist = windowed_candidates(used, 2)
    assert dist[:5].tolist() == [0, 0, 0, 1, 2]
    # the new candidates, two after them, distances 2 * 2^j, the last one
    assert np.flatnonzero(eligible).tolist() == [0, 1, 2, 3, 4, 6, 10, 18, 34, 42]


def test_heuristic_paper_setting():
    prof = load_example("paper-n50")
    exact = allocate_bits(prof, 350, method="dp")
    result = allocate_bits(prof, 350, method="heuristic")
    assert rel_gap(exact.objective, result.objective) <= 1e-12


# --------------------------------------------------------------- every method
@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_feasible_and_below_the_optimum(method):
    rng = np.random.default_rng(9)
    for _ in range(6):
        inst = random_instance(rng, n_range=(3, 25), b_max=int(rng.choice([8, 16])))
        exact = allocate_table(inst.table, inst.levels, inst.budget, method="dp")
        result = allocate_table(inst.table, inst.levels, inst.budget, method=method)
        assert result.method == method
        assert result.bits.sum() == inst.budget
        assert np.all(np.isin(result.bits, inst.levels))
        assert result.objective <= exact.objective * (1 + 1e-12)
        index = np.searchsorted(inst.levels, result.bits)
        assert result.objective == pytest.approx(inst.table[np.arange(len(index)), index].sum(), rel=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_design_accepts_every_allocator(method):
    d = design(load_example("toy-n8"), bits_per_worker=4, allocator=method)
    assert d.allocation.method == method
    assert d.bits.sum() == 32
    assert d.options["allocator"] == method


def test_allocate_bits_result_fields():
    prof = load_example("toy-n8")
    result = allocate_bits(prof, 40, method="dp", quantization=0.5)
    assert result.kappa == 0.5
    assert result.optimal is True and result.wall_time >= 0 and result.message
    levels = allowed_levels(2, 32)
    table = utility_table(prof.straggler_probs, 0.5, prof.dim, levels)
    assert result.objective == pytest.approx(
        table[np.arange(8), np.searchsorted(levels, result.bits)].sum(), rel=1e-14
    )


def test_greedy_is_the_marginal_gain_greedy():
    """From b_min, every bit goes to the worker whose next bit gains most (Python loop)."""
    rng = np.random.default_rng(10)
    for _ in range(10):
        table, levels, _ = small_table(rng, 7, b_max=10, allow_idle=False)
        budget = int(rng.integers(14, 71))
        t = np.zeros(7, dtype=int)
        for _ in range(budget - 14):
            gain = np.where(
                t < levels.size - 1,
                table[np.arange(7), np.minimum(t + 1, 8)] - table[np.arange(7), t],
                -np.inf,
            )
            t[np.argmax(gain)] += 1
        result = allocate_table(table, levels, budget, method="greedy")
        assert result.objective == pytest.approx(table[np.arange(7), t].sum(), rel=1e-14)


def test_equal_gives_the_remainder_to_the_most_reliable():
    prof = ClusterProfile([0.5, 0.1, 0.3], dim=100)
    result = allocate_bits(prof, 13, method="equal")
    np.testing.assert_array_equal(result.bits, [4, 5, 4])


# -------------------------------------------------------------- idle workers
def late_profile():
    p = np.r_[np.full(9, 0.1), 0.995]
    return ClusterProfile(p, dim=10_000)


@pytest.mark.parametrize("method", ["dp", "cpsat", "heuristic", "topk-equal"])
def test_nearly_always_late_worker_goes_idle(method):
    prof = late_profile()
    result = allocate_bits(prof, 30, method=method, quantization="raw", options={"allow_idle": True})
    assert result.bits[-1] == 0
    without = allocate_bits(prof, 30, method="dp", quantization="raw")
    assert result.objective > without.objective


def test_design_with_idle_workers():
    prof = late_profile()
    d = design(prof, 30, allocator="heuristic", quantization="raw", allocator_options={"allow_idle": True})
    assert d.bits[-1] == 0
    assert d.row_mass[-1] == 0 and d.decoding[-1] == 0
    assert d.encoding[[9]].nnz == 0
    p = prof.straggler_probs
    np.testing.assert_allclose(((1 - p) * d.decoding) @ d.encoding, 1.0, atol=1e-12)


def test_idle_budget_below_n_b_min():
    prof = ClusterProfile(np.linspace(0.1, 0.9, 6), dim=1000)
    for method in ["dp", "heuristic", "greedy", "relaxation", "equal", "topk-equal"]:
        result = allocate_bits(prof, 7, method=method, options={"allow_idle": True})
        assert result.bits.sum() == 7
        assert np.all((result.bits == 0) | (result.bits >= 2))
        assert np.all(np.diff(result.bits[np.argsort(prof.straggler_probs)]) <= 0) or method == "dp"


# ------------------------------------------------------------------- errors
def test_error_messages():
    prof = load_example("toy-n8")
    cases = [
        (dict(budget=15), "`budget` = 15 is infeasible for N = 8 workers with bits in \\[2, 32\\]: need 16"),
        (dict(budget=257), "need 16 <= B <= 256"),
        (dict(budget=20.5), "`budget` must be an integer number of bits, got 20.5"),
        (dict(budget=40, b_min=6, b_max=4), "`b_min` = 6 must not exceed `b_max` = 4"),
        (dict(budget=40, b_min=1), "`b_min` must be an integer >= 2, got 1"),
        (dict(budget=40, method="simplex"), "Unknown allocator 'simplex'; choose one of: auto, certified"),
        (dict(budget=40, method="heuristic", options={"bogus": 1}), "Unknown option 'bogus' for allocator"),
        (dict(budget=40, options={"allow_idle": "yes"}), "option `allow_idle` must be True or False"),
        (dict(budget=1, options={"allow_idle": True}), "at least one worker needs b_min = 2 bits"),
        (dict(budget=40, method="heuristic", options={"refine": "all"}), "`refine` must be 'both' or"),
        (dict(budget=40, method="heuristic", options={"max_moves": -1}), "`max_moves` must be an integer"),
        (dict(budget=40, method="heuristic", options={"scan": "some"}), "`scan` must be 'auto', 'full' or"),
        (dict(budget=40, method="heuristic", options={"window": 0}), "`window` must be an integer >= 1"),
    ]
    for kwargs, message in cases:
        budget = kwargs.pop("budget")
        with pytest.raises(InputError, match=message):
            allocate_bits(prof, budget, **kwargs)
    with pytest.raises(InputError, match="`profile` must be a ClusterProfile"):
        allocate_bits([0.1, 0.2], 8)


def test_table_error_messages():
    levels = np.arange(2, 6)
    table = np.ones((3, 4))
    with pytest.raises(InputError, match=r"`table` must have shape \(N, 4\)"):
        allocate_table(np.ones((3, 5)), levels, 9)
    with pytest.raises(InputError, match="`levels` must be distinct nonnegative integers"):
        allocate_table(table, [2, 2, 3, 4], 9)
    with pytest.raises(InputError, match="`table` must contain finite numbers"):
        allocate_table(np.full((3, 4), np.nan), levels, 9)
    with pytest.raises(InputError, match="`budget` = 20 is infeasible"):
        allocate_table(table, levels, 20)
    with pytest.raises(InputError, match="`options` must be a dict"):
        allocate_table(table, levels, 9, options=[1])
    gappy = np.array([2, 3, 5, 6])
    for method in ["heuristic", "greedy", "relaxation", "equal", "topk-equal"]:
        with pytest.raises(InputError, match=f"method '{method}' needs `levels` to be consecutive"):
            allocate_table(np.ones((3, 4)), gappy, 10, method=method)


# ------------------------------------------------------- kernels vs references
def test_envelope_kernel_equals_reference():
    from gcdesign.allocation._kernels import envelope_vertices
    from gcdesign.allocation.heuristic import envelope_reference, sorted_segments

    rng = np.random.default_rng(11)
    rows = np.vstack([rng.random((20, 9)), random_instance(rng, n=20, b_max=10).table[:, -9:]])
    rows[0] = np.arange(9.0)  # collinear points merge into one segment
    vert, count = envelope_vertices(rows)
    worker, start, length, slope = sorted_segments(rows)
    for i, row in enumerate(rows):
        mine = [(int(vert[i, r]), int(vert[i, r + 1])) for r in range(count[i])]
        assert mine == envelope_reference(row)
        assert sorted(zip(start[worker == i], start[worker == i] + length[worker == i], strict=True)) == mine
        assert np.all(np.diff(slope[worker == i]) < 0)
    assert count[0] == 1 and vert[0, 1] == 8


def test_segment_order_is_the_stable_slope_order():
    """The packed-key sort equals a stable argsort of -slope over the (worker, start) list,
    also with many equal slopes (identical workers) and slopes equal in their top bits."""
    from gcdesign.allocation._kernels import envelope_vertices
    from gcdesign.allocation.heuristic import sorted_segments

    rng = np.random.default_rng(14)
    tables = [random_instance(rng, n_range=(2, 60)).table for _ in range(10)]
    tables.append(random_instance(rng, n=40, family="classes").table)
    near = np.cumsum(rng.random((30, 12)), axis=1)
    near[1::2] = near[::2] * (1 + 1e-12)  # slopes that agree in their first 30 bits
    tables.append(near[:, ::-1].copy())
    tables.append(np.tile(np.log1p(np.arange(10.0)), (50, 1)))  # all rows equal
    for table in tables:
        vert, count = envelope_vertices(table)
        rows = [(w, vert[w, r], vert[w, r + 1]) for w in range(table.shape[0]) for r in range(count[w])]
        w, a, b = (np.array(x, dtype=np.int64) for x in zip(*rows, strict=True))
        slope = (table[w, b] - table[w, a]) / (b - a)
        expected = np.argsort(-slope, kind="stable")
        worker, start, length, got_slope = sorted_segments(table)
        np.testing.assert_array_equal(worker, w[expected])
        np.testing.assert_array_equal(start, a[expected])
        np.testing.assert_array_equal(got_slope, slope[expected])


def test_segment_bucket_sort_equals_the_stable_order_on_large_tables_with_ties():
    """The bucket sort of :func:`sorted_segment_ids` against the stable argsort of -slope (the
    order of the former truncated-key sort) on tables big enough for large buckets: runs of
    equal slopes (identical and repeated rows), two-valued buckets, zero, -0.0 and negative
    slopes, slopes a few ulps apart, and random rows."""
    from gcdesign.allocation._kernels import envelope_vertices, segment_slope, sorted_segment_ids

    rng = np.random.default_rng(41)
    concave = np.cumsum(np.sort(rng.random((400, 9)), axis=1)[:, ::-1], axis=1)
    tables = [
        concave,
        np.repeat(concave[:7], 300, axis=0),  # long runs of equal slopes
        np.tile(np.array([[0.0, 2.0, 3.0, 3.0, 3.0]]), (2000, 1)),  # zero slopes, one value per row
        np.cumsum(rng.choice([0.25, 0.5], (1500, 6)), axis=1)[:, ::-1].copy(),  # two values, negative
        np.concatenate([concave, -concave, concave * (1 + 2e-16), concave * 0.0 - 0.0]),
    ]
    tables.append(np.where(rng.random((800, 7)) < 0.3, 1.0, rng.random((800, 7))).cumsum(axis=1))
    ulps = 1.0 + rng.integers(0, 4, 600) * np.finfo(float).eps  # one large bucket, out of order
    tables.append(np.stack([np.zeros(601), np.append(ulps, 2.0), np.append(2 * ulps, 4.0)], axis=1))
    for table in tables:
        table = np.ascontiguousarray(table)
        vert, count = envelope_vertices(table)
        rbits = max(1, int(table.shape[1] - 2).bit_length())
        w = np.repeat(np.arange(count.size), count)
        r = np.arange(w.size) - np.repeat(np.cumsum(count) - count, count)
        slope = np.array([segment_slope(table, vert, a, b) for a, b in zip(w, r, strict=True)])
        expected = ((w << rbits) | r)[np.argsort(-(slope + 0.0), kind="stable")]
        ids = np.empty(w.size, dtype=np.int64)
        sorted_segment_ids(table, vert, count, rbits, ids)
        np.testing.assert_array_equal(ids, expected)


def test_local_search_kernel_equals_reference():
    from gcdesign.allocation._kernels import local_search
    from gcdesign.allocation.heuristic import local_search_reference

    rng = np.random.default_rng(12)
    for _ in range(30):
        inst = random_instance(rng, n_range=(2, 30), b_max=12, allow_idle=False)
        active = np.ascontiguousarray(inst.table)
        t = rng.integers(0, active.shape[1], active.shape[0])
        t_ref = t.copy()
        moves = local_search(active, t, 0, t.size, 10_000)
        assert moves == local_search_reference(active, t_ref, 10_000)
        np.testing.assert_array_equal(t, t_ref)


def test_relaxation_by_k_kernel_equals_reference():
    from gcdesign.allocation._kernels import relaxation_by_k
    from gcdesign.allocation.common import top_k_setup
    from gcdesign.allocation.heuristic import relaxation_by_k_reference, segment_order, sorted_segments

    rng = np.random.default_rng(13)
    for i in range(40):
        family = "classes" if i % 4 == 0 else None  # many equal slopes
        inst = random_instance(rng, n_range=(2, 40), family=family, allow_idle=bool(i % 3 == 0))
        _, _, active, _, ks, residuals = top_k_setup(inst.table, inst.levels, inst.budget, "heuristic")
        order = segment_order(active)
        worker, _, length, slope = sorted_segments(active, order)
        gain, used = relaxation_by_k(active, order.vert, order.count, order.ids, order.rbits, ks, residuals)
        gain_ref, used_ref = relaxation_by_k_reference(active.shape[0], ks, residuals, worker, length, slope)
        np.testing.assert_allclose(gain, gain_ref, rtol=1e-12, atol=1e-300)
        np.testing.assert_array_equal(used, used_ref)


def _kernel_cases(seed, count, **kwargs):
    """Seeded instances as the heuristic's kernels see them: (active, rest_value, ks, residuals)."""
    from gcdesign.allocation.common import top_k_setup

    rng = np.random.default_rng(seed)
    for i in range(count):
        inst = random_instance(rng, allow_idle=bool(i % 3 == 0), **kwargs)
        _, _, active, rest_value, ks, residuals = top_k_setup(inst.table, inst.levels, inst.budget, "h")
        yield i, rng, active, rest_value, ks, residuals


def test_greedy_top_up_and_dual_bounds_kernels_equal_references():
    from gcdesign.allocation._kernels import dual_bounds, greedy_top_up
    from gcdesign.allocation.heuristic import (
        dual_bounds_reference,
        dual_multipliers,
        greedy_top_up_reference,
        sorted_segments,
    )

    for _, rng, active, rest_value, ks, residuals in _kernel_cases(15, 30, n_range=(2, 40)):
        lambdas = dual_multipliers(sorted_segments(active)[3], count=16)
        bound = dual_bounds(active, lambdas, ks, residuals, rest_value)
        reference = dual_bounds_reference(active, lambdas, ks, residuals, rest_value)
        np.testing.assert_array_equal(bound, reference)
        k = int(rng.integers(1, active.shape[0] + 1))
        t = rng.integers(0, active.shape[1] // 2 + 1, active.shape[0])
        bits = int(rng.integers(0, k * (active.shape[1] - 1) - t[:k].sum() + 1))
        t_ref, before = t.copy(), int(t[:k].sum())
        greedy_top_up(active, t, k, bits)
        greedy_top_up_reference(active, t_ref, k, bits)
        np.testing.assert_array_equal(t, t_ref)
        assert t[:k].sum() == before + bits and t.max() <= active.shape[1] - 1


def test_heuristic_kernel_equals_reference():
    from gcdesign.allocation._kernels import dual_bounds, heuristic_kernel
    from gcdesign.allocation.heuristic import (
        dual_multipliers,
        heuristic_kernel_reference,
        segment_order,
        sorted_segments,
    )

    for i, _, active, rest_value, ks, residuals in _kernel_cases(16, 24, n_range=(2, 30), b_max=12):
        order = segment_order(active)
        segments = sorted_segments(active, order)
        if i % 2:
            bounds = dual_bounds(active, dual_multipliers(segments[3]), ks, residuals, rest_value)
        else:
            bounds = np.full(ks.size, np.inf)
        trial = np.argsort(-bounds, kind="stable")
        both = bool(i % 3)
        got = heuristic_kernel(
            active, rest_value, ks, residuals, bounds, trial, order.vert, order.ids, order.rbits, 10_000, both
        )
        ref = heuristic_kernel_reference(
            active, rest_value, ks, residuals, bounds, trial, segments, 10_000, both
        )
        np.testing.assert_array_equal(got[0], ref[0])
        assert got[1:] == ref[1:]


def test_heuristic_gap_on_500_instances():
    """The acceptance check of studies/bench_allocators.py (seed 2026); about a second."""
    rng = np.random.default_rng(2026)
    gaps = []
    for _ in range(500):
        inst = random_instance(rng)
        exact = allocate_table(inst.table, inst.levels, inst.budget, method="dp")
        result = allocate_table(inst.table, inst.levels, inst.budget, method="heuristic")
        gaps.append(rel_gap(exact.objective, result.objective))
    assert np.mean(np.array(gaps) <= 1e-9) >= 0.99


def test_equal_bits_is_the_one_equal_split():
    from gcdesign.allocation.baselines import equal_bits
    from gcdesign.schemes import make_scheme

    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 30))
        p = rng.uniform(0.01, 0.9, n)
        budget = int(rng.integers(2 * n, 32 * n + 1))
        bits = equal_bits(p, budget)
        assert bits.sum() == budget and bits.max() - bits.min() <= 1
        # the remainder goes to the most reliable: bits never increase with p
        assert np.all(np.diff(bits[np.argsort(p, kind="stable")]) <= 0)
        # the same split as the "equal" allocator on the gradient-coding table
        equal = allocate_bits(ClusterProfile(p, dim=100), budget, method="equal")
        np.testing.assert_array_equal(bits, equal.bits)
    with pytest.raises(InputError, match=r"`budget` = 320 is infeasible .* need 16 <= B <= 256"):
        equal_bits(np.full(8, 0.2), 320)
    with pytest.raises(InputError, match="`budget` = 15 is infeasible"):
        equal_bits(np.full(8, 0.2), 15)
    # exact-frc used to accept 40 bits per worker (a bound of its own)
    prof = ClusterProfile(np.full(8, 0.2), dim=100)
    with pytest.raises(InputError, match="need 16 <= B <= 256"):
        make_scheme("exact-frc", prof, 320)


def test_local_search_stops_when_only_one_worker_can_move():
    """Two equal rows, one at the top level: the best donor and receiver are the same worker and
    there is no other receiver; the kernel used to count no-op moves up to `max_moves`."""
    from gcdesign.allocation._kernels import local_search
    from gcdesign.allocation.heuristic import local_search_reference

    row = np.cumsum(np.geomspace(1e-4, 2.0, 11)) / np.arange(1, 12) ** 0.2
    row[-3:] = row[-4] + np.array([1.0, 1.5, 1.7])  # a concave top: the split is lopsided
    active = np.vstack([row, row])
    t = np.array([6, 6])
    moves = local_search(active, t, 0, 2, 10_000)
    t_ref = np.array([6, 6])
    assert moves == local_search_reference(active, t_ref, 10_000) == 4
    np.testing.assert_array_equal(t, [2, 10])
    np.testing.assert_array_equal(t_ref, [2, 10])


def test_auto_runs_dp_where_cheap_and_the_certified_solver_beyond():
    from gcdesign.allocation import DP_WORK_LIMIT, resolve_method

    levels = allowed_levels(2, 32)
    small = load_example("paper-n50")
    result = allocate_bits(small, 350)
    assert result.method == "dp" and result.optimal is True and result.message.startswith("auto chose dp")
    exact = allocate_bits(small, 350, method="dp")
    np.testing.assert_array_equal(result.bits, exact.bits)
    assert result.objective == exact.objective
    # the boundary of the cost model N R L
    n = 100
    at_limit = DP_WORK_LIMIT // (n * levels.size) + 2 * n  # R = B - 2N
    assert resolve_method("auto", n, at_limit, levels) == "dp"
    assert resolve_method("auto", n, at_limit + 1, levels) == "certified"
    rng = np.random.default_rng(3)
    big = ClusterProfile(rng.uniform(0.05, 0.9, 2000), dim=10**6)
    result = allocate_bits(big, 8000)
    assert result.method == "certified" and result.optimal is True
    certified = allocate_bits(big, 8000, method="certified")
    np.testing.assert_array_equal(result.bits, certified.bits)
    assert result.objective == certified.objective
    heuristic = allocate_bits(big, 8000, method="heuristic")  # no better than the proven optimum
    assert heuristic.objective <= result.objective * (1 + 1e-12)
    # design() reports which allocator ran and whether it is proven optimal
    summary = design(small, bits_per_worker=7).summary()
    assert summary["allocation"] == {"method": "dp", "optimal": True}
    assert summary["options"]["allocator"] == "auto"
    with pytest.raises(InputError, match="Unknown option 'scan' for allocator 'auto'; allowed options: none"):
        allocate_bits(small, 350, options={"scan": "full"})
