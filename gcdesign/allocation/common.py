"""Helpers shared by the table solvers: level structure, reliability order, active sets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import InputError


@dataclass(frozen=True)
class LevelLayout:
    """How a sorted level set splits into an optional floor level and a contiguous run.

    ``levels = [floor] + [base, base + 1, ..., base + top]`` when ``idle`` (the
    floor is a level a worker may sit at, e.g. 0 bits), else
    ``levels = [base, ..., base + top]``. ``offset`` is the column of ``base``.
    """

    idle: bool
    floor: int
    base: int
    top: int
    offset: int


def level_layout(levels: np.ndarray, method: str) -> LevelLayout:
    """The layout of `levels`, or an InputError if `method` cannot handle it."""
    levels = np.asarray(levels, dtype=np.int64)
    if np.all(np.diff(levels) == 1):
        return LevelLayout(False, int(levels[0]), int(levels[0]), int(levels.size - 1), 0)
    if levels.size >= 2 and np.all(np.diff(levels[1:]) == 1):
        return LevelLayout(True, int(levels[0]), int(levels[1]), int(levels.size - 2), 1)
    raise InputError(
        f"method {method!r} needs `levels` to be consecutive integers, optionally preceded by one "
        f"lower idle level; got {levels.tolist()}. Use method 'dp' or 'cpsat' for arbitrary levels."
    )


def reliability_order(table: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Workers from most to least reliable: by utility at the lowest positive level.

    For the gradient-coding table the utility decreases in p, so this is the
    order of increasing straggler probability (ties by index).
    """
    positive = np.flatnonzero(levels > 0)
    col = int(positive[0]) if positive.size else 0
    return np.argsort(-table[:, col], kind="stable")


def residuals_by_k(n: int, budget: int, layout: LevelLayout) -> tuple[np.ndarray, np.ndarray]:
    """Candidate top-k set sizes and the residual bits the k share above ``base``.

    Without an idle level every worker sits at ``base`` or above and the top k
    share ``R = B - N base``; k runs over ``max(1, ceil(R / top)) .. max(that,
    min(N, R))``. With an idle level the workers beyond k sit at the floor and
    ``R_k = B - (N - k) floor - k base`` must lie in ``[0, k top]``.
    """
    k = np.arange(1, n + 1, dtype=np.int64)
    if not layout.idle:
        residual = budget - n * layout.base
        k_lo = 1 if layout.top == 0 else max(1, -(-residual // layout.top))
        k_hi = max(k_lo, min(n, residual))
        ks = np.arange(k_lo, k_hi + 1, dtype=np.int64)
        return ks, np.full(ks.size, residual, dtype=np.int64)
    res = budget - (n - k) * layout.floor - k * layout.base
    ok = (res >= 0) & (res <= k * layout.top)
    if not ok.any():
        raise InputError(f"`budget` = {budget} cannot be written as a sum of N = {n} levels.")
    return k[ok], res[ok]


def rest_values(floor_utility: np.ndarray) -> np.ndarray:
    """``rest_value[k]``: the utility of workers k..N-1 at their floor level (summed from the
    last worker), N + 1 entries (``rest_value[N] = 0``)."""
    rest_value = np.zeros(floor_utility.size + 1)
    rest_value[:-1] = np.cumsum(floor_utility[::-1])[::-1]
    return rest_value


def top_k_setup(table: np.ndarray, levels: np.ndarray, budget: int, method: str):
    """What the top-k solvers share: ``(layout, order, active, rest_value, ks, residuals)``.

    ``active`` is the table of the contiguous levels with rows in reliability
    order, ``rest_value[k]`` the utility of workers k..N-1 left at their floor
    level (base, or idle), and ``ks``, ``residuals`` come from :func:`residuals_by_k`.
    """
    layout = level_layout(levels, method)
    order = reliability_order(table, levels)
    n = table.shape[0]
    if layout.offset == 0 and table.flags.c_contiguous and np.array_equal(order, np.arange(n)):
        active = table  # rows already by reliability (as allocate_bits hands them): no copy
    else:
        active = np.ascontiguousarray(table[order, layout.offset :])
    rest_value = rest_values(table[order, 0])
    ks, residuals = residuals_by_k(n, budget, layout)
    return layout, order, active, rest_value, ks, residuals


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """Up to `k` distinct indices evenly spaced over ``0..n-1`` (both ends included), increasing:
    the rows a solver samples to bracket its multiplier or to look for repeats."""
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def slope_bracket(slopes: np.ndarray, cum: np.ndarray, hi_pos: float, lo_pos: float):
    """Multipliers ``(lam_lo, lam_hi)`` around the slopes at which envelope segments, taken by
    decreasing slope (`slopes`, with `cum` their running bit count), spend `hi_pos` and `lo_pos`
    bits (``inf`` / ``-inf`` past either end), and how many segments lie between them (plus one)."""
    j_hi = int(np.searchsorted(cum, hi_pos, side="left"))
    j_lo = int(np.searchsorted(cum, lo_pos, side="left"))
    lam_hi = np.inf if hi_pos <= 0 or j_hi == 0 else float(slopes[j_hi - 1])
    lam_lo = -np.inf if j_lo >= slopes.size else float(slopes[j_lo])
    return lam_lo, lam_hi, j_lo - j_hi + 1


def to_level_index(offsets: np.ndarray, active: np.ndarray, layout: LevelLayout) -> np.ndarray:
    """Level indices from offsets above ``base`` (``active`` flags non-idle workers)."""
    return np.where(active, offsets + layout.offset, 0).astype(np.int64)


__all__ = [
    "LevelLayout",
    "evenly_spaced",
    "level_layout",
    "reliability_order",
    "residuals_by_k",
    "rest_values",
    "slope_bracket",
    "to_level_index",
    "top_k_setup",
]
