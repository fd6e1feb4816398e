r"""The round loop of the training harness: :func:`train`, :class:`History`.

The harness makes the paper's claims checkable on small problems
(docs/math.md, sections 3, 7 and 8; docs/guide.md shows a complete run).
Each round of :func:`train`:

1. every worker's arrival is drawn: Bernoulli with the scheme's straggler
   probabilities, or round times :math:`T_i = t_0 + \mathrm{Exp}(\mu_i)`
   against a deadline (:class:`gcdesign.latency.RoundTimes`);
2. every arrived worker i computes :math:`x_i = \sum_j b_{ij} g_j` and sends
   :math:`Q_{b_i}(x_i)` (stochastic b-bit quantizer, the sign quantizer for
   1 bit, no quantization for ``quantizer == "none"``); all arrived workers are
   quantized at once in numpy (:func:`gcdesign.quantization.quantize_rows`);
3. the master decodes :math:`\hat g = \sum_i a_i Q(x_i)` with
   ``a = scheme.decode_weights(arrived)`` and takes an optimizer step
   (:mod:`gcdesign.training.optimizers`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._validate import InputError, positive_int
from ..latency import RoundTimes
from ..quantization import payload_bits, quantize_rows
from .optimizers import Optimizer, shrinkage_factor
from .problems import Problem


@dataclass(frozen=True, eq=False)
class History:
    """Per-round record of one training run; index 0 is the initial point.

    Attributes
    ----------
    scheme, optimizer, problem : str
    loss : ndarray (steps + 1,)
        :math:`f(w_t)`.
    grad_norm : ndarray (steps + 1,)
        :math:`\\|\\nabla f(w_t)\\|_2` (the true gradient).
    distance : ndarray (steps + 1,) or None
        :math:`\\|w_t - w^*\\|_2` when the problem knows its optimum.
    bits : ndarray of int (steps + 1,)
        Bits delivered to the master in round t (the messages that arrived; 0 at t = 0).
    wall_clock : ndarray (steps + 1,)
        Cumulative simulated time (see :class:`RoundTimes`).
    arrived : ndarray of int (steps + 1,)
        Workers that arrived in round t.
    optimal_loss : float or None
    shrinkage : float
        The two-track factor c of the run (1: two-track off).
    """

    scheme: str
    optimizer: str
    problem: str
    loss: np.ndarray
    grad_norm: np.ndarray
    distance: np.ndarray | None
    bits: np.ndarray
    wall_clock: np.ndarray
    arrived: np.ndarray
    optimal_loss: float | None = None
    shrinkage: float = 1.0

    @property
    def steps(self) -> int:
        return int(self.loss.size - 1)

    @property
    def total_bits(self) -> np.ndarray:
        """Cumulative bits delivered up to each round."""
        return np.cumsum(self.bits)

    @property
    def suboptimality(self) -> np.ndarray | None:
        """``loss - optimal_loss`` (None if the optimum is unknown)."""
        return None if self.optimal_loss is None else self.loss - self.optimal_loss

    def as_rows(self) -> list[dict]:
        """One dict per round (for CSV files)."""
        total = self.total_bits
        rows = []
        for t in range(self.loss.size):
            rows.append(
                {
                    "round": t,
                    "loss": float(self.loss[t]),
                    "grad_norm": float(self.grad_norm[t]),
                    "distance": None if self.distance is None else float(self.distance[t]),
                    "bits": int(self.bits[t]),
                    "total_bits": int(total[t]),
                    "wall_clock": float(self.wall_clock[t]),
                    "arrived": int(self.arrived[t]),
                }
            )
        return rows


# ====================================================================== the loop
class _Rounds:
    """Draws arrivals, encodes, quantizes and decodes: one gradient estimate per call.

    The same code for every scheme (:class:`gcdesign.schemes.SchemeLike`, checked once
    here). A worker with ``p_i = 0`` never straggles by the scheme's own account, so
    the master waits for it: with round times it arrives whenever it finishes and the
    round lasts until it has (the centralized reference has ``p = 0`` everywhere and
    waits for everyone); without round times nothing is drawn when no worker can
    straggle.
    """

    def __init__(self, problem: Problem, scheme, stragglers: RoundTimes | None):
        from ..schemes import check_scheme

        check_scheme(scheme)
        self.problem = problem
        self.scheme = scheme
        encoding = scheme.encoding
        self.n_workers, partitions = (int(size) for size in encoding.shape)
        if stragglers is not None and len(stragglers.rates) != self.n_workers:
            raise InputError(
                f"`stragglers` has {len(stragglers.rates)} rates but the scheme has {self.n_workers} workers."
            )
        self.stragglers = stragglers
        if partitions != problem.partitions:
            raise InputError(
                f"the scheme {scheme.name!r} encodes K = {partitions} partitions but the problem "
                f"has {problem.partitions}; build the profile with partitions={problem.partitions}."
            )
        encoding = sp.csr_array(encoding)
        small = encoding.shape[0] * encoding.shape[1] <= 4_000_000
        self.encoding = encoding.toarray() if small else encoding
        self.bits = np.asarray(scheme.bits, dtype=np.int64)
        self.quantizer = scheme.quantizer
        self.bucket_size = scheme.bucket_size
        self.active = (self.bits > 0) & (np.diff(encoding.indptr) > 0)
        self.payload = payload_bits(self.bits, problem.dim, self.quantizer, self.bucket_size)
        self.probs = np.asarray(scheme.straggler_probs, dtype=np.float64)
        self.waited = self.probs == 0

    def arrivals(self, rng) -> tuple[np.ndarray, float]:
        """Arrival mask and the round's simulated duration."""
        if self.stragglers is None:
            if self.waited.all():
                return np.ones(self.n_workers, dtype=bool), 1.0
            return rng.random(self.n_workers) >= self.probs, 1.0
        st = self.stragglers
        times = st.shift + rng.exponential(1.0 / np.asarray(st.rates))
        arrived = (times <= st.deadline) | self.waited
        duration = max(min(st.deadline, float(times.max())), float(times[self.waited].max(initial=0.0)))
        return arrived, duration

    def estimate(self, w, optimizer_batch, rng) -> tuple[np.ndarray, int, int, float]:
        """One round: (decoded gradient, bits delivered, workers arrived, duration)."""
        arrived, duration = self.arrivals(rng)
        grads = self.problem.partition_gradients(w, batch_size=optimizer_batch, rng=rng)
        senders = arrived & self.active
        weights = self.scheme.decode_weights(arrived)
        use = senders & (weights != 0)
        idx = np.flatnonzero(use)
        coded = self.encoding[idx] @ grads
        quantized = quantize_rows(
            coded, self.bits[idx], quantizer=self.quantizer, bucket_size=self.bucket_size, rng=rng
        )
        estimate = weights[idx] @ quantized
        return estimate, int(self.payload[senders].sum()), int(arrived.sum()), duration


def train(
    problem: Problem,
    scheme,
    *,
    steps: int,
    optimizer: Optimizer,
    rng=None,
    stragglers: RoundTimes | None = None,
    x0=None,
) -> History:
    """Run `steps` rounds of `optimizer` on `problem` with gradients coded by `scheme`.

    Parameters
    ----------
    problem : Problem
    scheme : SchemeLike
        Anything that satisfies :class:`gcdesign.schemes.SchemeLike` (a Design, a
        Scheme, the :class:`Centralized` reference, ...) whose encoding has
        ``problem.partitions`` columns; see :func:`training_scheme`.
    steps : int
        Number of rounds (optimizer updates).
    optimizer : Optimizer
        From :func:`gd`, :func:`sgd` or :func:`adam`.
    rng : None, int or Generator
        The only source of randomness (arrivals, mini-batches, quantization):
        the same seed gives the same history.
    stragglers : RoundTimes, optional
        Draw round times against a deadline instead of Bernoulli arrivals.
    x0 : array_like, optional
        Initial model (default zeros).

    Returns
    -------
    History

    Examples
    --------
    >>> from gcdesign import ClusterProfile, design
    >>> from gcdesign.training import synthetic_problem, train, gd
    >>> prob = synthetic_problem("least-squares", partitions=4, rng=0)
    >>> code = design(ClusterProfile([0.1, 0.2, 0.3, 0.4], dim=prob.dim), bits_per_worker=6)
    >>> hist = train(prob, code, steps=50, optimizer=gd(0.3), rng=1)
    >>> bool(hist.loss[-1] < hist.loss[0])
    True
    """
    if not isinstance(problem, Problem):
        raise InputError("`problem` must be a Problem (see make_problem, digits_problem, synthetic_problem).")
    if not isinstance(optimizer, Optimizer):
        raise InputError("`optimizer` must be an Optimizer (use gd(...), sgd(...) or adam(...)).")
    steps = positive_int("steps", steps)
    rng = np.random.default_rng(rng)
    rounds = _Rounds(problem, scheme, stragglers)
    w = problem.initial_point() if x0 is None else np.array(x0, dtype=np.float64)
    if w.shape != (problem.dim,):
        raise InputError(f"`x0` must have shape ({problem.dim},), got {w.shape}.")
    shrink = 1.0
    if optimizer.method == "adam" and optimizer.two_track:
        shrink = shrinkage_factor(scheme, optimizer.lam, problem.dim)
    loss = np.empty(steps + 1)
    grad_norm = np.empty(steps + 1)
    distance = None if problem.optimum is None else np.empty(steps + 1)
    bits = np.zeros(steps + 1, dtype=np.int64)
    clock = np.zeros(steps + 1)
    arrived = np.zeros(steps + 1, dtype=np.int64)

    def record(t: int) -> None:
        loss[t] = problem.loss(w)
        grad_norm[t] = np.linalg.norm(problem.gradient(w))
        if distance is not None:
            distance[t] = np.linalg.norm(w - problem.optimum)

    record(0)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    batch = optimizer.batch_size if optimizer.method != "gd" else None
    for t in range(steps):
        estimate, bits[t + 1], arrived[t + 1], duration = rounds.estimate(w, batch, rng)
        clock[t + 1] = clock[t] + duration
        lr = optimizer.step_size(t)
        if optimizer.method == "adam":
            m = optimizer.beta1 * m + (1 - optimizer.beta1) * estimate
            v = optimizer.beta2 * v + (1 - optimizer.beta2) * np.square(shrink * estimate)
            m_hat = m / (1 - optimizer.beta1 ** (t + 1))
            v_hat = v / (1 - optimizer.beta2 ** (t + 1))
            w = w - lr * m_hat / (np.sqrt(v_hat) + optimizer.eps)
        else:
            w = w - lr * estimate
        record(t + 1)
        if not np.isfinite(loss[t + 1]):  # diverged: keep the record honest and stop computing
            loss[t + 2 :] = np.inf
            grad_norm[t + 2 :] = np.inf
            if distance is not None:
                distance[t + 2 :] = np.inf
            clock[t + 2 :] = clock[t + 1]
            break
    return History(
        scheme=scheme.name,
        optimizer=optimizer.label,
        problem=problem.name,
        loss=loss,
        grad_norm=grad_norm,
        distance=distance,
        bits=bits,
        wall_clock=clock,
        arrived=arrived,
        optimal_loss=problem.optimal_loss,
        shrinkage=shrink,
    )


def gradient_estimates(
    problem: Problem,
    scheme,
    w,
    *,
    rounds: int,
    rng=None,
    stragglers: RoundTimes | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """`rounds` independent decoded gradients at the fixed model `w`: array (rounds, dim).

    Their mean estimates :math:`E[\\hat g]`; for an unbiased scheme it matches
    ``problem.gradient(w)`` within its standard error.
    """
    rounds = positive_int("rounds", rounds)
    rng = np.random.default_rng(rng)
    engine = _Rounds(problem, scheme, stragglers)
    w = np.asarray(w, dtype=np.float64)
    out = np.empty((rounds, problem.dim))
    for r in range(rounds):
        out[r] = engine.estimate(w, batch_size, rng)[0]
    return out


def seeds(rng, count: int) -> list[int]:
    """`count` independent integer seeds drawn from `rng` (for repeated runs)."""
    count = positive_int("count", count)
    rng = np.random.default_rng(rng)  # a Generator is returned as is
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=count)]
