"""The scheme protocol, its validator, read-only values and the one quantizer."""

import numpy as np
import pytest
import scipy.sparse as sp

import gcdesign as gc
from gcdesign._validate import InputError
from gcdesign.allocation import allocate_bits
from gcdesign.quantization import QUANTIZERS, payload_bits, quantize_rows, row_variances
from gcdesign.schemes import SCHEMES, Scheme, SchemeLike, check_scheme, make_scheme
from gcdesign.structure import optimal_structure


def _scheme(**kw):
    base = dict(
        name="x",
        encoding=sp.eye_array(8, format="csr"),
        bits=np.full(8, 4),
        straggler_probs=np.full(8, 0.1),
        decoding=np.ones(8),
    )
    base.update(kw)
    return Scheme(**base)


def test_design_and_every_registered_scheme_satisfy_the_protocol():
    profile = gc.load_example("toy-n8")
    d = gc.design(profile, bits_per_worker=4)
    assert isinstance(d, SchemeLike)
    assert check_scheme(d) is d
    assert (d.name, d.quantizer, d.local_decoder) == ("joint", "stochastic", False)
    for name in sorted(SCHEMES):
        scheme = make_scheme(name, profile, 4 * profile.n_workers, rng=0)
        assert isinstance(scheme, SchemeLike), name
        assert check_scheme(scheme) is scheme


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        (dict(bits=np.full(5, 4)), "`scheme.bits` must have shape (8,)"),
        (dict(straggler_probs=np.full(3, 0.1)), "`scheme.straggler_probs` must have shape (8,)"),
        (dict(bits=np.r_[np.full(7, 4), 40]), "`scheme.bits[7]` = 40"),
        (dict(bits=np.r_[1, np.full(7, 4)]), "`scheme.bits[0]` = 1"),
        (dict(quantizer="sign"), "`scheme.bits[0]` = 4 is not allowed with quantizer 'sign'"),
        (dict(quantizer="none"), "`scheme.bits[0]` = 4 is not allowed with quantizer 'none'"),
        (dict(quantizer="fp8"), "Unknown quantizer 'fp8'"),
        (dict(bucket_size=0), "`scheme.bucket_size` must be None or an integer >= 1"),
        (dict(straggler_probs=np.r_[np.full(7, 0.1), 1.5]), "`scheme.straggler_probs[7]` = 1.5"),
        (dict(decoding=np.ones(7)), "`scheme.decoding` must be None or a finite array of shape (8,)"),
        (dict(bits=np.full(8, 4.0)), None),  # floats that are integers are cast, then accepted
    ],
)
def test_a_bad_scheme_is_refused_when_built(kw, field):
    if field is None:
        assert _scheme(**kw).bits.dtype == np.int64
        return
    with pytest.raises(InputError) as err:
        _scheme(**kw)
    assert field in str(err.value)
    assert "\n" not in str(err.value)


def test_check_scheme_names_a_missing_field():
    class Half:
        name = "half"
        encoding = sp.eye_array(2, format="csr")

    with pytest.raises(InputError, match="has no `bits`"):
        check_scheme(Half())


def test_frozen_values_stay_frozen():
    profile = gc.load_example("toy-n8")
    d = gc.design(profile, bits_per_worker=4)
    for arr in (
        d.bits,
        d.decoding,
        d.delta,
        d.row_mass,
        d.encoding.data,
        d.encoding.indices,
        d.allocation.bits,
    ):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 99
    with pytest.raises(TypeError):
        d.options["allocator"] = "dp"
    s = optimal_structure(profile, np.full(profile.n_workers, 0.1))
    with pytest.raises(ValueError, match="read-only"):
        s.row_mass[0] = 1.0
    scheme = make_scheme("bgc", profile, 32, rng=0)
    with pytest.raises(ValueError, match="read-only"):
        scheme.bits[0] = 3
    # the caller's array is copied, not frozen behind their back
    mine = np.full(8, 4)
    _scheme(bits=mine)
    mine[0] = 5
    alloc = allocate_bits(profile, 32)
    assert not alloc.bits.flags.writeable


def test_payload_convention_and_the_row_quantizer():
    assert QUANTIZERS == ("stochastic", "sign", "none")
    # unquantized messages count 32 bits per coordinate (a float32 on the wire), no norm
    assert payload_bits(32, 100, "none") == 3200
    assert payload_bits(4, 1000, bucket_size=100) == 4000 + 32 * 10
    assert payload_bits(4, 1001, bucket_size=100) == 4004 + 32 * 11
    assert payload_bits(1, 10, "sign") == 42
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 37))
    q = quantize_rows(x, np.full(5, 3), bucket_size=8, rng=1)
    # bucketed: each bucket's coordinates land on multiples of its own norm / s
    s = 3.0
    for c in range(0, 37, 8):
        block, qb = x[:, c : c + 8], q[:, c : c + 8]
        scale = np.linalg.norm(block, axis=1, keepdims=True) / s
        np.testing.assert_allclose(qb / scale, np.round(qb / scale), atol=1e-9)
    # exact variance with buckets against a brute-force mean over draws
    draws = np.stack([quantize_rows(x, np.full(5, 3), bucket_size=8, rng=t) for t in range(4000)])
    mc = np.mean(np.sum((draws - x) ** 2, axis=2), axis=0)
    exact = row_variances(x, np.full(5, 3), "stochastic", 8)
    se = np.std(np.sum((draws - x) ** 2, axis=2), axis=0) / np.sqrt(4000)
    assert np.all(np.abs(mc - exact) < 4 * se)
    # one bucket equals the unbucketed quantizer bit for bit
    np.testing.assert_array_equal(
        quantize_rows(x, np.full(5, 3), bucket_size=37, rng=2), quantize_rows(x, np.full(5, 3), rng=2)
    )
