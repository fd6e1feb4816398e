"""The quantizer table (gcdesign.quantization.QUANTIZER_SPECS) and the one numba rounding routine."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

from gcdesign import _codec_kernels as ck
from gcdesign import _mc_kernels as mk
from gcdesign._rounding import sign_draw, stochastic_level
from gcdesign._validate import InputError
from gcdesign.quantization import (
    QUANTIZER,
    QUANTIZER_SPECS,
    QUANTIZERS,
    levels,
    payload_bits,
    quantize_rows,
    quantizer_spec,
    stochastic_levels,
)
from gcdesign.runtime import Message
from gcdesign.schemes import Scheme


def test_table_rows():
    assert QUANTIZERS == tuple(q.name for q in QUANTIZER_SPECS) == ("stochastic", "sign", "none")
    assert [q.code for q in QUANTIZER_SPECS] == list(range(len(QUANTIZER_SPECS)))
    assert (mk.STOCHASTIC, mk.SIGN, mk.NONE) == (0, 1, 2) == (ck.STOCHASTIC, ck.SIGN, ck.NONE)
    assert QUANTIZER["stochastic"].levels(np.array([2, 3, 32])).tolist() == [1.0, 3.0, 2.0**31 - 1]
    assert QUANTIZER["sign"].levels(1) == 1.0
    assert [q.bits_text for q in QUANTIZER_SPECS] == ["in [2, 32]", "1", "32"]
    with pytest.raises(InputError, match="Unknown quantizer 'fp8'; choose one of: stochastic, sign, none"):
        quantizer_spec("fp8")


@pytest.mark.parametrize("spec", QUANTIZER_SPECS, ids=lambda q: q.name)
def test_consumers_read_the_table(spec):
    """Schemes, messages and payloads accept exactly the table's bits and buckets."""
    n, d = 3, 5
    for b in range(0, 34):
        ok = b == 0 or b in spec.bits

        def build(b=b):
            return Scheme(
                name="t",
                encoding=sp.eye_array(n, format="csr"),
                bits=np.full(n, b),
                straggler_probs=np.zeros(n),
                decoding=np.ones(n),
                quantizer=spec.name,
            )

        if ok:
            build()
        else:
            with pytest.raises(InputError, match=re.escape(f"must be 0 (idle) or {spec.bits_text}.")):
                build()
        if b > 0:
            n_norms = 1 if spec.norms else 0
            payload = bytes(-(-b * d // 8))
            norms = np.ones(n_norms, np.float32)
            if ok:
                msg = Message(0, d, b, spec.name, norms, payload)
                assert Message.from_bytes(msg.to_bytes()).quantizer == spec.name
                assert msg.to_bytes()[5] == spec.code
                assert msg.payload_bits == payload_bits(b, d, spec.name)
            elif b != 64:
                with pytest.raises(InputError, match="does not fit"):
                    Message(0, d, b, spec.name, norms, payload)
    with_buckets = dict(encoding=sp.eye_array(n, format="csr"), straggler_probs=np.zeros(n))
    if spec.buckets:
        Scheme(name="t", bits=np.full(n, spec.bits[0]), decoding=np.ones(n), quantizer=spec.name,
               bucket_size=2, **with_buckets)  # fmt: skip
    else:
        with pytest.raises(InputError, match="bucket_size` applies to the stochastic quantizer only"):
            Scheme(name="t", bits=np.full(n, spec.bits[0]), decoding=np.ones(n), quantizer=spec.name,
                   bucket_size=2, **with_buckets)  # fmt: skip


def test_rounding_routine_and_its_twin_share_the_clip():
    """y = s |x| / norm can land a hair above s (3 * 0.1 / 0.1 = 3.0000000000000004): both clip to s."""
    s, x, nrm = 3.0, 0.1, 0.1
    assert s * x / nrm > s
    assert stochastic_level(x, s, nrm, 0.0) == 3.0  # u below the hair: unclipped it would be 4
    assert stochastic_levels(np.array([x]), s, nrm, np.array([0.0])).tolist() == [3.0]
    rng = np.random.default_rng(0)
    xs = rng.normal(size=2000)
    nrm = float(np.linalg.norm(xs))
    u = rng.random(2000)
    for s in (1.0, 3.0, 127.0, 2.0**31 - 1):
        numba_levels = np.array([stochastic_level(abs(v), s, nrm, w) for v, w in zip(xs, u, strict=True)])
        assert np.array_equal(numba_levels, stochastic_levels(xs, s, nrm, u))
    draws = np.array([sign_draw(v, nrm, w) for v, w in zip(xs, u, strict=True)])
    assert np.array_equal(draws, u < 0.5 * (1.0 + xs / nrm))


@pytest.mark.parametrize(
    ("quantizer", "bits", "bucket_size"),
    [
        ("stochastic", [2, 3, 8, 32, 5], None),
        ("stochastic", [2, 3, 8, 32, 5], 7),
        ("stochastic", [4, 4, 4, 4, 4], 1000),
        ("sign", [1, 1, 1, 1, 1], None),
        ("none", [32, 32, 32, 32, 32], None),
    ],
)
def test_numba_rows_equal_the_numpy_reference_bit_for_bit(quantizer, bits, bucket_size):
    """The training harness's quantizer (the codec's numba kernel) is quantize_rows with the same draws."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 61)) * np.array([[1.0], [1e-3], [1e3], [1.0], [1.0]])
    x[1, :14] = 0.0  # a zero bucket
    x[3] = 0.0  # a zero row
    x[4, 10] = -0.0
    a = quantize_rows(x, bits, quantizer=quantizer, bucket_size=bucket_size, rng=np.random.default_rng(8))
    b = ck.quantize_rows_numba(
        x, bits, quantizer=quantizer, bucket_size=bucket_size, rng=np.random.default_rng(8)
    )
    assert a.tobytes() == b.tobytes()
    # and the generator is left where the reference leaves it
    r1, r2 = np.random.default_rng(8), np.random.default_rng(8)
    quantize_rows(x, bits, quantizer=quantizer, bucket_size=bucket_size, rng=r1)
    ck.quantize_rows_numba(x, bits, quantizer=quantizer, bucket_size=bucket_size, rng=r2)
    assert r1.random() == r2.random()
    assert ck.quantize_rows_numba(x[:0], [], quantizer=quantizer).shape == (0, 61)


def test_levels_are_the_table_levels():
    bits = np.arange(2, 33)
    assert np.array_equal(QUANTIZER["stochastic"].levels(bits), levels(bits))
    assert all(ck._levels(int(b), ck.STOCHASTIC) == 2.0 ** (b - 1) - 1 for b in bits)  # exact


@pytest.mark.parametrize(("quantizer", "bits"), [("stochastic", 3), ("sign", 1)])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_numba_rows_keep_the_reference_nan_and_inf(quantizer, bits):
    """A diverged run's messages (inf, NaN, norms past the float64 range) come out as the reference's."""
    x = np.array([[1.0, np.inf, 2.0], [np.nan, 1.0, 0.0], [1e300, -1e300, 1.0], [0.0, -0.0, 0.0]])
    a = quantize_rows(x, np.full(4, bits), quantizer=quantizer, rng=3)
    b = ck.quantize_rows_numba(x, np.full(4, bits), quantizer=quantizer, rng=3)
    np.testing.assert_array_equal(a, b)  # NaN where the reference has NaN
    assert np.array_equal(np.signbit(a[~np.isnan(a)]), np.signbit(b[~np.isnan(b)]))
