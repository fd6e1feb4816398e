"""Minimal data movement of a redesign: closest_segment_layout against slow obvious searches.

The layouts compared have the same masses, so the same decoder, bits, Lemma 1
bound and unbiasedness (docs/math.md, section 13); only their pairs differ.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from gcdesign.construction import (
    _ColumnAssignment,
    _holder_types,
    _offset_cases,
    _slot_counts,
    closest_segment_layout,
    layout_pairs,
    moved_partitions,
    segment_layout,
)


def _masses(rng, n, k):
    return rng.dirichlet(np.full(n, 2.0)) * k


def _shuffle_columns(layout, rng):
    """A column permutation of `layout`: what a relabelled redesign leaves in place."""
    perm = rng.permutation(layout.shape[1])
    coo = sp.coo_array(layout)
    return sp.csr_array((coo.data, (coo.row, perm[coo.col])), shape=layout.shape)


def _check_layout(lay, masses, k):
    dense = lay.toarray()
    assert dense.min() >= 0
    assert np.allclose(dense.sum(axis=1), masses, atol=1e-9)  # the design's masses: same bound, decoder
    assert np.allclose(dense.sum(axis=0), 1.0, atol=1e-9)  # (U): unbiased
    n = masses.size
    assert lay.nnz <= n + k  # a segment layout's load
    assert np.all(np.diff(lay.indptr) <= np.ceil(masses - 1e-9) + 1)


def _brute_force(masses, k, old):
    """Fewest copies over every segment layout: every cyclic order, offsets on a fine grid plus every
    offset that puts a boundary on an integer, and every column permutation (set arithmetic)."""
    n = masses.size
    old_pairs = layout_pairs(old)
    best = None
    for rest in permutations(range(1, n)):
        order = np.array((0, *rest))
        ends = np.cumsum(masses[order])[:-1]
        offsets = np.unique(np.concatenate([np.arange(0, 1, 1 / 61), (np.ceil(ends) - ends) % 1.0]))
        for offset in offsets:
            lay = segment_layout(masses, k, order=order, offset=float(offset))
            rows, cols = lay.nonzero()
            for perm in permutations(range(k)):
                moved = len(
                    {(i, perm[j]) for i, j in zip(rows.tolist(), cols.tolist(), strict=True)} - old_pairs
                )
                best = moved if best is None else min(best, moved)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_closest_layout_is_the_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    n, k = 4, 5
    old_masses = _masses(rng, n, k)
    old = segment_layout(old_masses, k, order=rng.permutation(n), offset=rng.uniform(0, k))
    if seed % 2:
        old = _shuffle_columns(old, rng)
    new_masses = old_masses * rng.uniform(0.6, 1.5, n)
    new_masses *= k / new_masses.sum()
    lay, info = closest_segment_layout(new_masses, k, old)
    _check_layout(lay, new_masses, k)
    assert info["exact"] and info["moved"] == moved_partitions(old, lay)
    assert info["moved"] == _brute_force(new_masses, k, old)
    assert info["lower_bound"] <= info["moved"]


def _assignment_brute(layout, old):
    """Most pairs kept by a column permutation: the dense assignment problem (scipy)."""
    new_h = (layout.toarray() != 0).astype(int)
    old_h = (sp.csr_array(old).toarray() != 0).astype(int)
    weight = new_h.T @ old_h  # slot x partition: workers in both holder sets
    rows, cols = linear_sum_assignment(-weight)
    return int(weight[rows, cols].sum())


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 9),
    extra=st.integers(0, 6),
    seed=st.integers(0, 2**31 - 1),
    dense=st.booleans(),
)
def test_column_assignment_matches_dense_assignment(n, extra, seed, dense):
    """The grouped min-cost flow keeps exactly as many pairs as the K x K assignment, also against an
    old layout that is no segment layout at all."""
    rng = np.random.default_rng(seed)
    k = n + extra
    masses = _masses(rng, n, k)
    lay = segment_layout(masses, k, order=rng.permutation(n), offset=rng.uniform(0, k))
    if dense:
        old = sp.csr_array(rng.random((n, k)) < 0.3)
    else:
        old = _shuffle_columns(segment_layout(_masses(rng, n, k), k, order=rng.permutation(n)), rng)
    mask = (old != 0).astype(np.int8)
    mask.eliminate_zeros()
    assignment = _ColumnAssignment(lay, _holder_types(mask))
    assert assignment.kept == _assignment_brute(lay, old)
    columns = assignment.columns()
    assert sorted(columns.tolist()) == list(range(k))
    coo = sp.coo_array(lay)
    moved = sp.csr_array((coo.data, (coo.row, columns[coo.col])), shape=lay.shape)
    assert moved_partitions(old, moved) == assignment.moved


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 9), extra=st.integers(0, 6), seed=st.integers(0, 2**31 - 1))
def test_offset_cases_cover_every_offset(n, extra, seed):
    """For one order, the offsets tried reach the fewest copies of any offset on a fine grid, and the
    slot counts are the row counts of the layout."""
    rng = np.random.default_rng(seed)
    k = n + extra
    masses = _masses(rng, n, k)
    order = rng.permutation(n)
    old = _shuffle_columns(segment_layout(_masses(rng, n, k), k, order=rng.permutation(n)), rng)

    def copies(offset):
        lay = segment_layout(masses, k, order=order, offset=float(offset))
        assert np.array_equal(np.diff(lay.indptr), _slot_counts(masses, order, k, offset, 1e-9))
        return lay.nnz - _assignment_brute(lay, old)

    tried = min(copies(c) for c in _offset_cases(masses, order, k, 1e-9))
    ends = np.cumsum(masses[order])[:-1]
    grid = np.concatenate([np.linspace(0, k, 6 * k * n, endpoint=False), (np.ceil(ends) - ends) % 1.0])
    assert tried == min(copies(c) for c in grid)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(2, 16),
    extra=st.integers(0, 10),
    seed=st.integers(0, 2**31 - 1),
    spread=st.floats(0.0, 0.6),
    idle=st.integers(0, 2),
)
def test_closest_layout_properties(n, extra, seed, spread, idle):
    """A layout of the new masses; its count is true; never more than a fresh layout or than the search
    without permutations; unchanged masses move nothing, whatever the old layout's columns. `idle`
    workers get no mass (p = 1), in the old design or the new one."""
    rng = np.random.default_rng(seed)
    k = n + extra
    old_masses = _masses(rng, n, k)
    old_masses[: min(idle, n - 1)] = 0.0
    old_masses *= k / old_masses.sum()
    old = segment_layout(old_masses, k, order=rng.permutation(n), offset=rng.uniform(0, k))
    old = _shuffle_columns(old, rng)
    new_masses = old_masses * np.exp(rng.normal(0, spread, n))
    if idle:  # an idle worker comes back, another goes
        new_masses[0] = 1.0
        new_masses[-1] = 0.0
    new_masses *= k / new_masses.sum()
    fresh = segment_layout(new_masses, k)
    lay, info = closest_segment_layout(new_masses, k, old, orders=[np.arange(n)], max_solves=None)
    _check_layout(lay, new_masses, k)
    assert info["exact"] and info["moved"] == moved_partitions(old, lay)
    assert info["lower_bound"] <= info["moved"] <= moved_partitions(old, fresh)
    _, rigid = closest_segment_layout(new_masses, k, old, orders=[np.arange(n)], relabel=False)
    assert info["moved"] <= rigid["moved"]
    capped, capped_info = closest_segment_layout(new_masses, k, old, orders=[np.arange(n)], max_solves=1)
    assert capped_info["bound"] <= info["moved"] <= capped_info["moved"] <= moved_partitions(old, fresh)
    same, same_info = closest_segment_layout(old_masses, k, old)
    assert same_info["moved"] == 0 and same.nnz <= old.nnz


def test_closest_layout_keeps_relabelled_layouts_through_redesigns():
    """Three redesigns in a row at N = 60: each starts from the last one's relabelled layout (not in axis
    order) and moves far less than a fresh layout, with the design's masses."""
    rng = np.random.default_rng(5)
    n = k = 60
    masses = _masses(rng, n, k)
    layout = segment_layout(masses, k)
    for _ in range(3):
        masses = masses * np.exp(rng.normal(0, 0.3, n))
        masses *= k / masses.sum()
        fresh = segment_layout(masses, k)
        new, info = closest_segment_layout(masses, k, layout, orders=[np.arange(n)])
        _check_layout(new, masses, k)
        assert info["moved"] == moved_partitions(layout, new) < moved_partitions(layout, fresh) / 2
        layout = new


@pytest.mark.parametrize("seed", range(4))
def test_milp_over_every_layout_bounds_the_segment_search(seed):
    """The MILP over every layout with a segment layout's load: a layout of the same masses, at most the
    segment optimum (a segment layout is one of its layouts), at least the counting bound."""
    from gcdesign.construction import closest_layout_milp

    rng = np.random.default_rng(seed)
    n, k = 5, 6
    old_masses = _masses(rng, n, k)
    old = _shuffle_columns(
        segment_layout(old_masses, k, order=rng.permutation(n), offset=rng.uniform(0, k)), rng
    )
    new_masses = old_masses * np.exp(rng.normal(0, 0.4, n))
    new_masses *= k / new_masses.sum()
    lay, info = closest_segment_layout(new_masses, k, old)
    best, milp = closest_layout_milp(new_masses, k, old)
    assert milp["optimal"] and milp["moved"] == moved_partitions(old, best)
    dense = best.toarray()
    assert np.allclose(dense.sum(axis=1), new_masses, atol=1e-6) and np.allclose(
        dense.sum(axis=0), 1, atol=1e-6
    )
    assert np.all(np.diff(best.indptr) <= np.ceil(new_masses - 1e-9) + 1) and best.nnz <= n + k
    assert info["lower_bound"] <= milp["moved"] <= info["moved"]


@pytest.mark.parametrize("seed", range(3))
def test_polished_layout_keeps_the_design_and_never_moves_more(seed):
    """closest_layout: the MILP on the old pairs and the segment layout's pairs never loses to the segment
    layout, keeps the masses and the load guarantee, and is never better than the unrestricted MILP."""
    from gcdesign.construction import closest_layout, closest_layout_milp

    rng = np.random.default_rng(seed)
    n, k = 10, 12
    old_masses = _masses(rng, n, k)
    old = _shuffle_columns(segment_layout(old_masses, k, order=rng.permutation(n)), rng)
    new_masses = old_masses * np.exp(rng.normal(0, 0.4, n))
    new_masses *= k / new_masses.sum()
    _, segment = closest_segment_layout(new_masses, k, old)
    lay, info = closest_layout(new_masses, k, old)
    assert info["segment_moved"] == segment["moved"] >= info["moved"] == moved_partitions(old, lay)
    dense = lay.toarray()
    assert dense.min() >= 0 and np.allclose(dense.sum(axis=1), new_masses, atol=1e-6)
    assert np.allclose(dense.sum(axis=0), 1.0, atol=1e-6)
    assert np.all(np.diff(lay.indptr) <= np.ceil(new_masses - 1e-9) + 1) and lay.nnz <= n + k
    _, full = closest_layout_milp(new_masses, k, old)
    assert full["optimal"] and info["lower_bound"] <= full["moved"] <= info["moved"]


def test_milp_out_of_time_returns_what_it_has():
    """A MILP stopped before any layout says so (no layout, not optimal) instead of failing; closest_layout
    then keeps the segment layout."""
    from gcdesign.construction import closest_layout, closest_layout_milp

    rng = np.random.default_rng(1)
    n = k = 40
    old = segment_layout(_masses(rng, n, k), k)
    new_masses = _masses(rng, n, k)
    layout, info = closest_layout_milp(new_masses, k, old, time_limit=1e-6)
    assert not info["optimal"]
    assert (layout is None) == (info["moved"] is None)
    lay, polished = closest_layout(new_masses, k, old, polish_time=1e-6)
    assert polished["moved"] == moved_partitions(old, lay) <= polished["segment_moved"]


def test_few_offset_cases_claim_nothing_but_keep_the_fresh_layout():
    rng = np.random.default_rng(4)
    n, k = 30, 34
    old = segment_layout(_masses(rng, n, k), k)
    new_masses = _masses(rng, n, k)
    fresh = segment_layout(new_masses, k)
    lay, info = closest_segment_layout(new_masses, k, old, orders=[np.arange(n)], max_cases=5)
    assert not info["exact"] and info["bound"] == info["lower_bound"]
    assert info["moved"] == moved_partitions(old, lay) <= moved_partitions(old, fresh)
