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
   quantized at once by the codec's numba kernel
   (:func:`gcdesign._codec_kernels.quantize_rows_numba`, bit for bit the numpy reference
   :func:`gcdesign.quantization.quantize_rows` with the same draws);
3. the master decodes :math:`\hat g = \sum_i a_i Q(x_i)` with
   ``a = scheme.decode_weights(arrived)`` and takes an optimizer step
   (:mod:`gcdesign.training.optimizers`).

With ``error_feedback=True`` (docs/math.md, section 12) every worker that holds
data keeps a residual :math:`e_i`, sends :math:`Q(x_i + e_i)` and sets
:math:`e_i \leftarrow v_i - Q(v_i)` every round, whether or not its message
arrives (:class:`ErrorFeedback`); any scheme takes the option, and a study names
the variant ``"<scheme>+ef"`` (:func:`gcdesign.training.schemes.scheme_variant`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._validate import UNSET, InputError, positive_int, renamed_keyword
from ..latency import RoundTimes
from ..parallel import single_blas_thread
from ..quantization import payload_bits
from .mlp import MLPProblem
from .optimizers import Optimizer, make_step, shrinkage_factor
from .problems import Problem
from .schemes import EF_SUFFIX

PROBLEM_TYPES = (Problem, MLPProblem)


@dataclass(frozen=True, eq=False)
class History:
    """Per-round record of one training run; index 0 is the initial point.

    Attributes
    ----------
    scheme, optimizer, problem : str
        ``scheme`` is the scheme's name, with ``"+ef"`` appended under error feedback.
    loss : ndarray (rounds + 1,)
        :math:`f(w_t)` (on the training split).
    grad_norm : ndarray (rounds + 1,)
        :math:`\\|\\nabla f(w_t)\\|_2` (the true gradient).
    distance : ndarray (rounds + 1,) or None
        :math:`\\|w_t - w^*\\|_2` when the problem knows its optimum.
    bits : ndarray of int (rounds + 1,)
        Bits delivered to the master in round t (the messages that arrived; 0 at t = 0).
    wall_time : ndarray (rounds + 1,)
        Cumulative simulated time (see :class:`gcdesign.latency.RoundTimes`), in time
        units (``wall_clock`` is its deprecated name).
    arrived : ndarray of int (rounds + 1,)
        Workers that arrived in round t.
    optimal_loss : float or None
    shrinkage : float
        The two-track factor c of the run (1: two-track off).
    test_accuracy : ndarray (rounds + 1,) or None
        Accuracy on the problem's held-out split (None when it has none).
    error_feedback : bool
    residual_norm : ndarray (rounds + 1,) or None
        Under error feedback, :math:`(\\sum_i \\|e_i\\|^2)^{1/2}` after round t; else None.
    """

    scheme: str
    optimizer: str
    problem: str
    loss: np.ndarray
    grad_norm: np.ndarray
    distance: np.ndarray | None
    bits: np.ndarray
    wall_time: np.ndarray
    arrived: np.ndarray
    optimal_loss: float | None = None
    shrinkage: float = 1.0
    test_accuracy: np.ndarray | None = None
    error_feedback: bool = False
    residual_norm: np.ndarray | None = None

    @property
    def wall_clock(self) -> np.ndarray:
        """Deprecated name of :attr:`wall_time` (removed in the next release)."""
        warnings.warn(
            "`History.wall_clock` is deprecated and will be removed in the next release; use `wall_time`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.wall_time

    @property
    def rounds(self) -> int:
        """Number of rounds run (``len(loss) - 1``)."""
        return int(self.loss.size - 1)

    @property
    def steps(self) -> int:
        """Deprecated name of :attr:`rounds` (warns; removed in the next release)."""
        warnings.warn(
            "History.steps is deprecated and will be removed in the next release; use History.rounds.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.rounds

    @property
    def total_bits(self) -> np.ndarray:
        """Cumulative bits delivered up to each round."""
        return np.cumsum(self.bits)

    @property
    def suboptimality(self) -> np.ndarray | None:
        """``loss - optimal_loss`` (None if the optimum is unknown)."""
        return None if self.optimal_loss is None else self.loss - self.optimal_loss

    def as_rows(self) -> list[dict]:
        """One dict per round (for CSV files); the same keys always, None where not applicable."""
        total = self.total_bits

        def at(values, t):
            return None if values is None else float(values[t])

        return [
            {
                "round": t,
                "loss": float(self.loss[t]),
                "grad_norm": float(self.grad_norm[t]),
                "distance": at(self.distance, t),
                "bits": int(self.bits[t]),
                "total_bits": int(total[t]),
                "wall_time": float(self.wall_time[t]),
                "arrived": int(self.arrived[t]),
                "test_accuracy": at(self.test_accuracy, t),
                "residual_norm": at(self.residual_norm, t),
            }
            for t in range(self.loss.size)
        ]


# ====================================================================== the loop
class ErrorFeedback:
    r"""The workers' residuals under error feedback (docs/math.md, section 12).

    Every worker in `rows` (those that hold data and send bits) keeps
    :math:`e_i \in R^d`, zero at the start. Each round it computes
    :math:`v_i = x_i + e_i`, sends :math:`Q_{b_i}(v_i)` and keeps
    :math:`e_i \leftarrow v_i - Q_{b_i}(v_i)`, whether or not the message arrives:
    a lost message takes its residual with it. All the rows are quantized in one
    call, in worker order (the uniforms of one ``rng.random((len(rows), d))``).
    """

    def __init__(self, rows, bits, dim: int, *, quantizer: str, bucket_size: int | None):
        self.rows = np.asarray(rows, dtype=np.int64)
        self.bits = np.asarray(bits, dtype=np.int64)[self.rows]
        self.quantizer = quantizer
        self.bucket_size = bucket_size
        self.residuals = np.zeros((self.rows.size, dim))

    def messages(self, encoding, grads, use, rng) -> np.ndarray:
        """The quantized messages of the workers flagged in `use` (in worker order); updates every residual.

        `use` must be a subset of `rows`. The used workers' ``x_i`` are computed as
        ``encoding[use] @ grads``, like the round loop without error feedback, so that
        with ``quantizer="none"`` (where ``e_i`` stays 0) the decoded gradient is bitwise the same.
        """
        used = np.asarray(use, dtype=bool)[self.rows]
        coded = np.empty_like(self.residuals)
        coded[used] = encoding[self.rows[used]] @ grads
        coded[~used] = encoding[self.rows[~used]] @ grads
        sent = coded + self.residuals
        from .._codec_kernels import quantize_rows_numba  # numba: imported when training runs

        quantized = quantize_rows_numba(
            sent, self.bits, quantizer=self.quantizer, bucket_size=self.bucket_size, rng=rng
        )
        self.residuals = sent - quantized
        return quantized[used]

    @property
    def norm(self) -> float:
        return float(np.sqrt(np.einsum("ij,ij->", self.residuals, self.residuals)))


class _Rounds:
    """Draws arrivals, encodes, quantizes and decodes: one gradient estimate per call.

    The same code for every scheme (:class:`gcdesign.schemes.SchemeLike`, checked once
    here). A worker with ``p_i = 0`` never straggles by the scheme's own account, so
    the master waits for it: with round times it arrives whenever it finishes and the
    round lasts until it has (the centralized reference has ``p = 0`` everywhere and
    waits for everyone); without round times nothing is drawn when no worker can
    straggle.
    """

    def __init__(self, problem, scheme, stragglers: RoundTimes | None, *, error_feedback: bool = False):
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
        self.feedback = None
        if error_feedback:
            self.feedback = ErrorFeedback(
                np.flatnonzero(self.active),
                self.bits,
                problem.dim,
                quantizer=self.quantizer,
                bucket_size=self.bucket_size,
            )

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
        if self.feedback is None:
            from .._codec_kernels import quantize_rows_numba  # numba: imported when training runs

            coded = self.encoding[idx] @ grads
            quantized = quantize_rows_numba(
                coded, self.bits[idx], quantizer=self.quantizer, bucket_size=self.bucket_size, rng=rng
            )
        else:
            quantized = self.feedback.messages(self.encoding, grads, use, rng)
        estimate = weights[idx] @ quantized
        return estimate, int(self.payload[senders].sum()), int(arrived.sum()), duration


class _Record:
    """The per-round arrays of a :class:`History` being filled in."""

    def __init__(self, problem, rounds: int, *, error_feedback: bool):
        self.problem = problem
        size = rounds + 1
        self.loss = np.empty(size)
        self.grad_norm = np.empty(size)
        self.distance = None if problem.optimum is None else np.empty(size)
        self.bits = np.zeros(size, dtype=np.int64)
        self.clock = np.zeros(size)
        self.arrived = np.zeros(size, dtype=np.int64)
        self.accuracy = None  # allocated when the problem reports a held-out accuracy
        self.residual_norm = np.zeros(size) if error_feedback else None

    def model(self, t: int, w) -> bool:
        """Record the model after round t; False when the loss is no longer finite."""
        self.loss[t], gradient = self.problem.loss_and_gradient(w)
        self.grad_norm[t] = np.linalg.norm(gradient)
        if self.distance is not None:
            self.distance[t] = np.linalg.norm(w - self.problem.optimum)
        accuracy = self.problem.test_accuracy(w)
        if accuracy is not None:
            if self.accuracy is None:
                self.accuracy = np.full(self.loss.size, np.nan)
            self.accuracy[t] = accuracy
        return bool(np.isfinite(self.loss[t]))

    def stop_after(self, t: int) -> None:
        """The run diverged at round t: keep the record honest for the rounds not run."""
        for values in (self.loss, self.grad_norm, self.distance):
            if values is not None:
                values[t + 1 :] = np.inf
        if self.accuracy is not None:
            self.accuracy[t + 1 :] = np.nan
        self.clock[t + 1 :] = self.clock[t]


def _train_iv(problem, optimizer, rounds, x0, error_feedback) -> tuple[int, np.ndarray, bool]:
    """The checks of :func:`train`'s arguments: (rounds, initial model, error_feedback)."""
    if not isinstance(problem, PROBLEM_TYPES):
        raise InputError(
            "`problem` must be a Problem or an MLPProblem (see make_problem, digits_problem, "
            "synthetic_problem, mlp_problem, digits_mlp_problem, synthetic_mlp_problem)."
        )
    if not isinstance(optimizer, Optimizer):
        raise InputError("`optimizer` must be an Optimizer (use gd(...), sgd(...) or adam(...)).")
    if not isinstance(error_feedback, bool | np.bool_):
        raise InputError(f"`error_feedback` must be True or False, got {error_feedback!r}.")
    rounds = positive_int("rounds", rounds)
    w = problem.initial_point() if x0 is None else np.array(x0, dtype=np.float64)
    if w.shape != (problem.dim,):
        raise InputError(f"`x0` must have shape ({problem.dim},), got {w.shape}.")
    return rounds, w, bool(error_feedback)


def train(
    problem,
    scheme,
    *,
    rounds: int = UNSET,
    optimizer: Optimizer,
    rng=None,
    stragglers: RoundTimes | None = None,
    x0=None,
    error_feedback: bool = False,
    steps: int = UNSET,
) -> History:
    """Run `rounds` rounds of `optimizer` on `problem` with gradients coded by `scheme`.

    Parameters
    ----------
    problem : Problem or MLPProblem
        A convex problem (:mod:`gcdesign.training.problems`) or an MLP
        (:mod:`gcdesign.training.mlp`).
    scheme : SchemeLike
        Anything that satisfies :class:`gcdesign.schemes.SchemeLike` (a Design, a
        Scheme, the :class:`Centralized` reference, ...) whose encoding has
        ``problem.partitions`` columns; see :func:`training_scheme`.
    rounds : int
        Number of rounds (optimizer updates), as in :func:`gcdesign.cluster.train`.
    optimizer : Optimizer
        From :func:`gd`, :func:`sgd` or :func:`adam`.
    rng : None, int or Generator
        The only source of randomness (arrivals, mini-batches, quantization):
        the same seed gives the same history, bit for bit, on any thread count
        (the run computes on one BLAS thread) and in any process.
    stragglers : RoundTimes, optional
        Draw round times against a deadline instead of Bernoulli arrivals.
    x0 : array_like, optional
        Initial model (default: the problem's initial point, zeros for a convex problem).
    error_feedback : bool
        Every worker keeps a residual and sends ``Q(x_i + e_i)`` (docs/math.md, section 12).
    steps : int
        Deprecated name of `rounds` (warns; removed in the next release).

    Returns
    -------
    History

    Examples
    --------
    >>> from gcdesign import ClusterProfile, design
    >>> from gcdesign.training import synthetic_problem, train, gd
    >>> prob = synthetic_problem("least-squares", partitions=4, rng=0)
    >>> code = design(ClusterProfile([0.1, 0.2, 0.3, 0.4], dim=prob.dim), bits_per_worker=6)
    >>> hist = train(prob, code, rounds=50, optimizer=gd(0.3), rng=1)
    >>> bool(hist.loss[-1] < hist.loss[0])
    True
    >>> ef = train(prob, code, rounds=50, optimizer=gd(0.3), rng=1, error_feedback=True)
    >>> ef.scheme, bool(ef.loss[-1] < ef.loss[0])
    ('joint+ef', True)
    """
    rounds = renamed_keyword("train", "steps", steps, "rounds", rounds, UNSET)
    if rounds is UNSET:
        raise TypeError("train() missing 1 required keyword-only argument: 'rounds'")
    rounds, w, error_feedback = _train_iv(problem, optimizer, rounds, x0, error_feedback)
    with single_blas_thread():  # the same sums, hence the same history, on any thread count
        return _train(
            problem, scheme, rounds, optimizer, np.random.default_rng(rng), stragglers, w, error_feedback
        )


def _train(problem, scheme, rounds, optimizer, rng, stragglers, w, error_feedback) -> History:
    """:func:`train` after its input checks (run on one BLAS thread)."""
    engine = _Rounds(problem, scheme, stragglers, error_feedback=error_feedback)
    shrink = 1.0
    if optimizer.method == "adam" and optimizer.two_track:
        shrink = shrinkage_factor(scheme, optimizer.lam, problem.dim)
    step = make_step(optimizer, problem.dim, shrink)
    record = _Record(problem, rounds, error_feedback=error_feedback)
    record.model(0, w)
    batch = optimizer.batch_size if optimizer.method != "gd" else None
    for t in range(rounds):
        estimate, record.bits[t + 1], record.arrived[t + 1], duration = engine.estimate(w, batch, rng)
        record.clock[t + 1] = record.clock[t] + duration
        if engine.feedback is not None:
            record.residual_norm[t + 1] = engine.feedback.norm
        w = step(w, estimate, t)
        if not record.model(t + 1, w):  # diverged: stop computing
            record.stop_after(t + 1)
            break
    return History(
        scheme=scheme.name + (EF_SUFFIX if error_feedback else ""),
        optimizer=optimizer.label,
        problem=problem.name,
        loss=record.loss,
        grad_norm=record.grad_norm,
        distance=record.distance,
        bits=record.bits,
        wall_time=record.clock,
        arrived=record.arrived,
        optimal_loss=problem.optimal_loss,
        shrinkage=shrink,
        test_accuracy=record.accuracy,
        error_feedback=error_feedback,
        residual_norm=record.residual_norm,
    )


def gradient_estimates(
    problem,
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
    with single_blas_thread():
        for r in range(rounds):
            out[r] = engine.estimate(w, batch_size, rng)[0]
    return out


def seeds(rng, count: int) -> list[int]:
    """`count` independent integer seeds drawn from `rng` (for repeated runs)."""
    count = positive_int("count", count)
    rng = np.random.default_rng(rng)  # a Generator is returned as is
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=count)]


__all__ = [
    "PROBLEM_TYPES",
    "ErrorFeedback",
    "History",
    "gradient_estimates",
    "seeds",
    "train",
]
