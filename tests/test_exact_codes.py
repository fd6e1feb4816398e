import itertools
import math
import pickle

import numpy as np
import pytest

from gcdesign import ClusterProfile, InputError
from gcdesign.allocation.baselines import equal_bits
from gcdesign.schemes import make_scheme
from gcdesign.schemes.conditioning import condition_report, sampled_masks
from gcdesign.schemes.decoding import least_squares_weights
from gcdesign.schemes.exact import (
    DecodingError,
    clear_code_cache,
    cyclic_repetition_code,
    exact_decoding,
    fractional_repetition_code,
)
from gcdesign.schemes.parity import code_from_parity, null_vectors, random_parity, windows

# (N, s) pairs for the exhaustive tests: every N <= 12 with several s, plus the extremes.
EXHAUSTIVE_CASES = [(n, s) for n in range(2, 13) for s in (1, 2, 3, 4) if s < n] + [(7, 6), (12, 11), (12, 6)]


def _responder_sets(n, s):
    """Every responder set with at least N - s workers (as index arrays)."""
    for size in range(n - s, n + 1):
        yield from itertools.combinations(range(n), size)


def _check_all_sets(code, n, s):
    dense = code.toarray()
    count = 0
    worst = 0.0
    for rows in _responder_sets(n, s):
        a = exact_decoding(code, np.array(rows), stragglers=s)
        assert np.all(a[np.setdiff1d(np.arange(n), rows)] == 0.0)
        worst = max(worst, np.linalg.norm(a @ dense - 1.0) / math.sqrt(n))
        count += 1
    assert count == sum(math.comb(n, t) for t in range(s + 1))
    assert worst <= 1e-10, worst
    return count


def test_cyclic_support_is_the_cyclic_window():
    for n, s in [(5, 2), (10, 3), (9, 8), (13, 4)]:
        for construction in ("fourier", "random", "best-random"):
            dense = cyclic_repetition_code(n, s, construction=construction, rng=1, draws=3).toarray()
            for i in range(n):
                window = (i + np.arange(s + 1)) % n
                assert np.all(dense[i, window] != 0.0)
                assert np.count_nonzero(dense[i]) == s + 1
            np.testing.assert_allclose(np.linalg.norm(dense, axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize(("n", "s"), EXHAUSTIVE_CASES)
def test_cyclic_code_decodes_every_responder_set(n, s):
    _check_all_sets(cyclic_repetition_code(n, s), n, s)


@pytest.mark.parametrize(("n", "s"), [(6, 2), (9, 2), (10, 4), (12, 3)])
def test_random_cyclic_code_decodes_every_responder_set(n, s):
    # the reference construction is exact too, only worse conditioned
    _check_all_sets(cyclic_repetition_code(n, s, construction="random", rng=7), n, s)


@pytest.mark.parametrize(
    ("n", "s"), [(4, 1), (6, 1), (6, 2), (8, 3), (9, 2), (10, 4), (12, 2), (12, 3), (12, 5)]
)
def test_fractional_repetition_decodes_every_responder_set(n, s):
    code = fractional_repetition_code(n, s)
    _check_all_sets(code, n, s)
    # min-norm decoder = equal weights on the arrived members of each group
    arrived = np.ones(n, dtype=bool)
    arrived[np.arange(s)] = False  # group 0 keeps exactly one member
    a = exact_decoding(code, arrived, stragglers=s)
    assert a[s] == pytest.approx(1.0)
    np.testing.assert_allclose(a[s + 1 :], 1.0 / (s + 1))


def test_fractional_repetition_structure_and_divisibility():
    dense = fractional_repetition_code(6, 2).toarray()
    assert dense.sum(axis=1).tolist() == [3.0] * 6
    assert np.array_equal(dense[0], dense[2]) and not np.array_equal(dense[0], dense[3])
    with pytest.raises(InputError, match=r"\(s \+ 1\) to divide N = 7"):
        fractional_repetition_code(7, 2)


def test_zero_stragglers_is_the_identity():
    assert np.array_equal(cyclic_repetition_code(5, 0).toarray(), np.eye(5))
    assert np.array_equal(fractional_repetition_code(5, 0).toarray(), np.eye(5))


def test_too_few_responders_is_an_error():
    code = cyclic_repetition_code(8, 2)
    arrived = np.ones(8, dtype=bool)
    arrived[:3] = False
    with pytest.raises(DecodingError, match="5 responders; exact decoding needs at least N - s = 6"):
        exact_decoding(code, arrived, stragglers=2)
    assert issubclass(DecodingError, InputError)


def test_a_code_that_is_not_exact_is_refused():
    # an FRC for s = 1 cannot decode when both members of a group straggle
    code = fractional_repetition_code(6, 1)
    with pytest.raises(DecodingError, match="does not decode"):
        exact_decoding(code, [2, 3, 4, 5], stragglers=2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"n_workers": 5, "stragglers": 5},
            r"`stragglers` must be an integer in \[0, N - 1\] = \[0, 4\], got 5",
        ),
        ({"n_workers": 0, "stragglers": 0}, "`n_workers` must be an integer >= 1"),
        ({"n_workers": 5, "stragglers": -1}, "`stragglers` must be an integer >= 0"),
        (
            {"n_workers": 5, "stragglers": 1, "construction": "vandermonde"},
            "Unknown construction 'vandermonde'",
        ),
    ],
)
def test_code_arguments_are_validated(kwargs, match):
    with pytest.raises(InputError, match=match):
        cyclic_repetition_code(**kwargs)


def test_arrived_mask_is_validated():
    code = cyclic_repetition_code(5, 1)
    with pytest.raises(InputError, match="boolean mask of length N = 5"):
        exact_decoding(code, np.ones(4, dtype=bool), stragglers=1)
    with pytest.raises(InputError, match=r"outside \[0, 4\]"):
        exact_decoding(code, [0, 1, 2, 7], stragglers=1)


def test_condition_report_fourier_beats_random():
    for n, s in [(10, 2), (12, 3), (11, 4)]:
        ours = condition_report(cyclic_repetition_code(n, s), s)
        assert ours.exhaustive and ours.sets == math.comb(n, s) and ours.rank == n - s
        randoms = [
            condition_report(cyclic_repetition_code(n, s, construction="random", rng=seed), s).worst
            for seed in range(3)
        ]
        assert ours.worst < 1e3
        assert 10 * ours.worst < np.median(randoms), (n, s, ours.worst, randoms)


def test_condition_report_worst_set_and_sampling():
    n, s = 14, 4
    code = cyclic_repetition_code(n, s, construction="random", rng=3)
    full = condition_report(code, s)
    assert full.exhaustive and full.sets == full.total_sets == math.comb(n, s)
    # the reported set attains the reported condition number
    rows = np.setdiff1d(np.arange(n), full.worst_stragglers)
    sv = np.linalg.svd(code.toarray()[rows], compute_uv=False)
    assert sv[0] / sv[n - s - 1] == pytest.approx(full.worst, rel=1e-9)
    sampled = condition_report(code, s, max_sets=300, rng=0)
    assert not sampled.exhaustive and sampled.sets == 300 and sampled.total_sets == math.comb(n, s)
    assert sampled.worst <= full.worst * (1 + 1e-12)
    tiny = condition_report(code, s, max_sets=10, rng=0)  # fewer than 2 N sets: mixed sample
    assert not tiny.exhaustive and tiny.sets == 10 and tiny.worst <= full.worst * (1 + 1e-12)
    for count in (10, 2 * n, 300):
        masks = sampled_masks(n, s, count, np.random.default_rng(1))
        assert masks.shape == (count, n) and np.all(masks.sum(axis=1) == s)
    # fractional repetition: a group with one survivor next to a full group of s + 1
    frc = condition_report(fractional_repetition_code(12, 3), 3)
    assert frc.worst == pytest.approx(2.0) and frc.rank == 3


def test_best_random_is_no_worse_than_its_draws():
    n, s = 10, 3
    best = condition_report(cyclic_repetition_code(n, s, construction="best-random", rng=5, draws=4), s)
    gen = np.random.default_rng(5)
    draws = [condition_report(code_from_parity(random_parity(n, s, gen)), s).worst for _ in range(4)]
    assert best.worst == pytest.approx(min(draws), rel=1e-9)


def test_fourier_construction_is_deterministic():
    first = cyclic_repetition_code(9, 3).toarray()
    clear_code_cache()
    assert np.array_equal(first, cyclic_repetition_code(9, 3).toarray())


@pytest.mark.parametrize(("n", "s"), [(60, 15), (41, 20), (40, 38), (64, 63)])
def test_cyclic_code_decodes_random_sets_at_moderate_size(n, s):
    # beyond exhaustive reach: random responder sets of size N - s, and the cyclic windows
    code = cyclic_repetition_code(n, s)
    dense = code.toarray()
    assert np.count_nonzero(dense, axis=1).tolist() == [s + 1] * n
    rng = np.random.default_rng(3)
    straggler_sets = [rng.choice(n, size=s, replace=False) for _ in range(6)]
    straggler_sets += [(start + np.arange(s)) % n for start in (0, n // 2)]
    for stragglers in straggler_sets:
        arrived = np.ones(n, dtype=bool)
        arrived[stragglers] = False
        a = exact_decoding(code, arrived, stragglers=s)
        assert np.linalg.norm(a @ dense - 1.0) / math.sqrt(n) <= 1e-10
        assert np.all(a[~arrived] == 0.0)
    report = condition_report(code, s, max_sets=200, rng=0)
    assert report.exhaustive == (math.comb(n, s) <= 200) and report.rank == n - s
    assert report.sets == min(200, math.comb(n, s)) and np.isfinite(report.worst)
    if s == n - 1:  # any single worker decodes: every row is 1 / sqrt(N)
        np.testing.assert_allclose(dense, 1.0 / math.sqrt(n))


def test_window_null_vectors_match_the_svd():
    rng = np.random.default_rng(2)
    for n, s in [(9, 4), (30, 12)]:
        parity = random_parity(n, s, rng)
        coef = null_vectors(parity)
        blocks = np.transpose(parity[:, windows(n, s)], (1, 0, 2))
        reference = np.linalg.svd(blocks)[2][:, -1, :]
        np.testing.assert_allclose(np.abs(np.sum(coef * reference, axis=1)), 1.0, rtol=1e-10)
    # a window whose leading s x s block is singular falls back to the SVD
    parity = np.array([[1.0, 0.0, 0.0, -1.0], [0.0, 0.0, 1.0, -1.0]])
    coef = null_vectors(parity)
    blocks = np.transpose(parity[:, windows(4, 2)], (1, 0, 2))
    assert np.abs(np.einsum("wij,wj->wi", blocks, coef)).max() < 1e-12
    np.testing.assert_allclose(np.linalg.norm(coef, axis=1), 1.0)


def test_fourier_construction_is_deterministic_at_large_size():
    first = cyclic_repetition_code(48, 12).toarray()
    clear_code_cache()
    assert np.array_equal(first, cyclic_repetition_code(48, 12).toarray())


def _profile(n, partitions=None):
    return ClusterProfile(np.linspace(0.05, 0.5, n), dim=100, partitions=partitions)


@pytest.mark.parametrize("name", ["exact-cyclic", "exact-frc"])
def test_exact_scheme_decoder(name):
    n, s = 12, 2
    scheme = make_scheme(name, _profile(n), budget=5 * n + 3, stragglers=s)
    dense = scheme.encoding.toarray()
    assert scheme.quantizer == "stochastic" and scheme.decoding is None
    assert scheme.bits.sum() == 5 * n + 3 and set(scheme.bits.tolist()) == {5, 6}
    assert scheme.bits[:3].tolist() == [6, 6, 6]  # the extra bits go to the most reliable workers
    rng = np.random.default_rng(0)
    for _ in range(20):
        arrived = np.ones(n, dtype=bool)
        arrived[rng.choice(n, size=s, replace=False)] = False
        a = scheme.decode_weights(arrived)
        np.testing.assert_allclose(a @ dense, 1.0, atol=1e-10)
        assert np.all(a[~arrived] == 0.0)
    # fewer than N - s arrivals: least squares over the arrived rows
    arrived = np.ones(n, dtype=bool)
    arrived[[0, 4, 5, 9]] = False
    a = scheme.decode_weights(arrived)
    np.testing.assert_allclose(a, least_squares_weights(dense, arrived, solver="dense"), atol=1e-12)
    assert np.all(a[~arrived] == 0.0)
    if name == "exact-cyclic":
        assert np.linalg.norm(a @ dense - 1.0) > 1e-3  # no longer exact
    # the decoder serialises (process pools, Dask)
    again = pickle.loads(pickle.dumps(scheme.decoder))
    np.testing.assert_array_equal(again(arrived), a)


def test_exact_scheme_options_and_errors():
    prof = _profile(10)
    scheme = make_scheme("exact-cyclic", prof, budget=30, replication=3, quantizer="none")
    assert scheme.quantizer == "none" and scheme.bits.tolist() == [32] * 10
    assert np.count_nonzero(scheme.encoding.toarray()[0]) == 3  # s = replication - 1 = 2
    with pytest.raises(InputError, match="`partitions` = 20: exact gradient codes need K = N = 10"):
        make_scheme("exact-cyclic", _profile(10, partitions=20), budget=30)
    with pytest.raises(InputError, match=r"\(s \+ 1\) to divide N = 10"):
        make_scheme("exact-frc", prof, budget=30, replication=3)
    with pytest.raises(InputError, match="`budget` = 15 is infeasible"):
        make_scheme("exact-frc", prof, budget=15)
    with pytest.raises(InputError, match="Unknown quantizer 'sign'"):
        make_scheme("exact-frc", prof, budget=30, quantizer="sign")


def test_equal_bits_split():
    bits = equal_bits([0.3, 0.1, 0.2, 0.1], 10)
    assert bits.tolist() == [2, 3, 2, 3]


def test_frc_scheme_decoder_is_local_per_group():
    # local_decoder=True lets the evaluator enumerate arrivals group by group: the weights of a
    # group must be 1 / (number of its survivors) on the survivors, whatever happens elsewhere
    n, s = 12, 2
    scheme = make_scheme("exact-frc", _profile(n), budget=3 * n, stragglers=s)
    assert scheme.local_decoder
    assert not make_scheme("exact-cyclic", _profile(n), budget=3 * n, stragglers=s).local_decoder
    rng = np.random.default_rng(8)
    for _ in range(50):
        arrived = rng.random(n) < 0.6
        expected = np.zeros(n)
        for group in np.arange(n).reshape(-1, s + 1):
            alive = group[arrived[group]]
            expected[alive] = 1.0 / alive.size if alive.size else 0.0
        np.testing.assert_allclose(scheme.decode_weights(arrived), expected, atol=1e-12)


def test_clear_code_cache_empties_the_fourier_cache():
    clear_code_cache()
    first = cyclic_repetition_code(7, 2)
    cyclic_repetition_code(7, 2)  # a hit: still one code held
    cyclic_repetition_code(8, 3)
    cyclic_repetition_code(8, 3, construction="random", rng=0)  # random codes are never cached
    assert clear_code_cache() == 2
    assert clear_code_cache() == 0
    again = cyclic_repetition_code(7, 2)  # rebuilt from scratch: the same code bit for bit
    assert np.array_equal(first.toarray(), again.toarray()) and clear_code_cache() == 1


def test_cyclic_code_warns_where_float64_decoding_stops_being_reliable():
    """Issue 20: cyclic_repetition_code(100, 50) misses the decoder's tolerance on some responder
    sets; the construction warns there (RELIABLE_RESIDUAL) and not where it is reliable."""
    import warnings

    from gcdesign.schemes.exact import RELIABLE_RESIDUAL, decode_residual

    with pytest.warns(RuntimeWarning, match=r"cyclic_repetition_code\(100, 50\) is not reliable"):
        code = cyclic_repetition_code(100, 50)
    assert decode_residual(code.toarray(), 50, sets=200, quantile=0.99) > RELIABLE_RESIDUAL
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cyclic_repetition_code(20, 4)  # worst condition about 6e3: no warning
