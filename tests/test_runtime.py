"""Runtime encode / decode and the wire format (gcdesign.runtime)."""

from __future__ import annotations

import numpy as np
import pytest

from gcdesign import ClusterProfile, design
from gcdesign._validate import InputError
from gcdesign.evaluation import synthetic_gradients
from gcdesign.quantization import quantize, quantize_sign
from gcdesign.runtime import (
    Message,
    decode,
    encode,
    float32_norm_up,
    partitions_of,
    worker_message_vector,
)
from gcdesign.schemes import make_scheme

PROFILE = ClusterProfile([0.05, 0.1, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8], dim=64)


@pytest.fixture(scope="module")
def code():
    return design(PROFILE, 36, kappa="raw", allocator="equal")  # bits 5 5 5 5 4 4 4 4


@pytest.mark.parametrize("bits", [2, 3, 5, 8, 13, 32])
def test_message_round_trips_through_bytes(bits):
    scheme = make_scheme("sgc", PROFILE, 8 * bits, rng=0)
    grads = synthetic_gradients(8, 37, rng=bits)  # 37 * b bits: not a whole number of bytes
    msg = encode(scheme, 2, grads, rng=1)
    raw = msg.to_bytes()
    assert len(raw) == msg.nbytes == 24 + -(-bits * 37 // 8)
    back = Message.from_bytes(raw)
    assert back == msg
    np.testing.assert_array_equal(back.values(), msg.values())
    assert msg.payload_bits == 32 + bits * 37


def test_sign_and_unquantized_messages_round_trip():
    grads = synthetic_gradients(8, 20, rng=2)
    sign = make_scheme("sgc-1bit", PROFILE, 8, rng=0)
    msg = encode(sign, 1, grads, rng=3)
    assert msg.bits == 1 and len(msg.payload) == 3
    assert Message.from_bytes(msg.to_bytes()) == msg
    assert set(np.abs(msg.values())) == {msg.norm}


def test_norm_travels_as_float32_rounded_up():
    rng = np.random.default_rng(4)
    for _ in range(200):
        x = rng.standard_normal(7) * 10.0 ** rng.integers(-5, 5)
        norm = float32_norm_up(x)
        assert np.float32(norm) == norm and norm >= np.linalg.norm(x)
        assert norm <= np.linalg.norm(x) * (1 + 2**-23)
    spike = np.zeros(5)
    spike[2] = 0.1  # |x_k| = ||x||: the top level must still fit in b - 1 bits
    msg = encode(make_scheme("is-sgd", PROFILE, 16), 2, np.vstack([spike] * 8), rng=0)
    assert np.max(np.abs(msg.values())) <= msg.norm


def test_quantized_values_follow_the_numpy_quantizer(code):
    grads = synthetic_gradients(8, 500, rng=5)
    for worker in range(8):
        x = worker_message_vector(code, worker, grads)
        msg = encode(code, worker, grads, rng=worker)
        ref = quantize(x, int(code.bits[worker]), rng=worker)  # same uniforms, float64 norm
        np.testing.assert_allclose(msg.values(), ref, rtol=2e-7, atol=1e-12 * np.linalg.norm(x))
    sign = make_scheme("sgc-1bit", PROFILE, 8, rng=0)
    x = worker_message_vector(sign, 4, grads)
    np.testing.assert_allclose(encode(sign, 4, grads, rng=9).values(), quantize_sign(x, rng=9), rtol=2e-7)


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
    # with an arrival-dependent decoder the weights follow the arrivals
    od = make_scheme("od", PROFILE, 32, rng=1)
    msgs = [encode(od, i, grads, rng=i) for i in np.flatnonzero(arrived)]
    a = od.decode_weights(arrived)
    np.testing.assert_allclose(decode(od, msgs), sum(a[m.worker] * m.values() for m in msgs), rtol=1e-13)


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
        if not arrived.any():
            est = np.zeros(12)
        else:
            est = decode(code, [encode(code, i, grads, rng=rng) for i in np.flatnonzero(arrived)])
        total += est
        sq += est**2
    mean = total / rounds
    se = np.sqrt((sq / rounds - mean**2) / rounds)
    assert np.all(np.abs(mean - g) <= 4.5 * se)  # 12 coordinates, 4.5 sigma each


def test_runtime_errors(code):
    grads = synthetic_gradients(8, 10, rng=11)
    with pytest.raises(InputError, match="`worker` must be an integer in \\[0, 7\\]"):
        encode(code, 8, grads)
    with pytest.raises(InputError, match="`partial_gradients` must have one row per held partition"):
        encode(code, 0, grads[:, None])
    with pytest.raises(InputError, match="two messages from worker 1"):
        decode(code, [encode(code, 1, grads, rng=0)] * 2)
    raw = encode(code, 1, grads, rng=0).to_bytes()
    with pytest.raises(InputError, match="bad magic"):
        Message.from_bytes(b"XXXX" + raw[4:])
    with pytest.raises(InputError, match="payload has"):
        Message.from_bytes(raw[:-1])
    wrong_bits = Message.from_bytes(raw)
    other = make_scheme("is-sgd", PROFILE, 16)  # 2 bits each
    with pytest.raises(InputError, match="has 5 bits, the scheme says 2"):
        decode(other, [wrong_bits])
