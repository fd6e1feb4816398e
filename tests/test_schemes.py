"""Baseline schemes, the fast least-squares decoder and expander-code bounds (gcdesign.schemes)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from gcdesign import ClusterProfile
from gcdesign._validate import InputError
from gcdesign.evaluation import expected_error, synthetic_gradients
from gcdesign.montecarlo import monte_carlo_error
from gcdesign.schemes import SCHEMES, make_scheme
from gcdesign.schemes.baselines import (
    equal_bits,
    expander_lower_bound,
    expander_upper_bound,
    margulis_adjacency,
    random_regular_adjacency,
    regular_assignment,
    second_eigenvalue,
)
from gcdesign.schemes.decoding import LeastSquaresDecoder, least_squares_weights, responders

P8 = [0.05, 0.1, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8]
PROFILE = ClusterProfile(P8, dim=40)
BUDGET = 30  # 3.75 bits per worker: equal bits 3 or 4


def unbiasedness_gap(scheme) -> float:
    column = ((1 - scheme.straggler_probs) * scheme.decoding) @ scheme.encoding
    return float(np.max(np.abs(column - 1.0)))


# ---------------------------------------------------------------- every scheme
@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_every_scheme_monte_carlo_within_three_standard_errors(name):
    scheme = make_scheme(name, PROFILE, BUDGET, rng=1)
    n, k = scheme.encoding.shape
    assert (n, k) == (8, 8) and scheme.bits.shape == (8,)
    grads = synthetic_gradients(k, 25, rng=2)
    exact = expected_error(scheme, grads)
    mc = monte_carlo_error(scheme, grads, trials=3000, rng=3)
    # round-off slack for an exact scheme (centralized: error 1e-31 in closed form, 0 in Monte Carlo)
    assert abs(mc.mean - exact.error) <= 3 * mc.standard_error + 1e-12 * mc.grad_norm_sq
    if exact.unbiased:
        assert mc.bias <= mc.bias_bound


@pytest.mark.parametrize("name", ["od", "random-sparse", "expander-ls", "ehd"])
def test_arrival_dependent_schemes_on_a_second_profile(name):
    prof = ClusterProfile([0.3, 0.5, 0.2, 0.6, 0.4, 0.35, 0.45, 0.5, 0.25, 0.55], dim=10, partitions=10)
    scheme = make_scheme(name, prof, 30, rng=4, replication=3 if name != "expander-ls" else 4)
    grads = synthetic_gradients(10, 15, rng=5)
    exact = expected_error(scheme, grads)
    mc = monte_carlo_error(scheme, grads, trials=3000, rng=6)
    assert exact.method == "enumeration"
    assert abs(mc.mean - exact.error) <= 3 * mc.standard_error


def test_bits_are_equal_with_the_remainder_to_the_most_reliable():
    for name in ("is-sgd", "bgc", "ehd", "od", "sgc", "osgc", "random-sparse", "expander"):
        scheme = make_scheme(name, PROFILE, BUDGET, rng=0)
        assert scheme.bits.sum() == BUDGET
        np.testing.assert_array_equal(scheme.bits, [4, 4, 4, 4, 4, 4, 3, 3])
    assert np.all(make_scheme("sgc-1bit", PROFILE, BUDGET).bits == 1)
    with pytest.raises(InputError, match="`budget` = 10 is infeasible"):
        equal_bits(P8, 10)


def test_unbiased_and_biased_baselines():
    for name in ("sgc", "sgc-1bit", "osgc", "joint"):
        assert unbiasedness_gap(make_scheme(name, PROFILE, BUDGET, rng=2)) < 1e-12
    for name in ("is-sgd", "bgc", "expander"):
        assert unbiasedness_gap(make_scheme(name, PROFILE, BUDGET, rng=2)) > 0.1


def test_osgc_is_the_unquantized_structure():
    from gcdesign import design

    ref = design(PROFILE, BUDGET, quantization="none", allocator="equal")
    scheme = make_scheme("osgc", PROFILE, BUDGET)
    assert scheme.name == "osgc" and (scheme.encoding != ref.encoding).nnz == 0
    np.testing.assert_array_equal(scheme.bits, ref.bits)


def test_regular_assignment_is_balanced_and_simple():
    for n, k, r in [(10, 10, 3), (12, 7, 2), (9, 20, 4)]:
        enc = regular_assignment(n, k, r, rng=n + k)
        assert set(np.unique(enc.data)) == {1.0}
        np.testing.assert_array_equal(np.asarray(enc.sum(axis=0)).ravel(), np.full(k, r))
        loads = np.asarray(enc.sum(axis=1)).ravel()
        assert loads.max() - loads.min() <= 1 and loads.sum() == k * r


def test_ehd_decodes_one_message_per_covered_group():
    scheme = make_scheme("ehd", PROFILE, BUDGET, replication=3)  # groups {0,1,2} {3,4,5} {6,7}
    arrived = np.array([False, True, True, False, False, False, True, True])
    a = scheme.decode_weights(arrived)
    np.testing.assert_array_equal(a, [0, 1, 0, 0, 0, 0, 1, 0])
    # partitions of the middle group are lost; the others are recovered exactly once
    recovered = a @ scheme.encoding
    assert set(np.unique(recovered)) == {0.0, 1.0} and recovered.sum() == 8 - len(
        np.array_split(range(8), 3)[1]
    )


def test_registry_entries_and_duplicate_names():
    from gcdesign.schemes import SchemeEntry, register_scheme

    for name, entry in SCHEMES.items():
        assert isinstance(entry, SchemeEntry) and entry.name == name and entry.label and entry.description
        with pytest.raises(TypeError):
            entry.style["color"] = "red"  # read-only mapping
    assert SCHEMES["sgc"].description.startswith("Stochastic gradient coding")
    with pytest.raises(InputError, match="`name` = 'sgc': a scheme of that name is already registered"):
        register_scheme("sgc", SCHEMES["sgc"].factory, label="again")
    assert SCHEMES["sgc"].label == "SGC"  # the first registration stands
    with pytest.raises(InputError, match="`factory` of scheme 'x' must be callable"):
        register_scheme("x", None, label="x")
    assert "x" not in SCHEMES


def test_scheme_errors():
    with pytest.raises(InputError, match="Unknown scheme 'nope'"):
        make_scheme("nope", PROFILE, BUDGET)
    with pytest.raises(InputError, match="`replication` = 9 exceeds"):
        make_scheme("od", PROFILE, BUDGET, replication=9)
    with pytest.raises(InputError, match="needs N to be a square"):
        make_scheme("expander", PROFILE, BUDGET, graph="margulis")
    with pytest.raises(InputError, match="K = N"):
        make_scheme("expander", ClusterProfile(P8, dim=4, partitions=5), BUDGET)
    with pytest.raises(InputError, match="takes no option"):
        make_scheme("bgc", PROFILE, BUDGET, colour="red")


# ---------------------------------------------------------------- least-squares decoding
def _check_against_dense(enc, arrived):
    fast = least_squares_weights(enc, arrived)
    dense = least_squares_weights(enc, arrived, solver="dense")
    assert np.max(np.abs(fast - dense)) <= 1e-10
    assert np.all(fast[~arrived] == 0)


def test_least_squares_matches_dense_lstsq_regular_n400():
    rng = np.random.default_rng(7)
    enc = regular_assignment(400, 400, 3, rng=8)
    for _ in range(3):
        _check_against_dense(enc, rng.random(400) >= 0.2)


@pytest.mark.parametrize("case", ["wide", "tall", "duplicate-rows", "components", "empty"])
def test_least_squares_matches_dense_lstsq_hard_cases(case):
    rng = np.random.default_rng(9)
    if case == "wide":
        enc, arrived = regular_assignment(120, 150, 3, rng=1), rng.random(120) < 0.7
    elif case == "tall":  # more arrived rows than partitions: least-norm branch
        enc, arrived = regular_assignment(150, 60, 4, rng=2), rng.random(150) < 0.8
    elif case == "duplicate-rows":  # rank deficient in both dimensions
        base = regular_assignment(80, 80, 3, rng=3).toarray()
        enc = sp.csr_array(np.vstack([base, base[:40], base[40:] * 2.0]))
        arrived = rng.random(160) < 0.8
    elif case == "components":  # fractional repetition: many identical rows
        enc = make_scheme("ehd", ClusterProfile(np.full(90, 0.5), dim=3), 180, replication=3).encoding
        arrived = rng.random(90) < 0.6
    else:
        enc, arrived = regular_assignment(30, 30, 2, rng=4), np.zeros(30, bool)
    _check_against_dense(enc, arrived)


def test_least_squares_is_optimal():
    enc = sp.csr_array(
        np.abs(np.random.default_rng(10).standard_normal((40, 30)))
        * (np.random.default_rng(11).random((40, 30)) < 0.15)
    )
    arrived = np.random.default_rng(12).random(40) < 0.7
    a = least_squares_weights(enc, arrived)
    best = np.linalg.norm(a @ enc - 1)
    rng = np.random.default_rng(13)
    for _ in range(50):  # no perturbation on the arrived rows does better
        b = a + np.where(arrived, 1e-3 * rng.standard_normal(40), 0.0)
        assert np.linalg.norm(b @ enc - 1) >= best - 1e-12


def test_least_squares_takes_masks_or_indices_and_both_solvers_agree():
    enc = regular_assignment(60, 60, 3, rng=16)
    arrived = np.random.default_rng(17).random(60) < 0.75
    index = np.flatnonzero(arrived)
    sparse_mask = least_squares_weights(enc, arrived)
    np.testing.assert_array_equal(sparse_mask, least_squares_weights(enc, index))
    np.testing.assert_array_equal(sparse_mask, least_squares_weights(enc.toarray(), list(index[::-1])))
    dense = least_squares_weights(enc.toarray(), arrived, solver="dense")
    np.testing.assert_array_equal(dense, least_squares_weights(enc, index, solver="dense"))
    assert np.max(np.abs(sparse_mask - dense)) <= 1e-10
    decoder = pickle.loads(pickle.dumps(LeastSquaresDecoder(enc, solver="dense")))
    np.testing.assert_array_equal(decoder(arrived), dense)
    np.testing.assert_array_equal(LeastSquaresDecoder(enc)(arrived), sparse_mask)


def test_least_squares_errors():
    enc = regular_assignment(10, 10, 2, rng=18)
    with pytest.raises(InputError, match=r"boolean mask of length N = 10, got shape \(9,\)"):
        least_squares_weights(enc, np.ones(9, bool))
    with pytest.raises(InputError, match=r"`arrived` holds worker indices outside \[0, 9\]"):
        least_squares_weights(enc, [0, 10], solver="dense")
    with pytest.raises(InputError, match="Unknown solver 'qr'; choose one of: dense, sparse"):
        least_squares_weights(enc, np.ones(10, bool), solver="qr")
    with pytest.raises(InputError, match="Unknown solver 'qr'"):
        LeastSquaresDecoder(enc, solver="qr")
    np.testing.assert_array_equal(responders([3, 1, 3], 10), [1, 3])


# ---------------------------------------------------------------- expander codes
def _disjoint_neighbourhood_stragglers(adj: sp.csr_array, budget: int) -> tuple[np.ndarray, int]:
    """Straggle whole holder sets of some partitions (disjoint), up to `budget` workers."""
    n = adj.shape[0]
    holders = [set(adj[:, [j]].nonzero()[0]) for j in range(n)]
    down: set[int] = set()
    lost = 0
    for j in range(n):
        if not holders[j] & down and len(down) + len(holders[j]) <= budget:
            down |= holders[j]
            lost += 1
    arrived = np.ones(n, bool)
    arrived[list(down)] = False
    return arrived, len(down)


@pytest.mark.parametrize("graph", ["random", "margulis"])
def test_expander_bounds_hold(graph):
    if graph == "random":
        adj, r = random_regular_adjacency(64, 4, rng=14), 4
    else:
        adj, r = margulis_adjacency(8), 8
        assert second_eigenvalue(adj) <= 5 * np.sqrt(2) + 1e-9
    n = adj.shape[0]
    np.testing.assert_array_equal(np.asarray(adj.sum(axis=1)).ravel(), np.full(n, r))
    enc = adj / r
    lam = second_eigenvalue(adj)
    rng = np.random.default_rng(15)
    for s in (4, 12, 24):
        for _ in range(20):  # the linear decoder's error on random straggler sets
            arrived = np.ones(n, bool)
            arrived[rng.choice(n, s, replace=False)] = False
            a = np.where(arrived, n / (n - s), 0.0)
            assert np.linalg.norm(a @ enc - 1) <= expander_upper_bound(lam, r, n, s) + 1e-12
        # the worst case: no decoder beats sqrt(s / r)
        arrived, s_used = _disjoint_neighbourhood_stragglers(adj, s)
        a = least_squares_weights(enc, arrived)
        assert np.linalg.norm(a @ enc - 1) >= expander_lower_bound(r, s_used) - 1e-12
        a_lin = np.where(arrived, n / (n - s_used), 0.0)
        assert np.linalg.norm(a_lin @ enc - 1) <= expander_upper_bound(lam, r, n, s_used) + 1e-12


def test_expander_scheme_decoders():
    prof = ClusterProfile(np.full(16, 0.25), dim=5)
    lin = make_scheme("expander", prof, 48, graph="margulis")
    assert lin.decoding is not None and np.allclose(lin.decoding, 16 / 12)
    opt = make_scheme("expander", prof, 48, graph="margulis", decoder="optimal")
    arrived = np.arange(16) % 5 != 0
    a = opt.decode_weights(arrived)
    assert np.linalg.norm(a @ opt.encoding - 1) <= np.linalg.norm(
        lin.decode_weights(arrived) @ lin.encoding - 1
    )


@pytest.mark.parametrize("name", ["od", "ehd", "random-sparse", "expander-ls"])
def test_arrival_dependent_schemes_pickle(name):
    import pickle

    scheme = make_scheme(name, PROFILE, BUDGET, rng=5)
    clone = pickle.loads(pickle.dumps(scheme))
    arrived = np.array([1, 0, 1, 1, 0, 1, 1, 0], dtype=bool)
    np.testing.assert_array_equal(clone.decode_weights(arrived), scheme.decode_weights(arrived))
