r"""Per-worker bit allocation (docs/math.md, section 6).

With the optimal structure the joint design reduces to

.. math::

    \max_b \; F(b) = \sum_i u_i(b_i), \quad
    u_i(b) = \frac{1 - p_i}{p_i + \delta(b)}, \quad
    \sum_i b_i = B, \; b_{min} \le b_i \le b_{max}.

Every solver works on a generic *utility table* ``table[i, t]`` (the utility of
worker i at the allowed bit level ``levels[t]``), so it serves any separable
integer allocation; :func:`utility_table` produces the gradient-coding table
(:math:`\delta(b)` from the quantization model, e.g. :math:`\kappa\,\delta_{raw}(b)`).
Solvers are registered by name in :data:`ALLOCATORS` (:mod:`~gcdesign.allocation.registry`);
importing this package registers the built-in ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from .._validate import (
    UNSET,
    InputError,
    check_bit_range,
    check_bucket_size,
    check_budget,
    options_dict,
    read_only,
    renamed_keyword,
)
from ..profile import ClusterProfile
from ..quantization import QuantizationModel, error_factors, resolve_quantization
from ..utility import utility_values

# importing the solvers registers them (the baselines, certified, cpsat, dp, heuristic)
from . import baselines, certified, cpsat, dp, heuristic  # noqa: F401
from .dp import dp_work
from .registry import (
    ALLOCATOR_OPTIONS,
    ALLOCATORS,
    FROM_UTILITIES,
    SORTS_BY_RELIABILITY,
    register_allocator,
)


@dataclass(frozen=True, eq=False)
class Allocation:
    """Result of a bit allocation (same fields for every method).

    Attributes
    ----------
    bits : ndarray of int (N,)
    objective : float
        :math:`F = \\sum_i u_i(b_i)`, recomputed in float64 from `bits`.
    method : str
    optimal : bool or None
        True if proven optimal, False if known not to be, None if unknown.
    wall_time : float
        Seconds spent in the solver.
    message : str
    quantization : QuantizationModel or None
        The quantization model behind the utilities (None for a generic table).
    bound : float or None
        A proven upper bound on the optimal objective (the objective itself when ``optimal``
        is True; the Lagrangian bound when a certifying solver could not close the gap; None
        when the solver proves nothing).
    gap : float or None
        ``bound - objective``: 0 when proven optimal, the remaining gap otherwise, None if unknown.
    kappa : float or None
        ``quantization.kappa``, the paper's factor on :math:`\\delta_{raw}` (see
        :attr:`gcdesign.Design.kappa`; None for a generic table).
    """

    bits: np.ndarray
    objective: float
    method: str
    optimal: bool | None
    wall_time: float
    message: str
    quantization: QuantizationModel | None = None
    bound: float | None = None
    gap: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "bits", read_only(self.bits))

    @property
    def kappa(self) -> float | None:
        return None if self.quantization is None else self.quantization.kappa


AUTO = "auto"
"""The default method name: the exact DP where cheap, the certified solver beyond (:func:`resolve_method`)."""

DP_WORK_LIMIT = 2_000_000
"""``auto`` runs the exact DP up to this many work units ``N R L`` (workers x residual bits
``R = B - N levels[0]`` x levels), the certified solver (:mod:`.certified`) above. The DP's
cost is linear in them: 0.4-0.75 ns a unit measured from N = 10 to 1600 (B = 4N to 16N, b in
[2, 32]), so the limit is about 1-1.5 ms of DP; its choice table is then at most N R <= 65 kB.
Beyond it the certified solver is exact too and near-linear (a Lagrangian bound plus a small
exact core; studies/bench_certified.py)."""


def resolve_method(method, n: int, budget: int, levels) -> str:
    """The registered method that `method` names: itself, or for ``"auto"`` ``"dp"`` or ``"certified"``.

    ``auto`` picks the exact DP when ``N R L <= DP_WORK_LIMIT`` and otherwise the certified
    solver (a Lagrangian bound and an exact core: proven optimal, or the remaining gap stated).

    Examples
    --------
    >>> levels = allowed_levels(2, 32)
    >>> resolve_method("auto", 50, 350, levels), resolve_method("auto", 10_000, 70_000, levels)
    ('dp', 'certified')
    """
    if method == AUTO:
        return "dp" if dp_work(n, budget, levels) <= DP_WORK_LIMIT else "certified"
    if not isinstance(method, str) or method not in ALLOCATORS:
        names = ", ".join(sorted([*ALLOCATORS, AUTO]))
        raise InputError(f"Unknown allocator {method!r}; choose one of: {names}.")
    return method


def utility_table(straggler_probs, model, dim: int, levels, bucket_size: int | None = None) -> np.ndarray:
    """The gradient-coding utility ``u_i(b)`` at each level: array (N, len(levels)).

    ``u_i(b) = (1 - p_i) / (p_i + delta(b))`` with ``delta`` from the quantization
    `model` (a :class:`~gcdesign.quantization.QuantizationModel` or a number kappa on
    ``delta_raw``), evaluated at the bits actually transmitted; level 0 (an idle
    worker) has utility 0.
    """
    p = np.asarray(straggler_probs, dtype=np.float64)
    delta = error_factors(np.asarray(levels), model, dim, bucket_size)  # inf at level 0
    return utility_values(p[:, None], delta[None, :])


def allowed_levels(b_min: int, b_max: int, *, allow_idle: bool = False) -> np.ndarray:
    """The bit levels ``b_min .. b_max``, preceded by 0 (an idle worker) if `allow_idle`."""
    levels = np.arange(b_min, b_max + 1, dtype=np.int64)
    return np.concatenate([[0], levels]) if allow_idle else levels


def allocate_table(
    table, levels, budget: int, *, method: str = AUTO, options: dict | None = None
) -> Allocation:
    """Maximize ``sum_i table[i, t_i]`` subject to ``sum_i levels[t_i] = budget``.

    The generic entry point: every registered solver on any separable table
    (docs/allocation.md, "Entry points").

    Parameters
    ----------
    table : array_like, shape (N, L)
        Finite utilities: ``table[i, l]`` is worker i's value at ``levels[l]``.
    levels : array_like of int, shape (L,)
        Distinct nonnegative integers in increasing order. ``dp`` and ``cpsat``
        accept any such set; the other methods need consecutive integers,
        optionally preceded by one lower idle level (e.g. ``[0, 2, 3, ..., 32]``).
    budget : int
        ``sum_i levels[t_i]`` must equal it.
    method : str
        A name in :data:`ALLOCATORS`, or ``"auto"`` (default): the exact DP where
        it is cheap, the certified allocator beyond (:func:`resolve_method`).
    options : dict, optional
        Solver options (see each solver; unknown names are rejected; none for ``"auto"``).

    Returns
    -------
    Allocation
        ``bits`` are levels; ``objective`` is recomputed in float64; ``quantization`` is None;
        ``method`` is the solver that ran and ``optimal`` whether its result is proven optimal.

    Examples
    --------
    >>> import numpy as np
    >>> table = np.array([[1.0, 3.0, 4.0, 4.5], [0.0, 0.1, 3.0, 3.2]])
    >>> allocate_table(table, [2, 3, 4, 5], 8, method="dp").bits
    array([4, 4])
    """
    table = np.ascontiguousarray(table, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != levels.size or table.shape[0] == 0:
        raise InputError(f"`table` must have shape (N, {levels.size}) with N >= 1, got {table.shape}.")
    if levels.size == 0 or np.any(np.diff(levels) <= 0) or levels[0] < 0:
        raise InputError("`levels` must be distinct nonnegative integers in increasing order.")
    if not np.all(np.isfinite(table)):
        raise InputError("`table` must contain finite numbers only.")
    n = table.shape[0]
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise InputError(f"`budget` must be an integer number of bits, got {budget!r}.")
    if not n * levels[0] <= budget <= n * levels[-1]:
        raise InputError(
            f"`budget` = {budget} is infeasible for N = {n} workers with levels in "
            f"[{levels[0]}, {levels[-1]}]: need {n * levels[0]} <= B <= {n * levels[-1]}."
        )
    method, options = _method_and_options(method, n, budget, levels, options)
    return _run(
        method,
        lambda: ALLOCATORS[method[1]](table, levels, int(budget), options),
        levels,
        budget,
        lambda index: table[np.arange(n), index],
    )


def _method_and_options(requested, n, budget, levels, options):
    """``((requested, method), options)``: the solver `requested` names and its checked options."""
    method = resolve_method(requested, n, budget, levels)
    if options is not None and not isinstance(options, dict):
        raise InputError(f"`options` must be a dict, got {type(options).__name__}.")
    options = options_dict("options", options)
    accepted = () if requested == AUTO else ALLOCATOR_OPTIONS.get(method, ())
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) or "none"
        raise InputError(
            f"Unknown option {unknown[0]!r} for allocator {requested!r}; allowed options: {allowed}."
        )
    return (requested, method), options


def _run(method, solve, levels, budget, values) -> Allocation:
    """Run `solve` (a solver call), check its bits and build the :class:`Allocation`;
    ``values(index)`` gives each worker's utility at its chosen level."""
    requested, method = method
    start = time.perf_counter()
    index, optimal, message, *rest = solve()
    wall = time.perf_counter() - start
    index = np.asarray(index, dtype=np.int64)
    bits = levels[index]
    if int(bits.sum()) != budget:  # a solver bug, not bad input
        raise RuntimeError(f"allocator {method!r} spent {bits.sum()} bits of {budget}")
    objective = float(values(index).sum())
    if requested == AUTO:
        side = "<=" if method == "dp" else ">"
        message = f"auto chose {method} (N R L {side} {DP_WORK_LIMIT:g}): {message}"
    gap = 0.0 if optimal is True else (float(rest[0]) if rest and rest[0] is not None else None)
    bound = None if gap is None else objective + gap
    return Allocation(bits, objective, method, optimal, wall, message, bound=bound, gap=gap)


def allocate_bits(
    profile: ClusterProfile,
    budget,
    *,
    method: str = AUTO,
    quantization="balanced",
    kappa_c: float = 1.0,
    bucket_size: int | None = None,
    b_min: int = 2,
    b_max: int = 32,
    options: dict | None = None,
    kappa=UNSET,
) -> Allocation:
    """Choose integer bits per worker maximizing the total utility.

    Parameters
    ----------
    profile : ClusterProfile
    budget : int
        Total bits per coordinate over all workers, ``N b_min <= B <= N b_max``.
    method : str
        A name in :data:`ALLOCATORS` (``"equal"``, ``"dp"``, ``"heuristic"``, ...) or
        ``"auto"`` (default): the exact DP where it is cheap (``N R L <=``
        :data:`DP_WORK_LIMIT` work units), the certified solver beyond.
    quantization : str, float or QuantizationModel
        The quantization model (``"tight"``, ``"raw"``, ``"balanced"``, ``"none"``, a number
        kappa on the raw bound, or a calibrated model; see
        :func:`gcdesign.quantization.resolve_quantization`).
    kappa_c : float
        The constant ``c`` of the balanced policy, :math:`\\kappa = c\\,\\bar p / \\delta_{raw}(B/N)`.
    bucket_size : int or None
        Bucket length of the stochastic quantizer (None: one norm per message).
    b_min, b_max : int
        Allowed bit range per worker.
    options : dict, optional
        Solver options; ``{"allow_idle": True}`` lets a worker take 0 bits.
    kappa
        Deprecated name of `quantization` (warns; removed in the next release).

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: Proposition 1 (problem (b-SP1) preserves the
       optimality of the joint problem), Lemma 3 (the exact DP, ``method="dp"``), Algorithm 1
       (``method="heuristic"``); docs/math.md, section 6.

    Examples
    --------
    >>> from gcdesign import load_example
    >>> result = allocate_bits(load_example("toy-n8"), 32)
    >>> result.method, result.optimal, int(result.bits.sum())
    ('dp', True, 32)
    """
    quantization = renamed_keyword("allocate_bits", "kappa", kappa, "quantization", quantization, "balanced")
    if not isinstance(profile, ClusterProfile):
        raise InputError("`profile` must be a ClusterProfile.")
    b_min, b_max = check_bit_range(b_min, b_max)
    options = options_dict("options", options)
    allow_idle = options.pop("allow_idle", False)
    if not isinstance(allow_idle, (bool, np.bool_)):
        raise InputError(f"option `allow_idle` must be True or False, got {allow_idle!r}.")
    allow_idle = bool(allow_idle)
    n = profile.n_workers
    budget = check_budget(budget, n, b_min, b_max, allow_idle=allow_idle)
    bucket_size = check_bucket_size(bucket_size)
    model = resolve_quantization(
        quantization, profile.straggler_probs, budget, profile.dim, bucket_size=bucket_size, c=kappa_c
    )
    levels = allowed_levels(b_min, b_max, allow_idle=allow_idle)
    p = profile.straggler_probs
    ran = resolve_method(method, n, budget, levels)
    if ran in FROM_UTILITIES:
        # the solver reads (1 - p_i) / (p_i + delta_l) itself: no N x L table
        delta = error_factors(levels, model, profile.dim, bucket_size)
        utility_values(p, delta.min())  # the InputError of the table's path for p = 0 with delta = 0
        named, options = _method_and_options(method, n, budget, levels, options)
        result = _run(
            named,
            lambda: FROM_UTILITIES[ran](p, delta, levels, budget, options),
            levels,
            budget,
            lambda index: utility_values(p, delta[index]),
        )
        return replace(result, quantization=model)
    # rows in the order of increasing p (for a solver that sorts them so anyway)
    rows = np.argsort(p, kind="stable") if ran in SORTS_BY_RELIABILITY else None
    table = utility_table(p if rows is None else p[rows], model, profile.dim, levels, bucket_size)
    if not np.all(np.isfinite(table)):
        raise InputError("utilities are infinite: a worker has p = 0 while kappa is 0.")
    result = allocate_table(table, levels, budget, method=method, options=options)
    if rows is not None:
        # back to the profile's order; the objective summed in that order, as for any method
        value = np.empty(n)
        value[rows] = table[np.arange(n), np.searchsorted(levels, result.bits)]
        bits = np.empty_like(result.bits)
        bits[rows] = result.bits
        result = replace(result, bits=bits, objective=float(value.sum()))
    return replace(result, quantization=model)


__all__ = [
    "ALLOCATORS",
    "ALLOCATOR_OPTIONS",
    "AUTO",
    "DP_WORK_LIMIT",
    "Allocation",
    "SORTS_BY_RELIABILITY",
    "allocate_bits",
    "allocate_table",
    "register_allocator",
    "resolve_method",
    "utility_table",
]
