"""Conditioning of exact gradient codes: how well every responder set decodes.

An exact code decodes any responder set ``F`` of ``N - s`` workers, but the
decoded sum carries a rounding error of about ``cond(B_F)`` times the machine
epsilon (docs/classic_codes.md). :func:`condition_report` measures the worst
``cond(B_F)`` over the responder sets: exhaustively when the ``C(N, s)``
straggler sets are few (at most ``max_sets``), else on a sample that always
contains the cyclic windows of ``s`` consecutive stragglers (the report says
which). The straggler-set samplers and the batched condition numbers here are
also what the parity search of :mod:`gcdesign.schemes.parity` ranks codes by.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._validate import InputError, positive_int
from ..parallel import single_blas_thread


def check_code_size(n_workers, stragglers) -> tuple[int, int]:
    """``(N, s)`` as ints, with ``N >= 1`` and ``0 <= s <= N - 1`` (else InputError)."""
    n = positive_int("n_workers", n_workers)
    s = positive_int("stragglers", stragglers, minimum=0)
    if s >= n:
        raise InputError(f"`stragglers` must be an integer in [0, N - 1] = [0, {n - 1}], got {s}.")
    return n, s


def sampled_masks(n: int, s: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` straggler masks: the n consecutive windows, n evenly spread sets, then random ones.

    With fewer than ``2 n`` sets: a third windows, a third spread sets (evenly spaced starts),
    the rest random.
    """
    structured = n if count >= 2 * n else count // 3
    start = np.floor(np.arange(structured) * n / structured).astype(int)[:, None]
    spread = np.floor(n / s * np.arange(s)).astype(int)
    masks = np.zeros((count, n), dtype=bool)
    np.put_along_axis(masks[:structured], (start + np.arange(s)) % n, True, axis=1)
    np.put_along_axis(masks[structured : 2 * structured], (start + spread) % n, True, axis=1)
    extra = count - 2 * structured
    if extra > 0:
        picks = np.argpartition(rng.random((extra, n)), s - 1, axis=1)[:, :s]
        np.put_along_axis(masks[2 * structured :], picks, True, axis=1)
    return masks


def all_straggler_masks(n: int, s: int) -> np.ndarray:
    """Every straggler set of size `s` as a boolean mask, shape (C(n, s), n), in lexicographic order."""
    masks = np.zeros((math.comb(n, s), n), dtype=bool)
    for row, combo in enumerate(itertools.combinations(range(n), s)):
        masks[row, list(combo)] = True
    return masks


def straggler_masks(n: int, s: int, limit: int, *, rng=12345) -> np.ndarray:
    """All straggler masks if there are at most `limit`, else a sample of `limit` drawn with `rng`.

    `rng` (None, int or Generator) defaults to a fixed seed, so the sample is the same
    every call unless the caller asks otherwise.
    """
    if math.comb(n, s) <= limit:
        return all_straggler_masks(n, s)
    return sampled_masks(n, s, limit, np.random.default_rng(rng))


def set_conditions(dense: np.ndarray, masks: np.ndarray, rank: int) -> np.ndarray:
    """sigma_1 / sigma_rank of B_F for the responder set F = complement of each mask."""
    n = dense.shape[0]
    n_resp = n - int(masks[0].sum())
    rank = min(rank, n_resp, dense.shape[1])
    batch = max(1, 4_000_000 // (n_resp * dense.shape[1]))
    out = np.empty(masks.shape[0])
    for start in range(0, masks.shape[0], batch):
        chunk = ~masks[start : start + batch]
        rows = np.nonzero(chunk)[1].reshape(chunk.shape[0], n_resp)
        sv = np.linalg.svd(dense[rows], compute_uv=False)
        with np.errstate(divide="ignore"):
            out[start : start + len(rows)] = np.where(sv[:, rank - 1] > 0, sv[:, 0] / sv[:, rank - 1], np.inf)
    return out


def _worst_over(dense: np.ndarray, masks: np.ndarray, rank: int) -> tuple[float, int]:
    """Largest sigma_1 / sigma_rank of B_F over the responder sets F = complement of each mask."""
    cond = set_conditions(dense, masks, rank)
    where = int(np.argmax(cond))
    return float(cond[where]), where


@dataclass(frozen=True)
class ConditionReport:
    """Worst-case condition number of ``B_F`` over responder sets of size ``N - s``.

    Attributes
    ----------
    worst : float
        Largest ``sigma_1(B_F) / sigma_r(B_F)`` with ``r = rank(B)`` (inf when
        some set loses rank, i.e. cannot decode).
    worst_stragglers : tuple of int
        The straggler set attaining it.
    sets : int
        How many straggler sets were examined.
    total_sets : int
        ``C(N, s)``.
    exhaustive : bool
        True when all ``C(N, s)`` sets were examined; else a sample (``rng``)
        that contains the ``N`` windows of consecutive stragglers (when
        ``sets >= 2 N``), so `worst` is then a lower bound.
    rank : int
    """

    worst: float
    worst_stragglers: tuple[int, ...]
    sets: int
    total_sets: int
    exhaustive: bool
    rank: int


def condition_report(encoding, stragglers: int, *, max_sets: int = 20_000, rng=None) -> ConditionReport:
    """Worst-case condition number of the responder submatrix ``B_F``, ``|F| = N - s``.

    Parameters
    ----------
    encoding : sparse or dense (N x K)
    stragglers : int
        ``s``.
    max_sets : int
        Exhaustive when ``C(N, s) <= max_sets``; otherwise `max_sets` sets are
        examined: the ``N`` consecutive windows, ``N`` evenly spread sets and
        random ones drawn from `rng` (if `max_sets` < ``2 N``: a third windows
        and a third spread sets at evenly spaced starts, the rest random).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    ConditionReport

    Examples
    --------
    >>> from gcdesign.schemes.exact import fractional_repetition_code
    >>> round(condition_report(fractional_repetition_code(6, 2), 2).worst, 4)  # sqrt(s + 1)
    1.7321
    """
    dense = encoding.toarray() if sp.issparse(encoding) else np.asarray(encoding, dtype=np.float64)
    n = dense.shape[0]
    n, s = check_code_size(n, stragglers)
    max_sets = positive_int("max_sets", max_sets)
    sv = np.linalg.svd(dense, compute_uv=False)
    rank = int(np.sum(sv > 1e-9 * sv[0]))
    total = math.comb(n, s)
    if total <= max_sets:
        masks, exhaustive = all_straggler_masks(n, s), True
    else:
        masks, exhaustive = sampled_masks(n, s, max_sets, np.random.default_rng(rng)), False
    with single_blas_thread():
        worst, where = _worst_over(dense, masks, rank)
    return ConditionReport(
        worst=worst,
        worst_stragglers=tuple(int(i) for i in np.flatnonzero(masks[where])),
        sets=int(masks.shape[0]),
        total_sets=total,
        exhaustive=exhaustive,
        rank=rank,
    )


__all__ = [
    "ConditionReport",
    "all_straggler_masks",
    "check_code_size",
    "condition_report",
    "sampled_masks",
    "set_conditions",
    "straggler_masks",
]
