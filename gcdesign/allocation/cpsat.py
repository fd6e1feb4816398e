r"""Integer-programming baseline with OR-Tools CP-SAT (docs/allocation.md, "CP-SAT").

One-hot model: a boolean :math:`x_{il}` per worker and level,

.. math::

    \max \sum_{i,l} c_{il} x_{il} \quad \text{s.t.} \quad
    \sum_l x_{il} = 1 \;\forall i, \qquad \sum_{i,l} levels_l\, x_{il} = B,

with integer objective coefficients :math:`c_{il} = \mathrm{round}((u_{il} - u_{i0})\,
\sigma)` (CP-SAT needs integers; the per-worker offset :math:`u_{i0}` is a
constant). The scale :math:`\sigma` maps the largest utility range to
``resolution`` (default 10^9), so the rounded problem's optimum is within
``N / resolution`` of the largest range of the true one. The objective is
recomputed in float64 from the returned solution.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import UNSET, InputError, renamed_keyword
from .registry import register_allocator

CPSAT_OPTIONS = ("time_limit", "threads", "seed", "resolution", "workers")  # workers: old name


def _positive_number(name: str, value, *, integer: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        ok = math.isfinite(float(value)) and float(value) > 0 and (not integer or float(value).is_integer())
    if not ok:
        kind = "an integer >= 1" if integer else "a finite number > 0"
        raise InputError(f"cpsat option `{name}` must be {kind}, got {value!r}.")
    return float(value)


def cpsat(table: np.ndarray, levels: np.ndarray, budget: int, options: dict):
    """Registered solver ``"cpsat"``.

    Options: ``time_limit`` (seconds, default 30), ``threads`` (CP-SAT's search
    threads in this process, default 1: with one thread and no time-out the search is
    deterministic; ``workers`` is its deprecated name), ``seed`` (default 0),
    ``resolution`` (default 1e9).
    """
    time_limit = _positive_number("time_limit", options.pop("time_limit", 30.0))
    threads = renamed_keyword(
        "cpsat options", "workers", options.pop("workers", UNSET), "threads", options.pop("threads", 1), 1
    )
    threads = int(_positive_number("threads", threads, integer=True))
    seed = options.pop("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"cpsat option `seed` must be an integer >= 0, got {seed!r}.")
    resolution = _positive_number("resolution", options.pop("resolution", 1e9))
    if resolution > 2.0**52:
        raise InputError(f"cpsat option `resolution` must be at most 2**52, got {resolution!r}.")

    from ortools.sat.python import cp_model

    n, n_levels = table.shape
    offset = table - table[:, :1]
    spread = float(np.max(np.abs(offset))) if offset.size else 0.0
    scale = resolution / spread if spread > 0 else 1.0
    coef = np.rint(offset * scale).astype(np.int64)

    model = cp_model.CpModel()
    x = [[model.new_bool_var(f"x{i}_{l}") for l in range(n_levels)] for i in range(n)]
    for i in range(n):
        model.add_exactly_one(x[i])
    level_list = [int(v) for v in levels]
    model.add(
        sum(level_list[l] * x[i][l] for i in range(n) for l in range(n_levels) if level_list[l]) == budget
    )
    model.maximize(
        sum(int(coef[i, l]) * x[i][l] for i in range(n) for l in range(n_levels) if coef[i, l] != 0)
    )
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = threads
    solver.parameters.random_seed = int(seed)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise InputError(
            f"cpsat found no allocation within `time_limit` = {time_limit:g} s "
            f"(status {solver.status_name(status)}); raise the time limit or use method 'dp'."
        )
    index = np.array(
        [next(l for l in range(n_levels) if solver.boolean_value(x[i][l])) for i in range(n)], dtype=np.int64
    )
    proven = status == cp_model.OPTIMAL
    bound = solver.best_objective_bound / scale
    value = solver.objective_value / scale
    message = (
        f"CP-SAT {solver.status_name(status)} in {solver.wall_time:.3g} s "
        f"(objective rounded to 1/{resolution:g} of the largest utility range; "
        f"scaled bound gap {max(bound - value, 0.0):.3g})"
    )
    return index, (True if proven else None), message


register_allocator("cpsat", cpsat, options=CPSAT_OPTIONS)


__all__ = [
    "CPSAT_OPTIONS",
    "cpsat",
]
