"""Simple allocation baselines on a utility table."""

from __future__ import annotations

import numpy as np

from . import register_allocator


def reliability_order(table: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Workers from most to least reliable: by utility at the lowest positive level.

    For the gradient-coding table the utility decreases in p, so this is the
    order of increasing straggler probability (ties by index).
    """
    col = int(np.flatnonzero(levels > 0)[0])
    return np.argsort(-table[:, col], kind="stable")


def equal(table: np.ndarray, levels: np.ndarray, budget: int, options: dict):
    """Equal split: every worker gets floor(B / N); the remainder goes to the most reliable."""
    n = table.shape[0]
    base, extra = divmod(budget, n)
    bits = np.full(n, base, dtype=np.int64)
    bits[reliability_order(table, levels)[:extra]] += 1
    index = np.searchsorted(levels, bits)
    if np.any(index >= levels.size) or np.any(levels[np.minimum(index, levels.size - 1)] != bits):
        raise ValueError(f"equal allocation needs the levels {sorted(set(bits.tolist()))}")
    return index, None, f"equal split: {base} bits each, +1 for the {extra} most reliable"


register_allocator("equal", equal)
