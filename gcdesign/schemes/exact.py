"""Exact gradient coding (Tandon, Lei, Dimakis and Karampatziakis, 2017).

``N`` workers, ``K = N`` data partitions, tolerance ``s < N`` stragglers. The
encoding ``B`` (N x N) gives every worker ``s + 1`` partitions, and for every
responder set ``F`` with ``|F| >= N - s`` some decoding vector ``a_F`` satisfies

.. math:: a_F^T B_F = \\mathbf{1}^T,

so the master recovers ``g = sum_j g_j`` exactly from any ``N - s`` messages
(docs/classic_codes.md, MATH section 10).

Two codes:

* :func:`fractional_repetition_code` (needs ``(s + 1) | N``): the workers form
  ``N / (s + 1)`` groups of ``s + 1``; every member of group ``q`` sends the sum
  of the group's ``s + 1`` partitions. Any ``s`` stragglers leave one member of
  each group. Worst-case condition number ``sqrt(s + 1)`` (a group with one
  survivor next to a complete one).
* :func:`cyclic_repetition_code` (any ``N`` and ``s < N``): row ``i`` is
  supported on partitions ``i, i + 1, ..., i + s (mod N)``. The coefficients
  are the null vectors of a parity-check matrix ``H`` (s x N, ``H 1 = 0``)
  restricted to each window, so every row lies in ``null(H)`` and any
  ``N - s`` rows span it (it contains ``1``). Tandon et al. draw ``H`` at
  random; the worst-case condition number of ``B_F`` is then 1e5 to 2e6
  (median 7e5, unit-norm rows) at ``N = 20, s = 4``. The default
  ``construction="fourier"`` instead builds ``H`` from cosine / sine rows at
  frequencies on a half-integer grid (the integer-frequency, conjugate-closed
  choices are the real cyclic MDS codes of Raviv, Tamo, Tandon and Dimakis,
  which exist when ``N - s`` is odd) and keeps the frequency set with the
  best worst-case condition number: 8.3e3 at ``N = 20, s = 4`` and 6 to
  2.3e2 whenever ``N - s`` is odd (N <= 20) (``studies/bench_exact_codes.py``).
  The candidates are screened with an s x s proxy of ``cond(B_F)`` and only
  the survivors are checked with full SVDs, under fixed work budgets: about
  0.2 s at ``N = 20, s = 4``, under 0.7 s for ``N <= 100`` and any ``s``
  (slowest for ``s`` close to ``N``), a few seconds at ``N = 500`` (see
  ``_rank_codes``).

:func:`condition_report` measures the worst case over responder sets
(exhaustive when the number of straggler sets is at most ``max_sets``, else a
sample that always contains the cyclic windows of ``s`` consecutive
stragglers; the report says which).

Registered schemes: ``exact-frc`` and ``exact-cyclic`` (see
:func:`exact_scheme`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from .._validate import InputError, choice, positive_int
from ..allocation.baselines import equal_bits
from . import Scheme, register_scheme

CONSTRUCTIONS = ("fourier", "best-random", "random")

#: Relative residual ``||a^T B_F - 1|| / ||1||`` above which exact decoding is refused.
DECODE_TOL = 1e-8


class DecodingError(InputError):
    """The responder set cannot decode the exact sum (too few or a bad set)."""


# ---------------------------------------------------------------- validation
def _check_code_size(n_workers, stragglers) -> tuple[int, int]:
    n = positive_int("n_workers", n_workers)
    s = positive_int("stragglers", stragglers, minimum=0)
    if s >= n:
        raise InputError(f"`stragglers` must be an integer in [0, N - 1] = [0, {n - 1}], got {s}.")
    return n, s


# ------------------------------------------------------------------ encoders
def fractional_repetition_code(n_workers: int, stragglers: int) -> sp.csr_array:
    """Fractional repetition code: groups of ``s + 1`` workers share ``s + 1`` partitions.

    Parameters
    ----------
    n_workers : int
        ``N``; must be a multiple of ``s + 1``.
    stragglers : int
        ``s`` in ``[0, N - 1]``.

    Returns
    -------
    scipy.sparse.csr_array, shape (N, N)
        Worker ``i`` in group ``q = i // (s + 1)`` has ones on partitions
        ``q (s + 1), ..., q (s + 1) + s``.

    Examples
    --------
    >>> fractional_repetition_code(4, 1).toarray()
    array([[1., 1., 0., 0.],
           [1., 1., 0., 0.],
           [0., 0., 1., 1.],
           [0., 0., 1., 1.]])
    """
    n, s = _check_code_size(n_workers, stragglers)
    if n % (s + 1):
        raise InputError(
            f"`stragglers` = {s}: fractional repetition needs (s + 1) to divide N = {n}; "
            "use the cyclic code for other values."
        )
    size = s + 1
    rows = np.repeat(np.arange(n), size)
    cols = (np.arange(n) // size * size)[:, None] + np.arange(size)[None, :]
    return sp.csr_array((np.ones(n * size), (rows, cols.ravel())), shape=(n, n))


def _windows(n: int, s: int) -> np.ndarray:
    """Cyclic supports: row i -> partitions i..i+s (mod n), shape (n, s + 1)."""
    return (np.arange(n)[:, None] + np.arange(s + 1)[None, :]) % n


def _batched_null(blocks: np.ndarray) -> np.ndarray:
    """Unit null vectors of a stack of k x (k + 1) matrices, shape (m, k + 1).

    Solved with the last coefficient fixed to 1 by LU; the matrices whose solve
    is singular or inaccurate are redone with an SVD.
    """
    m, k, _ = blocks.shape
    if k == 0:
        return np.ones((m, 1))
    with np.errstate(all="ignore"):
        try:
            x = np.linalg.solve(blocks[:, :, :k], -blocks[:, :, k:])[:, :, 0]
            c = np.concatenate([x, np.ones((m, 1))], axis=1)
            c /= np.linalg.norm(c, axis=1, keepdims=True)
            residual = np.linalg.norm(np.einsum("wij,wj->wi", blocks, c), axis=1)
            bad = ~(residual <= 1e-10 * np.linalg.norm(blocks, axis=(1, 2)))
        except np.linalg.LinAlgError:  # a singular leading block somewhere in the stack
            c, bad = np.empty((m, k + 1)), np.ones(m, dtype=bool)
    if bad.any():
        c[bad] = np.linalg.svd(blocks[bad], full_matrices=True)[2][:, -1, :]
    return c


def _null_vectors(parity: np.ndarray, starts=None) -> np.ndarray:
    """Unit null vector of every window submatrix ``parity[:, i..i+s]``, shape (n, s + 1)
    (or only of the windows starting at `starts`).

    The row of window ``i`` is the vector of ``null(parity)`` supported on the
    window. For ``s <= n / 2`` it is the null vector of the s x (s + 1) window
    submatrix (its last coefficient is nonzero in any exact code: a row on
    ``s`` partitions cannot be a row of one, Tandon et al.'s converse); for
    larger ``s``, with a basis ``Z`` (n x r, ``r = n - s``) of the null space, it
    is ``Z y`` with ``y`` the null vector of the (r - 1) x r rows of ``Z`` off the
    window. Batched LU solves in chunks: O(n min(s, r)^3), no n x s x (s + 1)
    array held at once.
    """
    s, n = parity.shape
    r = n - s
    starts = np.arange(n) if starts is None else np.asarray(starts)
    m = starts.size
    support = (starts[:, None] + np.arange(s + 1)[None, :]) % n
    if s <= r:
        size, basis = s, None
    else:
        basis = np.linalg.svd(parity, full_matrices=True)[2][s:].T  # (n, r)
        size = r - 1
        off = (starts[:, None] + s + 1 + np.arange(r - 1)[None, :]) % n
    coef = np.empty((m, s + 1))
    chunk = max(1, 2_000_000 // ((size + 1) * max(size, 1) + s + 1))
    for start in range(0, m, chunk):
        rows = slice(start, min(m, start + chunk))
        if basis is None:
            coef[rows] = _batched_null(np.transpose(parity[:, support[rows]], (1, 0, 2)))
        else:
            y = _batched_null(basis[off[rows]])  # (chunk, r)
            c = np.einsum("wjk,wk->wj", basis[support[rows]], y)
            coef[rows] = c / np.linalg.norm(c, axis=1, keepdims=True)
    return coef


def _code_from_parity(parity: np.ndarray) -> np.ndarray:
    """Dense cyclic code whose rows are unit null vectors of ``parity`` on each window.

    ``parity`` (s x n) must satisfy ``parity @ 1 = 0``; every window submatrix
    (s x (s+1)) then has a one-dimensional null space generically.
    """
    s, n = parity.shape
    coef = _null_vectors(parity)
    sign = np.where(coef.sum(axis=1) < 0, -1.0, 1.0)  # orientation only; any sign decodes
    dense = np.zeros((n, n))
    np.put_along_axis(dense, _windows(n, s), coef * sign[:, None], axis=1)
    return dense


def _random_parity(n: int, s: int, rng: np.random.Generator) -> np.ndarray:
    parity = rng.standard_normal((s, n))
    parity[:, -1] = -parity[:, :-1].sum(axis=1)  # H 1 = 0 (Tandon et al., Algorithm 2)
    return parity


def _fourier_parity(n: int, s: int, freqs) -> np.ndarray | None:
    """Rows cos(2 pi f j / n), sin(2 pi f j / n) for f in `freqs`, first `s` rows, centred.

    Integer frequencies give zero-mean rows already; half-integer ones are
    centred so that ``H 1 = 0``. Returns None when the rows are fewer than s.
    """
    j = np.arange(n)
    rows = []
    for f in freqs:
        rows.append(np.cos(2 * np.pi * f * j / n))
        if 2 * f != n:  # sin(pi j) = 0
            rows.append(np.sin(2 * np.pi * f * j / n))
    if len(rows) < s:
        return None
    parity = np.array(rows[:s])
    return parity - parity.mean(axis=1, keepdims=True)


def _row_count(n: int, freqs) -> int:
    return 2 * len(freqs) - (n / 2 in freqs)


def _structured_frequencies(n: int, s: int) -> list[tuple[float, ...]]:
    """Closed-form frequency sets tried first: the highest frequencies (``N/2`` wins for
    ``s = 1``), frequencies evenly spread over the grid (several spans; often the best of these
    at large N and s) and the lowest ones."""
    count = -(-s // 2)
    grid = np.arange(1, n + 1) / 2  # 0.5, 1, ..., n/2
    sets = []
    for width in (count, count + 1):
        sets.append(grid[::-1][:width])  # N/2, N/2 - 1/2, ...
        sets.append(np.arange(n // 2, n // 2 - width, -1, dtype=float))  # N/2, N/2 - 1, ...
    for top in (1.0, 0.9, 0.75, 0.6, 0.5):
        for step in (1, 2):  # half-integer or integer grid
            points = np.round(np.linspace(0, top * n / 2, count + 2)[1:-1] * 2 / step) * step / 2
            sets.append(points)
    sets.append(grid[:count])
    out = []
    for points in sets:
        freqs = tuple(sorted({float(f) for f in points if 0 < f <= n / 2}))
        if freqs and _row_count(n, freqs) >= s and freqs not in out:
            out.append(freqs)
    return out


def _fourier_candidates(n: int, s: int, max_candidates: int) -> list[tuple[float, ...]]:
    """The structured sets, then every set of ``ceil(s / 2)`` grid frequencies (a fixed
    subsample of at most `max_candidates` when there are more; drawn without enumerating
    them when there are very many)."""
    grid = [k / 2 for k in range(1, n + 1)]  # 0.5, 1, ..., n/2
    count = -(-s // 2)
    if math.comb(n, count) <= 50_000:
        combos = [c for c in itertools.combinations(grid, count) if _row_count(n, c) >= s]
        if len(combos) > max_candidates:
            # a fixed (not user-seeded) subsample keeps the construction deterministic
            # (in random order: the screening budget may keep only the first few)
            keep = np.random.default_rng(0).choice(len(combos), size=max_candidates, replace=False)
            combos = [combos[i] for i in keep]
    else:
        rng = np.random.default_rng(0)
        combos = []
        for _ in range(20 * max_candidates):
            if len(combos) >= max_candidates:
                break
            combo = tuple(grid[i] for i in np.sort(rng.choice(n, size=count, replace=False)))
            if _row_count(n, combo) >= s and combo not in combos:
                combos.append(combo)
    structured = _structured_frequencies(n, s)
    return structured + [c for c in combos if c not in set(structured)]


def _sampled_masks(n: int, s: int, count: int, rng: np.random.Generator) -> np.ndarray:
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


def _all_straggler_masks(n: int, s: int) -> np.ndarray:
    masks = np.zeros((math.comb(n, s), n), dtype=bool)
    for row, combo in enumerate(itertools.combinations(range(n), s)):
        masks[row, list(combo)] = True
    return masks


def _straggler_masks(n: int, s: int, limit: int, seed: int = 12345) -> np.ndarray:
    """All straggler masks if there are at most `limit`, else a fixed sample of `limit`."""
    if math.comb(n, s) <= limit:
        return _all_straggler_masks(n, s)
    return _sampled_masks(n, s, limit, np.random.default_rng(seed))


def _blas_single_thread():
    """Batched SVDs of small matrices run far faster on one BLAS thread (and a
    busy machine makes threaded OpenBLAS thrash: 100x slower seen at N = 100)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _set_conditions(dense: np.ndarray, straggler_masks: np.ndarray, rank: int) -> np.ndarray:
    """sigma_1 / sigma_rank of B_F for the responder set F = complement of each mask."""
    n = dense.shape[0]
    n_resp = n - int(straggler_masks[0].sum())
    rank = min(rank, n_resp, dense.shape[1])
    batch = max(1, 4_000_000 // (n_resp * dense.shape[1]))
    out = np.empty(straggler_masks.shape[0])
    for start in range(0, straggler_masks.shape[0], batch):
        chunk = ~straggler_masks[start : start + batch]
        rows = np.nonzero(chunk)[1].reshape(chunk.shape[0], n_resp)
        sv = np.linalg.svd(dense[rows], compute_uv=False)
        with np.errstate(divide="ignore"):
            out[start : start + len(rows)] = np.where(sv[:, rank - 1] > 0, sv[:, 0] / sv[:, rank - 1], np.inf)
    return out


def _worst_over(dense: np.ndarray, straggler_masks: np.ndarray, rank: int) -> tuple[float, int]:
    """Largest sigma_1 / sigma_rank of B_F over the responder sets F = complement of each mask."""
    cond = _set_conditions(dense, straggler_masks, rank)
    where = int(np.argmax(cond))
    return float(cond[where]), where


def _proxy_conditions(left: np.ndarray, rank: int, straggler_masks: np.ndarray) -> np.ndarray:
    """``1 / sigma_min(U_F)`` with ``U = left[:, :rank]`` an orthonormal basis of the range of ``B``.

    ``B_F = U_F S V^T`` (thin SVD of ``B``), so ``cond(B_F)`` lies within a factor
    ``cond(S)`` of ``1 / sigma_min(U_F)`` (``sigma_max(U_F) = 1`` when ``s < rank``). With
    ``W = left[:, rank:]`` the orthogonal complement, ``U_F^T U_F = I - U_S^T U_S`` and
    ``U_S U_S^T + W_S W_S^T = I``, so ``sigma_min(U_F) = sigma_min(W_S)``: an s x s SVD
    (no cancellation) instead of an (n - s) x n one; for ``s > rank`` the rank x rank
    ``U_F`` itself is used. Inf when ``F`` loses rank, as for ``cond``.
    """
    n = left.shape[0]
    s = int(straggler_masks[0].sum())
    use_complement = s <= rank
    width = s if use_complement else n - s
    out = np.empty(straggler_masks.shape[0])
    batch = max(1, 1_000_000 // (width * width + 1))
    for start in range(0, straggler_masks.shape[0], batch):
        chunk = straggler_masks[start : start + batch]
        if use_complement:
            part = left[:, rank : rank + s][np.nonzero(chunk)[1].reshape(chunk.shape[0], s)]
        else:
            part = left[:, :rank][np.nonzero(~chunk)[1].reshape(chunk.shape[0], n - s)]
        smallest = np.linalg.svd(part, compute_uv=False)[:, -1]
        with np.errstate(divide="ignore"):
            out[start : start + len(chunk)] = np.where(smallest > 1e-15, 1.0 / smallest, np.inf)
    return out


# Work budgets of the screening and verification, in (rough) flops of the batched small-matrix
# kernels, and the fraction of codes kept per screening round. Larger budgets are not monotonically
# better (the sets are samples); these keep N <= 20, s <= 4 at the best exhaustive worst case.
_SCREEN_WORK = 5e7
_VERIFY_WORK = 5e7
_KEEP = 6
# Worst cases beyond this are all equally unusable; such codes are then ranked by their median.
_COND_CAP = 1e12


def _score(cond: np.ndarray, tie_break: float, typical: float | None = None) -> tuple[float, float, float]:
    """Ranking key of a code from condition numbers on some sets: the worst (to 4 digits: codes
    equal up to a permutation of the workers tie exactly), then `tie_break`. Worst cases at
    ``_COND_CAP`` or beyond tie, and such codes go by their `typical` (median) set first."""
    worst = min(float(cond.max()), _COND_CAP)
    typical = float(np.median(cond)) if typical is None else typical
    if worst >= _COND_CAP:
        return float(np.log10(_COND_CAP)), typical, tie_break
    return float(np.round(np.log10(worst), 4)), tie_break, typical


def _rank_codes(codes: list[np.ndarray], n: int, s: int) -> int:
    """Index of the code with the smallest worst-case condition number (approximately).

    1. Each code is scored by the cheap proxy ``sqrt(cond(S)) / sigma_min(U_F)``
       (``_proxy_conditions``; ``S`` the singular values of ``B``) on a fixed sample of
       straggler sets (all of them when few); ties go to the smaller ``cond(S)``; the
       best sixth (``_KEEP``) survive (at least 4) and are rescored on more sets, up to
       three rounds.
       Codes whose worst case reaches ``_COND_CAP`` (large N and s) go by their median.
    2. The survivors' true ``cond(B_F)`` is computed on their sets of largest proxy (all
       sets when that is affordable) and the smallest worst case wins (worst cases above
       ``_COND_CAP`` tie and are ranked by the median).
    Budgets (``_SCREEN_WORK``, ``_VERIFY_WORK``) keep this well under a second up to
    N = 100 and a few seconds at N = 500; the sets are fixed samples, so the result is
    deterministic.
    """
    r = n - s
    total = math.comb(n, s)
    small = min(s, r)
    proxy_cost = 20.0 * small**3 + 50.0
    svd_cost = 10.0 * r * n * min(r, n) + 200.0
    alive = list(range(len(codes)))
    left, spread = {}, {}
    for i in alive:
        u, sv, _ = np.linalg.svd(codes[i])
        left[i], spread[i] = u, float(sv[0] / sv[r - 1])  # cond(B_F) / proxy is within cond(S)
    # rank(B) < N - s: not exact (and the proxy's basis is meaningless); last resort only
    alive = [i for i in alive if spread[i] < 1e10] or alive
    scores, typical = {}, {}
    masks = None
    for stage in range(3):
        size = int(_SCREEN_WORK / (len(alive) * proxy_cost))
        size = min(max(size, 24), 40_000, 2_000_000 // n)
        masks = _straggler_masks(n, s, size, seed=12345 + stage)
        for i in alive:
            # cond(B_F) lies in [proxy / cond(S), proxy * cond(S)]: the geometric middle ranks best
            proxy = _proxy_conditions(left[i], r, masks) * math.sqrt(spread[i])
            typical[i] = float(np.median(proxy))
            scores[i] = _score(proxy, spread[i], typical[i])
        alive.sort(key=lambda i: (scores[i], i))
        if len(alive) <= 4 and (masks.shape[0] == total or stage == 2):
            break
        alive = alive[: max(4, len(alive) // _KEEP)]
        if masks.shape[0] == total:
            break
    # true condition numbers of the survivors on their worst proxy sets (or all sets)
    per_code = max(4, int(_VERIFY_WORK / (len(alive) * svd_cost)))
    for i in alive:
        if masks.shape[0] <= per_code:
            chosen = masks
        else:
            proxy = _proxy_conditions(left[i], r, masks)
            chosen = masks[np.argsort(-proxy, kind="stable")[:per_code]]
        scores[i] = _score(_set_conditions(codes[i], chosen, r), spread[i], typical[i])
    return min(alive, key=lambda i: (scores[i], i))


@lru_cache(maxsize=64)
def _fourier_code(n: int, s: int, max_candidates: int) -> np.ndarray:
    with _blas_single_thread():
        return _fourier_search(n, s, max_candidates)


def _candidate_budget(n: int, s: int, max_candidates: int) -> int:
    """Codes built and screened: each costs an O(n min(s, N - s)^3) construction and an O(n^3) SVD."""
    cost = n * (min(s, n - s) + 1) ** 3 + 10.0 * n**3
    return max(4, min(max_candidates, int(5e8 / cost)))


def _fourier_search(n: int, s: int, max_candidates: int) -> np.ndarray:
    if s == n - 1:  # every single worker must decode: all rows are 1 / sqrt(N), the only such code
        return np.full((n, n), 1.0 / math.sqrt(n))
    codes = []
    budget = _candidate_budget(n, s, max_candidates)
    for tried, freqs in enumerate(_fourier_candidates(n, s, max_candidates)):
        if len(codes) >= budget or tried >= 4 * budget:
            break
        parity = _fourier_parity(n, s, freqs)
        if parity is None:
            continue
        sv = np.linalg.svd(parity, compute_uv=False)
        if not sv[-1] > 1e-8 * sv[0]:  # rank < s: null(H) is too large, the windows are ambiguous
            continue
        # a (near) zero on a window leaves a row on s partitions: not exact (e.g. r = N - s = 2,
        # where null(H) = span(1, v) and a cosine v repeats values); a few windows first
        if np.abs(_null_vectors(parity, [0, n // 3, n // 2, n - 1])).min() <= 1e-8:
            continue
        dense = _code_from_parity(parity)
        if np.abs(np.take_along_axis(dense, _windows(n, s), axis=1)).min() > 1e-8:
            codes.append(dense)
    if not codes:  # no valid frequency set (seen for N - s = 2 at large N): random parity checks
        return _best_random_code(n, s, min(20, budget), np.random.default_rng(0))
    return codes[_rank_codes(codes, n, s)]


def _best_random_code(n: int, s: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    codes = [_code_from_parity(_random_parity(n, s, rng)) for _ in range(draws)]
    with _blas_single_thread():
        return codes[_rank_codes(codes, n, s)]


def cyclic_repetition_code(
    n_workers: int,
    stragglers: int,
    *,
    construction: str = "fourier",
    rng=None,
    draws: int = 20,
    max_candidates: int = 200,
) -> sp.csr_array:
    """Cyclic repetition code: row ``i`` supported on partitions ``i..i+s (mod N)``.

    Parameters
    ----------
    n_workers : int
        ``N >= 1``.
    stragglers : int
        ``s`` in ``[0, N - 1]``; ``s = 0`` gives the identity (uncoded).
    construction : {"fourier", "best-random", "random"}
        How the coefficients are chosen (all rows have unit norm):

        * ``"fourier"`` (default, deterministic): parity-check rows are
          cosines / sines at frequencies ``f`` on the grid ``0.5, 1, ..., N/2``;
          a few closed-form frequency sets (highest, evenly spread) and up to
          `max_candidates` others (all sets of ``ceil(s / 2)`` frequencies, or a
          fixed sample) are screened on fixed samples of responder sets (all of
          them when affordable), as many as a work budget allows (all 200 up to
          N = 50 or so, 4 at N = 500), and the one with the smallest worst-case
          condition number is kept. Sets whose code is not exact (a rank-deficient
          parity check, a zero on a window) are skipped; if none is left, the
          best of a few random parity checks is used. ``s = N - 1`` gives the
          only exact code, all entries ``1 / sqrt(N)``. Cached per ``(N, s)``.
        * ``"best-random"``: the best of `draws` random parity checks drawn
          from `rng`, ranked the same way.
        * ``"random"``: one random parity check (Tandon et al. 2017), the
          reference construction; badly conditioned.
    rng : None, int or numpy.random.Generator
        Randomness of the random constructions.
    draws : int
        Number of draws for ``"best-random"``.
    max_candidates : int
        Most frequency sets screened by ``"fourier"``.

    Returns
    -------
    scipy.sparse.csr_array, shape (N, N)

    Examples
    --------
    >>> code = cyclic_repetition_code(5, 2)
    >>> (code.toarray() != 0).sum(axis=1).tolist()
    [3, 3, 3, 3, 3]
    >>> a = exact_decoding(code, [True, False, True, True, False], stragglers=2)
    >>> bool(np.allclose(a @ code.toarray(), 1.0))
    True
    """
    n, s = _check_code_size(n_workers, stragglers)
    construction = choice("construction", construction, CONSTRUCTIONS)
    if s == 0:
        return sp.csr_array(sp.identity(n, format="csr"))
    if construction == "fourier":
        dense = _fourier_code(n, s, positive_int("max_candidates", max_candidates))
    elif construction == "best-random":
        dense = _best_random_code(n, s, positive_int("draws", draws), np.random.default_rng(rng))
    else:
        dense = _code_from_parity(_random_parity(n, s, np.random.default_rng(rng)))
    return sp.csr_array(dense)


# ------------------------------------------------------------------ decoders
def _responders(arrived, n: int) -> np.ndarray:
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


def least_squares_decoding(encoding, arrived) -> np.ndarray:
    """Minimum-norm least-squares decoder ``argmin_a ||a_F^T B_F - 1^T||`` over the arrived rows.

    Parameters
    ----------
    encoding : sparse or dense (N x K)
    arrived : bool mask (N,) or integer indices of the responders

    Returns
    -------
    numpy.ndarray, shape (N,)
        Zero on the workers that did not arrive (all zeros if none did).
    """
    dense = encoding.toarray() if sp.issparse(encoding) else np.asarray(encoding, dtype=np.float64)
    n, k = dense.shape
    rows = _responders(arrived, n)
    weights = np.zeros(n)
    if rows.size:
        weights[rows] = np.linalg.lstsq(dense[rows].T, np.ones(k), rcond=None)[0]
    return weights


def exact_decoding(encoding, arrived, *, stragglers: int, tol: float = DECODE_TOL) -> np.ndarray:
    """Decoding vector ``a`` with ``a_F^T B_F = 1^T`` for the responder set ``F``.

    The minimum-norm solution (for fractional repetition: equal weights on the
    arrived members of each group), so the decoded sum is exact up to
    rounding, about ``cond(B_F)`` times the machine epsilon.

    Parameters
    ----------
    encoding : sparse or dense (N x K)
        An exact code tolerating `stragglers`.
    arrived : bool mask (N,) or integer indices of the responders
    stragglers : int
        ``s``: at least ``N - s`` responders are required.
    tol : float
        Largest accepted relative residual ``||a_F^T B_F - 1|| / sqrt(K)``.

    Raises
    ------
    DecodingError
        Fewer than ``N - s`` responders, or the set does not span ``1``.
    """
    dense = encoding.toarray() if sp.issparse(encoding) else np.asarray(encoding, dtype=np.float64)
    n, k = dense.shape
    s = positive_int("stragglers", stragglers, minimum=0)
    rows = _responders(arrived, n)
    if rows.size < n - s:
        raise DecodingError(
            f"`arrived` has {rows.size} responders; exact decoding needs at least N - s = {n - s}."
        )
    weights = least_squares_decoding(dense, rows)
    residual = np.linalg.norm(weights[rows] @ dense[rows] - 1.0) / math.sqrt(k)
    if not residual <= tol:
        raise DecodingError(
            f"responder set does not decode: relative residual {residual:.3g} > tol = {tol:g} "
            "(is the code exact for this many stragglers?)."
        )
    return weights


# -------------------------------------------------------------- conditioning
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
    >>> round(condition_report(fractional_repetition_code(6, 2), 2).worst, 4)  # sqrt(s + 1)
    1.7321
    """
    dense = encoding.toarray() if sp.issparse(encoding) else np.asarray(encoding, dtype=np.float64)
    n = dense.shape[0]
    n, s = _check_code_size(n, stragglers)
    max_sets = positive_int("max_sets", max_sets)
    sv = np.linalg.svd(dense, compute_uv=False)
    rank = int(np.sum(sv > 1e-9 * sv[0]))
    total = math.comb(n, s)
    if total <= max_sets:
        masks, exhaustive = _all_straggler_masks(n, s), True
    else:
        masks, exhaustive = _sampled_masks(n, s, max_sets, np.random.default_rng(rng)), False
    with _blas_single_thread():
        worst, where = _worst_over(dense, masks, rank)
    return ConditionReport(
        worst=worst,
        worst_stragglers=tuple(int(i) for i in np.flatnonzero(masks[where])),
        sets=int(masks.shape[0]),
        total_sets=total,
        exhaustive=exhaustive,
        rank=rank,
    )


# -------------------------------------------------------------------- scheme
class ExactDecoder:
    """Arrival-dependent decoder of an exact code (a picklable callable).

    With at least ``N - s`` arrivals it returns the exact decoder
    (:func:`exact_decoding`); with fewer it falls back to the least-squares
    decoder over the arrived rows (:func:`least_squares_decoding`), which is
    no longer exact, and biased. (The same fallback applies if a set of
    ``N - s`` fails to decode to 1e-6, which the exhaustive tests rule out
    for N <= 12 but which is only sampled for large N.) Results are memoised
    per arrival pattern.
    """

    def __init__(self, encoding, stragglers: int, cache_size: int = 4096):
        self.dense = encoding.toarray() if sp.issparse(encoding) else np.asarray(encoding, dtype=np.float64)
        self.stragglers = int(stragglers)
        self.cache_size = int(cache_size)
        self._cache: dict[bytes, np.ndarray] = {}

    def __call__(self, arrived) -> np.ndarray:
        arrived = np.asarray(arrived, dtype=bool)
        key = np.packbits(arrived).tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            return hit.copy()
        n = self.dense.shape[0]
        weights = None
        if arrived.sum() >= n - self.stragglers:
            try:
                weights = exact_decoding(self.dense, arrived, stragglers=self.stragglers, tol=1e-6)
            except DecodingError:  # a set the code cannot decode (only sampled for large N): degrade
                weights = None
        if weights is None:
            weights = least_squares_decoding(self.dense, arrived)
        if len(self._cache) < self.cache_size:
            self._cache[key] = weights
        return weights.copy()


def exact_scheme(
    kind: str,
    profile,
    budget: int,
    *,
    rng=None,
    replication: int = 2,
    stragglers: int | None = None,
    quantizer: str = "stochastic",
    construction: str = "fourier",
) -> Scheme:
    """An exact gradient code as a :class:`~gcdesign.schemes.Scheme`.

    Parameters
    ----------
    kind : {"frc", "cyclic"}
    profile : ClusterProfile
        Needs ``K = N`` partitions.
    budget : int
        Total bits per coordinate, split equally (``floor(B / N)`` each, one
        more for the most reliable workers), like every baseline. Ignored by
        ``quantizer="none"``, whose messages are 32-bit floats.
    rng : None, int or numpy.random.Generator
        Only for ``construction="random"`` / ``"best-random"``.
    replication : int
        Storage per worker; ``s = replication - 1`` unless `stragglers` is given.
    stragglers : int, optional
        Tolerance ``s`` (storage ``s + 1``).
    quantizer : {"stochastic", "none"}
        ``"stochastic"`` (default, equal bits: a fair comparison at the same
        budget; the decoder's weights then also scale the quantization noise,
        which is where conditioning shows) or ``"none"`` (the classic
        unquantized code: error zero whenever ``N - s`` arrive).
    construction : str
        Cyclic code coefficients, see :func:`cyclic_repetition_code`.

    Notes
    -----
    The decoder depends on who arrived: exact with at least ``N - s``
    arrivals, least squares over the arrived rows otherwise (then biased).
    """
    kind = choice("kind", kind, ("frc", "cyclic"))
    quantizer = choice("quantizer", quantizer, ("stochastic", "none"))
    n = profile.n_workers
    if profile.partitions != n:
        raise InputError(
            f"`partitions` = {profile.partitions}: exact gradient codes need K = N = {n} partitions."
        )
    s = replication - 1 if stragglers is None else stragglers
    n, s = _check_code_size(n, s)
    if kind == "frc":
        encoding = fractional_repetition_code(n, s)
    else:
        encoding = cyclic_repetition_code(n, s, construction=construction, rng=rng)
    if quantizer == "none":
        bits = np.full(n, 32, dtype=np.int64)
    else:
        bits = equal_bits(profile.straggler_probs, budget)
    return Scheme(
        name=f"exact-{kind}",
        encoding=encoding,
        bits=bits,
        straggler_probs=profile.straggler_probs,
        decoder=ExactDecoder(encoding, s),
        quantizer=quantizer,
        # FRC: both branches give equal weights on each group's survivors (zero for a wiped
        # group), so the weights on a group depend only on its own arrivals.
        local_decoder=kind == "frc",
        description=(
            f"exact {'fractional' if kind == 'frc' else 'cyclic'} repetition code, s = {s} "
            f"(storage {s + 1}); exact decoder with >= N - s arrivals, least squares below"
        ),
    )


def _exact_frc(profile, budget, **options) -> Scheme:
    return exact_scheme("frc", profile, budget, **options)


def _exact_cyclic(profile, budget, **options) -> Scheme:
    return exact_scheme("cyclic", profile, budget, **options)


register_scheme("exact-frc", _exact_frc)
register_scheme("exact-cyclic", _exact_cyclic)

__all__ = [
    "CONSTRUCTIONS",
    "ConditionReport",
    "DecodingError",
    "ExactDecoder",
    "condition_report",
    "cyclic_repetition_code",
    "exact_decoding",
    "exact_scheme",
    "fractional_repetition_code",
    "least_squares_decoding",
]
