import numpy as np
import pytest

from gcdesign import ClusterProfile, InputError, optimal_structure, utilities
from gcdesign.structure import error_bound, optimal_structure_cvxpy


def _random_case(rng):
    n = int(rng.integers(1, 13))
    k = int(rng.integers(1, 13))
    p = rng.uniform(0.0, 0.98, size=n)
    if n > 2 and rng.random() < 0.3:
        p[rng.integers(n)] = 1.0  # an always-late worker
    if np.all(p == 1.0):
        p[0] = 0.5
    delta = rng.uniform(0.0, 2.0, size=n) if rng.random() < 0.8 else np.zeros(n)
    delta = np.where(p == 0.0, np.maximum(delta, 0.1), delta)
    return ClusterProfile(p, dim=10, partitions=k), delta


def test_closed_form_equals_cvxpy_on_50_profiles():
    rng = np.random.default_rng(20261125)
    for _ in range(50):
        prof, delta = _random_case(rng)
        s = optimal_structure(prof, delta)
        row_sum, value = optimal_structure_cvxpy(prof, delta)
        active = prof.straggler_probs < 1
        assert value == pytest.approx(s.bound, rel=1e-8)
        np.testing.assert_allclose(row_sum[active], s.row_sum[active], rtol=1e-8, atol=1e-9)


def test_structure_identities():
    rng = np.random.default_rng(1)
    for _ in range(20):
        prof, delta = _random_case(rng)
        s = optimal_structure(prof, delta)
        p = prof.straggler_probs
        assert s.row_mass.sum() == pytest.approx(prof.partitions, rel=1e-12)
        np.testing.assert_allclose(s.row_mass, (1 - p) * s.row_sum, rtol=1e-12, atol=1e-15)
        assert error_bound(p, delta, s.row_sum) == pytest.approx(s.bound, rel=1e-12)
        assert np.all(s.row_mass[p == 1.0] == 0)


def test_bound_is_minimal_among_feasible_row_sums():
    # any other nonnegative row sums with sum_i (1 - p_i) W_i = K have a larger bound
    rng = np.random.default_rng(2)
    prof = ClusterProfile(rng.uniform(0.05, 0.9, 8), dim=5, partitions=5)
    delta = rng.uniform(0, 1, 8)
    s = optimal_structure(prof, delta)
    p = prof.straggler_probs
    for _ in range(200):
        y = rng.dirichlet(np.ones(8)) * prof.partitions
        assert error_bound(p, delta, y / (1 - p)) >= s.bound * (1 - 1e-12)


def test_utility_monotone_and_edge_cases():
    u = utilities([0.1, 0.2, 0.3], 0.05)
    assert np.all(np.diff(u) < 0)
    assert utilities([1.0], 0.1)[0] == 0.0
    assert utilities([0.2], np.inf)[0] == 0.0  # idle worker
    with pytest.raises(InputError, match="worker 1 has straggler probability 0 and quantization error 0"):
        utilities([0.2, 0.0], 0.0)


def test_unquantized_structure_is_osgc():
    # delta = 0: masses proportional to (1 - p) / p
    prof = ClusterProfile([0.1, 0.5], dim=1)
    s = optimal_structure(prof, 0.0)
    np.testing.assert_allclose(s.row_mass, [1.8, 0.2])
    assert s.bound == pytest.approx(0.4)
