r"""Designs that follow the cluster: online re-profiling, a drift test, redesign with little movement.

docs/math.md, section 16. Three pieces, each usable alone, and :class:`Adapter`,
which runs them between the rounds of a cluster run (:func:`gcdesign.cluster.train`
with ``adapt=``):

* :class:`StragglerEstimator`: each worker's straggling probability from the
  rounds so far, a Beta prior centred on the initial profile, and forgetting
  (discounted Beta-Bernoulli).
* :class:`DriftTest`: a sliding-window binomial test per worker, both sides,
  with a Bonferroni-corrected level, so that on a stationary cluster the
  probability of an alarm in a round is at most ``false_alarm``.
* :func:`decide`: on an alarm, compare the current layout's error under the
  estimated profile (its decoder re-weighted, which moves nothing) with the
  re-optimized design's; redesign when the relative gain beats ``threshold`` plus
  the price of the data the move copies; the new layout is the segment layout
  closest to the old one (:func:`gcdesign.construction.closest_segment_layout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._validate import InputError, positive_int, real
from ..construction import closest_segment_layout, moved_partitions, segment_geometry


@dataclass(frozen=True)
class AdaptOptions:
    r"""How a run follows its cluster (``train(..., adapt=AdaptOptions(...))``; ``adapt=True``: defaults).

    Attributes
    ----------
    forgetting : float
        :math:`\gamma \in (0, 1]`: an outcome ``t`` rounds old weighs :math:`\gamma^t`;
        effective memory :math:`1 / (1 - \gamma)` rounds (default 0.95: 20 rounds).
    prior_rounds : float
        The initial profile counts as this many rounds observed before round 0
        (forgotten like them).
    smoothing : float
        Pseudo-rounds at the initial profile that are never forgotten: keeps every
        estimate strictly inside (0, 1).
    window : int
        Rounds in the drift test's window.
    false_alarm : float
        :math:`\alpha`: on a stationary cluster, the probability that the test
        alarms in a given round is at most this (Bonferroni over workers and sides).
    threshold : float
        :math:`\eta`: redesign when the current layout's error exceeds the
        re-optimized design's by more than this fraction (plus the movement price).
    move_cost : float
        Price of moving data, in relative error: copying all K partitions must gain
        this much more (copying m partitions, ``move_cost * m / K``). 0: movement is free.
    """

    forgetting: float = 0.95
    prior_rounds: float = 20.0
    smoothing: float = 1.0
    window: int = 20
    false_alarm: float = 0.01
    threshold: float = 0.05
    move_cost: float = 0.0

    def __post_init__(self):
        object.__setattr__(
            self, "forgetting", real("forgetting", self.forgetting, low=0, high=1, low_open=True)
        )
        object.__setattr__(self, "prior_rounds", real("prior_rounds", self.prior_rounds, low=0))
        object.__setattr__(self, "smoothing", real("smoothing", self.smoothing, low=0, low_open=True))
        object.__setattr__(self, "window", positive_int("window", self.window, minimum=2))
        object.__setattr__(
            self,
            "false_alarm",
            real("false_alarm", self.false_alarm, low=0, high=1, low_open=True, high_open=True),
        )
        object.__setattr__(self, "threshold", real("threshold", self.threshold, low=0))
        object.__setattr__(self, "move_cost", real("move_cost", self.move_cost, low=0))


def adapt_options(adapt) -> AdaptOptions | None:
    """The options `adapt` names: None / False (off), True (defaults), a dict or :class:`AdaptOptions`."""
    if adapt is None or adapt is False:
        return None
    if adapt is True:
        return AdaptOptions()
    if isinstance(adapt, AdaptOptions):
        return adapt
    if isinstance(adapt, dict):
        allowed = AdaptOptions.__dataclass_fields__
        unknown = sorted(set(adapt) - set(allowed))
        if unknown:
            raise InputError(f"`adapt` has unknown option(s) {unknown}; allowed: {', '.join(allowed)}.")
        return AdaptOptions(**adapt)
    raise InputError(f"`adapt` must be None, True, a dict or an AdaptOptions, got {type(adapt).__name__}.")


# ====================================================================== estimator
class StragglerEstimator:
    r"""Discounted Beta-Bernoulli estimate of each worker's straggling probability.

    With :math:`z_{ir} = 1` when worker i was late in round r, forgetting
    :math:`\gamma`, initial profile :math:`p^0`, `prior_rounds` :math:`n_0` and
    `smoothing` :math:`s`:

    .. math::

        A_i \leftarrow \gamma A_i + z_{ir}, \quad N_i \leftarrow \gamma N_i + 1, \quad
        A_i(0) = n_0 p^0_i,\ N_i(0) = n_0, \qquad
        \hat p_i = \frac{s\,p^0_i + A_i}{s + N_i}.

    The posterior mean of a Beta(:math:`s p^0 + A`, :math:`s (1 - p^0) + N - A`). The prior's
    :math:`n_0` rounds are forgotten like observed ones (a prior that never fades
    would hold the estimate at weight :math:`n_0 (1 - \gamma)` on the initial
    profile forever, so a worker that slowed 5x would never be seen as it is);
    :math:`s` is the small part that stays. Effective memory
    :math:`1 / (1 - \gamma)` rounds.

    Examples
    --------
    >>> est = StragglerEstimator([0.1, 0.5], forgetting=0.9, prior_rounds=10, smoothing=1)
    >>> for _ in range(100):
    ...     est.update([True, False])
    >>> est.straggler_probs.round(2).tolist()
    [0.92, 0.05]
    """

    def __init__(self, initial_probs, *, forgetting=0.95, prior_rounds=20.0, smoothing=1.0):
        self.prior = np.asarray(initial_probs, dtype=np.float64).copy()
        self.forgetting = float(forgetting)
        self.smoothing = float(smoothing)
        self.late = float(prior_rounds) * self.prior
        self.rounds = np.full(self.prior.size, float(prior_rounds))

    def update(self, late) -> None:
        """Add one round: `late` (N,) bool, True for a worker that missed the deadline."""
        z = np.asarray(late, dtype=np.float64)
        self.late = self.forgetting * self.late + z
        self.rounds = self.forgetting * self.rounds + 1.0

    @property
    def straggler_probs(self) -> np.ndarray:
        """:math:`\\hat p` (N,), strictly inside (0, 1) when the initial profile is."""
        return (self.smoothing * self.prior + self.late) / (self.smoothing + self.rounds)


# ====================================================================== drift test
def _binomial_limits(reference, window: int, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per worker: the smallest late count whose upper tail is <= level, the largest whose lower
    tail is <= level (-1: none) and the exact alarm probability of the pair under `reference`."""
    from scipy import stats

    counts = np.arange(window + 1)
    high = np.empty(reference.size, dtype=np.int64)
    low = np.empty(reference.size, dtype=np.int64)
    size = np.empty(reference.size)
    for i, p in enumerate(reference):
        upper = stats.binom.sf(counts - 1, window, p)  # P(X >= c)
        lower = stats.binom.cdf(counts, window, p)  # P(X <= c)
        ok_high = np.flatnonzero(upper <= level)
        ok_low = np.flatnonzero(lower <= level)
        high[i] = ok_high[0] if ok_high.size else window + 1
        low[i] = ok_low[-1] if ok_low.size else -1
        size[i] = (upper[high[i]] if high[i] <= window else 0.0) + (lower[low[i]] if low[i] >= 0 else 0.0)
    return high, low, size


class DriftTest:
    r"""Sliding-window binomial test of every worker's lateness against a reference profile.

    Over the last `window` rounds worker i was late :math:`X_i` times; under the
    reference :math:`p^{ref}_i` (a stationary cluster) :math:`X_i \sim
    \mathrm{Bin}(W, p^{ref}_i)`. The test alarms when some :math:`X_i` reaches the
    upper limit (:math:`P(X_i \ge h_i) \le \alpha / (2N)`) or falls to the lower
    one (:math:`P(X_i \le l_i) \le \alpha / (2N)`). By the union bound over the
    N workers and two sides, in each round with a full window

    .. math:: P(\text{alarm}) \le \sum_i P(X_i \ge h_i) + P(X_i \le l_i) = \text{size} \le \alpha,

    and :attr:`size` is the exact attained value of that sum (below
    :math:`\alpha`: the binomial is discrete). After :meth:`reset` (a new
    reference, an empty window) the test is silent for `window` rounds.

    Examples
    --------
    >>> test = DriftTest([0.1, 0.1], window=20, false_alarm=0.01)
    >>> test.size <= 0.01
    True
    >>> any(test.update([True, False]) for _ in range(20))
    True
    """

    def __init__(self, reference, *, window: int = 20, false_alarm: float = 0.01):
        self.window = int(window)
        self.false_alarm = float(false_alarm)
        self.reset(reference)

    def reset(self, reference) -> None:
        """Test against `reference` from now on, with an empty window."""
        self.reference = np.asarray(reference, dtype=np.float64).copy()
        n = self.reference.size
        self.high, self.low, per_worker = _binomial_limits(
            self.reference, self.window, self.false_alarm / (2 * n)
        )
        self.size = float(per_worker.sum())
        self.history = np.zeros((self.window, n), dtype=bool)
        self.count = np.zeros(n, dtype=np.int64)
        self.filled = 0

    def update(self, late) -> bool:
        """Add one round; True when the test alarms (some worker's count is out of its limits)."""
        late = np.asarray(late, dtype=bool)
        slot = self.filled % self.window
        if self.filled >= self.window:
            self.count -= self.history[slot]
        self.history[slot] = late
        self.count += late
        self.filled += 1
        if self.filled < self.window:
            return False
        return bool(np.any((self.count >= self.high) | (self.count <= self.low)))

    def drifted(self) -> np.ndarray:
        """The workers whose count is out of its limits now (bool, N)."""
        full = self.filled >= self.window
        return full & ((self.count >= self.high) | (self.count <= self.low))


# ====================================================================== decision
def fresh_design(design, straggler_probs):
    """The design the pipeline makes for `straggler_probs` with `design`'s budget and options."""
    from ..design import design as make_design
    from ..design import profile_like
    from ..quantization import QUANTIZATION_MODELS

    opts = design.options
    named = opts.get("quantization")
    model = (
        named if isinstance(named, str) and named in QUANTIZATION_MODELS and named != "calibrated" else None
    )
    return make_design(
        profile_like(design, straggler_probs),
        design.budget,
        allocator=opts.get("allocator", "auto"),
        construction=opts.get("construction", "segment"),
        order=opts.get("order", "grouped"),
        quantization=design.quantization if model is None else model,
        kappa_c=opts.get("kappa_c", 1.0),
        bucket_size=design.bucket_size,
        b_min=opts.get("b_min", 2),
        b_max=opts.get("b_max", 32),
        allocator_options={"allow_idle": True} if opts.get("allow_idle") else None,
    )


def closest_redesign(design, fresh):
    """`fresh`'s masses, bits and decoder on the segment layout closest to `design`'s.

    Returns ``(Design, moved, moved_fresh)``: the partition copies of the closest
    layout and of `fresh`'s own layout, both counted against `design`'s layout.
    """
    from ..design import assemble_design

    moved_fresh = moved_partitions(design.encoding, fresh.encoding)
    if fresh.options.get("construction", "segment") != "segment":
        return fresh, moved_fresh, moved_fresh
    fresh_order, _ = segment_geometry(fresh.encoding)
    layout, info = closest_segment_layout(
        fresh.row_mass, fresh.partitions, design.encoding, orders=[fresh_order]
    )
    if info["moved"] >= moved_fresh:
        return fresh, moved_fresh, moved_fresh
    closest = assemble_design(
        fresh.profile,
        layout,
        fresh.decoding,
        fresh.bits,
        fresh.budget,
        fresh.delta,
        fresh.bound,
        dict(fresh.options),
        fresh.allocation,
        quantization=fresh.quantization,
        bucket_size=fresh.bucket_size,
    )
    return closest, info["moved"], moved_fresh


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` chose and why (one per alarm).

    Attributes
    ----------
    action : {"redesign", "reweight"}
    design : the design to run from now on
    current_error, fresh_error : float
        Lemma 1 bounds under the estimate: the current layout (re-weighted) and the re-optimized design.
    gain : float
        ``current_error / fresh_error - 1``.
    moved, moved_fresh : int
        Partition copies of the chosen closest layout and of a fresh layout (0 / the fresh count
        for a re-weight: what a redesign would have moved).
    required : float
        The gain a redesign needed: ``threshold + move_cost * moved / K``.
    """

    action: str
    design: object
    current_error: float
    fresh_error: float
    gain: float
    moved: int
    moved_fresh: int
    required: float


def decide(design, straggler_probs, options: AdaptOptions) -> Decision:
    r"""Redesign or re-weight `design` for the estimate `straggler_probs` (docs/math.md, section 16).

    Redesign when :math:`E(D; \hat p) / E(D^*(\hat p); \hat p) - 1 > \eta + c\,m / K`,
    with :math:`m` the partition copies of the closest layout and :math:`c` the
    `move_cost`; otherwise only the decoder is re-weighted (no data moves).
    """
    from ..design import layout_error, reweight

    p_hat = np.asarray(straggler_probs, dtype=np.float64)
    current = layout_error(design, p_hat)
    fresh = fresh_design(design, p_hat)
    candidate, moved, moved_fresh = closest_redesign(design, fresh)
    gain = current / fresh.bound - 1.0
    required = options.threshold + options.move_cost * moved / design.partitions
    if gain > required:
        return Decision("redesign", candidate, current, fresh.bound, gain, moved, moved_fresh, required)
    return Decision("reweight", reweight(design, p_hat), current, fresh.bound, gain, 0, moved_fresh, required)


# ====================================================================== the loop
@dataclass
class AdaptRecord:
    """One entry per alarm: the round, the decision's numbers and the estimate."""

    round: int
    action: str
    gain: float
    required: float
    moved: int
    moved_fresh: int
    current_error: float
    fresh_error: float
    straggler_probs: np.ndarray = field(repr=False)


class Adapter:
    """Estimator + drift test + decision, run between rounds (the cluster engine calls :meth:`observe`).

    Examples
    --------
    >>> from gcdesign import design, load_example
    >>> code = design(load_example("toy-n8"), bits_per_worker=4)
    >>> adapter = Adapter(code, AdaptOptions(window=10))
    >>> late = np.zeros(8, dtype=bool); late[0] = True   # worker 0 always late now
    >>> changed = [adapter.observe(r, late) for r in range(30)]
    >>> adapter.records[0].action, bool(adapter.design.straggler_probs[0] > 0.5)
    ('redesign', True)
    """

    def __init__(self, design, options: AdaptOptions):
        from ..design import Design

        if not isinstance(design, Design):
            raise InputError(
                "`adapt` needs a Design made by gcdesign.design (a scheme cannot be re-optimized)."
            )
        self.options = options
        self.design = design
        p0 = design.straggler_probs
        self.estimator = StragglerEstimator(
            p0, forgetting=options.forgetting, prior_rounds=options.prior_rounds, smoothing=options.smoothing
        )
        self.test = DriftTest(p0, window=options.window, false_alarm=options.false_alarm)
        self.records: list[AdaptRecord] = []
        self.last: dict | None = None

    def observe(self, round_index: int, late) -> bool:
        """Add round `round_index`'s outcomes; True when :attr:`design` changed (re-weighted, redesigned)."""
        self.estimator.update(late)
        if not self.test.update(late):
            return False
        p_hat = self.estimator.straggler_probs
        decision = decide(self.design, p_hat, self.options)
        self.design = decision.design
        self.test.reset(p_hat)
        self.records.append(
            AdaptRecord(
                round_index,
                decision.action,
                decision.gain,
                decision.required,
                decision.moved,
                decision.moved_fresh,
                decision.current_error,
                decision.fresh_error,
                p_hat.copy(),
            )
        )
        self.last = {
            "round": round_index,
            "action": decision.action,
            "gain": decision.gain,
            "required": decision.required,
            "moved": decision.moved,
            "moved_fresh": decision.moved_fresh,
            "current_error": decision.current_error,
            "fresh_error": decision.fresh_error,
        }
        return True

    @property
    def redesigns(self) -> list[AdaptRecord]:
        return [r for r in self.records if r.action == "redesign"]


class Schedule:
    """Designs switched at given rounds, whatever the lateness (the drift study's oracle).

    ``initial`` is the design the run starts with, ``designs`` maps a round to the
    design that runs from that round on; :meth:`observe` after round ``r - 1``
    switches to ``designs[r]``. ``last["moved"]`` counts the partition copies of
    each switch, ``last["moved_fresh"]`` those of ``fresh[r]`` (the same design on a
    fresh layout) when given.
    """

    def __init__(self, initial, designs: dict, *, fresh: dict | None = None):
        self.designs = dict(designs)
        self.fresh = dict(fresh or {})
        self.design = initial
        self.last: dict | None = None

    def observe(self, round_index: int, late) -> bool:
        nxt = self.designs.get(round_index + 1)
        if nxt is None:
            return False
        moved = moved_partitions(self.design.encoding, nxt.encoding)
        fresh = self.fresh.get(round_index + 1)
        moved_fresh = None if fresh is None else moved_partitions(self.design.encoding, fresh.encoding)
        self.design = nxt
        self.last = {"round": round_index, "action": "redesign", "moved": moved, "moved_fresh": moved_fresh}
        return True


def false_alarm_rate(straggler_probs, *, rounds: int, options: AdaptOptions | None = None, rng=None) -> dict:
    """Alarms per round of :class:`DriftTest` on a simulated stationary cluster (Bernoulli lateness).

    The test never resets here (every round after the first window is one trial of the promise).
    Returns ``{"rate", "stderr", "alarms", "trials", "size", "promised"}``: the measured rate,
    its standard error (batch means, the rounds overlap), the exact attained size and ``false_alarm``.
    """
    options = AdaptOptions() if options is None else options
    p = np.asarray(straggler_probs, dtype=np.float64)
    rounds = positive_int("rounds", rounds, minimum=options.window + 1)
    gen = np.random.default_rng(rng)
    late = gen.random((rounds, p.size)) < p
    test = DriftTest(p, window=options.window, false_alarm=options.false_alarm)
    alarms = np.array([test.update(row) for row in late])[options.window - 1 :]
    batches = np.array_split(alarms.astype(np.float64), max(2, alarms.size // (10 * options.window)))
    means = np.array([b.mean() for b in batches])
    return {
        "rate": float(alarms.mean()),
        "stderr": float(means.std(ddof=1) / math.sqrt(means.size)),
        "alarms": int(alarms.sum()),
        "trials": int(alarms.size),
        "size": test.size,
        "promised": options.false_alarm,
    }


__all__ = [
    "AdaptOptions",
    "AdaptRecord",
    "Adapter",
    "Decision",
    "Schedule",
    "DriftTest",
    "StragglerEstimator",
    "adapt_options",
    "closest_redesign",
    "decide",
    "false_alarm_rate",
    "fresh_design",
]
