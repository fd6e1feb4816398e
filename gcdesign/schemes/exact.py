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
  (slowest for ``s`` close to ``N``), a few seconds at ``N = 500``. The
  parity checks and that search live in :mod:`gcdesign.schemes.parity`; the
  result is cached per ``(N, s, max_candidates)`` (:func:`clear_code_cache`
  empties the cache).

:func:`gcdesign.schemes.conditioning.condition_report` measures the worst
case over responder sets. This module holds the constructions, the exact
decoder (:func:`exact_decoding`, :class:`ExactDecoder`) and the scheme factory.

Registered schemes: ``exact-frc`` and ``exact-cyclic`` (see
:func:`exact_scheme`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from .._validate import InputError, choice, positive_int
from ..allocation.baselines import equal_bits
from ..parallel import single_blas_thread
from .conditioning import check_code_size
from .decoding import least_squares_weights, responders
from .parity import best_random_code, code_from_parity, fourier_search, random_parity
from .protocol import Scheme
from .registry import register_scheme

CONSTRUCTIONS = ("fourier", "best-random", "random")

#: Relative residual ``||a^T B_F - 1|| / ||1||`` above which exact decoding is refused.
DECODE_TOL = 1e-8


class DecodingError(InputError):
    """The responder set cannot decode the exact sum (too few or a bad set)."""


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

    References
    ----------
    .. [1] the textbook's section 6.2, "Gradient Coding and Coded Matrix Multiplication", Theorem
       "Gradient Coding Tradeoff".
    .. [2] R. Tandon, Q. Lei, A. G. Dimakis and N. Karampatziakis, "Gradient Coding: Avoiding
       Stragglers in Distributed Learning", ICML 2017.

    Examples
    --------
    >>> fractional_repetition_code(4, 1).toarray()
    array([[1., 1., 0., 0.],
           [1., 1., 0., 0.],
           [0., 0., 1., 1.],
           [0., 0., 1., 1.]])
    """
    n, s = check_code_size(n_workers, stragglers)
    if n % (s + 1):
        raise InputError(
            f"`stragglers` = {s}: fractional repetition needs (s + 1) to divide N = {n}; "
            "use the cyclic code for other values."
        )
    size = s + 1
    rows = np.repeat(np.arange(n), size)
    cols = (np.arange(n) // size * size)[:, None] + np.arange(size)[None, :]
    return sp.csr_array((np.ones(n * size), (rows, cols.ravel())), shape=(n, n))


@lru_cache(maxsize=64)
def _fourier_code(n: int, s: int, max_candidates: int) -> np.ndarray:
    with single_blas_thread():
        return fourier_search(n, s, max_candidates)


def clear_code_cache() -> int:
    """Empty the per-process cache of Fourier cyclic codes; return how many codes it held.

    :func:`cyclic_repetition_code` keeps the last 64 Fourier codes it built
    (the search takes up to a few seconds), keyed by ``(N, s, max_candidates)``.
    Clear it to time the construction or to free the memory (a code is N x N
    floats).

    Examples
    --------
    >>> _ = clear_code_cache()
    >>> _ = cyclic_repetition_code(6, 2)
    >>> clear_code_cache(), clear_code_cache()
    (1, 0)
    """
    held = _fourier_code.cache_info().currsize
    _fourier_code.cache_clear()
    _fourier_residual.cache_clear()
    return held


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

    References
    ----------
    .. [1] the textbook's section 6.2, "Gradient Coding and Coded Matrix Multiplication", Theorem
       "Gradient Coding Tradeoff".
    .. [2] R. Tandon, Q. Lei, A. G. Dimakis and N. Karampatziakis, "Gradient Coding: Avoiding
       Stragglers in Distributed Learning", ICML 2017.

    Examples
    --------
    >>> code = cyclic_repetition_code(5, 2)
    >>> (code.toarray() != 0).sum(axis=1).tolist()
    [3, 3, 3, 3, 3]
    >>> a = exact_decoding(code, [True, False, True, True, False], stragglers=2)
    >>> bool(np.allclose(a @ code.toarray(), 1.0))
    True
    """
    n, s = check_code_size(n_workers, stragglers)
    construction = choice("construction", construction, CONSTRUCTIONS)
    if s == 0:
        return sp.csr_array(sp.identity(n, format="csr"))
    if construction == "fourier":
        dense = _fourier_code(n, s, positive_int("max_candidates", max_candidates))
        typical = _fourier_residual(n, s, positive_int("max_candidates", max_candidates))
    else:
        if construction == "best-random":
            dense = best_random_code(n, s, positive_int("draws", draws), np.random.default_rng(rng))
        else:
            dense = code_from_parity(random_parity(n, s, np.random.default_rng(rng)))
        typical = decode_residual(dense, s)
    if typical > RELIABLE_RESIDUAL:
        import warnings

        warnings.warn(
            f"cyclic_repetition_code({n}, {s}) is not reliable in float64: 1% of responder sets "
            f"decode with relative residual above {typical:.2g} (reliable codes stay below "
            f"{RELIABLE_RESIDUAL:g}), and some miss the exact decoder's tolerance {DECODE_TOL:g} "
            "and fall back to least squares. Use fewer stragglers or workers per code, "
            "fractional_repetition_code where (s + 1) divides N, or an approximate scheme.",
            RuntimeWarning,
            stacklevel=2,
        )
    return sp.csr_array(dense)


#: The 99th percentile of the exact decoder's relative residual ``||a_F^T B_F - 1|| / sqrt(N)``
#: over sampled responder sets (:func:`decode_residual`) above which a cyclic code is not
#: reliable in float64, and :func:`cyclic_repetition_code` warns. Measured with the Fourier
#: construction (400 sets, two seeds, N <= 120): every code decoded with a 99th percentile at
#: most 1.5e-11 and a maximum at most 1.1e-10, except N = 100, s = 50, whose 99th percentile
#: is 5e-10 to 8e-10 and whose tail reaches DECODE_TOL (residuals up to 1.9e-8; 0.03% of 3000
#: sets fail). The worst sampled condition number does not separate them: it is a heavy-tailed
#: statistic (1.7e6 to 1.4e8 for the same code depending on the sample).
RELIABLE_RESIDUAL = 1e-10


def decode_residual(dense: np.ndarray, s: int, *, sets: int = 400, quantile: float = 0.99) -> float:
    """The `quantile` of the exact decoder's relative residual over `sets` random responder sets
    of ``N - s`` workers (a fixed seed, so the same code gives the same value)."""
    n = dense.shape[0]
    if s == 0 or s >= n - 1:
        return 0.0
    gen = np.random.default_rng(12345)
    residuals = np.empty(sets)
    for t in range(sets):
        rows = np.sort(gen.choice(n, n - s, replace=False))
        weights = least_squares_weights(dense, rows, solver="dense")
        residuals[t] = np.linalg.norm(weights[rows] @ dense[rows] - 1.0) / math.sqrt(dense.shape[1])
    return float(np.quantile(residuals, quantile))


@lru_cache(maxsize=64)
def _fourier_residual(n: int, s: int, max_candidates: int) -> float:
    with single_blas_thread():
        return decode_residual(_fourier_code(n, s, max_candidates), s)


# ------------------------------------------------------------------ decoders
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

    References
    ----------
    .. [1] the textbook's section 6.2, "Gradient Coding and Coded Matrix Multiplication", Theorem
       "Gradient Coding Tradeoff" (any N - s rows decode).
    .. [2] R. Tandon, Q. Lei, A. G. Dimakis and N. Karampatziakis, "Gradient Coding: Avoiding
       Stragglers in Distributed Learning", ICML 2017.
    """
    dense = encoding.toarray() if sp.issparse(encoding) else np.asarray(encoding, dtype=np.float64)
    n, k = dense.shape
    s = positive_int("stragglers", stragglers, minimum=0)
    rows = responders(arrived, n)
    if rows.size < n - s:
        raise DecodingError(
            f"`arrived` has {rows.size} responders; exact decoding needs at least N - s = {n - s}."
        )
    weights = least_squares_weights(dense, rows, solver="dense")
    residual = np.linalg.norm(weights[rows] @ dense[rows] - 1.0) / math.sqrt(k)
    if not residual <= tol:
        raise DecodingError(
            f"responder set does not decode: relative residual {residual:.3g} > tol = {tol:g} "
            "(is the code exact for this many stragglers?)."
        )
    return weights


# -------------------------------------------------------------------- scheme
class ExactDecoder:
    """Arrival-dependent decoder of an exact code (a picklable callable).

    With at least ``N - s`` arrivals it returns the exact decoder
    (:func:`exact_decoding`); with fewer it falls back to the least-squares
    decoder over the arrived rows (:func:`~gcdesign.schemes.decoding.least_squares_weights`,
    ``solver="dense"``), which is
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
            weights = least_squares_weights(self.dense, arrived, solver="dense")
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
    n, s = check_code_size(n, s)
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


def exact_frc(profile, budget, **options) -> Scheme:
    """Exact fractional repetition code: ``exact_scheme("frc", ...)``."""
    return exact_scheme("frc", profile, budget, **options)


def exact_cyclic(profile, budget, **options) -> Scheme:
    """Exact cyclic repetition code: ``exact_scheme("cyclic", ...)``."""
    return exact_scheme("cyclic", profile, budget, **options)


register_scheme(
    "exact-frc", exact_frc, label="exact GC (FRC)", style={"color": "tab:cyan", "linestyle": "-."}
)
register_scheme(
    "exact-cyclic",
    exact_cyclic,
    label="exact GC (cyclic)",
    style={"color": "tab:cyan", "linestyle": ":"},
    training=True,
)

__all__ = [
    "CONSTRUCTIONS",
    "DecodingError",
    "ExactDecoder",
    "clear_code_cache",
    "exact_cyclic",
    "exact_frc",
    "cyclic_repetition_code",
    "exact_decoding",
    "exact_scheme",
    "fractional_repetition_code",
]
