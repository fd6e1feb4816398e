import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcdesign import ClusterProfile, DesignError, InputError, design, load_example
from gcdesign.construction import decompose, is_forest
from gcdesign.quantization import delta_raw


def _unbiased(d):
    p = d.profile.straggler_probs
    return ((1 - p) * d.decoding) @ d.encoding


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 30),
    st.integers(1, 30),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["balanced", "raw", 0.01]),
)
def test_design_properties(n, k, seed, kappa):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    prof = ClusterProfile(p, dim=int(rng.integers(1, 10_000)), partitions=k)
    d = design(prof, bits_per_worker=int(rng.integers(2, 9)), quantization=kappa)
    np.testing.assert_allclose(_unbiased(d), 1.0, atol=1e-9)  # (U)
    assert d.nnz <= n + k - 1
    assert np.all(d.encoding.data > 0) and np.all(d.decoding > 0)
    delta = d.kappa * delta_raw(d.bits, prof.dim, d.bucket_size)
    u = (1 - p) / (p + delta)
    np.testing.assert_allclose(d.row_mass, k * u / u.sum(), rtol=1e-9, atol=1e-12)
    assert d.bound == pytest.approx(k * k / u.sum(), rel=1e-12)
    assert d.load == d.nnz / n
    assert d.nnz == n + k - d.components  # every component is a tree
    assert int(d.bits.sum()) == d.budget


def test_paper_example_design():
    prof, defaults = load_example("paper-n50", with_defaults=True)
    d = design(prof, bits_per_worker=defaults["bits_per_worker"])
    assert d.budget == 350
    np.testing.assert_allclose(_unbiased(d), 1.0, atol=1e-9)
    assert d.nnz <= 99


def test_classes_example_decomposes():
    prof, defaults = load_example("classes-n48", with_defaults=True)
    # the example is solved for the paper's balanced scaling, one bucket (its recorded defaults)
    d = design(prof, **defaults)
    assert (d.quantization.kind, d.bucket_size) == ("balanced", None)
    comps = decompose(d.encoding)
    assert len(comps) == d.components >= 3
    assert d.load == pytest.approx((48 + 48 - d.components) / 48, rel=1e-15)
    assert is_forest(d.encoding)
    for workers, parts in comps:  # each component is a tree with whole mass
        sub = d.encoding[workers][:, parts]
        assert sub.nnz == workers.size + parts.size - 1
        assert d.row_mass[workers].sum() == pytest.approx(parts.size, abs=1e-9)
    # index order finds fewer components than the grouping step
    plain = design(prof, **defaults, order="index")
    assert plain.components < d.components


def test_hub_construction_and_kappa_none():
    prof = load_example("toy-n8")
    hub = design(prof, bits_per_worker=4, construction="hub")
    np.testing.assert_allclose(_unbiased(hub), 1.0, atol=1e-9)
    assert (hub.encoding.data < 0).any()  # the reason it is not the default
    none = design(prof, bits_per_worker=4, quantization="none")
    assert none.kappa == 0.0 and np.all(none.delta == 0)
    p = prof.straggler_probs
    np.testing.assert_allclose(none.row_mass, 8 * ((1 - p) / p) / ((1 - p) / p).sum())


def test_always_late_worker_gets_nothing():
    prof = ClusterProfile([0.2, 1.0, 0.4], dim=100)
    d = design(prof, budget=9)
    assert d.decoding[1] == 0 and d.encoding[[1]].nnz == 0
    np.testing.assert_allclose(_unbiased(d), 1.0, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"budget": 7},
            r"`budget` = 7 is infeasible for N = 4 workers with bits in \[2, 32\]: need 8 <= B <= 128",
        ),
        ({"budget": 129}, "`budget` = 129 is infeasible"),
        ({"budget": 10.5}, "`budget` must be an integer number of bits, got 10.5"),
        ({"budget": "12"}, "`budget` must be an integer number of bits"),
        ({}, "give exactly one of `budget`"),
        ({"bits_per_worker": 2.1}, "is not a whole number of bits"),
        ({"budget": 12, "allocator": "magic"}, "Unknown allocator 'magic'; choose one of"),
        ({"budget": 12, "construction": "star"}, "Unknown construction 'star'; choose one of: hub, segment"),
        ({"budget": 12, "order": "random"}, "Unknown order 'random'"),
        ({"budget": 12, "quantization": "fancy"}, "Unknown quantization model 'fancy'"),
        ({"budget": 12, "b_min": 5, "b_max": 4}, "`b_min` = 5 must not exceed `b_max` = 4"),
        ({"budget": 12, "b_min": 1}, "`b_min` must be an integer >= 2, got 1"),
    ],
)
def test_bad_design_input(kwargs, message):
    prof = ClusterProfile([0.1, 0.2, 0.3, 0.4], dim=10)
    with pytest.raises(InputError, match=message):
        design(prof, **kwargs)


def test_infinite_utility_rejected():
    prof = ClusterProfile([0.0, 0.3], dim=10)
    with pytest.raises(InputError, match="worker 0 has straggler probability 0 and quantization error 0"):
        design(prof, budget=8, quantization="none")


def test_validate_catches_broken_invariants():
    d = design(load_example("toy-n8"), bits_per_worker=4)
    enc = d.encoding.copy()
    enc.data[0] *= 1.001
    import dataclasses

    with pytest.raises(DesignError, match=r"unbiasedness \(U\) fails: partition 0"):
        dataclasses.replace(d, encoding=enc).validate()
    bits = d.bits.copy()
    bits[0] += 1
    with pytest.raises(DesignError, match="bits sum to 33, not the budget 32"):
        dataclasses.replace(d, bits=bits).validate()
    bits[0] = 40
    with pytest.raises(DesignError, match=r"`bits\[0\]` = 40 is outside \[2, 32\]"):
        dataclasses.replace(d, bits=bits).validate()


def test_summary_reports_the_allocator_that_ran(tmp_path):
    from gcdesign.io import load_design, save_design

    small = design(load_example("paper-n50"), bits_per_worker=7)  # N R L = 50 x 250 x 31: the DP
    assert small.summary()["allocation"] == {"method": "dp", "optimal": True}
    assert small.options["allocator"] == "auto"
    rng = np.random.default_rng(5)
    large = design(ClusterProfile(rng.uniform(0.05, 0.9, 500), dim=10**6), bits_per_worker=7)
    assert large.summary()["allocation"] == {"method": "certified", "optimal": True}
    named = design(load_example("paper-n50"), bits_per_worker=7, allocator="heuristic")
    np.testing.assert_array_equal(named.bits, small.bits)  # the heuristic finds the DP's optimum here
    assert named.summary()["allocation"]["method"] == "heuristic"
    path = tmp_path / "d.json"
    save_design(small, path)
    assert load_design(path).summary()["allocation"] is None  # a file does not record the solver run


def test_kappa_is_the_deprecated_name_of_quantization():
    from gcdesign import allocate_bits

    prof = load_example("toy-n8")
    new = design(prof, bits_per_worker=4, quantization="balanced")
    with pytest.warns(
        DeprecationWarning, match=r"design: `kappa=` is deprecated.*use `quantization=`"
    ) as seen:
        old = design(prof, bits_per_worker=4, kappa="balanced")
    assert seen[0].filename == __file__  # the warning points at the caller's line
    assert old.quantization == new.quantization and np.array_equal(old.bits, new.bits)
    assert old.options["quantization"] == new.options["quantization"] == "balanced"
    assert "kappa_policy" not in old.options
    with pytest.warns(DeprecationWarning, match=r"allocate_bits: `kappa=`"):
        assert allocate_bits(prof, 32, kappa="raw").quantization.kind == "raw"
    with pytest.raises(InputError, match=r"design: give `quantization` only; `kappa` is its deprecated name"):
        design(prof, bits_per_worker=4, quantization="tight", kappa="raw")
    # kappa stays the number of the math (delta = kappa * delta_raw), read from the model
    assert new.kappa == new.quantization.kappa == new.allocation.kappa > 0
