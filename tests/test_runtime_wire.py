"""The runtime wire format: version 2, the version-1 reader, and safe decoding of bad messages."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_runtime import single  # the one-worker scheme of the runtime tests

from gcdesign import _codec_kernels as ck
from gcdesign._validate import InputError
from gcdesign.quantization import QUANTIZER
from gcdesign.runtime import MAGIC, WIRE_VERSION, Message, decode, encode
from gcdesign.schemes import Scheme

VECTORS = json.loads((Path(__file__).parent / "data" / "wire_v1.json").read_text())["messages"]
NORMS_AT = 28  # version-2 header size: the first norm starts here


def four(quantizer, bits, bucket_size=None):
    """Four workers, one partition each, decoding weights 1, 2, 0.5, -1; worker 2 is idle."""
    return Scheme(
        name=f"four-{quantizer}",
        encoding=sp.eye_array(4, format="csr"),
        bits=np.array(bits),
        straggler_probs=np.full(4, 0.2),
        decoding=np.array([1.0, 2.0, 0.5, -1.0]),
        quantizer=quantizer,
        bucket_size=bucket_size,
    )


SCHEMES = (
    four("stochastic", [3, 9, 0, 2], bucket_size=5),
    four("sign", [1, 1, 0, 1]),
    four("none", [32, 32, 0, 32]),
)


def seed_messages():
    """Valid version-2 messages (d = 13) of every scheme, and the version-1 test vectors of d = 37."""
    grads = np.random.default_rng(0).standard_normal((4, 13))
    grads[1, 5:10] = 0.0  # a zero bucket
    out = []
    for s, scheme in enumerate(SCHEMES):
        for worker in (0, 1, 3):
            out.append((s, encode(scheme, worker, grads, rng=worker).to_bytes()))
    return out


SEEDS = seed_messages()


# ---------------------------------------------------------------- version 1 still decodes
@pytest.mark.parametrize("entry", VECTORS, ids=lambda e: f"{e['quantizer']}-b{e['bits']}-d{e['dim']}")
def test_version_1_messages_decode_to_what_they_carried(entry):
    """Bytes written by the version-1 encoder (tests/data/make_wire_v1.py, commit f7676e4)."""
    raw = bytes.fromhex(entry["bytes"])
    assert raw[4] == 1
    msg = Message.from_bytes(raw)
    assert (msg.worker, msg.dim, msg.bits, msg.quantizer) == (
        entry["worker"],
        entry["dim"],
        entry["bits"],
        entry["quantizer"],
    )
    want = np.array(entry["values"])
    if entry["quantizer"] == "none":  # float64 values: carried exactly
        assert msg.bits == 64 and msg.norms.size == 0
        np.testing.assert_array_equal(msg.values(), want)
    else:
        assert msg.norm == entry["norm"] and msg.bucket_size is None
        # version 1 computed (norm * level) / s, version 2 (norm / s) * level: one rounding apart
        np.testing.assert_allclose(msg.values(), want, rtol=3e-16, atol=0)
    scheme = single(32 if entry["quantizer"] == "none" else entry["bits"], entry["quantizer"])
    np.testing.assert_array_equal(decode(scheme, [raw]), msg.values())
    again = Message.from_bytes(msg.to_bytes())  # re-sent as version 2: the same message
    assert again.to_bytes()[4] == WIRE_VERSION and again == msg
    np.testing.assert_array_equal(again.values(), msg.values())


# ---------------------------------------------------------------- every bad message refused
def test_bad_headers_are_refused_naming_the_field():
    raw = SEEDS[0][1]  # stochastic, b = 3, d = 13, beta = 5: three norms
    scheme = SCHEMES[0]
    cases = [
        (b"XXXX" + raw[4:], "bad magic"),
        (raw[:4] + bytes([7]) + raw[5:], "unsupported format version 7"),
        (raw[:3], "shorter than any header"),
        (raw[:20], "shorter than the 28-byte version-2 header"),
        (raw[:-1], "payload has"),
        (raw + b"\0", "payload has"),
        (raw[:5] + bytes([9]) + raw[6:], "unknown quantizer code 9"),
        (raw[:7] + bytes([1]) + raw[8:], "reserved byte is 1"),
        (raw[:6] + bytes([33]) + raw[7:], "`bits` = 33 does not fit the 'stochastic' quantizer"),
        (raw[:6] + bytes([1]) + raw[7:], "`bits` = 1 does not fit"),
        (raw[:12] + struct.pack("<Q", 0) + raw[20:], "`dim` must be an integer in \\[1,"),
        (raw[:12] + struct.pack("<Q", 2**64 - 1) + raw[20:], "payload has"),
        (raw[:20] + struct.pack("<Q", 2**63) + raw[28:], "payload has"),
    ]
    for value in (np.nan, np.inf, -np.inf, -1.0, -1e-30):
        bad = raw[: NORMS_AT + 4] + struct.pack("<f", value) + raw[NORMS_AT + 8 :]
        cases.append((bad, "`norms\\[1\\]` = .*: a norm must be a finite number >= 0"))
    for data, pattern in cases:
        with pytest.raises(InputError, match=pattern):
            Message.from_bytes(data)
        with pytest.raises(InputError, match="`messages\\[0\\]`: message"):
            decode(scheme, [data])
    sign = Message.from_bytes(SEEDS[3][1])
    with pytest.raises(InputError, match="`bucket_size` = 4: only stochastic messages have buckets"):
        Message(0, 13, 1, "sign", sign.norms, sign.payload, bucket_size=4)
    none = SEEDS[6][1]
    with pytest.raises(InputError, match="value\\[2\\] = nan is not finite"):
        Message.from_bytes(none[: NORMS_AT + 8] + struct.pack("<f", np.nan) + none[NORMS_AT + 12 :])


def test_headers_must_fit_the_scheme():
    stochastic, sign, none = SCHEMES
    raw = {worker: data for s, data in SEEDS if s == 0 for worker in [Message.from_bytes(data).worker]}
    with pytest.raises(InputError, match="has 9 bits, the scheme says 3"):
        decode(stochastic, [raw[1][:8] + struct.pack("<I", 0) + raw[1][12:]])  # worker 1's message as 0's
    with pytest.raises(InputError, match="worker 2, who is idle"):
        decode(stochastic, [raw[3][:8] + struct.pack("<I", 2) + raw[3][12:]])
    with pytest.raises(InputError, match="worker 7, but the scheme has workers 0..3"):
        decode(stochastic, [raw[3][:8] + struct.pack("<I", 7) + raw[3][12:]])
    with pytest.raises(InputError, match="uses the 'stochastic' quantizer, the scheme 'sign'"):
        decode(sign, [raw[0]])
    with pytest.raises(InputError, match="has bucket size 5, the scheme None"):
        decode(four("stochastic", [3, 9, 0, 2]), [raw[0]])
    with pytest.raises(InputError, match="two messages from worker 0"):
        decode(stochastic, [raw[0], raw[0]])
    other = encode(four("stochastic", [3, 9, 0, 2], 5), 3, np.ones((4, 14)), rng=0).to_bytes()
    with pytest.raises(InputError, match="has d = 14, expected d = 13"):
        decode(stochastic, [raw[0], other])
    with pytest.raises(InputError, match="has d = 13, expected d = 12"):
        decode(stochastic, [raw[0]], dim=12)
    with pytest.raises(InputError, match="`out` must be a writeable contiguous float64 array of shape"):
        decode(stochastic, [raw[0]], out=np.zeros(13, dtype=np.float32))
    with pytest.raises(InputError, match="`messages` is empty"):
        decode(stochastic, [])
    with pytest.raises(InputError, match="idle \\(0 bits\\)"):
        encode(stochastic, 2, np.ones((4, 5)))
    none_raw = [data for s, data in SEEDS if s == 2]
    assert decode(none, none_raw).shape == (13,)


def test_non_bytes_messages_are_refused_without_allocating():
    scheme = SCHEMES[0]
    start = time.perf_counter()
    for bad in (10**12, 2**62, -1, 3.5, None, "GCQM", [1, 2]):
        with pytest.raises(InputError, match="must be bytes"):
            decode(scheme, [bad])
        with pytest.raises(InputError, match="must be bytes"):
            Message.from_bytes(bad)
    assert time.perf_counter() - start < 60  # a bare int used to allocate that many bytes
    with pytest.raises(InputError, match="got one bytes: wrap it in a list"):
        decode(scheme, SEEDS[0][1])
    with pytest.raises(InputError, match="must be an iterable of messages"):
        decode(scheme, 12)
    assert Message.from_bytes(bytearray(SEEDS[0][1])) == Message.from_bytes(memoryview(SEEDS[0][1]))


# ---------------------------------------------------------------- fuzz
def _reference_decode(scheme, msg: Message) -> np.ndarray:
    """The numpy twin's estimate for one message (the oracle of the fuzz test)."""
    arrived = np.zeros(4, dtype=bool)
    arrived[msg.worker] = True
    weight = float(scheme.decode_weights(arrived)[msg.worker])
    out = np.zeros(msg.dim)
    if weight != 0.0:
        bucket = msg.dim if msg.bucket_size is None else min(msg.bucket_size, msg.dim)
        ck.accumulate_message(
            msg.payload,
            msg.bits,
            QUANTIZER[msg.quantizer].code,
            bucket,
            msg.norms,
            weight,
            out,
            reference=True,
        )
    return out


def _check_decodes_or_refuses(scheme, data: bytes) -> bool:
    """Either InputError, or a finite estimate equal to the numpy twin's. True if it decoded."""
    try:
        estimate = decode(scheme, [data])
    except InputError as err:
        assert "\n" not in str(err)
        return False
    msg = Message.from_bytes(data)
    assert np.all(np.isfinite(estimate))
    assert estimate.tobytes() == _reference_decode(scheme, msg).tobytes()
    if data[4] == WIRE_VERSION:
        assert msg.to_bytes() == data  # what parses is exactly what is re-sent
    return True


_SPECIAL = [struct.pack("<f", v) for v in (np.nan, np.inf, -np.inf, -1.0, -0.0, 0.0, 3.4e38, 1e-45, 2.5)]


_FIELDS = [(5, "<B"), (6, "<B"), (8, "<I"), (12, "<Q"), (20, "<Q")]
_KINDS = ("flip", "byte", "float", "field", "cut", "grow")


def mutate(data: bytes, edits) -> bytes:
    """Apply `edits` (kind, position, value) to `data`: bit flips, bytes, special float32 values
    (in the norms and values), header fields, truncation, extra bytes."""
    data = bytearray(data)
    for kind, where, value in edits:
        kind = _KINDS[kind] if data else "grow"
        if kind == "flip":
            data[where % len(data)] ^= 1 << (value % 8)
        elif kind == "byte":
            data[where % len(data)] = value % 256
        elif kind == "float" and len(data) >= NORMS_AT + 4:
            pos = NORMS_AT + where % (len(data) - NORMS_AT - 3)
            data[pos : pos + 4] = _SPECIAL[value % len(_SPECIAL)]
        elif kind == "field" and len(data) >= NORMS_AT:
            pos, fmt = _FIELDS[where % len(_FIELDS)]
            size = struct.calcsize(fmt)
            data[pos : pos + size] = struct.pack(fmt, value % 2 ** (8 * size) if value % 2 else value % 41)
        elif kind == "cut":
            del data[where % (len(data) + 1) :]
        else:
            data += value.to_bytes(8, "little")[: where % 9 + 1]
    return bytes(data)


EDITS = st.lists(
    st.tuples(st.integers(0, len(_KINDS) - 1), st.integers(0, 2**32), st.integers(0, 2**64 - 1)),
    min_size=1,
    max_size=3,
)
FUZZ = settings(
    max_examples=700,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(st.integers(0, len(SEEDS) - 1), EDITS)
def test_fuzz_mutated_messages_decode_correctly_or_raise_input_error(seed, edits):
    index, data = SEEDS[seed]
    _check_decodes_or_refuses(SCHEMES[index], mutate(data, edits))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.integers(0, 2), st.binary(max_size=80), st.booleans())
def test_fuzz_random_bytes_decode_correctly_or_raise_input_error(index, tail, framed):
    data = (MAGIC + bytes([WIRE_VERSION]) + tail) if framed else tail
    _check_decodes_or_refuses(SCHEMES[index], data)


def test_fuzz_seeds_decode_and_special_norms_are_handled():
    """The seeds decode; -0, the largest float32 and denormal norms are valid and decode finitely."""
    assert all(_check_decodes_or_refuses(SCHEMES[s], data) for s, data in SEEDS)
    raw = SEEDS[0][1]
    for value in (-0.0, 3.4e38, 1e-45):
        data = raw[:NORMS_AT] + struct.pack("<f", value) + raw[NORMS_AT + 4 :]
        assert _check_decodes_or_refuses(SCHEMES[0], data)


V1_SEEDS = [bytes.fromhex(entry["bytes"]) for entry in VECTORS]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.integers(0, len(V1_SEEDS) - 1), EDITS)
def test_fuzz_mutated_version_1_messages_parse_or_raise_input_error(seed, edits):
    """The version-1 reader: a mutated message parses into a checked Message or raises InputError."""
    data = mutate(V1_SEEDS[seed], edits)
    try:
        msg = Message.from_bytes(data)
    except InputError as err:
        assert "\n" not in str(err)
        return
    values = msg.values()
    assert np.all(np.isfinite(values)) and values.shape == (msg.dim,)
    assert Message.from_bytes(msg.to_bytes()) == msg


def test_messages_built_by_hand_are_checked():
    good = Message.from_bytes(SEEDS[0][1])
    with pytest.raises(InputError, match="`norms\\[0\\]` = 1e\\+300 is not a float32 value"):
        Message(0, 13, 3, "stochastic", np.array([1e300, 1.0, 1.0]), good.payload, 5)
    with pytest.raises(InputError, match="`norms` must be 3 float32 values, got shape \\(2,\\)"):
        Message(0, 13, 3, "stochastic", good.norms[:2], good.payload, 5)
    with pytest.raises(InputError, match="`payload` must be bytes, got list"):
        Message(0, 13, 3, "stochastic", good.norms, [1, 2], 5)
    with pytest.raises(InputError, match="`worker` must be an integer in \\[0, 4294967295\\], got True"):
        Message(True, 13, 3, "stochastic", good.norms, good.payload, 5)
    with pytest.raises(InputError, match="Unknown message quantizer 'qsgd'"):
        Message(0, 13, 3, "qsgd", good.norms, good.payload, 5)
    copy = Message(0, 13, 3, "stochastic", good.norms.astype(np.float64), bytearray(good.payload), 5)
    assert copy == good and not copy.norms.flags.writeable
    with pytest.raises(ValueError):
        copy.norms[0] = 1.0
