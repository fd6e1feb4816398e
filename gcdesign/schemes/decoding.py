r"""Per-round optimal (least-squares) decoding, sparse-aware (docs/evaluation.md).

For the rows ``T`` of the encoding that arrived this round, the optimal
decoder is the minimum-norm solution of

.. math::

    \min_a \| a^T B_T - \mathbf 1^T \|_2 ,

i.e. ``a = pinv(B_T^T) 1``. A dense pseudo-inverse costs an SVD of the
``|T| x K`` matrix every round. :func:`least_squares_weights` gets the same
vector (to about 1e-12) much faster:

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
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

DENSE_COMPONENT = 24  # components this small (rows or columns) go straight to the dense solver
PIVOT_RTOL = 1e-7  # smallest |pivot| / largest |pivot| accepted (a proxy for the conditioning)
RESIDUAL_RTOL = 1e-11  # relative residual of the normal equations accepted


def dense_least_squares_weights(encoding, arrived) -> np.ndarray:
    """Reference decoder: ``a_T = pinv(B_T^T) 1`` with a dense pseudo-inverse, zeros elsewhere."""
    enc = sp.csr_array(encoding)
    arrived = np.asarray(arrived, dtype=bool)
    a = np.zeros(enc.shape[0])
    rows = np.flatnonzero(arrived)
    if rows.size:
        block = enc[rows].toarray()
        a[rows] = np.linalg.pinv(block.T) @ np.ones(enc.shape[1])
    return a


def least_squares_weights(encoding, arrived) -> np.ndarray:
    r"""Minimum-norm least-squares decoder for the arrived rows (sparse-aware).

    Parameters
    ----------
    encoding : sparse or dense array (N x K)
    arrived : bool array (N,)

    Returns
    -------
    ndarray (N,)
        ``a`` with ``a_T = argmin ||a_T^T B_T - 1^T||`` of least norm, zero on
        the rows that did not arrive. Agrees with
        :func:`dense_least_squares_weights` to about 1e-12.
    """
    enc = encoding if isinstance(encoding, sp.csr_array) else sp.csr_array(encoding)
    arrived = np.asarray(arrived, dtype=bool)
    n = enc.shape[0]
    a = np.zeros(n)
    rows = np.flatnonzero(arrived)
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


__all__ = ["dense_least_squares_weights", "least_squares_weights"]
