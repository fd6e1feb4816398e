"""Runtime encode / decode (gcdesign.runtime) and its kernels (gcdesign._codec_kernels)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from gcdesign import ClusterProfile, design
from gcdesign import _codec_kernels as ck
from gcdesign._mc_kernels import uniforms
from gcdesign._validate import InputError
from gcdesign.evaluation import synthetic_gradients
from gcdesign.quantization import (
    coordinate_norms,
    payload_bits,
    quantize_rows,
    row_variances,
    stochastic_levels,
)
from gcdesign.runtime import (
    Message,
    decode,
    encode,
    float32_norm_up,
    partitions_of,
    stream_key,
    worker_message_vector,
)
from gcdesign.schemes import Scheme, make_scheme

PROFILE = ClusterProfile([0.05, 0.1, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8], dim=64)
HEADER = 28


@pytest.fixture(scope="module")
def code():
    return design(PROFILE, 36, quantization="raw", allocator="equal")  # bits 5 5 5 5 4 4 4 4


def single(bits, quantizer="stochastic", bucket_size=None):
    """A one-worker scheme that sends x = g unchanged (decoding weight 1)."""
    return Scheme(
        name="one",
        encoding=sp.eye_array(1, format="csr"),
        bits=np.array([bits]),
        straggler_probs=np.zeros(1),
        decoding=np.ones(1),
        quantizer=quantizer,
        bucket_size=bucket_size,
    )


def codec_cases(count, seed):
    """(x, bits, quantizer code, bucket) over bits 1..32, odd d, odd buckets, zero vectors/buckets."""
    rng = np.random.default_rng(seed)
    cases = []
    for t in range(count):
        bits = t % 32 + 1
        quantizer = ck.SIGN if bits == 1 else ck.STOCHASTIC
        d = int(rng.choice([1, 2, 7, 8, 9, 37, 64, 100, 257, 1000]))
        x = rng.standard_normal(d) * 10.0 ** rng.integers(-30, 30)
        kind = t % 5
        if kind == 1:
            x[:] = 0.0  # zero vector
        bucket = d
        if quantizer == ck.STOCHASTIC and kind >= 2:
            bucket = int(rng.integers(1, d + 3))  # beta > d: one bucket
            if kind == 3 and d > 2 * bucket:
                x[bucket : 2 * bucket] = 0.0  # a zero bucket
            bucket = min(bucket, d)
        if kind == 4:
            x[rng.integers(d)] *= 1e6  # a spike: |x_k| ~ ||x||, the top level
        cases.append((x, bits, quantizer, bucket))
    return cases


# ---------------------------------------------------------------- kernels == numpy twins
def test_bucket_sums_kernel_equals_twin_bit_for_bit():
    rng = np.random.default_rng(0)
    for d in (1, 5, 8, 9, 17, 100, 1001):
        x = rng.standard_normal(d) * 10.0 ** rng.integers(-5, 5)
        for bucket in sorted({1, 3, 7, 8, 9, 64, d}):
            bucket = min(bucket, d)
            got = np.empty(-(-d // bucket))
            ck.bucket_sums(x, bucket, got)
            want = ck.bucket_sums_reference(x, bucket)
            assert got.tobytes() == want.tobytes()
            sq = np.add.reduceat(x * x, np.arange(0, d, bucket))
            np.testing.assert_allclose(got, sq, rtol=1e-13)


def test_norms_are_float32_rounded_up():
    rng = np.random.default_rng(4)
    for _ in range(200):
        x = rng.standard_normal(7) * 10.0 ** rng.integers(-5, 5)
        norm = float32_norm_up(x)
        assert np.float32(norm) == norm and norm >= np.linalg.norm(x)
        assert norm <= np.linalg.norm(x) * (1 + 2**-23)
        (bucketed,) = ck.bucket_norms(x, 7)
        assert bucketed.dtype == np.float32 and float(bucketed) >= np.sqrt(ck.bucket_sums_reference(x, 7)[0])
    assert np.isinf(ck.round_up_float32(1e39))  # beyond float32: the encoder refuses it


def test_encode_and_decode_kernels_equal_their_twins_bit_for_bit():
    """The message (norms and packed codes) and the decoded estimate, numba against numpy."""
    for x, bits, quantizer, bucket in codec_cases(320, seed=1):
        key = np.uint64(np.random.default_rng(bits).integers(2**63))
        norms, payload = ck.encode_message(x, bits, quantizer, bucket, key)
        ref_norms, ref_payload = ck.encode_message(x, bits, quantizer, bucket, key, reference=True)
        assert norms.tobytes() == ref_norms.tobytes()
        assert payload.tobytes() == ref_payload.tobytes(), (bits, x.size, bucket)
        assert payload.size == -(-bits * x.size // 8)
        start = np.random.default_rng(7).standard_normal(x.size)
        got, want = start.copy(), start.copy()
        ck.accumulate_message(payload, bits, quantizer, bucket, norms, -0.75, got)
        ck.accumulate_message(payload, bits, quantizer, bucket, norms, -0.75, want, reference=True)
        assert got.tobytes() == want.tobytes()
    x = np.random.default_rng(2).standard_normal(33) * 10.0 ** np.linspace(-50, 40, 33)  # float32: 0 .. inf
    values, finite = ck.encode_float32(x)
    ref_values, ref_finite = ck.encode_float32(x, reference=True)
    assert values.tobytes() == ref_values.tobytes() and finite == ref_finite is False
    x[-3:] = 1.0
    assert ck.encode_float32(x)[1] and ck.encode_float32(x, reference=True)[1]
    got, want = np.ones(33), np.ones(33)
    ck.accumulate_message(values.tobytes(), 32, ck.NONE, 33, np.empty(0), 1.5, got)
    ck.accumulate_message(values.tobytes(), 32, ck.NONE, 33, np.empty(0), 1.5, want, reference=True)
    assert got.tobytes() == want.tobytes()


def test_codes_follow_the_quantizer_with_the_stream_uniforms():
    """Decoded levels are quantization.stochastic_levels of x against the float32 bucket norms."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(500)
    for bits, beta in ((2, None), (5, 64), (9, 33)):
        msg = encode(single(bits, bucket_size=beta), 0, x[None, :], rng=bits)
        key = stream_key(bits)
        u = uniforms(key, np.arange(x.size))
        norms = np.repeat(msg.norms.astype(np.float64), beta or x.size)[: x.size]
        s = 2.0 ** (bits - 1) - 1
        xi = np.minimum(stochastic_levels(x, s, norms, u), s)
        np.testing.assert_array_equal(msg.values(), np.sign(x) * ((norms / s) * xi))
        # against quantize_rows (float64 norms): the same uniforms give the same levels except
        # where a uniform falls between the two fractional parts (rare), off by one level
        ref = quantize_rows(x[None, :], [bits], bucket_size=beta, uniforms=u[None, :])[0]
        levels_ref = np.abs(ref) * s / coordinate_norms(x[None, :], beta)[0]
        off = np.abs(xi - levels_ref)
        assert np.mean(off > 1e-5) <= 0.01 and np.all(np.minimum(off, np.abs(off - 1)) < 1e-5)
    sign = encode(single(1, "sign"), 0, x[None, :], rng=5)
    u = uniforms(stream_key(5), np.arange(x.size))
    want = sign.norm * np.where(u < 0.5 * (1 + x / sign.norm), 1.0, -1.0)
    np.testing.assert_array_equal(sign.values(), want)


def test_same_seed_same_message_and_streams_differ_by_seed(code):
    grads = synthetic_gradients(8, 300, rng=1)
    a, b = encode(code, 2, grads, rng=11), encode(code, 2, grads, rng=11)
    assert a.to_bytes() == b.to_bytes()
    assert encode(code, 2, grads, rng=12).to_bytes() != a.to_bytes()
    gen = np.random.default_rng(5)
    assert encode(code, 2, grads, rng=gen).to_bytes() != encode(code, 2, grads, rng=gen).to_bytes()


# ---------------------------------------------------------------- statistics
@pytest.mark.parametrize(
    ("bits", "quantizer", "beta"),
    [(2, "stochastic", None), (5, "stochastic", 6), (3, "stochastic", 3), (1, "sign", None)],
)
def test_encode_decode_is_unbiased_with_the_exact_variance(bits, quantizer, beta):
    """Monte Carlo over seeds: mean Q(x) = x (chi-square over coordinates) and
    E||Q(x) - x||^2 within 3 SE of row_variances."""
    rng = np.random.default_rng(bits)
    d = 20
    x = rng.standard_normal(d)
    x[6:12] = 0.0  # with beta = 6: a zero bucket
    scheme = single(bits, quantizer, beta)
    trials = 2000
    samples = np.array([encode(scheme, 0, x[None, :], rng=[bits, t]).values() for t in range(trials)])
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(trials)
    live = se > 0
    chi2 = float(np.sum(((mean - x)[live] / se[live]) ** 2))
    assert chi2 < live.sum() + 5 * np.sqrt(2 * live.sum())  # ~ chi2(live), far tail
    assert np.all(mean[~live] == x[~live])
    errors = np.sum((samples - x) ** 2, axis=1)
    exact = row_variances(x[None, :], [bits], quantizer, beta)[0]
    assert abs(errors.mean() - exact) <= 3 * errors.std(ddof=1) / np.sqrt(trials)


def test_runtime_estimate_is_unbiased(code):
    """Average over rounds of decode(encode(...)) converges to g (arrivals and quantization drawn)."""
    grads = synthetic_gradients(8, 12, rng=9)
    g = grads.sum(axis=0)
    rng = np.random.default_rng(10)
    rounds = 4000
    total = np.zeros(12)
    sq = np.zeros(12)
    for _ in range(rounds):
        arrived = rng.random(8) >= code.straggler_probs
        est = decode(code, [encode(code, i, grads, rng=rng) for i in np.flatnonzero(arrived)], dim=12)
        total += est
        sq += est**2
    mean = total / rounds
    se = np.sqrt((sq / rounds - mean**2) / rounds)
    assert np.all(np.abs(mean - g) <= 4.5 * se)  # 12 coordinates, 4.5 sigma each


# ---------------------------------------------------------------- messages and decode
@pytest.mark.parametrize("bits", [2, 3, 5, 8, 13, 32])
def test_message_round_trips_through_bytes(bits):
    scheme = make_scheme("sgc", PROFILE, 8 * bits, rng=0)
    grads = synthetic_gradients(8, 37, rng=bits)  # 37 * b bits: not a whole number of bytes
    msg = encode(scheme, 2, grads, rng=1)
    raw = msg.to_bytes()
    assert len(raw) == msg.nbytes == HEADER + 4 + -(-bits * 37 // 8)
    back = Message.from_bytes(raw)
    assert back == msg and back.to_bytes() == raw
    np.testing.assert_array_equal(back.values(), msg.values())
    assert msg.payload_bits == 32 + bits * 37 == payload_bits(bits, 37)
    assert pickle.loads(pickle.dumps(back)) == msg


def test_bytes_on_the_wire_match_payload_bits():
    """The convention, pinned from len(bytes): b d + 32 per bucket norm; sign d + 32; none 32 d."""
    rng = np.random.default_rng(6)
    for d in (1, 9, 100, 1001):
        x = rng.standard_normal((1, d))
        for bits, quantizer, beta in (
            (32, "none", None),
            (1, "sign", None),
            (4, "stochastic", None),
            (7, "stochastic", 16),
            (3, "stochastic", 5000),
        ):
            raw = encode(single(bits, quantizer, beta), 0, x, rng=0).to_bytes()
            model = payload_bits(bits, d, quantizer, beta)
            assert Message.from_bytes(raw).payload_bits == model
            assert len(raw) - HEADER == -(-model // 8)  # the codes padded to a whole byte
            if quantizer == "none":
                assert len(raw) - HEADER == 4 * d  # float32 coordinates, no norm
            if beta is not None:
                assert len(raw) - HEADER == 4 * -(-d // beta) + -(-bits * d // 8)


def test_unquantized_messages_carry_float32_values():
    x = np.array([[1.0, -2.5, 1e-3, 3.0e38, np.pi]])
    msg = encode(single(32, "none"), 0, x, rng=0)
    assert msg.bits == 32 and msg.norms.size == 0
    np.testing.assert_array_equal(msg.values(), x[0].astype(np.float32).astype(np.float64))
    with pytest.raises(InputError, match="is not finite or exceeds the float32 range"):
        encode(single(32, "none"), 0, np.array([[1e39]]))
    for bad in (np.array([[3e38, 3e38, 3e38, 3e38]]), np.array([[1.0, np.nan]]), np.array([[np.inf, 1.0]])):
        with pytest.raises(InputError, match="is not finite or has a norm beyond the float32 range"):
            encode(single(4), 0, bad)
    with pytest.raises(InputError, match="`partial_gradients` must be finite"):
        worker_message_vector(single(4), 0, np.array([[1.0, np.nan]]))


def test_sign_and_zero_messages():
    grads = synthetic_gradients(8, 20, rng=2)
    sign = make_scheme("sgc-1bit", PROFILE, 8, rng=0)
    msg = encode(sign, 1, grads, rng=3)
    assert msg.bits == 1 and len(msg.payload) == 3
    assert Message.from_bytes(msg.to_bytes()) == msg
    assert set(np.abs(msg.values())) == {msg.norm}
    for scheme in (single(5), single(1, "sign"), single(6, bucket_size=4)):
        zero = encode(scheme, 0, np.zeros((1, 11)), rng=0)
        assert not zero.norms.any() and not zero.values().any()


def test_partial_gradients_forms_agree(code):
    grads = synthetic_gradients(8, 30, rng=6)
    worker = 3
    held = partitions_of(code, worker)
    full = encode(code, worker, grads, rng=7)
    rows = encode(code, worker, grads[held], rng=7)
    mapping = encode(code, worker, {int(j): grads[j] for j in held}, rng=7)
    assert full == rows == mapping
    np.testing.assert_allclose(worker_message_vector(code, worker, grads), (code.encoding @ grads)[worker])


def test_decode_equals_the_estimator(code):
    grads = synthetic_gradients(8, 40, rng=8)
    arrived = np.array([1, 0, 1, 1, 0, 1, 0, 1], dtype=bool)
    messages = [encode(code, i, grads, rng=100 + i) for i in np.flatnonzero(arrived)]
    estimate = decode(code, [m.to_bytes() for m in reversed(messages)])  # order and bytes do not matter
    want = sum(code.decoding[m.worker] * m.values() for m in messages)
    np.testing.assert_allclose(estimate, want, rtol=1e-14, atol=1e-14)
    buffer = np.full(40, np.nan)
    assert decode(code, messages, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, estimate)
    np.testing.assert_array_equal(decode(code, [], dim=40), np.zeros(40))  # nobody arrived
    # with an arrival-dependent decoder the weights follow the arrivals
    od = make_scheme("od", PROFILE, 32, rng=1)
    msgs = [encode(od, i, grads, rng=i) for i in np.flatnonzero(arrived)]
    a = od.decode_weights(arrived)
    np.testing.assert_allclose(decode(od, msgs), sum(a[m.worker] * m.values() for m in msgs), rtol=1e-13)


def test_bucketed_scheme_round_trip():
    scheme = design(
        ClusterProfile([0.1] * 4, dim=50), 16, quantization="raw", allocator="equal", bucket_size=8
    )
    assert scheme.bucket_size == 8
    grads = synthetic_gradients(4, 50, rng=3)
    msgs = [encode(scheme, i, grads, rng=i) for i in range(4)]
    assert all(m.bucket_size == 8 and m.norms.size == 7 for m in msgs)
    raws = [m.to_bytes() for m in msgs]
    assert [Message.from_bytes(r) for r in raws] == msgs
    want = sum(scheme.decoding[m.worker] * m.values() for m in msgs)
    np.testing.assert_allclose(decode(scheme, raws), want, rtol=1e-14, atol=1e-14)
    for m in msgs:  # each bucket norm is >= the norm of its coordinates of x
        x = worker_message_vector(scheme, m.worker, grads)
        sums = np.add.reduceat(x * x, np.arange(0, 50, 8))
        assert np.all(m.norms.astype(np.float64) >= np.sqrt(sums) * (1 - 1e-15))


def test_messages_do_not_depend_on_threads(code):
    """The kernels release the GIL; messages encoded by two threads at once equal the serial ones."""
    from concurrent.futures import ThreadPoolExecutor

    grads = synthetic_gradients(8, 50_000, rng=12)
    serial = [encode(code, i, grads, rng=[7, i]).to_bytes() for i in range(8)]
    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(lambda i: encode(code, i, grads, rng=[7, i]).to_bytes(), range(8)))
    assert threaded == serial
    with ThreadPoolExecutor(2) as pool:
        estimates = list(pool.map(lambda _: decode(code, serial), range(4)))
    assert all(e.tobytes() == decode(code, serial).tobytes() for e in estimates)
