r"""Per-round optimal (least-squares) decoding: the one least-squares decoder (docs/evaluation.md).

For the rows ``T`` of the encoding that arrived this round, the optimal
decoder is the minimum-norm solution of

.. math::

    \min_a \| a^T B_T - \mathbf 1^T \|_2 ,

i.e. ``a = pinv(B_T^T) 1``. :func:`least_squares_weights` is the entry point
of every scheme that decodes by least squares (the ``od``, ``random-sparse``
and ``expander-ls`` baselines through :class:`LeastSquaresDecoder`, the exact
codes below ``N - s`` arrivals and in :func:`~gcdesign.schemes.exact.exact_decoding`).
It has two solvers:

``solver="sparse"`` (default): a dense pseudo-inverse costs an SVD of the
``|T| x K`` matrix every round; this gets the same vector (to about 1e-12 on
well-conditioned codes) much faster on large sparse codes:

1. drop the columns no arrived row touches (their residual is 1 whatever ``a``);
2. solve the normal equations on the smaller Gram matrix (``B_T B_T^T`` when
   fewer rows than columns: ``a = (B B^T)^{-1} B 1``; ``B_T^T B_T`` otherwise:
   ``a = B (B^T B)^{-1} 1``), factorized by a sparse LU (SuperLU, symmetric
   mode, minimum-degree ordering). When the block has full rank in its smaller
   dimension this is the unique minimum-norm least-squares solution;
3. a tiny pivot or a large residual means rank deficiency (or bad
   conditioning): split the arrived rows into the connected components of the
   worker-partition graph (the problem separates exactly over components) and
   solve each one by step 2, or by a dense pseudo-inverse when the component
   is small or step 2 fails on it. So the answer is always the minimum-norm
   least-squares solution.

``solver="dense"``: LAPACK's SVD-based least squares (``numpy.linalg.lstsq``)
on the dense arrived block, accurate to about ``cond(B_T)`` times the machine
epsilon. The exact codes use it: their blocks are small and dense-ish, and a
cyclic code's ``cond(B_T)`` (1e3 to 1e5) squared by the normal equations would
cost most of the digits (2.9e-5 off at ``N = 60, s = 10``, where ``lstsq``
also takes 0.2 ms a round against 0.4 ms). It is also the reference the
sparse solver is tested against (``studies/bench_decoding.py`` times both).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from .._validate import InputError, choice

DENSE_COMPONENT = 24  # components this small (rows or columns) go straight to the dense solver
PIVOT_RTOL = 1e-7  # smallest |pivot| / largest |pivot| accepted (a proxy for the conditioning)
RESIDUAL_RTOL = 1e-11  # relative residual of the normal equations accepted
SOLVERS = ("sparse", "dense")


def responders(arrived, n: int) -> np.ndarray:
    """Sorted indices of the workers that arrived, from a boolean mask (N,) or worker indices."""
    arrived = np.asarray(arrived)
    if arrived.dtype == bool:
        if arrived.shape != (n,):
            raise InputError(
                f"`arrived` must be a boolean mask of length N = {n}, got shape {arrived.shape}."
            )
        return np.flatnonzero(arrived)
    index = np.unique(arrived.astype(np.int64).ravel())
    if index.size and (index[0] < 0 or index[-1] >= n):
        raise InputError(f"`arrived` holds worker indices outside [0, {n - 1}].")
    return index


def least_squares_weights(encoding, arrived, *, solver: str = "sparse") -> np.ndarray:
    r"""Minimum-norm least-squares decoder for the arrived rows.

    Parameters
    ----------
    encoding : sparse or dense array (N x K)
    arrived : bool array (N,) or integer indices of the responders
    solver : {"sparse", "dense"}
        ``"sparse"``: normal equations by a sparse LU, per connected component
        when needed (fast on large sparse codes); ``"dense"``: ``numpy.linalg.lstsq``
        on the dense block (accurate on ill-conditioned codes). See the module notes.

    Returns
    -------
    ndarray (N,)
        ``a`` with ``a_T = argmin ||a_T^T B_T - 1^T||`` of least norm, zero on
        the rows that did not arrive (all zeros if none did). The two solvers
        agree to about 1e-12 on well-conditioned codes.

    References
    ----------
    .. [1] the textbook's section 6.3, "Approximate Gradient Coding", Theorem "Approximate Gradient
       Coding via Random Sparse Encoding" (the least-squares decoder); docs/math.md, section 10.

    Examples
    --------
    >>> enc = sp.csr_array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    >>> least_squares_weights(enc, [True, True, False])  # (1, 1, 0) is off by one on partition 1
    array([0.66666667, 0.66666667, 0.        ])
    >>> least_squares_weights(enc, [0, 1], solver="dense")
    array([0.66666667, 0.66666667, 0.        ])
    """
    if choice("solver", solver, SOLVERS) == "dense":
        dense = encoding.toarray() if sp.issparse(encoding) else np.asarray(encoding, dtype=np.float64)
        n, k = dense.shape
        rows = responders(arrived, n)
        a = np.zeros(n)
        if rows.size:
            a[rows] = np.linalg.lstsq(dense[rows].T, np.ones(k), rcond=None)[0]
        return a
    enc = encoding if isinstance(encoding, sp.csr_array) else sp.csr_array(encoding)
    n = enc.shape[0]
    a = np.zeros(n)
    rows = responders(arrived, n)
    if rows.size == 0:
        return a
    sub = enc[rows]
    used = np.unique(sub.indices[sub.data != 0])
    if used.size == 0:
        return a
    sub = sp.csr_array(sub[:, used])
    # One sparse factorization of the whole arrived block first: it is the answer
    # whenever the block has full rank in its smaller dimension (the usual case).
    weights = _solve_component(sub, dense_fallback=False)
    if weights is None:
        weights = _solve_by_components(sub)
    a[rows] = weights
    return a


class LeastSquaresDecoder:
    """``decoder(arrived) -> least_squares_weights(encoding, arrived, solver=solver)`` (picklable).

    The arrival-dependent decoder of the least-squares baselines (``od``,
    ``random-sparse``, ``expander-ls``): pass it as ``Scheme(decoder=...)``.
    """

    def __init__(self, encoding, *, solver: str = "sparse"):
        self.encoding = sp.csr_array(encoding)
        self.solver = choice("solver", solver, SOLVERS)

    def __call__(self, arrived) -> np.ndarray:
        return least_squares_weights(self.encoding, arrived, solver=self.solver)


def _solve_by_components(sub: sp.csr_array) -> np.ndarray:
    """Solve each connected component of the worker-partition graph separately."""
    m = sub.shape[0]
    # rows are linked when they share a column
    n_comp, labels = connected_components(sp.csr_array(sub @ sub.T), directed=False)
    csc = sp.csc_array(sub)
    col_labels = labels[csc.indices[csc.indptr[:-1]]]  # every kept column has a row
    row_order = np.argsort(labels, kind="stable")
    row_bounds = np.searchsorted(labels[row_order], np.arange(n_comp + 1))
    col_order = np.argsort(col_labels, kind="stable")
    col_bounds = np.searchsorted(col_labels[col_order], np.arange(n_comp + 1))
    weights = np.zeros(m)
    for c in range(n_comp):
        r = row_order[row_bounds[c] : row_bounds[c + 1]]
        k = col_order[col_bounds[c] : col_bounds[c + 1]]
        if k.size:  # rows without data keep weight 0 (least norm)
            weights[r] = _solve_component(sp.csr_array(sub[r][:, k]), dense_fallback=True)
    return weights


def _solve_component(block: sp.csr_array, *, dense_fallback: bool) -> np.ndarray | None:
    """Minimum-norm least-squares solution of ``block^T a = 1``.

    Returns None (instead of the dense fallback) when the sparse route fails
    and `dense_fallback` is False.
    """
    m, k = block.shape
    ones = np.ones(k)
    if min(m, k) <= DENSE_COMPONENT:
        return np.linalg.pinv(block.toarray().T) @ ones
    if m <= k:  # wide: a = (B B^T)^{-1} B 1, unique if B has full row rank
        sol = _spd_solve(sp.csc_array(block @ block.T), block @ ones)
    else:  # tall: a = B (B^T B)^{-1} 1, the least-norm solution if B has full column rank
        sol = _spd_solve(sp.csc_array(block.T @ block), ones)
        sol = None if sol is None else block @ sol
    if sol is not None or not dense_fallback:
        return sol
    return np.linalg.pinv(block.toarray().T) @ ones


def _spd_solve(matrix: sp.csc_array, rhs: np.ndarray) -> np.ndarray | None:
    """Solve a sparse symmetric positive (semi)definite system; None if it looks singular."""
    try:
        lu = splu(
            matrix,
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )
    except RuntimeError:  # exactly singular
        return None
    pivots = np.abs(lu.U.diagonal())
    if pivots.size == 0 or not pivots.min() > PIVOT_RTOL * pivots.max():
        return None
    sol = lu.solve(rhs)
    sol += lu.solve(rhs - matrix @ sol)  # one step of iterative refinement
    residual = np.linalg.norm(matrix @ sol - rhs)
    if not np.isfinite(residual) or residual > RESIDUAL_RTOL * max(np.linalg.norm(rhs), 1.0) * pivots.size:
        return None
    return sol


__all__ = ["SOLVERS", "LeastSquaresDecoder", "least_squares_weights", "responders"]
