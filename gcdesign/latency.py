"""Order-statistics latency model of synchronous rounds (MATH section 9).

Worker round times are i.i.d. ``T = load * (t0 + X)`` with ``X ~ Exp(mu)``:
exponential for ``t0 = 0``, shifted exponential otherwise, and a computation
load that stretches the whole round (Lee et al. 2017: a worker given ``load``
times the work is ``load`` times slower, shift and tail alike). The master
waits for the ``k``-th of ``N`` responses, whose expected time is

.. math::

    E[T_{(k:N)}] = \\ell \\Big( t_0 + \\frac{H_N - H_{N-k}}{\\mu} \\Big),
    \\qquad \\operatorname{Var} T_{(k:N)} = \\frac{\\ell^2}{\\mu^2} \\sum_{i=N-k+1}^{N} \\frac{1}{i^2}

(Renyi's representation: the gaps between exponential order statistics are
independent ``Exp((N - i) mu)``). Uncoded waits for all ``N``
(``H_N / mu``); a code tolerating ``s`` stragglers waits for ``N - s``
(``(H_N - H_s) / mu``). The load-aware comparison gives an exact code load
``s + 1`` against the uncoded load 1. Worked example (docs/classic_codes.md):
``N = 100, mu = 1``: uncoded 5.187, ``s = 20``: 1.589 (3.26x), ``s = 50``:
0.688 (7.54x).

:class:`RoundTimes` is the round-time model of the training harness: per-worker
times ``t0 + Exp(mu_i)`` against a deadline, the arrivals and the round's
duration (MATH section 8).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from ._validate import InputError, positive_int, real, real_array
from .profile import ClusterProfile

# Below this many terms the difference of harmonic numbers is summed directly.
_DIRECT_TERMS = 64


def _harmonic(n: int) -> float:
    """``H_n`` (exact summation for small n, asymptotic series otherwise)."""
    if n < _DIRECT_TERMS:
        return math.fsum(1.0 / i for i in range(1, n + 1))
    inv = 1.0 / n
    inv2 = inv * inv
    return math.log(n) + 0.5772156649015329 + inv / 2 - inv2 / 12 + inv2 * inv2 / 120 - inv2**3 / 252


def harmonic_difference(n: int, m: int) -> float:
    """``H_n - H_m = sum_{i=m+1}^{n} 1/i`` for integers ``0 <= m <= n``, stable for large n.

    Few terms are summed exactly (smallest first); otherwise, for large ``m``,
    the asymptotic expansion of ``H`` is differenced analytically with
    ``log1p`` so that no cancellation occurs even for ``n = 10^15, m = n - 1000``;
    for small ``m``, ``H_n`` (asymptotic) minus ``H_m`` (exact).

    Examples
    --------
    >>> round(harmonic_difference(100, 0), 3)
    5.187
    >>> harmonic_difference(10**15, 10**15 - 1) == 1e-15
    True
    """
    n = positive_int("n", n, minimum=0)
    m = positive_int("m", m, minimum=0)
    if m > n:
        raise InputError(f"`m` must be an integer in [0, n] = [0, {n}], got {m}.")
    k = n - m
    if k <= _DIRECT_TERMS:
        return math.fsum(1.0 / i for i in range(n, m, -1))
    if m < _DIRECT_TERMS:
        return _harmonic(n) - _harmonic(m)
    # H_x = ln x + gamma + 1/(2x) - 1/(12x^2) + 1/(120x^4) - 1/(252x^6) + O(x^-8), m >= 64;
    # in floating point throughout (powers of a huge n underflow to 0 instead of overflowing)
    nf, mf, kf = float(n), float(m), float(k)
    first = math.log1p(kf / mf)
    second = -kf / (2.0 * nf * mf)  # 1/(2n) - 1/(2m)
    third = kf / (12.0 * nf * mf) * (1.0 / nf + 1.0 / mf)  # -(1/(12n^2) - 1/(12m^2))
    inv_n, inv_m = 1.0 / nf, 1.0 / mf
    fourth = (inv_n**4 - inv_m**4) / 120 - (inv_n**6 - inv_m**6) / 252
    return first + second + third + fourth


MAX_WORKERS = 10**15  # far beyond any cluster; keeps every count exact in float64


def _check_wait(n_workers, k) -> tuple[int, int]:
    n = positive_int("n_workers", n_workers)
    if n > MAX_WORKERS:
        raise InputError(f"`n_workers` must be an integer in [1, 10^15], got {n}.")
    k = positive_int("k", k)
    if k > n:
        raise InputError(f"`k` must be an integer in [1, N] = [1, {n}], got {k}.")
    return n, k


def expected_kth_time(n_workers: int, k: int, *, rate: float, shift: float = 0.0, load: float = 1.0) -> float:
    """Expected time of the k-th of N i.i.d. responses ``load * (shift + Exp(rate))``.

    .. math:: E[T_{(k:N)}] = \\ell \\, (t_0 + (H_N - H_{N-k}) / \\mu)

    Parameters
    ----------
    n_workers : int
        ``N >= 1``.
    k : int
        ``1 <= k <= N``.
    rate : float
        ``mu > 0``.
    shift : float
        ``t0 >= 0`` (0: exponential).
    load : float
        ``l > 0``, the computation load scaling each worker's time.

    Examples
    --------
    >>> round(expected_kth_time(100, 80, rate=1.0), 4)  # the textbook's 1.589
    1.5896
    """
    n, k = _check_wait(n_workers, k)
    rate = real("rate", rate, low=0, low_open=True)
    shift = real("shift", shift, low=0)
    load = real("load", load, low=0, low_open=True)
    return load * (shift + harmonic_difference(n, n - k) / rate)


def kth_time_variance(n_workers: int, k: int, *, rate: float, load: float = 1.0) -> float:
    """Variance of the k-th of N responses: ``(l / mu)^2 sum_{i=N-k+1}^{N} 1/i^2`` (the shift adds none)."""
    n, k = _check_wait(n_workers, k)
    rate = real("rate", rate, low=0, low_open=True)
    load = real("load", load, low=0, low_open=True)
    terms = 1.0 / np.arange(n, n - k, -1, dtype=np.float64) ** 2
    return (load / rate) ** 2 * math.fsum(terms[::-1])


@dataclass(frozen=True)
class SimulatedTime:
    """Monte-Carlo estimate of the expected k-th response time.

    Attributes
    ----------
    mean : float
    standard_error : float
        Standard error of `mean` (sample standard deviation / sqrt(trials)).
    trials : int
    """

    mean: float
    standard_error: float
    trials: int

    @property
    def stderr(self) -> float:
        """Deprecated name of :attr:`standard_error` (warns; removed in the next release)."""
        warnings.warn(
            "SimulatedTime.stderr is deprecated and will be removed in the next release; "
            "use SimulatedTime.standard_error.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.standard_error


def simulate_kth_time(
    n_workers: int,
    k: int,
    *,
    rate: float,
    shift: float = 0.0,
    load: float = 1.0,
    trials: int = 10_000,
    rng=None,
) -> SimulatedTime:
    """Simulate rounds and average the k-th response time.

    Parameters
    ----------
    n_workers, k, rate, shift, load
        As in :func:`expected_kth_time`.
    trials : int
        Number of simulated rounds (drawn in chunks to bound memory).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    SimulatedTime
    """
    n, k = _check_wait(n_workers, k)
    rate = real("rate", rate, low=0, low_open=True)
    shift = real("shift", shift, low=0)
    load = real("load", load, low=0, low_open=True)
    trials = positive_int("trials", trials, minimum=2)
    gen = np.random.default_rng(rng)
    chunk = max(1, 2_000_000 // n)
    samples = np.empty(trials)
    for start in range(0, trials, chunk):
        stop = min(trials, start + chunk)
        times = gen.exponential(1.0 / rate, size=(stop - start, n))
        samples[start:stop] = np.partition(times, k - 1, axis=1)[:, k - 1]
    samples = load * (shift + samples)
    return SimulatedTime(float(samples.mean()), float(samples.std(ddof=1) / math.sqrt(trials)), trials)


def speedup(
    n_workers: int, stragglers: int, *, rate: float, shift: float = 0.0, load_aware: bool = False
) -> float:
    """Expected uncoded round time over the time of a code tolerating ``s`` stragglers.

    Uncoded waits for all N workers at load 1; the code waits for ``N - s`` at
    load ``s + 1`` when `load_aware` (exact gradient codes), else at load 1.

    Examples
    --------
    >>> round(speedup(100, 50, rate=1.0), 2)
    7.54
    """
    n = positive_int("n_workers", n_workers)
    s = _check_stragglers(stragglers, n)
    uncoded = expected_kth_time(n, n, rate=rate, shift=shift)
    coded = expected_kth_time(n, n - s, rate=rate, shift=shift, load=(s + 1) if load_aware else 1.0)
    return uncoded / coded


def _check_stragglers(stragglers, n: int) -> int:
    s = positive_int("stragglers", stragglers, minimum=0)
    if s >= n:
        raise InputError(f"`stragglers` must be an integer in [0, N - 1] = [0, {n - 1}], got {s}.")
    return s


def latency_table(
    n_workers: int,
    stragglers,
    *,
    rate: float,
    shift: float = 0.0,
    load_aware: bool = False,
    trials: int = 0,
    rng=None,
) -> list[dict]:
    """Expected round time and speedup over uncoded for each tolerance in `stragglers`.

    Parameters
    ----------
    n_workers : int
    stragglers : int or sequence of int
        Tolerances ``s`` in ``[0, N - 1]``.
    rate, shift, load_aware
        See :func:`speedup`.
    trials : int
        When positive, also simulate each row (`rng`) and report the mean and
        standard error.

    Returns
    -------
    list of dict
        One row per ``s``: ``stragglers``, ``wait_for`` (N - s), ``load``,
        ``expected_time``, ``speedup`` and, with `trials`, ``simulated_time``,
        ``simulated_standard_error``.
    """
    n = positive_int("n_workers", n_workers)
    values = [stragglers] if isinstance(stragglers, numbers.Integral) else list(stragglers)
    if not values:
        raise InputError("`stragglers` must list at least one tolerance s.")
    values = [_check_stragglers(s, n) for s in values]
    trials = positive_int("trials", trials, minimum=0)
    gen = np.random.default_rng(rng)
    uncoded = expected_kth_time(n, n, rate=rate, shift=shift)
    rows = []
    for s in values:
        load = float(s + 1) if load_aware else 1.0
        time = expected_kth_time(n, n - s, rate=rate, shift=shift, load=load)
        row = {
            "stragglers": s,
            "wait_for": n - s,
            "load": load,
            "expected_time": time,
            "speedup": uncoded / time,
        }
        if trials:
            sim = simulate_kth_time(
                n, n - s, rate=rate, shift=shift, load=load, trials=max(2, trials), rng=gen
            )
            row["simulated_time"] = sim.mean
            row["simulated_standard_error"] = sim.standard_error
        rows.append(row)
    return rows


@dataclass(frozen=True)
class RoundTimes:
    r"""Round times :math:`T_i = t_0 + \mathrm{Exp}(\mu_i)` against a deadline :math:`\tau`.

    Worker i arrives iff :math:`T_i \le \tau`, so :math:`p_i = e^{-\mu_i(\tau - t_0)}`
    (docs/math.md, section 8). A coded round lasts :math:`\min(\tau, \max_i T_i)`;
    the centralized reference waits for everyone, :math:`\max_i T_i`.
    Without a :class:`RoundTimes`, :func:`gcdesign.training.train` draws Bernoulli
    arrivals from the scheme's probabilities and counts every round as 1 time unit.
    """

    rates: tuple
    deadline: float
    shift: float = 0.0

    def __post_init__(self):
        rates = real_array("rates", self.rates, low=0, low_open=True, min_size=1)
        object.__setattr__(self, "rates", tuple(rates.tolist()))
        object.__setattr__(self, "deadline", real("deadline", self.deadline, low=0, low_open=True))
        object.__setattr__(self, "shift", real("shift", self.shift, low=0))

    @property
    def straggler_probs(self) -> np.ndarray:
        slack = self.deadline - self.shift
        rates = np.asarray(self.rates)
        return np.exp(-rates * slack) if slack > 0 else np.ones_like(rates)

    def profile(self, *, dim: int, partitions: int | None = None) -> ClusterProfile:
        """The cluster profile these round times imply (to design a code for them)."""
        model = "shifted-exponential" if self.shift > 0 else "exponential"
        return ClusterProfile.from_latency_model(
            model, rates=self.rates, deadline=self.deadline, shift=self.shift, dim=dim, partitions=partitions
        )


__all__ = [
    "RoundTimes",
    "SimulatedTime",
    "expected_kth_time",
    "harmonic_difference",
    "kth_time_variance",
    "latency_table",
    "simulate_kth_time",
    "speedup",
]
