"""The allocator registry: :data:`ALLOCATORS`, :func:`register_allocator` (docs/extending.md, section 1).

A solver module registers itself when it is imported; :mod:`gcdesign.allocation` imports the
built-in ones (:mod:`~gcdesign.allocation.dp`, :mod:`~gcdesign.allocation.certified`,
:mod:`~gcdesign.allocation.heuristic`, :mod:`~gcdesign.allocation.cpsat`,
:mod:`~gcdesign.allocation.baselines`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validate import InputError

# A solver: (table, levels, budget, options) -> (level indices per worker, optimal, message),
# optionally followed by a fourth item: the proven gap to the optimum (0.0 when optimal)
Solver = Callable[[np.ndarray, np.ndarray, int, dict], tuple]

ALLOCATORS: dict[str, Solver] = {}
ALLOCATOR_OPTIONS: dict[str, tuple[str, ...]] = {}
SORTS_BY_RELIABILITY: set[str] = set()
FROM_UTILITIES: dict[str, Callable] = {}


def register_allocator(
    name: str,
    solver: Solver,
    *,
    options: tuple[str, ...] = (),
    sorts_by_reliability: bool = False,
    from_utilities: Callable | None = None,
) -> None:
    """Make `solver` available as ``method=name`` (and ``design(allocator=name)``).

    `options` names the keys the solver accepts in its ``options`` dict; any
    other key is rejected with an :class:`InputError` before the solver runs.
    `sorts_by_reliability` declares that the solver orders the rows by
    reliability itself (ties by row); :func:`allocate_bits` then hands it the
    table already in the order of increasing p, which saves the solver a copy
    of the table (250 MB at N = 10^6) and changes nothing else. `from_utilities`, if
    given, is the same solver on ``(p, delta, levels, budget, options)`` (utilities
    ``(1 - p_i) / (p_i + delta_l)``): :func:`allocate_bits` then never builds the table.
    A name already registered is refused (InputError).
    """
    if name in ALLOCATORS:
        raise InputError(
            f"`name` = {name!r}: an allocator of that name is already registered; choose another."
        )
    ALLOCATORS[name] = solver
    ALLOCATOR_OPTIONS[name] = tuple(options)
    if sorts_by_reliability:
        SORTS_BY_RELIABILITY.add(name)
    if from_utilities is not None:
        FROM_UTILITIES[name] = from_utilities


__all__ = [
    "ALLOCATORS",
    "ALLOCATOR_OPTIONS",
    "FROM_UTILITIES",
    "SORTS_BY_RELIABILITY",
    "Solver",
    "register_allocator",
]
