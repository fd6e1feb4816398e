"""The heuristic's sort-free windowed scan against the sorted one (docs/allocation.md, "Without the
table"): the same bits, the same best k and the same message (candidates tried, local-search
moves), on tables and on utilities read from (p, delta), for paper-like, random, late and
hardware-class profiles."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcdesign import ClusterProfile, allocate_bits
from gcdesign.allocation import allowed_levels, utility_table
from gcdesign.allocation import heuristic as heur
from gcdesign.allocation.instances import straggler_probs
from gcdesign.quantization import error_factors, resolve_quantization


def _sorted_scan(monkeypatch, table, levels, budget, options):
    """The windowed scan as it was: the segment sort and the relaxation of every candidate."""

    def refuse(*args, **kwargs):
        raise heur._Fallback

    with monkeypatch.context() as patch:
        patch.setattr(heur, "_lazy_scan", refuse)
        return heur.heuristic(table, levels, budget, dict(options))


def _instance(p, budget, *, b_min=2, b_max=32, dim=10**6, bucket=512, quantization="raw"):
    levels = allowed_levels(b_min, b_max)
    model = resolve_quantization(quantization, p, budget, dim, bucket_size=bucket)
    delta = error_factors(levels, model, dim, bucket)
    order = np.argsort(p, kind="stable")
    table = utility_table(p[order], model, dim, levels, bucket)
    return levels, delta, order, table


def _check(monkeypatch, p, budget, options=None, **kwargs):
    options = options or {}
    levels, delta, order, table = _instance(p, budget, **kwargs)
    before = _sorted_scan(monkeypatch, table, levels, budget, options)
    on_table = heur.heuristic(table, levels, budget, dict(options))
    on_utilities = heur.heuristic_from_utilities(p, delta, levels, budget, dict(options))
    np.testing.assert_array_equal(on_table[0], before[0])
    np.testing.assert_array_equal(on_utilities[0][order], before[0])
    assert on_table[2] == before[2] == on_utilities[2]
    return before[2]


@pytest.mark.parametrize("family", ["paper", "uniform", "late", "classes"])
def test_lazy_scan_equals_sorted_scan_on_a_sweep(monkeypatch, family):
    messages = []
    for n in (201, 500, 2000, 6000):
        for seed in range(3):
            rng = np.random.default_rng(1000 * seed + n)
            p = straggler_probs(rng, n, family)
            budget = int(n * rng.choice([2.5, 4, 7, 11, 20]))
            options = {"refine": "better"} if seed == 2 else {}
            messages.append(_check(monkeypatch, p, budget, options, quantization=["raw", "tight"][seed % 2]))
    # the sweep meets both regimes: one candidate tried, and many (a relaxation gap above 1e-12)
    tried = [int(m.split("; ")[1].split(" of ")[0]) for m in messages]
    assert min(tried) == 1 and max(tried) > 5


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    n=st.integers(201, 700),
    bits=st.floats(2.05, 30.0),
    b_max=st.integers(4, 32),
    seed=st.integers(0, 2**32 - 1),
    ties=st.sampled_from([0, 1, 3, 40]),
    dim=st.sampled_from([10, 10**3, 10**6]),
    window=st.integers(1, 9),
)
def test_lazy_scan_equals_sorted_scan_hypothesis(monkeypatch, n, bits, b_max, seed, ties, dim, window):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.005, 0.99, n)
    if ties:  # hardware classes: many equal rows
        p = rng.choice(p[:ties], n)
    if rng.random() < 0.2:
        p[rng.integers(0, n, 3)] = 1.0  # workers that never arrive
    budget = int(min(max(n * bits, 2 * n), n * b_max))
    _check(monkeypatch, p, budget, {"window": window}, b_max=b_max, dim=dim, bucket=None)


def test_relaxation_step_down_equals_the_relaxation_of_every_candidate(monkeypatch):
    """c* and the relaxations below it, stepped down one worker at a time from the one of the
    largest set (a bracket holding every segment), against relaxation_by_k (the pointer walk
    over the sorted segments)."""
    from gcdesign.allocation._kernels import relaxation_by_k, relaxation_step_down
    from gcdesign.allocation.common import top_k_setup
    from gcdesign.allocation.heuristic import _relaxation_of_all, segment_order

    monkeypatch.setattr(heur, "_bracket", lambda *a: (-np.inf, np.inf, 10**6))
    rng = np.random.default_rng(5)
    for i in range(12):
        n = int(rng.integers(30, 400))
        p = straggler_probs(rng, n, ["paper", "uniform", "classes"][i % 3])
        b_max = int(rng.integers(8, 33))
        budget = int(n * min(rng.uniform(2.5, 12), b_max - 0.5))
        levels, delta, order, table = _instance(p, budget, b_max=b_max)
        _, _, active, _, ks, residuals = top_k_setup(table, levels, budget, "heuristic")
        segments = segment_order(active)
        gain, used = relaxation_by_k(
            active, segments.vert, segments.count, segments.ids, segments.rbits, ks, residuals
        )
        residual, width = int(residuals[0]), active.shape[1]
        none = np.zeros(0)
        rel = _relaxation_of_all(active, none, none, n, width, int(ks[-1]), residual)
        worker, length, slope, j, filled = rel["worker"], rel["length"], rel["slope"], rel["j"], rel["filled"]
        total, comp = rel["total"], rel["comp"]
        extra = np.zeros(n, dtype=np.int64)
        for c in range(ks.size - 1, 0, -1):
            rem = residual - filled
            value = total + comp + (rem * slope[j] if rem > 0 else 0.0)
            assert value == gain[c]
            last = int(ks[c]) - 1  # does the relaxation reach the set's least reliable worker?
            reached = rel["taken"][last] + extra[last] > 0
            partial = rem > 0 and worker[j] == last and rel["seg"][j] == 0
            assert used[c] == (reached or partial)
            j, filled, total, comp = relaxation_step_down(
                active, none, none, rel["vert"], rel["taken"], extra, worker, length, slope,
                j, int(ks[c]), residual, filled, total, comp,
            )  # fmt: skip


def test_allocate_bits_heuristic_builds_no_table():
    """At N = 10^5 the N x 31 table is 25 MB; the heuristic's allocation allocates less than
    that in all (the allocations traced: about 150 bytes a worker, the table alone is 248)."""
    p = straggler_probs(np.random.default_rng(0), 2000, "paper")
    allocate_bits(ClusterProfile(p, dim=10**6), 14000, method="heuristic", quantization="raw")  # compile
    n = 100_000
    prof = ClusterProfile(straggler_probs(np.random.default_rng(1), n, "paper"), dim=10**6)
    tracemalloc.start()
    result = allocate_bits(prof, 7 * n, method="heuristic", quantization="raw")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert int(result.bits.sum()) == 7 * n
    assert peak < n * 31 * 8


def test_argsort_nonnegative_is_the_stable_argsort():
    from gcdesign.allocation._kernels import argsort_nonnegative

    rng = np.random.default_rng(8)
    values = np.array([0.0, -0.0, 1.0, 0.5, 0.25, 1e-300, 5e-324, 0.1 + 0.2, 0.3])
    cases = [rng.uniform(0, 1, 5000), rng.choice(values, 5000), np.zeros(7), np.array([]), rng.random(1)]
    cases.append(np.exp(-rng.uniform(0.01, 2.0, 3000) * 0.1))  # one exponent: passes are skipped
    for x in cases:
        np.testing.assert_array_equal(argsort_nonnegative(x), np.argsort(x, kind="stable"))
