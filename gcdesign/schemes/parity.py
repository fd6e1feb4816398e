"""Parity checks of cyclic exact codes and the search for a well-conditioned one.

A cyclic repetition code (row ``i`` on partitions ``i..i+s`` mod ``N``) is fixed
by a parity-check matrix ``H`` (s x N, ``H 1 = 0``): row ``i`` is the unit null
vector of ``H`` restricted to window ``i`` (:func:`code_from_parity`), so every
row lies in ``null(H)`` and any ``N - s`` rows span it (it contains ``1``).

* :func:`random_parity`: Gaussian ``H`` (Tandon et al. 2017, Algorithm 2);
  badly conditioned.
* :func:`fourier_search`: ``H`` from cosine / sine rows at frequencies on a
  half-integer grid; a few closed-form frequency sets and a fixed sample of
  others are screened by a cheap proxy of ``cond(B_F)`` and the survivors are
  verified with full SVDs, under fixed work budgets (:func:`_rank_codes`).
* :func:`best_random_code`: the best of several random parity checks, ranked
  the same way.

Every function here trusts its inputs; :func:`gcdesign.schemes.exact.cyclic_repetition_code`
is the validated entry point (and caches the Fourier search per ``(N, s)``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..parallel import single_blas_thread
from .conditioning import set_conditions, straggler_masks


def windows(n: int, s: int) -> np.ndarray:
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


def null_vectors(parity: np.ndarray, starts=None) -> np.ndarray:
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


def code_from_parity(parity: np.ndarray) -> np.ndarray:
    """Dense cyclic code whose rows are unit null vectors of ``parity`` on each window.

    ``parity`` (s x n) must satisfy ``parity @ 1 = 0``; every window submatrix
    (s x (s+1)) then has a one-dimensional null space generically.

    Examples
    --------
    >>> parity = random_parity(6, 2, np.random.default_rng(0))
    >>> code = code_from_parity(parity)
    >>> (code != 0).sum(axis=1).tolist()  # row i on partitions i, i + 1, i + 2 (mod 6)
    [3, 3, 3, 3, 3, 3]
    >>> bool(np.allclose(parity @ code.T, 0.0))  # every row lies in null(H)
    True
    """
    s, n = parity.shape
    coef = null_vectors(parity)
    sign = np.where(coef.sum(axis=1) < 0, -1.0, 1.0)  # orientation only; any sign decodes
    dense = np.zeros((n, n))
    np.put_along_axis(dense, windows(n, s), coef * sign[:, None], axis=1)
    return dense


def random_parity(n: int, s: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian parity check (s x n) with ``H 1 = 0``, drawn from `rng`."""
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


def _proxy_conditions(left: np.ndarray, rank: int, masks: np.ndarray) -> np.ndarray:
    """``1 / sigma_min(U_F)`` with ``U = left[:, :rank]`` an orthonormal basis of the range of ``B``.

    ``B_F = U_F S V^T`` (thin SVD of ``B``), so ``cond(B_F)`` lies within a factor
    ``cond(S)`` of ``1 / sigma_min(U_F)`` (``sigma_max(U_F) = 1`` when ``s < rank``). With
    ``W = left[:, rank:]`` the orthogonal complement, ``U_F^T U_F = I - U_S^T U_S`` and
    ``U_S U_S^T + W_S W_S^T = I``, so ``sigma_min(U_F) = sigma_min(W_S)``: an s x s SVD
    (no cancellation) instead of an (n - s) x n one; for ``s > rank`` the rank x rank
    ``U_F`` itself is used. Inf when ``F`` loses rank, as for ``cond``.
    """
    n = left.shape[0]
    s = int(masks[0].sum())
    use_complement = s <= rank
    width = s if use_complement else n - s
    out = np.empty(masks.shape[0])
    batch = max(1, 1_000_000 // (width * width + 1))
    for start in range(0, masks.shape[0], batch):
        chunk = masks[start : start + batch]
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
        masks = straggler_masks(n, s, size, rng=12345 + stage)
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
        scores[i] = _score(set_conditions(codes[i], chosen, r), spread[i], typical[i])
    return min(alive, key=lambda i: (scores[i], i))


def _candidate_budget(n: int, s: int, max_candidates: int) -> int:
    """Codes built and screened: each costs an O(n min(s, N - s)^3) construction and an O(n^3) SVD."""
    cost = n * (min(s, n - s) + 1) ** 3 + 10.0 * n**3
    return max(4, min(max_candidates, int(5e8 / cost)))


def fourier_search(n: int, s: int, max_candidates: int) -> np.ndarray:
    """The dense cyclic code (n x n) of the best Fourier parity check found (deterministic).

    Candidates from :func:`_fourier_candidates`, at most :func:`_candidate_budget` of them
    built; those that are not exact codes are skipped and the rest ranked by
    :func:`_rank_codes`. With no valid candidate, the best of a few random parity checks
    (fixed seed 0). ``s = n - 1`` gives the only exact code, all entries ``1 / sqrt(n)``.
    Run it under :func:`~gcdesign.parallel.single_blas_thread`.
    """
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
        if np.abs(null_vectors(parity, [0, n // 3, n // 2, n - 1])).min() <= 1e-8:
            continue
        dense = code_from_parity(parity)
        if np.abs(np.take_along_axis(dense, windows(n, s), axis=1)).min() > 1e-8:
            codes.append(dense)
    if not codes:  # no valid frequency set (seen for N - s = 2 at large N): random parity checks
        return best_random_code(n, s, min(20, budget), np.random.default_rng(0))
    return codes[_rank_codes(codes, n, s)]


def best_random_code(n: int, s: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """The best-conditioned of `draws` codes from random parity checks drawn from `rng`."""
    codes = [code_from_parity(random_parity(n, s, rng)) for _ in range(draws)]
    with single_blas_thread():
        return codes[_rank_codes(codes, n, s)]


__all__ = [
    "best_random_code",
    "code_from_parity",
    "fourier_search",
    "null_vectors",
    "random_parity",
    "windows",
]
