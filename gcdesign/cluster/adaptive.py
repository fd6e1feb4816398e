r"""Designs that follow the cluster: online re-profiling, a drift test, redesign with little movement.

docs/math.md, section 13. Three pieces, each usable alone, and :class:`Adapter`,
which runs them between the rounds of a cluster run (:func:`gcdesign.cluster.train`
with ``adapt=``):

* :class:`StragglerEstimator`: each worker's straggling probability from the
  rounds so far, a Beta prior centred on the initial profile, and forgetting
  (discounted Beta-Bernoulli).
* :class:`DriftTest`: each worker's lateness in the last rounds against its own
  earlier rounds since the last anchor (Fisher's exact test, both sides,
  Bonferroni over workers and sides). It never compares with the declared
  profile, so on a stationary cluster the probability of an alarm in a tested
  round is at most ``false_alarm`` whatever the true probabilities are.
* :func:`decide`: on an alarm, only the workers the test flagged move to their
  estimate (the others keep the design's probabilities: no decoder weight
  follows noise); compare the current layout's error under that profile (its
  decoder re-weighted, which moves nothing) with the re-optimized design's;
  redesign when the relative gain beats ``threshold`` plus the price of the
  data the move copies; the new layout is the segment layout closest to the
  old one (:func:`gcdesign.construction.closest_segment_layout`). Every alarm
  re-anchors the test on the rounds that follow.
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
        Rounds in the drift test's window (:class:`DriftTest`).
    calibration : int or None
        Reference rounds the test needs before it tests (default: `window`); after
        the run's start and after every alarm the test is silent for
        ``calibration + window - 1`` rounds.
    reference : int or None
        Most reference rounds kept (default: ``4 * window``).
    false_alarm : float
        :math:`\alpha`: on a stationary cluster (independent rounds, constant
        probabilities since the last anchor, whatever their values), the
        probability that the test alarms in a tested round is at most this.
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
    calibration: int | None = None
    reference: int | None = None
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
        if self.calibration is not None:
            object.__setattr__(self, "calibration", positive_int("calibration", self.calibration))
        if self.reference is not None:
            low = self.window if self.calibration is None else self.calibration
            object.__setattr__(self, "reference", positive_int("reference", self.reference, minimum=low))
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
def _fisher_limits(reference_rounds: int, window: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """For every total t = 0..M+W of late rounds among the M reference and W window rounds: the
    smallest window count whose upper tail under Hypergeom(M + W, t, W) is <= level (W + 1: none)
    and the largest whose lower tail is (-1: none)."""
    from scipy import stats

    m = int(reference_rounds)
    totals = np.arange(m + window + 1)[:, None]
    counts = np.arange(window + 1)[None, :]
    dist = stats.hypergeom(m + window, totals, window)
    upper = dist.sf(counts - 1)  # P(X >= x | t)
    lower = dist.cdf(counts)  # P(X <= x | t)
    ok_high, ok_low = upper <= level, lower <= level
    high = np.where(ok_high.any(axis=1), ok_high.argmax(axis=1), window + 1)
    low = np.where(ok_low.any(axis=1), window - ok_low[:, ::-1].argmax(axis=1), -1)
    return high.astype(np.int64), low.astype(np.int64)


class DriftTest:
    r"""Does any worker's lateness in the last `window` rounds differ from its own earlier rounds?

    The test never uses a declared profile: its reference is the data. Since the
    last :meth:`reset` (the anchor: the run's start, then every alarm) the rounds
    split into the window (the last :math:`W`) and the reference (up to
    `reference` rounds before the window, :math:`M` of them). Worker i was late
    :math:`X_i` times in the window and :math:`Y_i` times in the reference. If
    its lateness is one Bernoulli(:math:`p_i`) per round since the anchor,
    whatever :math:`p_i`, then given the total :math:`t_i = X_i + Y_i` the
    window count is hypergeometric, :math:`X_i \mid t_i \sim
    \mathrm{Hypergeom}(M + W, t_i, W)` (Fisher's exact test). The test alarms
    when some :math:`X_i` reaches the upper limit :math:`h(t_i)`
    (:math:`P(X \ge h \mid t) \le \alpha / (2N)`) or falls to the lower one
    :math:`l(t_i)` (:math:`P(X \le l \mid t) \le \alpha / (2N)`), and tests only
    once the reference holds `calibration` rounds (silent for the first
    `calibration + window - 1` rounds after an anchor).

    **Promise.** On a cluster whose lateness outcomes are independent across
    rounds with per-worker probabilities that stay constant since the last
    anchor (any values: the declared profile may be wrong, the probabilities
    may depend on the design, which only changes at an anchor), the
    probability that the test alarms in any round it tests is at most
    ``false_alarm``: conditionally on the totals each worker's two sides hold
    :math:`\alpha / N`, and the union bound over the N workers gives
    :math:`\alpha`. The rounds after an anchor are independent of the alarm
    that set it, so the promise holds again in every later tested round, and
    the expected number of alarms in T tested rounds is at most
    :math:`\alpha T`. :meth:`size` is the exact attained probability under
    given :math:`p` (below :math:`\alpha`: the test is discrete and conditional).

    Examples
    --------
    >>> test = DriftTest(2, window=10, calibration=10, false_alarm=0.01)
    >>> [test.update([False, False]) for _ in range(19)].count(True)
    0
    >>> any(test.update([True, False]) for _ in range(10))  # worker 0 now always late
    True
    >>> test.drifted().tolist()
    [True, False]
    """

    def __init__(
        self, n_workers: int, *, window: int = 20, calibration=None, reference=None, false_alarm: float = 0.01
    ):
        self.n = positive_int("n_workers", n_workers)
        self.window = positive_int("window", window, minimum=2)
        self.calibration = self.window if calibration is None else positive_int("calibration", calibration)
        self.reference = (
            max(4 * self.window, self.calibration)
            if reference is None
            else positive_int("reference", reference, minimum=self.calibration)
        )
        self.false_alarm = float(false_alarm)
        self.level = self.false_alarm / (2 * self.n)
        self._limits: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.reset()

    def limits(self, reference_rounds: int) -> tuple[np.ndarray, np.ndarray]:
        """``(high, low)`` (each indexed by the total t) for `reference_rounds` reference rounds."""
        if reference_rounds not in self._limits:
            self._limits[reference_rounds] = _fisher_limits(reference_rounds, self.window, self.level)
        return self._limits[reference_rounds]

    def reset(self) -> None:
        """Anchor here: forget every round so far (after an alarm, a redesign)."""
        span = self.reference + self.window
        self.history = np.zeros((span, self.n), dtype=np.int64)
        self.filled = 0
        self.window_count = np.zeros(self.n, dtype=np.int64)
        self.reference_count = np.zeros(self.n, dtype=np.int64)
        self._out = np.zeros(self.n, dtype=bool)

    @property
    def reference_rounds(self) -> int:
        """:math:`M`: the reference rounds now (0 until the window is full)."""
        return min(max(self.filled - self.window, 0), self.reference)

    @property
    def testing(self) -> bool:
        """The reference holds `calibration` rounds: the last :meth:`update` was a tested round."""
        return self.reference_rounds >= self.calibration

    def update(self, late) -> bool:
        """Add one round (`late`: (N,) bool); True when the test alarms in this round."""
        late = np.asarray(late, dtype=bool).astype(np.int64)
        if late.shape != (self.n,):
            raise InputError(f"`late` must be {self.n} booleans, got shape {late.shape}.")
        span = self.history.shape[0]
        f = self.filled
        if f >= self.window:  # the round leaving the window joins the reference
            leaving = self.history[(f - self.window) % span]
            self.window_count -= leaving
            self.reference_count += leaving
        if f >= span:  # the oldest reference round leaves
            self.reference_count -= self.history[f % span]
        self.history[f % span] = late
        self.window_count += late
        self.filled = f + 1
        if not self.testing:
            self._out[:] = False
            return False
        high, low = self.limits(self.reference_rounds)
        total = self.window_count + self.reference_count
        self._out = (self.window_count >= high[total]) | (self.window_count <= low[total])
        return bool(self._out.any())

    def drifted(self) -> np.ndarray:
        """The workers out of their limits in the last round (bool, N)."""
        return self._out.copy()

    def size(self, straggler_probs, reference_rounds=None) -> float:
        """The exact probability of an alarm in a tested round when worker i is late with probability
        ``straggler_probs[i]`` every round (`reference_rounds`: M, default the largest)."""
        from scipy import stats

        p = np.asarray(straggler_probs, dtype=np.float64)
        m = self.reference if reference_rounds is None else int(reference_rounds)
        high, low = self.limits(m)
        totals = np.arange(m + self.window + 1)
        dist = stats.hypergeom(m + self.window, totals, self.window)
        tails = dist.sf(high - 1) * (high <= self.window) + dist.cdf(low) * (low >= 0)
        weights = stats.binom.pmf(totals[None, :], m + self.window, p[:, None])  # P(t) per worker
        per_worker = (weights * tails[None, :]).sum(axis=1)
        return float(1.0 - np.prod(1.0 - per_worker))  # workers independent


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
    from ..design import reweight

    p_hat = np.asarray(straggler_probs, dtype=np.float64)
    reweighted = reweight(design, p_hat)  # its bound is the current layout's error under p_hat
    current = reweighted.bound
    fresh = fresh_design(design, p_hat)
    candidate, moved, moved_fresh = closest_redesign(design, fresh)
    gain = current / fresh.bound - 1.0
    required = options.threshold + options.move_cost * moved / design.partitions
    if gain > required:
        return Decision("redesign", candidate, current, fresh.bound, gain, moved, moved_fresh, required)
    return Decision("reweight", reweighted, current, fresh.bound, gain, 0, moved_fresh, required)


# ====================================================================== the loop
@dataclass
class AdaptRecord:
    """One entry per design change: the round, the decision's numbers, the flagged workers, the
    profile decided for and the cause (``"alarm"``, or ``"calibrated"``: the flagged workers'
    rates measured over the `calibration` rounds after their alarm)."""

    round: int
    action: str
    gain: float
    required: float
    moved: int
    moved_fresh: int
    current_error: float
    fresh_error: float
    straggler_probs: np.ndarray = field(repr=False)
    drifted: np.ndarray = field(default=None, repr=False)
    cause: str = "alarm"


def damped_profile(current, estimate, drifted) -> np.ndarray:
    """The profile a decision uses: `estimate` for the `drifted` workers, `current` for the others."""
    target = np.asarray(current, dtype=np.float64).copy()
    drifted = np.asarray(drifted, dtype=bool)
    target[drifted] = np.asarray(estimate, dtype=np.float64)[drifted]
    return target


class Adapter:
    """Estimator + drift test + decision, run between rounds (the cluster engine calls :meth:`observe`).

    After every round the estimator and the test see who was late. On an alarm
    the workers the test flagged take their estimate, the others keep the
    design's probabilities (:func:`damped_profile`: a worker that did not drift
    keeps its decoder weight, which never follows the estimate's noise),
    :func:`decide` redesigns or re-weights for that profile, and the test
    re-anchors: it calibrates on the rounds under the new design before it
    tests again. The estimate at an alarm lags (it still remembers the rounds
    before the change), so `calibration` rounds later the flagged workers take
    their rate over those rounds, all after the alarm, and :func:`decide` runs
    once more (``cause="calibrated"``; a redesign then re-anchors the test again).
    Nothing changes without an alarm, so on a stationary cluster the design
    changes at most in the rounds the test's promise bounds and the ones
    `calibration` rounds after them.

    Examples
    --------
    >>> from gcdesign import design, load_example
    >>> code = design(load_example("toy-n8"), bits_per_worker=4)
    >>> adapter = Adapter(code, AdaptOptions(window=10))
    >>> rng = np.random.default_rng(0)
    >>> for r in range(60):
    ...     late = rng.random(8) < code.straggler_probs
    ...     late[0] |= r >= 30                      # worker 0 always late from round 30
    ...     changed = adapter.observe(r, late)
    >>> [(rec.round, rec.cause, rec.action, rec.drifted.nonzero()[0].tolist()) for rec in adapter.records]
    [(35, 'alarm', 'redesign', [0]), (45, 'calibrated', 'reweight', [0])]
    >>> bool(adapter.design.straggler_probs[0] > 0.5)
    True
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
        self.test = drift_test(p0.size, options)
        self.records: list[AdaptRecord] = []
        self.last: dict | None = None
        self._follow: dict | None = None  # the workers an alarm flagged, counted since it
        self.tested = 0  # rounds the drift test tested (each one a trial of its promise)

    def observe(self, round_index: int, late) -> bool:
        """Add round `round_index`'s outcomes; True when :attr:`design` changed (re-weighted, redesigned)."""
        late = np.asarray(late, dtype=bool)
        self.estimator.update(late)
        if self._follow is not None:
            self._follow["late"] += late
            self._follow["rounds"] += 1
        alarm = self.test.update(late)
        self.tested += self.test.testing
        if alarm:
            drifted = self.test.drifted()
            p_new = damped_profile(self.design.straggler_probs, self.estimator.straggler_probs, drifted)
            self._decide(round_index, "alarm", p_new, drifted, anchor=True)
            self._follow = {"drifted": drifted, "late": np.zeros(late.size), "rounds": 0}
            return True
        follow = self._follow
        if follow is None or follow["rounds"] < self.test.calibration:
            return False
        # the flagged workers' rates since the alarm: data after the change only
        s = self.options.smoothing
        rate = (follow["late"] + s * self.estimator.straggler_probs) / (follow["rounds"] + s)
        self._follow = None
        p_new = damped_profile(self.design.straggler_probs, rate, follow["drifted"])
        return self._decide(round_index, "calibrated", p_new, follow["drifted"], anchor=False)

    def _decide(self, round_index, cause, p_new, drifted, *, anchor) -> bool:
        decision = decide(self.design, p_new, self.options)
        if decision.action == "redesign" or anchor:
            self.test.reset()  # the test calibrates on the rounds under the new design
        elif np.array_equal(p_new, self.design.straggler_probs):
            return False
        self.design = decision.design
        record = AdaptRecord(
            round_index,
            decision.action,
            decision.gain,
            decision.required,
            decision.moved,
            decision.moved_fresh,
            decision.current_error,
            decision.fresh_error,
            p_new.copy(),
            drifted.copy(),
            cause,
        )
        self.records.append(record)
        self.last = {
            "round": round_index,
            "action": decision.action,
            "cause": cause,
            "gain": decision.gain,
            "required": decision.required,
            "moved": decision.moved,
            "moved_fresh": decision.moved_fresh,
            "current_error": decision.current_error,
            "fresh_error": decision.fresh_error,
            "drifted": [int(i) for i in np.flatnonzero(drifted)],
        }
        return True

    @property
    def redesigns(self) -> list[AdaptRecord]:
        return [r for r in self.records if r.action == "redesign"]


def drift_test(n_workers: int, options: AdaptOptions) -> DriftTest:
    """The :class:`DriftTest` that `options` describe, for `n_workers` workers."""
    return DriftTest(
        n_workers,
        window=options.window,
        calibration=options.calibration,
        reference=options.reference,
        false_alarm=options.false_alarm,
    )


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
    """Alarms per tested round of :class:`DriftTest` on a simulated stationary cluster (Bernoulli lateness).

    The test runs as in a run: every alarm re-anchors it (silent for ``calibration + window - 1``
    rounds). Returns ``{"rate", "low", "high", "alarms", "trials", "size", "promised"}``: the
    measured rate per tested round, its exact 95 % interval (:func:`rate_interval`), the alarms,
    the tested rounds, the exact attained size under `straggler_probs` (full reference) and
    ``false_alarm``.
    """
    options = AdaptOptions() if options is None else options
    p = np.asarray(straggler_probs, dtype=np.float64)
    rounds = positive_int("rounds", rounds, minimum=1)
    late = np.random.default_rng(rng).random((rounds, p.size)) < p
    test = drift_test(p.size, options)
    alarms = trials = 0
    for row in late:
        alarm = test.update(row)
        trials += test.testing
        if alarm:
            alarms += 1
            test.reset()
    low, high = rate_interval(alarms, trials)
    return {
        "rate": alarms / trials if trials else math.nan,
        "low": low,
        "high": high,
        "alarms": alarms,
        "trials": trials,
        "size": test.size(p),
        "promised": options.false_alarm,
    }


def rate_interval(events: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a rate from `events` in `trials` (``(nan, nan)``: no trial).

    Examples
    --------
    >>> [round(x, 4) for x in rate_interval(0, 1000)]
    [0.0, 0.0037]
    """
    from scipy import stats

    if trials <= 0:
        return math.nan, math.nan
    tail = (1 - level) / 2
    low = 0.0 if events == 0 else float(stats.beta.ppf(tail, events, trials - events + 1))
    high = 1.0 if events == trials else float(stats.beta.ppf(1 - tail, events + 1, trials - events))
    return low, high


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
    "damped_profile",
    "decide",
    "drift_test",
    "false_alarm_rate",
    "fresh_design",
    "rate_interval",
]
