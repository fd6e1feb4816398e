"""Online re-profiling, drift test, redesign with minimal movement (gcdesign.cluster.adaptive)."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from gcdesign import ClusterProfile, design, load_example
from gcdesign._validate import InputError
from gcdesign.cluster.adaptive import (
    Adapter,
    AdaptOptions,
    DriftTest,
    StragglerEstimator,
    adapt_options,
    closest_redesign,
    decide,
    false_alarm_rate,
    fresh_design,
)
from gcdesign.construction import closest_segment_layout, moved_partitions, segment_layout
from gcdesign.design import layout_error, reweight
from gcdesign.structure import error_bound


def _code(p, bits=4, k=None):
    return design(ClusterProfile(p, dim=100, partitions=k), bits_per_worker=bits)


# ---------------------------------------------------------------- estimator
def test_estimator_converges_to_truth_within_its_spread():
    rng = np.random.default_rng(1)
    truth = np.array([0.05, 0.2, 0.5, 0.8])
    gamma = 0.99
    est = StragglerEstimator([0.3] * 4, forgetting=gamma, prior_rounds=20, smoothing=1)
    trail = []
    for r in range(4000):
        est.update(rng.random(4) < truth)
        if r >= 2000:
            trail.append(est.straggler_probs)
    trail = np.array(trail)
    # the discounted mean has variance p(1-p)(1-gamma)/(1+gamma); its time average is much tighter
    sd = np.sqrt(truth * (1 - truth) * (1 - gamma) / (1 + gamma))
    assert np.all(np.abs(trail[-1] - truth) < 4 * sd)
    # its time average is about the mean of 2000 outcomes, pulled by the smoothing (1 of 101 rounds)
    tol = 4 * np.sqrt(truth * (1 - truth) / 2000) + np.abs(0.3 - truth) / 101
    assert np.all(np.abs(trail.mean(axis=0) - truth) < tol)


def test_estimator_forgets_and_follows_a_change():
    est = StragglerEstimator([0.1], forgetting=0.9, prior_rounds=20, smoothing=1)
    for _ in range(200):
        est.update([True])
    # every outcome late: the estimate is (s p0 + A)/(s + N) with A = N -> 1/(1-gamma)
    memory = 1 / (1 - 0.9)
    assert est.straggler_probs[0] == pytest.approx((0.1 + memory) / (1 + memory), abs=1e-6)
    never_fading = StragglerEstimator([0.1], forgetting=1.0, prior_rounds=20, smoothing=1)
    for _ in range(20):
        never_fading.update([True])
    assert never_fading.straggler_probs[0] == pytest.approx((0.1 + 2 + 20) / 41)


# ---------------------------------------------------------------- drift test
@pytest.mark.parametrize("p", [[0.1] * 8, [0.02, 0.1, 0.3, 0.5, 0.7, 0.9]])
def test_false_alarm_rate_measured_against_the_promise(p):
    options = AdaptOptions(window=10, false_alarm=0.05)
    res = false_alarm_rate(p, rounds=30_000, options=options, rng=3)
    assert res["size"] <= options.false_alarm
    # the measured per-tested-round rate keeps the promise (its exact interval's low end below it) ...
    assert res["low"] <= options.false_alarm and res["alarms"] > 0
    # ... and is no larger than the exact attained size (re-anchoring after an alarm only removes alarms)
    assert res["low"] <= res["size"]


def test_the_promise_holds_whatever_the_true_profile_and_the_declared_one_is_never_used():
    # a cluster much slower than any declared profile: the test compares each worker with itself
    p = np.array([0.9, 0.6, 0.3, 0.05])
    options = AdaptOptions(window=8, calibration=8, false_alarm=0.05)
    res = false_alarm_rate(p, rounds=20_000, options=options, rng=0)
    assert res["low"] <= res["size"] <= options.false_alarm


def test_drift_test_limits_are_the_hypergeometric_quantiles():
    from scipy import stats

    test = DriftTest(2, window=20, false_alarm=0.02)
    level = 0.02 / 4
    for m in (20, 45, 80):
        high, low = test.limits(m)
        for t in range(0, m + 21, 7):
            dist = stats.hypergeom(m + 20, t, 20)
            h, lo = high[t], low[t]
            if h <= 20:
                assert dist.sf(h - 1) <= level < dist.sf(h - 2)
            else:
                assert dist.sf(20 - 1) > level
            if lo >= 0:
                assert dist.cdf(lo) <= level < dist.cdf(lo + 1)
            else:
                assert dist.cdf(0) > level


def test_drift_test_counts_match_the_obvious_sums_and_it_waits_for_calibration():
    rng = np.random.default_rng(4)
    late = rng.random((300, 3)) < [0.2, 0.5, 0.7]
    test = DriftTest(3, window=10, calibration=15, reference=30, false_alarm=0.3)
    for r, row in enumerate(late):
        alarm = test.update(row)
        window = late[max(0, r - 9) : r + 1].sum(axis=0)
        ref = late[max(0, r - 39) : max(0, r - 9)].sum(axis=0)
        assert np.array_equal(test.window_count, window) and np.array_equal(test.reference_count, ref)
        assert test.testing == (r >= 24)
        assert not alarm or r >= 24
        if r >= 39:  # a full reference: the flags are the limits at the totals
            high, low = test.limits(30)
            total = window + ref
            assert np.array_equal(test.drifted(), (window >= high[total]) | (window <= low[total]))
    test.reset()
    assert test.filled == 0 and not test.testing and not test.window_count.any()
    assert not any(test.update([True, True, True]) for _ in range(24))  # silent while it calibrates


def test_drift_test_size_is_the_simulated_alarm_probability():
    test = DriftTest(3, window=10, calibration=30, reference=30, false_alarm=0.2)
    p = np.array([0.1, 0.4, 0.8])
    rng = np.random.default_rng(0)
    n = 200_000
    high, low = test.limits(30)
    x = rng.binomial(10, p, (n, 3))
    t = x + rng.binomial(30, p, (n, 3))
    alarm = ((x >= high[t]) | (x <= low[t])).any(axis=1).mean()
    assert alarm == pytest.approx(test.size(p), abs=4 * math.sqrt(test.size(p) / n))
    assert test.size(p) <= 0.2


def test_drift_test_detects_a_slow_worker_and_a_recovery():
    rng = np.random.default_rng(0)
    for before, after in [(0.1, 0.63), (0.7, 0.02)]:
        test = DriftTest(6, window=20, false_alarm=0.01)
        p = np.full(6, before)
        hits = [test.update(rng.random(6) < p) for _ in range(40)]
        p[2] = after
        assert not any(hits)
        for _ in range(40):
            if test.update(rng.random(6) < p):
                break
        else:
            raise AssertionError("no alarm in 40 rounds after the change")
        assert test.drifted()[2]


# ---------------------------------------------------------------- decision
def test_layout_error_is_the_bound_under_the_designs_own_profile_and_reweight_is_unbiased():
    code = _code(load_example("paper-n50").straggler_probs, bits=7)
    assert layout_error(code, code.straggler_probs) == pytest.approx(code.bound, rel=1e-10)
    rng = np.random.default_rng(5)
    p_hat = np.clip(code.straggler_probs * rng.uniform(0.5, 1.5, code.n_workers), 0.01, 0.99)
    moved = reweight(code, p_hat)  # validate() inside checks (U) under p_hat to 1e-9
    assert (moved.encoding != code.encoding).nnz == 0
    row_sum = moved.decoding * np.asarray(moved.encoding.sum(axis=1)).ravel()
    assert layout_error(code, p_hat) == pytest.approx(error_bound(p_hat, code.delta, row_sum), rel=1e-12)
    # the re-optimized design is never worse than the re-weighted old one
    assert fresh_design(code, p_hat).bound <= layout_error(code, p_hat) * (1 + 1e-12)


def test_decide_keeps_a_design_that_is_still_right_and_redesigns_a_wrong_one():
    p = np.array([0.05, 0.1, 0.1, 0.2, 0.3, 0.3, 0.4, 0.5])
    code = _code(p)
    same = decide(code, p, AdaptOptions())
    assert same.action == "reweight" and same.gain == pytest.approx(0.0, abs=1e-9)
    slowed = p.copy()
    slowed[0] = 0.7  # the most reliable worker slows down
    changed = decide(code, slowed, AdaptOptions())
    assert changed.action == "redesign" and changed.gain > 0.05
    assert changed.moved <= changed.moved_fresh
    assert np.allclose(changed.design.straggler_probs, slowed)
    # a movement price large enough forbids it
    priced = decide(code, slowed, AdaptOptions(move_cost=1e6))
    assert priced.action == "reweight" and priced.required > priced.gain


def test_adapt_options_parsing_and_errors():
    assert adapt_options(None) is None and adapt_options(False) is None
    assert adapt_options(True) == AdaptOptions()
    assert adapt_options({"window": 30}).window == 30
    with pytest.raises(InputError, match="unknown option"):
        adapt_options({"windows": 3})
    with pytest.raises(InputError, match="`forgetting`"):
        AdaptOptions(forgetting=1.5)
    with pytest.raises(InputError, match="`adapt` needs a Design"):
        from gcdesign.schemes import make_scheme

        Adapter(make_scheme("is-sgd", ClusterProfile([0.1, 0.2], dim=4), 8), AdaptOptions())


@pytest.mark.parametrize("offset", [0.0, 0.25])
def test_adapter_on_a_stationary_cluster_rarely_changes_even_when_the_profile_is_wrong(offset):
    # offset 0.25: every worker is late far more often than declared (the realized cluster of a
    # loaded machine); the test compares each worker with its own rounds, so this is no drift
    p = load_example("toy-n8").straggler_probs
    code = _code(p)
    adapter = Adapter(code, AdaptOptions(false_alarm=0.01))
    truth = np.minimum(p + offset, 0.95)
    rng = np.random.default_rng(11)
    for r in range(1200):
        adapter.observe(r, rng.random(p.size) < truth)
    alarms = [rec for rec in adapter.records if rec.cause == "alarm"]
    tested = 1200 - 39
    # the promise: at most 1 % of the tested rounds alarm on average (Poisson 3-sigma slack)
    assert len(alarms) <= 0.01 * tested + 3 * math.sqrt(0.01 * tested)
    # a worker no alarm flagged keeps the declared probability: its decoder weight never moved
    flagged = np.zeros(p.size, dtype=bool)
    for rec in adapter.records:
        flagged |= rec.drifted
    assert np.array_equal(adapter.design.straggler_probs[~flagged], p[~flagged])


def test_adapter_follows_a_slowdown_and_then_measures_it():
    p = load_example("toy-n8").straggler_probs
    code = _code(p)
    adapter = Adapter(code, AdaptOptions(window=10))
    rng = np.random.default_rng(2)
    truth = p.copy()
    for r in range(120):
        if r == 40:
            truth[np.argmin(p)] = 0.8  # the most reliable worker slows down
        adapter.observe(r, rng.random(p.size) < truth)
    first = adapter.records[0]
    assert first.cause == "alarm" and first.round >= 40 and first.drifted[np.argmin(p)]
    assert first.action == "redesign" and first.moved <= first.moved_fresh
    # `calibration` rounds later the flagged worker's rate is measured after the change only
    follow = [rec for rec in adapter.records if rec.cause == "calibrated"]
    assert follow and follow[0].round == first.round + 10
    assert abs(adapter.design.straggler_probs[np.argmin(p)] - 0.8) < 0.25


# ---------------------------------------------------------------- movement
def _is_layout(layout, masses, k):
    dense = layout.toarray()
    return (
        np.all(dense >= 0)
        and np.allclose(dense.sum(axis=1), masses, atol=1e-9)
        and np.allclose(dense.sum(axis=0), 1.0, atol=1e-9)
    )


@pytest.mark.parametrize("offset", [0.0, 0.3, 1.0, 2.75, 6.999])
def test_offset_segment_layout_is_a_layout(offset):
    rng = np.random.default_rng(2)
    y = rng.dirichlet(np.ones(6)) * 7
    order = rng.permutation(6)
    lay = segment_layout(y, 7, order=order, offset=offset)
    assert _is_layout(lay, y, 7)
    assert lay.nnz <= 6 + 7  # at most one more than N + K - 1


@pytest.mark.parametrize("seed", range(6))
def test_closest_layout_never_moves_more_than_fresh(seed):
    rng = np.random.default_rng(seed)
    n, k = 12, 15
    old_masses = rng.dirichlet(np.ones(n)) * k
    old = segment_layout(old_masses, k, order=rng.permutation(n))
    new_masses = old_masses * rng.uniform(0.7, 1.3, n)
    new_masses *= k / new_masses.sum()
    fresh = segment_layout(new_masses, k)
    lay, info = closest_segment_layout(new_masses, k, old, orders=[np.arange(n)])
    assert _is_layout(lay, new_masses, k)
    assert info["moved"] == moved_partitions(old, lay)
    assert info["moved"] <= moved_partitions(old, fresh)
    # unchanged masses: nothing moves, whatever order and offset the old layout had
    same, info_same = closest_segment_layout(old_masses, k, old)
    assert info_same["moved"] == 0


def test_moved_partitions_counts_new_pairs():
    old = sp.csr_array(np.array([[1.0, 0.5, 0], [0, 0.5, 1.0]]))
    new = sp.csr_array(np.array([[1.0, 0, 0], [0, 1.0, 1.0]]))
    assert moved_partitions(old, new) == 0
    assert moved_partitions(new, old) == 1


def test_closest_redesign_moves_less_than_fresh_on_a_slowdown():
    p = load_example("paper-n50").straggler_probs.copy()
    code = _code(p, bits=7)
    p[np.argmin(p)] = 0.8
    fresh = fresh_design(code, p)
    closest, moved, moved_fresh = closest_redesign(code, fresh)
    assert moved <= moved_fresh == moved_partitions(code.encoding, fresh.encoding)
    assert closest.bound == pytest.approx(fresh.bound)
    assert np.allclose(closest.row_mass, fresh.row_mass)


@pytest.mark.parametrize("seed", range(8))
def test_segment_geometry_recovers_order_and_offset(seed):
    from gcdesign.construction import segment_geometry

    rng = np.random.default_rng(seed)
    n, k = 9, 11
    y = rng.dirichlet(np.ones(n)) * k
    lay = segment_layout(y, k, order=rng.permutation(n), offset=rng.uniform(0, k))
    order, offset = segment_geometry(lay)
    again = segment_layout(y, k, order=order, offset=offset)
    assert np.allclose(again.toarray(), lay.toarray(), atol=1e-9)
