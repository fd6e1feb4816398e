import itertools

import numpy as np
import pytest

from gcdesign import InputError
from gcdesign.schemes.polynomial import (
    coded_matmul,
    decode,
    encode,
    interpolation_matrix,
    polynomial_code,
    worker_products,
    worst_case_condition,
)

EPS = np.finfo(float).eps
CASES = [(1, 1, 1), (4, 2, 2), (6, 2, 2), (8, 2, 3), (7, 3, 1), (10, 1, 4), (9, 3, 3), (12, 3, 3), (16, 3, 4)]


def _matrices(rng, rows=11, p=13, q=9):
    return rng.standard_normal((rows, p)), rng.standard_normal((rows, q))


@pytest.mark.parametrize(("big_n", "m", "n"), CASES)
def test_decodes_the_product_from_any_kind_of_responder_set(big_n, m, n):
    rng = np.random.default_rng(big_n * 100 + m * 10 + n)
    A, B = _matrices(rng)  # 13 and 9 columns: blocks need zero padding
    code = polynomial_code(big_n, m, n)
    worst, worst_set, _ = worst_case_condition(code)
    subsets = [
        np.arange(m * n),  # a contiguous run of points
        np.arange(big_n - m * n, big_n)[::-1],  # the other end, reversed order
        rng.choice(big_n, size=m * n, replace=False),
        np.array(worst_set),  # the worst-conditioned set
    ]
    for responders in subsets:
        res = coded_matmul(A, B, n_workers=big_n, m=m, n=n, responders=responders)
        assert res.product.shape == (13, 9)
        assert res.condition <= worst * (1 + 1e-9)
        # backward-stable solve: the error is at most a small multiple of cond * eps
        assert res.relative_error <= 50 * EPS * res.condition, (responders, res.relative_error, res.condition)
        assert res.relative_error < 1e-9


def test_more_results_than_needed_and_manual_pipeline():
    rng = np.random.default_rng(1)
    A, B = _matrices(rng, rows=5, p=6, q=4)
    code = polynomial_code(9, 3, 2)
    enc_a, enc_b = encode(code, A, B)
    assert enc_a.shape == (9, 5, 2) and enc_b.shape == (9, 5, 2)
    results = worker_products(enc_a, enc_b)
    assert results.shape == (9, 2, 2)
    order = rng.permutation(9)
    product = decode(code, results[order], order, (6, 4))
    np.testing.assert_allclose(product, A.T @ B, atol=1e-12)


def test_worker_result_is_the_product_of_its_inputs():
    rng = np.random.default_rng(2)
    A, B = _matrices(rng, rows=4, p=4, q=4)
    code = polynomial_code(5, 2, 2)
    enc_a, enc_b = encode(code, A, B)
    x = code.points[3]
    # T_0 = 1, T_1 = x, T_2 = 2x^2 - 1: B~(x) = B_0 T_0 + B_1 T_2
    np.testing.assert_allclose(enc_a[3], A[:, :2] + x * A[:, 2:], atol=1e-14)
    np.testing.assert_allclose(enc_b[3], B[:, :2] + (2 * x * x - 1) * B[:, 2:], atol=1e-14)


@pytest.mark.parametrize(("big_n", "m", "n"), [(6, 2, 2), (9, 2, 4)])
def test_every_responder_set_decodes(big_n, m, n):
    rng = np.random.default_rng(3)
    A, B = _matrices(rng, rows=3, p=4, q=8)
    for responders in itertools.combinations(range(big_n), m * n):
        res = coded_matmul(A, B, n_workers=big_n, m=m, n=n, responders=responders)
        assert res.relative_error < 1e-11


def test_monomial_basis_and_equispaced_points_are_worse_conditioned():
    cheb = worst_case_condition(polynomial_code(20, 4, 4), max_sets=500, rng=0)
    mono = worst_case_condition(polynomial_code(20, 4, 4, basis="monomial"), max_sets=500, rng=0)
    equi = worst_case_condition(polynomial_code(20, 4, 4, points="equispaced"), max_sets=500, rng=0)
    assert not cheb[2]  # C(20, 16) sets: sampled
    assert 5 * cheb[0] < mono[0] and 5 * cheb[0] < equi[0]


def test_worst_case_is_exhaustive_when_small():
    code = polynomial_code(7, 2, 2)
    worst, worst_set, exhaustive = worst_case_condition(code)
    assert exhaustive and len(worst_set) == 4
    conds = [np.linalg.cond(interpolation_matrix(code, s)) for s in itertools.combinations(range(7), 4)]
    assert worst == pytest.approx(max(conds), rel=1e-12)


def test_explicit_points():
    rng = np.random.default_rng(4)
    A, B = _matrices(rng, rows=3, p=2, q=2)
    res = coded_matmul(A, B, n_workers=5, m=2, n=2, points=[-0.9, -0.3, 0.1, 0.5, 0.95])
    assert res.relative_error < 1e-12


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: polynomial_code(5, 2, 3), r"m n = 6 needs N >= m n"),
        (lambda: polynomial_code(5, 0, 3), "`m` must be an integer >= 1"),
        (lambda: polynomial_code(5, 2, 2, basis="legendre"), "Unknown basis 'legendre'"),
        (lambda: polynomial_code(5, 2, 2, points="random"), "Unknown points 'random'"),
        (lambda: polynomial_code(3, 1, 1, points=[0.1, 0.1, 0.2]), "`points` must be distinct"),
        (lambda: polynomial_code(3, 1, 1, points=[0.1, 0.2]), "`points` must be 3 finite numbers"),
        (lambda: polynomial_code(3, 1, 1, points=[0.1, 0.2, 2.0]), r"in \[-1, 1\] for the Chebyshev basis"),
        (
            lambda: coded_matmul(np.ones((2, 2)), np.ones((3, 2)), n_workers=4, m=2, n=2),
            "same number of rows",
        ),
        (
            lambda: coded_matmul(
                np.ones((2, 2)), np.ones((2, 2)), n_workers=4, m=2, n=2, responders=[0, 1, 2]
            ),
            "has 3 workers; decoding needs m n = 4",
        ),
        (
            lambda: coded_matmul(
                np.ones((2, 2)), np.ones((2, 2)), n_workers=4, m=2, n=2, responders=[0, 1, 1, 2]
            ),
            "distinct workers",
        ),
        (
            lambda: coded_matmul(
                np.ones((2, 2)), np.ones((2, 2)), n_workers=4, m=2, n=2, responders=[0, 1, 2, 9]
            ),
            r"worker indices in \[0, 3\]",
        ),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_monomial_points_outside_the_interval_are_allowed():
    rng = np.random.default_rng(5)
    A, B = _matrices(rng, rows=3, p=2, q=2)
    res = coded_matmul(A, B, n_workers=4, m=2, n=2, points=[1.0, 2.0, 3.0, 4.0], basis="monomial")
    assert res.relative_error < 1e-12
