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

    References
    ----------
    .. [1] the textbook's chapter "Distributed SGD as a Coded-Computing Problem", Theorem "Uncoded
       Distributed SGD: Per-Round Tail Latency" (order statistics of exponential round times);
       docs/math.md, section 9.

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

    References
    ----------
    .. [1] the textbook's chapter "Distributed SGD as a Coded-Computing Problem", Theorem "Uncoded
       Distributed SGD: Per-Round Tail Latency" and its worked example (N = 100); docs/math.md,
       section 9.

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

    References
    ----------
    .. [1] the textbook's chapter "Distributed SGD as a Coded-Computing Problem", Theorem "Uncoded
       Distributed SGD: Per-Round Tail Latency"; docs/math.md, section 9.
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


# ====================================================================== load-aware design
@dataclass(frozen=True)
class LoadLatency:
    r"""Round times that grow with the load: :math:`T_i = t_0 + c_i \ell_i + \mathrm{Exp}(\mu_i)`.

    Worker i holding :math:`\ell_i` partitions misses the deadline :math:`\tau` with

    .. math:: p_i(\ell_i) = P(T_i > \tau) = e^{-\mu_i (\tau - t_0 - c_i \ell_i)}

    (1 when :math:`c_i \ell_i \ge \tau - t_0`), docs/math.md, section 16.

    Attributes
    ----------
    rates : tuple of float
        :math:`\mu_i > 0`.
    per_partition : tuple of float
        :math:`c_i \ge 0`, time units per held partition.
    shift : float
        :math:`t_0 \ge 0`.

    Examples
    --------
    >>> model = LoadLatency(rates=(2.0, 2.0), per_partition=(0.1, 0.1), shift=1.0)
    >>> model.straggler_probs([1, 3], deadline=1.5).round(4).tolist()
    [0.4493, 0.6703]
    """

    rates: tuple
    per_partition: tuple
    shift: float = 0.0

    def __post_init__(self):
        rates = real_array("rates", self.rates, low=0, low_open=True, min_size=1)
        cost = real_array("per_partition", self.per_partition, low=0)
        if cost.shape != rates.shape:
            raise InputError(
                f"`per_partition` must have {rates.size} entries (one per worker), got {cost.size}."
            )
        object.__setattr__(self, "rates", tuple(rates.tolist()))
        object.__setattr__(self, "per_partition", tuple(cost.tolist()))
        object.__setattr__(self, "shift", real("shift", self.shift, low=0))

    @property
    def n_workers(self) -> int:
        return len(self.rates)

    def straggler_probs(self, loads, deadline: float) -> np.ndarray:
        r""":math:`p_i(\ell_i)` for the loads `loads` (N,) against `deadline`."""
        loads = np.asarray(loads, dtype=np.float64)
        slack = deadline - self.shift - np.asarray(self.per_partition) * loads
        return np.where(slack > 0, np.exp(-np.asarray(self.rates) * np.maximum(slack, 0.0)), 1.0)

    def sample(self, loads, *, rounds: int, rng=None) -> np.ndarray:
        r"""Round times (rounds, N) at the given loads (a scalar or (N,) or (rounds, N))."""
        gen = np.random.default_rng(rng)
        loads = np.broadcast_to(np.asarray(loads, dtype=np.float64), (rounds, self.n_workers))
        tail = gen.standard_exponential((rounds, self.n_workers)) / np.asarray(self.rates)
        return self.shift + np.asarray(self.per_partition) * loads + tail


def fit_load_latency(round_times, loads, *, censor: float = math.inf) -> LoadLatency:
    r"""Fit :class:`LoadLatency` to traces: round times against the load each worker held.

    Parameters
    ----------
    round_times : array_like (rounds, N)
        Observed round times (time units); ``inf`` or values above `censor` are
        censored (the worker was still running when the record stopped).
    loads : array_like (rounds, N)
        Partitions each worker held in each round (at least two distinct loads overall).
    censor : float
        Times above this are censored at it (e.g. the engine's hold, ``2 tau``).

    Notes
    -----
    The location :math:`t_0 + c_i \ell` of a shifted exponential is estimated by
    the least observed time at each (worker, load) (the maximum-likelihood
    location), minus the expected excess :math:`1 / (n \mu)` of a minimum of n;
    :math:`t_0` (shared) and the slopes :math:`c_i` solve the least-squares
    line through those minima (a worker seen at one load only gets the common
    slope). The rates are the censored-exponential maximum likelihood,
    :math:`\mu_i = d_i / \sum_r (\min(T_{ir}, C) - t_0 - c_i \ell_{ir})`, with
    :math:`d_i` the uncensored rounds. Two passes (rates, then the bias-corrected
    minima).
    """
    times = real_array("round_times", round_times, ndim=2, low=0, finite=False)
    held = real_array("loads", loads, ndim=2, low=0)
    if held.shape != times.shape:
        raise InputError(f"`loads` must have the shape of `round_times` {times.shape}, got {held.shape}.")
    censor = float(censor)
    observed = np.isfinite(times) & (times <= censor)
    n = times.shape[1]
    if np.unique(held[observed]).size < 2:
        raise InputError("`loads`: the traces need rounds at two different loads at least (uncensored).")
    excess = np.zeros(n)
    for _ in range(2):
        rows, cols, values, counts = [], [], [], []
        for i in range(n):
            for level in np.unique(held[observed[:, i], i]):
                sel = observed[:, i] & (held[:, i] == level)
                rows.append(i)
                cols.append(level)
                values.append(times[sel, i].min())
                counts.append(sel.sum())
        rows, cols, values, counts = map(np.asarray, (rows, cols, values, counts))
        target = values - excess[rows] / counts
        # unknowns: t0, c_0..c_{N-1}; a worker seen at one load shares a common slope
        multi = np.array([np.unique(cols[rows == i]).size >= 2 for i in range(n)])
        design_matrix = np.zeros((rows.size, 2 + n))
        design_matrix[:, 0] = 1.0
        design_matrix[np.arange(rows.size), np.where(multi[rows], 2 + rows, 1)] = cols
        used = np.concatenate([[True, not multi.all()], multi])
        solution = np.zeros(2 + n)
        solution[used] = np.linalg.lstsq(design_matrix[:, used], target, rcond=None)[0]
        shift = max(float(solution[0]), 0.0)
        slope = np.where(multi, solution[2:], solution[1]).clip(min=0.0)
        location = shift + slope * held
        exposure = np.where(observed, times, censor) - location
        exposure = np.where(np.isfinite(exposure), np.maximum(exposure, 0.0), 0.0)
        uncensored = observed.sum(axis=0)
        rates = uncensored / np.maximum(exposure.sum(axis=0), 1e-300)
        excess = 1.0 / np.maximum(rates, 1e-300)
    return LoadLatency(rates=tuple(rates), per_partition=tuple(slope), shift=shift)


def design_loads(design) -> np.ndarray:
    r"""Partitions each worker holds: :math:`\ell_i = |\{j : b_{ij} \ne 0\}|` (N,)."""
    enc = design.encoding
    return np.diff(enc.indptr) if hasattr(enc, "indptr") else np.count_nonzero(enc, axis=1)


@dataclass(frozen=True, eq=False)
class LoadAwareResult:
    r"""The design at the fixed point :math:`p = p(\ell(D(p)))`, and how the iteration got there.

    Attributes
    ----------
    design : Design
        The fixed point's design (or, without one, the best design visited, judged
        by its error under the probabilities its own loads imply).
    converged : bool
        A fixed point was reached: the design's loads give back its probabilities.
    iterations : list of dict
        One per step: ``loads``, ``straggler_probs``, ``bound`` (the design's own),
        ``true_error`` (its layout's error under :math:`p(\ell(D))`, decoder re-weighted),
        ``change`` (max |p - p(loads)|), ``damping``.
    method : str
        ``"fixed-point"`` or ``"best-visited"``.
    message : str
        One line: how the iteration ended.
    """

    design: object
    converged: bool
    iterations: list
    method: str
    message: str = ""


def load_aware_design(
    model: LoadLatency,
    *,
    deadline: float,
    dim: int,
    partitions: int,
    budget: int | None = None,
    bits_per_worker: float | None = None,
    initial_loads=None,
    max_iter: int = 50,
    tol: float = 1e-9,
    names=None,
    **design_options,
) -> LoadAwareResult:
    r"""Solve the design at its fixed point :math:`p = p(\ell(D(p)))` (docs/math.md, section 16).

    Start from `initial_loads` (default one partition each: the load-blind
    profile), then iterate :math:`p_{k+1} = (1 - \theta) p_k + \theta\,p(\ell(D(p_k)))`
    with :math:`\theta = 1`; when the loads revisit an earlier state (a cycle of
    the discrete map) the damping halves (down to 1/16), and each damped step
    also tries :math:`D(p(\ell_k))` directly. Converged when the design's loads
    give back its probabilities to `tol`. The loads are integers, so the map
    is piecewise constant and a fixed point need not exist; then, after
    `max_iter` steps, the best design visited wins, judged by its error under the
    probabilities its own loads imply, and it is returned with its decoder
    re-weighted for them (unbiased as deployed).
    """
    from .design import design as make_design

    deadline = real("deadline", deadline, low=0, low_open=True)
    max_iter = positive_int("max_iter", max_iter)
    n = model.n_workers
    loads = np.ones(n) if initial_loads is None else real_array("initial_loads", initial_loads, low=0)
    p = model.straggler_probs(loads, deadline)
    theta = 1.0
    seen = set()
    steps = []
    best = None

    def build(probs):
        profile = ClusterProfile(probs, dim=dim, partitions=partitions, names=names)
        return make_design(profile, budget, bits_per_worker=bits_per_worker, **design_options)

    for _ in range(max_iter):
        code = build(p)
        loads = design_loads(code)
        implied = model.straggler_probs(loads, deadline)
        change = float(np.max(np.abs(implied - p)))
        true_error = _true_error(code, implied)
        steps.append(
            {
                "loads": loads.tolist(),
                "straggler_probs": p.tolist(),
                "bound": code.bound,
                "true_error": true_error,
                "change": change,
                "damping": theta,
            }
        )
        if best is None or true_error < best[0]:
            best = (true_error, code, implied)
        if change <= tol:
            message = f"fixed point after {len(steps)} iterations (max |p - p(loads)| <= {tol:g})"
            return LoadAwareResult(code, True, steps, "fixed-point", message)
        if theta < 1:  # damped: the loads' own probabilities may close the loop at once
            jump = build(implied)
            if np.array_equal(design_loads(jump), loads):
                steps.append(
                    {
                        "loads": loads.tolist(),
                        "straggler_probs": implied.tolist(),
                        "bound": jump.bound,
                        "true_error": jump.bound,
                        "change": 0.0,
                        "damping": 1.0,
                    }
                )
                message = f"fixed point after {len(steps)} iterations (the loads' own probabilities)"
                return LoadAwareResult(jump, True, steps, "fixed-point", message)
        key = tuple(loads.tolist())
        if key in seen and theta > 1 / 16:
            theta /= 2
            seen.clear()
        seen.add(key)
        p = (1 - theta) * p + theta * implied
    error, code, implied = best
    if math.isfinite(error):  # deployed with its decoder re-weighted for what its loads imply
        from .design import reweight

        code = reweight(code, implied)
    message = (
        f"no fixed point in {len(steps)} iterations: the best design visited, "
        "its decoder re-weighted for the probabilities its loads imply"
    )
    return LoadAwareResult(code, False, steps, "best-visited", message)


def _true_error(code, implied) -> float:
    r"""The error of `code`'s layout under the probabilities its loads imply (decoder re-weighted);
    inf when a worker that holds data would always be late (its partitions are lost: biased)."""
    from .design import layout_error

    late = implied >= 1
    if np.any(late & (np.asarray(code.decoding) != 0)):
        return math.inf
    return layout_error(code, np.where(late, 0.5, implied))


def load_fixed_points(
    model: LoadLatency, *, deadline: float, dim: int, partitions: int, max_load: int, **kwargs
):
    r"""Every fixed point by brute force: each load vector in ``{0..max_load}^N`` whose design
    has those loads (small N only; the check of :func:`load_aware_design`)."""
    import itertools

    from .design import design as make_design

    found = []
    budget_kwargs = {k: kwargs.pop(k) for k in ("budget", "bits_per_worker") if k in kwargs}
    for loads in itertools.product(range(max_load + 1), repeat=model.n_workers):
        p = model.straggler_probs(loads, deadline)
        if np.all(p >= 1):
            continue
        code = make_design(ClusterProfile(p, dim=dim, partitions=partitions), **budget_kwargs, **kwargs)
        if np.array_equal(design_loads(code), loads):
            found.append(code)
    return found


__all__ = [
    "LoadAwareResult",
    "LoadLatency",
    "RoundTimes",
    "SimulatedTime",
    "design_loads",
    "expected_kth_time",
    "fit_load_latency",
    "harmonic_difference",
    "kth_time_variance",
    "latency_table",
    "load_aware_design",
    "load_fixed_points",
    "simulate_kth_time",
    "speedup",
]
