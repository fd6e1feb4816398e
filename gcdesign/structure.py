r"""Optimal code structure in closed form (docs/math.md, sections 3 and 4).

Minimizing the Lemma 1 bound
:math:`G^2 \sum_i (1 - p_i)(p_i + \delta_i) W_i^2` over nonnegative weights
subject to unbiasedness (U), :math:`\sum_i (1 - p_i) w_{ij} = 1` for every
partition :math:`j`, depends only on the row masses. With the utilities

.. math::

    u_i = \frac{1 - p_i}{p_i + \delta_i}, \qquad S = \sum_i u_i,

the optimum is :math:`W_i^* = K / ((p_i + \delta_i) S)`, the worker masses are
:math:`Y_i = (1 - p_i) W_i^* = K u_i / S` (summing to K) and the bound is
:math:`G^2 K^2 / S`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import InputError, read_only
from .profile import ClusterProfile
from .utility import utilities

UNBIASED_TOL = 1e-9
"""How far a partition's total weight :math:`\\sum_i (1 - p_i) w_{ij}` may be from 1 for (U) to hold."""


@dataclass(frozen=True, eq=False)
class Structure:
    """The optimal structure: per-worker utility, row sums, masses and the bound.

    Attributes
    ----------
    utility : ndarray (N,)
        :math:`u_i = (1 - p_i) / (p_i + \\delta_i)`.
    total_utility : float
        :math:`S = \\sum_i u_i`.
    row_sum : ndarray (N,)
        :math:`W_i^* = \\sum_j w_{ij}` (0 for unused workers).
    row_mass : ndarray (N,)
        :math:`Y_i = (1 - p_i) W_i^*`, summing to K.
    bound : float
        :math:`K^2 / S`, the error bound per unit :math:`G^2`.
    """

    utility: np.ndarray
    total_utility: float
    row_sum: np.ndarray
    row_mass: np.ndarray
    bound: float

    def __post_init__(self):
        for attr in ("utility", "row_sum", "row_mass"):
            object.__setattr__(self, attr, read_only(getattr(self, attr)))


def optimal_structure(profile: ClusterProfile, delta) -> Structure:
    """Closed-form optimal structure (Theorem 1) for `profile` and per-worker `delta`.

    Parameters
    ----------
    profile : ClusterProfile
    delta : float or array_like (N,)
        Quantization error factors :math:`\\delta_i = \\kappa\\,\\delta_{raw}(b_i)`
        (``inf`` for an idle worker, which gets mass 0).

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: Theorem 1 (the optimal structure in closed
       form) and Lemma 2 (its value); docs/math.md, section 4.

    Examples
    --------
    >>> prof = ClusterProfile([0.1, 0.5], dim=10)
    >>> s = optimal_structure(prof, 0.0)
    >>> s.row_mass.round(4).tolist(), round(s.bound, 4)
    ([1.8, 0.2], 0.4)
    """
    p = profile.straggler_probs
    k = profile.partitions
    u = utilities(p, delta)
    total = float(u.sum())
    if total <= 0.0:
        raise InputError("no worker has positive utility: every worker is always late or idle.")
    delta = np.broadcast_to(np.asarray(delta, dtype=np.float64), p.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        row_sum = np.where(u > 0, k / ((p + delta) * total), 0.0)
    row_mass = k * u / total
    return Structure(utility=u, total_utility=total, row_sum=row_sum, row_mass=row_mass, bound=k * k / total)


def error_bound(straggler_probs, delta, row_sum) -> float:
    """Lemma 1 bound per unit :math:`G^2`: :math:`\\sum_i (1-p_i)(p_i+\\delta_i) W_i^2`.

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: Lemma 1 (the residual-error bound);
       docs/math.md, section 3.
    """
    p = np.asarray(straggler_probs, dtype=np.float64)
    delta = np.broadcast_to(np.asarray(delta, dtype=np.float64), p.shape)
    w = np.asarray(row_sum, dtype=np.float64)
    used = w != 0
    return float(np.sum((1 - p[used]) * (p[used] + delta[used]) * w[used] ** 2))


def optimal_structure_cvxpy(profile: ClusterProfile, delta) -> tuple[np.ndarray, float]:
    """The same convex problem solved numerically over all weights (cvxpy + Clarabel).

    Minimizes :math:`\\sum_i (1-p_i)(p_i+\\delta_i)(\\sum_j w_{ij})^2` subject to
    (U) and :math:`w \\ge 0`, with the full N x K weight matrix as the variable.
    Used to confirm the closed form; practical for N, K up to a few hundred.

    Returns the optimal row sums :math:`W_i` (NaN for workers with
    :math:`p_i = 1`, whose weights do not enter the problem) and the optimal value.
    Needs cvxpy, the ``check`` extra (``pip install 'gcdesign[check]'``; ``test`` includes it).

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: the convex problem of Theorem 1, solved
       numerically to check the closed form; docs/math.md, section 4.
    """
    try:
        import cvxpy as cp
    except ImportError:
        raise ImportError("`optimal_structure_cvxpy` needs cvxpy: pip install 'gcdesign[check]'.") from None

    p = profile.straggler_probs
    k = profile.partitions
    delta = np.broadcast_to(np.asarray(delta, dtype=np.float64), p.shape)
    active = p < 1.0
    pa, da = p[active], delta[active]
    w = cp.Variable((pa.size, k), nonneg=True)
    rows = cp.sum(w, axis=1)
    coef = (1 - pa) * (pa + da)
    objective = cp.Minimize(cp.sum(cp.multiply(coef, cp.square(rows))))
    constraints = [(1 - pa) @ w == np.ones(k)]
    problem = cp.Problem(objective, constraints)
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    if problem.status != cp.OPTIMAL:
        raise RuntimeError(f"cvxpy did not solve the structure problem: {problem.status}")
    row_sum = np.full(p.size, np.nan)
    row_sum[active] = np.asarray(rows.value).ravel()
    return row_sum, float(problem.value)


__all__ = [
    "UNBIASED_TOL",
    "Structure",
    "error_bound",
    "optimal_structure",
    "optimal_structure_cvxpy",
]
