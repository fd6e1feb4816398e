import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gcdesign import ClusterProfile, optimal_structure
from gcdesign.construction import (
    count_components,
    decompose,
    group_workers,
    hub_layout,
    is_forest,
    segment_layout,
)


@st.composite
def masses(draw):
    n = draw(st.integers(1, 40))
    k = draw(st.integers(1, 40))
    p = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    if np.all(p == 1.0):
        p[0] = 0.3
    delta = draw(st.floats(0.01, 5.0))
    s = optimal_structure(ClusterProfile(p, dim=1, partitions=k), delta)
    return s.row_mass, k, p


@settings(max_examples=150, deadline=None)
@given(masses(), st.booleans())
def test_segment_layout_properties(case, shuffle):
    y, k, p = case
    order = np.random.default_rng(0).permutation(y.size) if shuffle else None
    alpha = segment_layout(y, k, order=order)
    n = y.size
    assert alpha.shape == (n, k)
    assert np.all(alpha.data > 0)
    np.testing.assert_allclose(alpha.sum(axis=0), 1.0, atol=1e-9)  # (U) with a_i = 1/(1-p_i)
    np.testing.assert_allclose(alpha.sum(axis=1), y, atol=1e-9)
    assert alpha.nnz <= n + k - 1
    assert is_forest(alpha)
    assert np.all(np.asarray(alpha[p == 1.0].sum(axis=1)).ravel() == 0)


def test_segment_layout_small_example():
    alpha = segment_layout([0.5, 1.5, 1.0], 3).toarray()
    np.testing.assert_allclose(alpha, [[0.5, 0, 0], [0.5, 1.0, 0], [0, 0, 1.0]])
    assert count_components(alpha) == 2


def test_segment_layout_nnz_saves_one_per_integer_boundary():
    y = np.array([1.0, 0.25, 0.75, 2.0, 0.5, 0.5])
    alpha = segment_layout(y, 5)
    interior_integers = 4  # boundaries 1, 2, 4, 5 (not counting 0 and K)
    assert alpha.nnz == y.size + 5 - 1 - interior_integers + 1  # boundary 5 = K is not interior
    assert count_components(alpha) == 4


def test_hub_layout():
    rng = np.random.default_rng(4)
    s = optimal_structure(ClusterProfile(rng.uniform(0.1, 0.9, 10), dim=1), 0.2)
    hub = hub_layout(s.row_mass, 10)
    np.testing.assert_allclose(hub.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(hub.sum(axis=1), s.row_mass, atol=1e-12)
    assert hub.nnz <= 2 * 10 - 1
    assert (hub.data < 0).any() == (s.row_mass[1:] < 1).any()
    with pytest.raises(ValueError, match="the hub layout needs K = N"):
        hub_layout(s.row_mass, 9)


def test_networkx_and_scipy_components_agree():
    rng = np.random.default_rng(5)
    for _ in range(20):
        m = sp.random_array((15, 12), density=0.08, rng=rng, format="csr")
        comps = decompose(m)
        assert len(comps) == count_components(m)
        assert sorted(np.concatenate([w for w, _ in comps]).tolist()) == list(range(15))
        assert sorted(np.concatenate([c for _, c in comps]).tolist()) == list(range(12))


def _check_groups(groups, y):
    flat = np.concatenate(groups)
    assert sorted(flat.tolist()) == list(range(y.size))
    for g in groups:
        assert abs(y[g].sum() - round(y[g].sum())) < 1e-9


def test_grouping_exact_beats_or_ties_greedy():
    rng = np.random.default_rng(6)
    for _ in range(10):
        # masses built from whole-number groups, then shuffled
        parts = []
        for _ in range(int(rng.integers(2, 5))):
            cuts = np.sort(rng.uniform(0, 1, int(rng.integers(1, 3))))
            parts.append(np.diff(np.concatenate([[0], cuts, [1]])))
        y = np.concatenate(parts)
        y = y[rng.permutation(y.size)]
        exact = group_workers(y, method="exact")
        greedy = group_workers(y, method="greedy")
        _check_groups(exact, y)
        _check_groups(greedy, y)
        assert len(exact) >= len(greedy)
        assert len(exact) == len(parts)  # the planted groups are the most there can be here


def test_grouping_classes_and_layout_components():
    y = np.array([1.5] * 6 + [1.0] * 6 + [0.5] * 6)
    for method in ("exact", "greedy"):
        groups = group_workers(y, method=method)
        _check_groups(groups, y)
        assert len(groups) == 12  # six singles of 1.0, six pairs 1.5 + 0.5
        alpha = segment_layout(y, int(y.sum()), order=np.concatenate(groups))
        assert count_components(alpha) == 12
        assert alpha.nnz == y.size + int(y.sum()) - 12
    with pytest.raises(ValueError, match="Unknown grouping method 'best'"):
        group_workers(y, method="best")


def test_stored_zeros_are_not_edges_and_input_is_untouched():
    m = sp.csr_array(np.array([[1.0, 5.0], [0.0, 2.0]]))
    m.data[1] = 0.0  # a stored zero between worker 0 and partition 1
    assert m.nnz == 3
    assert count_components(m) == len(decompose(m)) == 2
    assert is_forest(m)
    assert m.nnz == 3  # the caller's matrix keeps its stored zero


@pytest.mark.parametrize("method", ["auto", "exact", "greedy"])
def test_group_workers_with_one_fractional_mass(method):
    # masses whole up to the tolerance except one (two workers at p = 0, or kappa = 1e300)
    groups = group_workers([1.0, 2.0, 0.5 + 1e-12, 0.5 - 1e-12 + 1e-3], method=method)
    assert sorted(np.concatenate(groups).tolist()) == [0, 1, 2, 3]
    assert group_workers([1.0, 2.0, 0.5], method=method)[-1].tolist() == [2]


def test_design_with_a_single_fractional_mass():
    from gcdesign import design, load_example

    code = design(load_example("toy-n8"), bits_per_worker=4, quantization=1e300)
    assert code.components >= 2 and np.isclose(code.row_mass.sum(), code.partitions)
