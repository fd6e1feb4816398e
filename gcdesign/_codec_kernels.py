"""numba kernels of the runtime message codec, each with a readable numpy reference twin.

A message of worker i is built in three steps (docs/runtime.md):

1. **Bucket norms.** :func:`bucket_sums` adds ``x_k^2`` over each bucket of ``beta``
   consecutive coordinates (one bucket: ``beta = d``) in a fixed order: eight lanes
   (coordinate ``start + 8 j + l`` goes to lane ``l``), each summed left to right, then
   combined as ``((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))``. The numpy twin
   :func:`bucket_sums_reference` sums the same lanes with ``cumsum``, so both give the same
   float64 bits. :func:`round_up_float32` turns ``sqrt`` of them into the float32 norms that
   travel, rounded *up* so that ``|x_k| <= norm`` and every level fits.
2. **Codes.** :func:`encode_codes` quantizes every coordinate with the uniform
   ``u_k = uniform(key, k)`` of the counter-based stream of :mod:`gcdesign._mc_kernels`
   (splitmix64 of the message key and the coordinate index), so the codes do not depend on
   the order in which coordinates are visited. Stochastic (``b >= 2``, ``s = 2^(b-1) - 1``):
   ``xi_k = min(floor(y_k) + [u_k < frac(y_k)], s)``, ``y_k = s |x_k| / norm_c`` (the package's
   one rounding routine :func:`gcdesign._rounding.stochastic_level`, numpy twin
   :func:`gcdesign.quantization.stochastic_levels`), sent as one sign bit
   (1 = negative, only when ``xi_k > 0``) followed by ``b - 1`` level bits; a bucket of norm 0
   sends level 0. Sign (``b = 1``): bit ``[u_k < (1 + x_k / norm) / 2]``
   (:func:`gcdesign._rounding.sign_draw`; 1 = +1; norm 0 sends 1). Codes are packed MSB
   first with no padding between coordinates;
   :func:`encode_codes_reference` packs with ``numpy.packbits``.
3. **Decode-accumulate.** :func:`accumulate_codes` unpacks the codes and adds
   ``a_i Q(x_i)_k = f_c * (+-xi_k)`` to ``out[k]`` in place, with ``f_c = (a_i norm_c) / s``
   per bucket (sign: ``f = a_i norm``, value ``+-f``). Its twin is
   :func:`accumulate_codes_reference`. Unquantized messages (float32 coordinates) are made by
   :func:`encode_values` and added by :func:`accumulate_values` (twins: ``astype`` and
   ``out += a * values``).

The training harness quantizes whole rows with the same rounding, dequantized, without
the wire: :func:`quantize_rows_numba` (kernel :func:`quantize_values`) is bit for bit
:func:`gcdesign.quantization.quantize_rows` with the same draws (float64 norms and
``rng.random`` uniforms, not the float32 norms and counter-based stream of a message), so a
training run's numbers do not depend on which of the two computed them.

Every kernel is a module-level :func:`gcdesign._jit.njit` function (lazily typed, cached in
the user's cache folder) that
serializes to Dask workers; the entry points release the GIL (``nogil=True``), so logical
workers running as threads of one process encode at the same time. No ``fastmath``: the
twins agree bit for bit. The kernels are serial: a message is the same whatever the
thread count.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit
from ._mc_kernels import NONE, SIGN, STOCHASTIC, uniform, uniforms  # noqa: F401 - SIGN: the codes by name
from ._rounding import sign_draw, stochastic_level
from .quantization import QUANTIZER_SPECS, quantizer_spec, row_bucket_norms, stochastic_levels

LANES = 8
CHUNK = 1024  # coordinates per pass of the encode / decode loops (fits in L1)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_U1 = np.uint64(1)
_U8, _U16, _U24 = np.uint64(8), np.uint64(16), np.uint64(24)
_BYTE = np.uint64(0xFF)


# ------------------------------------------------------------------ bucket norms
@njit(nogil=True)
def bucket_sums(x, bucket, out):
    """``out[c] = sum_{k in bucket c} x_k^2`` in the fixed eight-lane order (module docstring)."""
    d = x.size
    tail = np.empty(LANES)
    for c in range(out.size):
        start = c * bucket
        stop = min(start + bucket, d)
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        k = start
        while k + LANES <= stop:
            a0 += x[k] * x[k]
            a1 += x[k + 1] * x[k + 1]
            a2 += x[k + 2] * x[k + 2]
            a3 += x[k + 3] * x[k + 3]
            a4 += x[k + 4] * x[k + 4]
            a5 += x[k + 5] * x[k + 5]
            a6 += x[k + 6] * x[k + 6]
            a7 += x[k + 7] * x[k + 7]
            k += LANES
        tail[:] = 0.0  # the last partial row feeds lanes 0 .. stop - k - 1 (0.0 + v = v exactly)
        for lane in range(stop - k):
            tail[lane] = x[k + lane] * x[k + lane]
        a0, a1, a2, a3 = a0 + tail[0], a1 + tail[1], a2 + tail[2], a3 + tail[3]
        a4, a5, a6, a7 = a4 + tail[4], a5 + tail[5], a6 + tail[6], a7 + tail[7]
        out[c] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


def bucket_sums_reference(x: np.ndarray, bucket: int) -> np.ndarray:
    """numpy twin of :func:`bucket_sums` (zero padding adds exact zeros to the lanes)."""
    d = x.size
    m = -(-d // bucket)
    width = -(-bucket // LANES) * LANES
    blocks = np.zeros((m, width))
    padded = np.zeros(m * bucket)
    padded[:d] = x
    blocks[:, :bucket] = padded.reshape(m, bucket)
    lanes = np.cumsum(np.square(blocks).reshape(m, width // LANES, LANES), axis=1)[:, -1, :]
    return ((lanes[:, 0] + lanes[:, 1]) + (lanes[:, 2] + lanes[:, 3])) + (
        (lanes[:, 4] + lanes[:, 5]) + (lanes[:, 6] + lanes[:, 7])
    )


def round_up_float32(values) -> np.ndarray:
    """float32 values ``>=`` the float64 `values` (next float32 up when not representable).

    Values beyond the float32 range become ``inf`` (the encoder refuses them).
    """
    exact = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        out = np.atleast_1d(exact.astype(np.float32))
    low = out.astype(np.float64) < np.atleast_1d(exact)
    out[low] = np.nextafter(out[low], np.float32(np.inf))
    return out.reshape(exact.shape)


def bucket_norms(x: np.ndarray, bucket: int, *, reference: bool = False) -> np.ndarray:
    """float32 norms of the buckets of `x`, rounded up (``inf`` past the float32 range)."""
    if reference:
        sums = bucket_sums_reference(x, bucket)
    else:
        sums = np.empty(-(-x.size // bucket))
        bucket_sums(x, bucket, sums)
    return round_up_float32(np.sqrt(sums))


# ------------------------------------------------------------------ encode
@njit(nogil=True)
def encode_codes(x, bucket, norms, bits, s, quantizer, key, out):
    """Quantize `x` against the bucket `norms` (float64 values of float32) and pack into `out`.

    `out` is a zeroed uint8 array of ``ceil(bits * d / 8)`` bytes; `quantizer` is
    :data:`STOCHASTIC` (``2 <= bits <= 32``, ``s = 2^(bits-1) - 1`` levels) or :data:`SIGN`
    (``bits = 1``, one bucket); `key` is the message's uint64 stream key. Works in chunks
    of :data:`CHUNK` coordinates: the codes of a chunk first (a loop numba vectorizes),
    then their bits.
    """
    d = x.size
    sign_bit = _U1 << np.uint64(bits - 1)
    codes = np.empty(CHUNK, np.uint64)
    acc = np.uint64(0)
    pending = 0  # low bits of `acc` not yet written
    pos = 0
    for c in range(norms.size):
        start = c * bucket
        stop = min(start + bucket, d)
        for lo in range(start, stop, CHUNK):
            hi = min(lo + CHUNK, stop)
            if quantizer == STOCHASTIC:
                _stochastic_codes(x[lo:hi], lo, norms[c], s, sign_bit, key, codes)
            else:
                _sign_codes(x[lo:hi], lo, norms[c], key, codes)
            acc, pending, pos = _pack(codes, hi - lo, bits, acc, pending, pos, out)
    if pending > 0:
        out[pos] = np.uint8((acc << np.uint64(8 - pending)) & _BYTE)


@njit()
def _stochastic_codes(xs, offset, nrm, s, sign_bit, key, codes):
    if nrm == 0.0:
        codes[: xs.size] = 0
        return
    for j in range(xs.size):
        xk = xs[j]
        xi = stochastic_level(abs(xk), s, nrm, uniform(key, np.uint64(offset + j)))
        code = np.uint64(xi)
        if xk < 0.0 and xi > 0.0:
            code |= sign_bit
        codes[j] = code


@njit()
def _sign_codes(xs, offset, nrm, key, codes):
    if nrm == 0.0:
        codes[: xs.size] = 1
        return
    for j in range(xs.size):
        codes[j] = _U1 if sign_draw(xs[j], nrm, uniform(key, np.uint64(offset + j))) else np.uint64(0)


@njit()
def _pack(codes, n, bits, acc, pending, pos, out):
    """Append `n` codes of `bits` bits to the bit stream; whole 32-bit words are written as they
    fill, and whole bytes at the end of the chunk (so ``pending < 8`` between chunks)."""
    width = np.uint64(bits)
    for j in range(n):
        acc = (acc << width) | codes[j]
        pending += bits
        if pending >= 32:
            pending -= 32
            word = acc >> np.uint64(pending)
            out[pos] = np.uint8((word >> _U24) & _BYTE)
            out[pos + 1] = np.uint8((word >> _U16) & _BYTE)
            out[pos + 2] = np.uint8((word >> _U8) & _BYTE)
            out[pos + 3] = np.uint8(word & _BYTE)
            pos += 4
    while pending >= 8:
        pending -= 8
        out[pos] = np.uint8((acc >> np.uint64(pending)) & _BYTE)
        pos += 1
    return acc, pending, pos


@njit(nogil=True)
def encode_values(x, out):
    """Unquantized message: ``out[k] = float32(x[k])`` (round to nearest); True if all are finite."""
    finite = True
    for k in range(x.size):
        v = np.float32(x[k])
        out[k] = v
        finite &= np.isfinite(v)
    return finite


def encode_values_reference(x) -> tuple[np.ndarray, bool]:
    """numpy twin of :func:`encode_values`: (float32 values, all finite)."""
    with np.errstate(over="ignore"):
        out = np.asarray(x, dtype=np.float64).astype(np.float32)
    return out, bool(np.all(np.isfinite(out)))


def encode_codes_reference(x, bucket, norms, bits, s, quantizer, key) -> np.ndarray:
    """numpy twin of :func:`encode_codes`: returns the packed uint8 payload."""
    d = x.size
    u = uniforms(key, np.arange(d, dtype=np.uint64))
    per_coordinate = np.repeat(np.asarray(norms, dtype=np.float64), bucket)[:d]
    positive = per_coordinate > 0.0
    safe = np.where(positive, per_coordinate, 1.0)
    if quantizer == STOCHASTIC:
        xi = np.where(positive, stochastic_levels(x, s, safe, u), 0.0)
        negative = (x < 0.0) & (xi > 0.0)
        codes = xi.astype(np.uint64) | (negative.astype(np.uint64) << np.uint64(bits - 1))
    else:
        codes = (~positive | (u < 0.5 * (1.0 + x / safe))).astype(np.uint64)
    return pack_reference(codes, bits)


def pack_reference(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack `codes` (uint64) MSB first, `bits` each, no padding between them (numpy)."""
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    matrix = ((codes[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    return np.packbits(matrix.ravel())


def unpack_reference(payload, bits: int, dim: int) -> np.ndarray:
    """Inverse of :func:`pack_reference`: `dim` codes (uint64) of `bits` bits each."""
    flat = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=bits * dim)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    return (flat.reshape(dim, bits).astype(np.uint64) << shifts).sum(axis=1, dtype=np.uint64)


# ------------------------------------------------------------------ decode-accumulate
@njit(nogil=True)
def accumulate_codes(payload, bits, s, bucket, norms, quantizer, weight, out):
    """``out[k] += weight * Q(x)_k`` from the packed codes (see the module docstring).

    `payload` is uint8 (``ceil(bits * d / 8)`` bytes), `norms` float64 (one per bucket),
    `out` float64 (d,), updated in place. Chunks of :data:`CHUNK` coordinates: unpack the
    codes, then scale and add them (a loop numba vectorizes).
    """
    d = out.size
    sign_bit = _U1 << np.uint64(bits - 1)
    level_mask = sign_bit - _U1
    codes = np.empty(CHUNK, np.uint64)
    acc = np.uint64(0)
    available = 0  # unread low bits of `acc`
    pos = 0
    for c in range(norms.size):
        start = c * bucket
        stop = min(start + bucket, d)
        f = weight * norms[c] / s if quantizer == STOCHASTIC else weight * norms[c]
        for lo in range(start, stop, CHUNK):
            hi = min(lo + CHUNK, stop)
            acc, available, pos = _unpack(payload, hi - lo, bits, acc, available, pos, codes)
            if quantizer == STOCHASTIC:
                _add_levels(codes, f, sign_bit, level_mask, out[lo:hi])
            else:
                _add_signs(codes, f, out[lo:hi])


@njit()
def _unpack(payload, n, bits, acc, available, pos, codes):
    width = np.uint64(bits)
    mask = (_U1 << width) - _U1
    for j in range(n):
        while available < bits:
            acc = (acc << _U8) | np.uint64(payload[pos])
            pos += 1
            available += 8
        available -= bits
        codes[j] = (acc >> np.uint64(available)) & mask
    return acc, available, pos


@njit()
def _add_levels(codes, f, sign_bit, level_mask, out):
    for j in range(out.size):
        code = codes[j]
        v = f * np.float64(code & level_mask)
        out[j] += -v if code & sign_bit else v


@njit()
def _add_signs(codes, f, out):
    for j in range(out.size):
        out[j] += f if codes[j] else -f


def accumulate_codes_reference(payload, bits, s, bucket, norms, quantizer, weight, out) -> None:
    """numpy twin of :func:`accumulate_codes` (same arguments, `out` updated in place)."""
    d = out.size
    codes = unpack_reference(payload, bits, d)
    norms = np.asarray(norms, dtype=np.float64)
    if quantizer == STOCHASTIC:
        f = np.repeat(weight * norms / s, bucket)[:d]
        sign_bit = np.uint64(1) << np.uint64(bits - 1)
        v = f * (codes & (sign_bit - np.uint64(1))).astype(np.float64)
        v = np.where(codes & sign_bit, -v, v)
    else:
        f = np.repeat(weight * norms, bucket)[:d]
        v = np.where(codes == 1, f, -f)
    out += v


@njit(nogil=True)
def accumulate_values(values, weight, out):
    """``out[k] += weight * values[k]`` (unquantized messages; `values` float32 or float64)."""
    for k in range(out.size):
        out[k] += weight * np.float64(values[k])


def accumulate_values_reference(values, weight, out) -> None:
    """numpy twin of :func:`accumulate_values`."""
    out += weight * np.asarray(values, dtype=np.float64)


# ------------------------------------------------------------------ one message
def encode_message(x, bits: int, quantizer: int, bucket: int, key, *, reference: bool = False):
    """Bucket norms (float32) and packed codes (uint8) of one message; the twin with `reference`.

    `quantizer` is :data:`STOCHASTIC` or :data:`SIGN`, `bucket` the coordinates per norm
    (``min(beta, d)``, or ``d`` for one bucket). When a norm is beyond the float32 range
    the codes are not computed: returns ``(norms, None)``.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    norms = bucket_norms(x, bucket, reference=reference)
    if not np.all(np.isfinite(norms)):
        return norms, None
    wide = norms.astype(np.float64)
    s = _levels(bits, quantizer)
    key = np.uint64(key)
    if reference:
        return norms, encode_codes_reference(x, bucket, wide, bits, s, quantizer, key)
    payload = np.zeros(-(-bits * x.size // 8), dtype=np.uint8)
    encode_codes(x, bucket, wide, bits, s, quantizer, key, payload)
    return norms, payload


def encode_float32(x, *, reference: bool = False) -> tuple[np.ndarray, bool]:
    """The float32 values of an unquantized message and whether they are all finite."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if reference:
        return encode_values_reference(x)
    out = np.empty(x.size, dtype="<f4")
    return out, bool(encode_values(x, out))


def accumulate_message(
    payload, bits: int, quantizer: int, bucket: int, norms, weight: float, out, *, reference: bool = False
) -> None:
    """``out += weight * Q(x)`` for one message (packed codes, or float32 / float64 values)."""
    if quantizer == NONE:
        values = np.frombuffer(payload, dtype="<f4" if bits == 32 else "<f8")
        (accumulate_values_reference if reference else accumulate_values)(values, weight, out)
        return
    codes = np.frombuffer(payload, dtype=np.uint8)
    wide = np.asarray(norms, dtype=np.float64)
    args = (codes, bits, _levels(bits, quantizer), bucket, wide, quantizer, weight, out)
    (accumulate_codes_reference if reference else accumulate_codes)(*args)


def _levels(bits: int, quantizer: int) -> float:
    """The number of levels ``s`` of the quantizer with wire code `quantizer` at `bits` (the table's)."""
    return float(QUANTIZER_SPECS[quantizer].levels(bits))


# ------------------------------------------------------------------ dequantized rows (training)
@njit(nogil=True)
def quantize_values(x, bucket, norms, levels, quantizer, uniforms, out):
    """``out[i] = Q(x[i])``, dequantized (float64), for every row: the numba twin of quantize_rows.

    `norms` (n, ceil(d / bucket)) are the float64 bucket norms of the rows
    (:func:`gcdesign.quantization.row_bucket_norms`), `levels` (n,) the levels ``s_i``,
    `quantizer` :data:`STOCHASTIC` or :data:`SIGN` (one bucket), `uniforms` (n, d) the
    draws. The arithmetic is :func:`gcdesign.quantization.quantize_rows`' operation for
    operation (``sign(x_k) * xi_k * (norm / s)``; sign ``+-norm``; 0 where the norm is 0),
    rounding with the package's one routine, so the two agree bit for bit. The per-bucket
    loops run on contiguous slices in functions of their own, which LLVM vectorizes.
    """
    n, d = x.shape
    for i in range(n):
        for c in range(norms.shape[1]):
            nrm = norms[i, c]
            lo = c * bucket
            hi = min(lo + bucket, d)
            if nrm == 0.0:
                out[i, lo:hi] = 0.0
            elif quantizer == STOCHASTIC:
                _stochastic_values(x[i, lo:hi], uniforms[i, lo:hi], levels[i], nrm, out[i, lo:hi])
            else:
                _sign_values(x[i, lo:hi], uniforms[i, lo:hi], nrm, out[i, lo:hi])


@njit()
def _stochastic_values(xs, us, s, nrm, out):
    # copysign(xi * scale, x) is sign(x) * xi * scale exactly (a sign flip does not round; a negative
    # x with xi = 0 gives -0.0 in both); x = -0.0 takes the sign of +0.0, as numpy's sign(-0.0) = 0
    scale = nrm / s
    for k in range(xs.size):
        xk = xs[k]
        value = stochastic_level(abs(xk), s, nrm, us[k]) * scale
        out[k] = np.copysign(value, xk if xk != 0.0 else 0.0)


@njit()
def _sign_values(xs, us, nrm, out):
    for k in range(xs.size):
        out[k] = nrm if sign_draw(xs[k], nrm, us[k]) else -nrm


def quantize_rows_numba(x, bits, *, quantizer: str, bucket_size: int | None = None, rng=None) -> np.ndarray:
    """:func:`gcdesign.quantization.quantize_rows` through the numba kernel: the same draws, the same bits.

    For the sending rows of one scheme (what the training harness quantizes): every row
    uses `quantizer` (a stochastic scheme's rows have ``bits >= 2``, a sign scheme's
    ``bits = 1``; ``"none"`` returns a copy and draws nothing), with the uniforms of one
    ``rng.random(x.shape)``, as the reference draws them.
    """
    x = np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.float64)))
    spec = quantizer_spec(quantizer)
    if spec.code == NONE or x.shape[0] == 0:
        return x.copy()
    u = np.random.default_rng(rng).random(x.shape)
    bits = np.asarray(bits)
    d = x.shape[1]
    bucket = d if bucket_size is None or not spec.buckets else min(int(bucket_size), d)
    norms = row_bucket_norms(x, bucket)
    s = np.asarray(spec.levels(np.where(bits > 0, bits, spec.bits[0])), dtype=np.float64).reshape(-1)
    out = np.empty_like(x)
    quantize_values(x, bucket, norms, s, spec.code, u, out)
    return out
