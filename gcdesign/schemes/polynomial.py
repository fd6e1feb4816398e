"""Polynomial-coded matrix multiplication (Yu, Maddah-Ali and Avestimehr, 2017).

The master wants ``C = A^T B`` with ``A`` (r x p) and ``B`` (r x q). It splits
the columns of ``A`` into ``m`` blocks ``A_0..A_{m-1}`` and those of ``B`` into
``n`` blocks ``B_0..B_{n-1}`` (zero-padded to equal widths) and gives worker
``i`` the evaluations at a point ``x_i`` of

.. math::

    \\tilde A(x) = \\sum_{j<m} A_j \\phi_j(x), \\qquad
    \\tilde B(x) = \\sum_{k<n} B_k \\phi_{km}(x).

Worker ``i`` returns ``\\tilde A(x_i)^T \\tilde B(x_i)``, a polynomial of
degree ``mn - 1`` in ``x_i`` whose coefficients carry the ``mn`` blocks
``A_j^T B_k``; any ``mn`` results determine them by interpolation.

Bases (``basis=``):

* ``"monomial"``: ``phi_d(x) = x^d`` (the original polynomial code); the
  interpolation matrix is a Vandermonde matrix, exponentially ill-conditioned
  in ``mn`` even at Chebyshev points.
* ``"chebyshev"`` (default): ``phi_d = T_d``, the Chebyshev polynomials
  (Fahim and Cadambe, "Numerically stable polynomially coded computing",
  2019). ``T_j T_{km} = (T_{km+j} + T_{|km-j|}) / 2`` so the product is still
  of degree ``mn - 1`` with an invertible (triangular) map to the blocks; at
  Chebyshev points the interpolation is well conditioned.

Points (``points=``): ``"chebyshev"`` (first kind, ``cos((2i+1) pi / 2N)``,
default), ``"equispaced"`` on [-1, 1], or an explicit array of N distinct
reals. See docs/classic_codes.md and ``studies/bench_exact_codes.py``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .._validate import InputError, choice, positive_int

BASES = ("chebyshev", "monomial")
POINTS = ("chebyshev", "equispaced")


@dataclass(frozen=True, eq=False)
class PolynomialCode:
    """An (N, m, n) polynomial code for ``A^T B``.

    Attributes
    ----------
    n_workers : int
        ``N >= m n``.
    m, n : int
        Column splits of ``A`` and ``B``; the recovery threshold is ``m n``.
    points : numpy.ndarray (N,)
        Distinct evaluation points, one per worker.
    basis : str
        ``"chebyshev"`` or ``"monomial"``.
    """

    n_workers: int
    m: int
    n: int
    points: np.ndarray
    basis: str

    @property
    def threshold(self) -> int:
        """Results needed to decode: ``m n``."""
        return self.m * self.n


@dataclass(frozen=True, eq=False)
class MatmulResult:
    """Result of :func:`coded_matmul`.

    Attributes
    ----------
    product : numpy.ndarray
        The decoded ``A^T B``.
    responders : numpy.ndarray
        The workers whose results were used.
    relative_error : float
        ``||C_decoded - A^T B||_F / ||A^T B||_F`` against the direct product.
    condition : float
        Condition number of the interpolation matrix of the responders.
    """

    product: np.ndarray
    responders: np.ndarray
    relative_error: float
    condition: float


def _basis_values(x: np.ndarray, degrees: np.ndarray, basis: str) -> np.ndarray:
    """``phi_d(x_i)`` for every point and degree, shape (len(x), len(degrees))."""
    x = np.asarray(x, dtype=np.float64)[:, None]
    if basis == "monomial":
        return x ** degrees[None, :]
    return np.cos(degrees[None, :] * np.arccos(np.clip(x, -1.0, 1.0)))  # T_d on [-1, 1]


def polynomial_code(n_workers: int, m: int, n: int, *, points="chebyshev", basis: str = "chebyshev"):
    """Build an (N, m, n) polynomial code.

    Parameters
    ----------
    n_workers : int
        ``N >= m n``.
    m, n : int
        Column splits of ``A`` and ``B``.
    points : {"chebyshev", "equispaced"} or array_like (N,)
        Evaluation points; explicit points must be distinct and, for the
        Chebyshev basis, in [-1, 1].
    basis : {"chebyshev", "monomial"}

    Returns
    -------
    PolynomialCode

    References
    ----------
    .. [1] the textbook's section 6.2, "Gradient Coding and Coded Matrix Multiplication", Theorem
       "Coded Matrix Multiplication" (recovery threshold m n).
    .. [2] Q. Yu, M. A. Maddah-Ali and A. S. Avestimehr, "Polynomial Codes: an Optimal Design for
       High-Dimensional Coded Matrix Multiplication", NeurIPS 2017.

    Examples
    --------
    >>> code = polynomial_code(6, 2, 2)
    >>> code.threshold
    4
    """
    big_n = positive_int("n_workers", n_workers)
    m = positive_int("m", m)
    n = positive_int("n", n)
    basis = choice("basis", basis, BASES)
    if m * n > big_n:
        raise InputError(f"`n_workers` = {big_n}: a code with m n = {m * n} needs N >= m n workers.")
    if isinstance(points, str):
        points = choice("points", points, POINTS)
        if points == "chebyshev":
            x = np.cos((2 * np.arange(big_n) + 1) * np.pi / (2 * big_n))
        else:
            x = np.linspace(-1.0, 1.0, big_n)
    else:
        x = np.asarray(points, dtype=np.float64)
        if x.shape != (big_n,) or not np.all(np.isfinite(x)):
            raise InputError(
                f"`points` must be {big_n} finite numbers (one per worker), got shape {x.shape}."
            )
        if np.unique(x).size != big_n:
            raise InputError("`points` must be distinct.")
        if basis == "chebyshev" and np.any(np.abs(x) > 1):
            raise InputError("`points` must lie in [-1, 1] for the Chebyshev basis.")
    x = x.copy()
    x.setflags(write=False)
    return PolynomialCode(big_n, m, n, x, basis)


def _split(matrix: np.ndarray, parts: int) -> np.ndarray:
    """Column blocks of equal width (zero padding), shape (parts, rows, width)."""
    rows, cols = matrix.shape
    width = -(-cols // parts)
    padded = np.zeros((rows, width * parts))
    padded[:, :cols] = matrix
    return padded.reshape(rows, parts, width).transpose(1, 0, 2)


def encode(code: PolynomialCode, A, B) -> tuple[np.ndarray, np.ndarray]:
    """Worker inputs: ``A~(x_i)`` (N, r, ceil(p/m)) and ``B~(x_i)`` (N, r, ceil(q/n))."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise InputError(
            f"`A` and `B` must be 2-D with the same number of rows, got {A.shape} and {B.shape}."
        )
    a_blocks, b_blocks = _split(A, code.m), _split(B, code.n)
    phi_a = _basis_values(code.points, np.arange(code.m), code.basis)  # (N, m)
    phi_b = _basis_values(code.points, np.arange(code.n) * code.m, code.basis)  # (N, n)
    return np.einsum("ij,jrc->irc", phi_a, a_blocks), np.einsum("ik,krc->irc", phi_b, b_blocks)


def worker_products(encoded_a: np.ndarray, encoded_b: np.ndarray) -> np.ndarray:
    """What the workers compute: ``A~(x_i)^T B~(x_i)`` for every i, shape (N, p/m, q/n)."""
    return np.einsum("irc,ird->icd", encoded_a, encoded_b)


def interpolation_matrix(code: PolynomialCode, responders) -> np.ndarray:
    """``G[i, j + k m] = phi_j(x_i) phi_{km}(x_i)`` over the responders (mn x mn when square)."""
    x = code.points[np.asarray(responders, dtype=np.int64)]
    phi_a = _basis_values(x, np.arange(code.m), code.basis)
    phi_b = _basis_values(x, np.arange(code.n) * code.m, code.basis)
    return (phi_a[:, None, :] * phi_b[:, :, None]).reshape(x.size, code.m * code.n)


def decode(code: PolynomialCode, results: np.ndarray, responders, shape: tuple[int, int]) -> np.ndarray:
    """``A^T B`` (shape `shape` = (p, q)) from the results of the responders.

    Parameters
    ----------
    code : PolynomialCode
    results : array (len(responders), p/m, q/n)
        Worker products, in the order of `responders`.
    responders : sequence of int
        At least ``m n`` distinct workers; the first ``m n`` are used.
    shape : (p, q)
    """
    responders = np.asarray(responders, dtype=np.int64)
    need = code.threshold
    if np.unique(responders).size != responders.size:
        raise InputError("`responders` must be distinct workers.")
    if responders.size < need:
        raise InputError(f"`responders` has {responders.size} workers; decoding needs m n = {need}.")
    responders = responders[:need]
    results = np.asarray(results, dtype=np.float64)[:need]
    matrix = interpolation_matrix(code, responders)
    _, wa, wb = results.shape
    blocks = np.linalg.solve(matrix, results.reshape(need, wa * wb)).reshape(code.n, code.m, wa, wb)
    full = blocks.transpose(1, 2, 0, 3).reshape(code.m * wa, code.n * wb)  # block (j, k) -> rows j, cols k
    return full[: shape[0], : shape[1]]


def coded_matmul(
    A, B, *, n_workers: int, m: int, n: int, responders=None, points="chebyshev", basis: str = "chebyshev"
) -> MatmulResult:
    """Compute ``A^T B`` with an (N, m, n) polynomial code and report the floating-point error.

    Parameters
    ----------
    A, B : array_like (r x p), (r x q)
    n_workers, m, n : int
        See :func:`polynomial_code`.
    responders : sequence of int, optional
        Workers whose results arrive (default: the first ``m n``).
    points, basis
        See :func:`polynomial_code`.

    Returns
    -------
    MatmulResult

    References
    ----------
    .. [1] the textbook's section 6.2, "Gradient Coding and Coded Matrix Multiplication", Theorem
       "Coded Matrix Multiplication" (recovery threshold m n).
    .. [2] Q. Yu, M. A. Maddah-Ali and A. S. Avestimehr, "Polynomial Codes: an Optimal Design for
       High-Dimensional Coded Matrix Multiplication", NeurIPS 2017.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.standard_normal((5, 4)), rng.standard_normal((5, 6))
    >>> res = coded_matmul(A, B, n_workers=8, m=2, n=3, responders=[7, 6, 5, 4, 3, 2])
    >>> bool(res.relative_error < 1e-12)
    True
    """
    code = polynomial_code(n_workers, m, n, points=points, basis=basis)
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    responders = np.arange(code.threshold) if responders is None else np.asarray(responders, dtype=np.int64)
    if responders.size and (responders.min() < 0 or responders.max() >= code.n_workers):
        raise InputError(f"`responders` must be worker indices in [0, {code.n_workers - 1}].")
    enc_a, enc_b = encode(code, A, B)
    results = worker_products(enc_a[responders], enc_b[responders])
    product = decode(code, results, responders, (A.shape[1], B.shape[1]))
    direct = A.T @ B
    scale = np.linalg.norm(direct)
    error = float(np.linalg.norm(product - direct) / (scale if scale > 0 else 1.0))
    condition = float(np.linalg.cond(interpolation_matrix(code, responders[: code.threshold])))
    return MatmulResult(product, responders[: code.threshold], error, condition)


def worst_case_condition(
    code: PolynomialCode, *, max_sets: int = 20_000, rng=None
) -> tuple[float, tuple, bool]:
    """Largest condition number of the interpolation matrix over responder sets of size ``m n``.

    Exhaustive when ``C(N, mn) <= max_sets``, else the contiguous runs of
    points (the worst sets for interpolation: all points bunched together)
    plus random sets from `rng`.

    Returns
    -------
    (worst, responders, exhaustive)
    """
    need, big_n = code.threshold, code.n_workers
    max_sets = positive_int("max_sets", max_sets)
    if math.comb(big_n, need) <= max_sets:
        sets, exhaustive = np.array(list(itertools.combinations(range(big_n), need))), True
    else:
        order = np.argsort(code.points)
        runs = [np.sort(order[start : start + need]) for start in range(big_n - need + 1)]
        gen = np.random.default_rng(rng)
        extra = [np.sort(gen.choice(big_n, size=need, replace=False)) for _ in range(max_sets - len(runs))]
        sets, exhaustive = np.array(runs + extra), False
    full = interpolation_matrix(code, np.arange(big_n))
    conds = np.concatenate(
        [np.linalg.cond(full[chunk]) for chunk in np.array_split(sets, -(-len(sets) // 2000))]
    )
    k = int(np.argmax(conds))
    return float(conds[k]), tuple(int(i) for i in sets[k]), exhaustive


__all__ = [
    "BASES",
    "POINTS",
    "MatmulResult",
    "PolynomialCode",
    "coded_matmul",
    "decode",
    "encode",
    "interpolation_matrix",
    "polynomial_code",
    "worker_products",
    "worst_case_condition",
]
