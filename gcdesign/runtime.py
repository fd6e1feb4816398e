r"""Runtime for training code: encode a worker's message, decode the master's estimate (numpy only).

A worker ``i`` holding the partitions ``j`` with ``b_ij != 0`` computes
``x_i = sum_j b_ij g_j`` and sends :math:`Q_{b_i}(x_i)` as a :class:`Message`:

* the norm, as one **float32** (rounded *up* to the next float32 when the
  float64 norm is not representable, so ``|x_k| <= norm`` and every level fits);
  the quantizer uses this float32 norm, so the message is exactly unbiased for
  the value that travels;
* ``b`` bits per coordinate, packed MSB first without padding between
  coordinates: one sign bit (1 = negative) followed by ``b - 1`` bits of the
  level ``xi_k`` in ``0..s``, ``s = 2^(b-1) - 1``; the 1-bit sign quantizer
  sends only the sign of ``h_k`` (1 = +1).

Wire format (little-endian), :meth:`Message.to_bytes`::

    offset  size  field
    0       4     magic b"GCQM"
    4       1     format version (1)
    5       1     quantizer: 0 stochastic, 1 sign, 2 none (float64 values, 64 bits/coordinate)
    6       1     bits per coordinate b
    7       1     reserved (0)
    8       4     worker index (uint32)
    12      8     dimension d (uint64)
    20      4     norm (float32)
    24      ...   ceil(b d / 8) bytes of packed codes

The payload of the model (MATH 2) is ``32 + b d`` bits; the header adds 20
bytes of framing (magic, version, worker, dimension).

:func:`decode` forms ``ghat = sum_i a_i Q(x_i)`` over the arrived messages with
the scheme's decoder for that arrival pattern (fixed or arrival-dependent).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import quantization
from ._validate import InputError
from .quantization import levels

MAGIC = b"GCQM"
WIRE_VERSION = 1
_HEADER = struct.Struct("<4sBBBxIQf")
_QUANTIZERS = ("stochastic", "sign", "none")


@dataclass(frozen=True)
class Message:
    """One worker's quantized message.

    Attributes
    ----------
    worker : int
    dim : int
    bits : int
        Bits per coordinate (1 for the sign quantizer, 64 for unquantized float64).
    quantizer : {"stochastic", "sign", "none"}
    norm : float
        The norm as sent (a float32 value).
    payload : bytes
        ``ceil(bits * dim / 8)`` bytes of packed codes.
    """

    worker: int
    dim: int
    bits: int
    quantizer: str
    norm: float
    payload: bytes

    def to_bytes(self) -> bytes:
        header = _HEADER.pack(
            MAGIC,
            WIRE_VERSION,
            _QUANTIZERS.index(self.quantizer),
            self.bits,
            self.worker,
            self.dim,
            self.norm,
        )
        return header + self.payload

    @classmethod
    def from_bytes(cls, data: bytes) -> Message:
        """Parse :meth:`to_bytes` output; InputError on anything malformed."""
        data = bytes(data)
        if len(data) < _HEADER.size:
            raise InputError(f"message: {len(data)} bytes is shorter than the {_HEADER.size}-byte header.")
        magic, version, qcode, bits, worker, dim, norm = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise InputError(f"message: bad magic {magic!r} (expected {MAGIC!r}).")
        if version != WIRE_VERSION:
            raise InputError(
                f"message: unsupported format version {version} (this runtime reads {WIRE_VERSION})."
            )
        if qcode >= len(_QUANTIZERS):
            raise InputError(f"message: unknown quantizer code {qcode}.")
        payload = data[_HEADER.size :]
        expected = _payload_bytes(bits, dim)
        if len(payload) != expected:
            raise InputError(
                f"message: payload has {len(payload)} bytes, expected {expected} for d = {dim}, b = {bits}."
            )
        return cls(
            worker=worker, dim=dim, bits=bits, quantizer=_QUANTIZERS[qcode], norm=float(norm), payload=payload
        )

    @property
    def nbytes(self) -> int:
        """Size on the wire (header + packed codes)."""
        return _HEADER.size + len(self.payload)

    @property
    def payload_bits(self) -> int:
        """Bits of the model's payload: the float32 norm plus ``b`` bits per coordinate."""
        return int(quantization.payload_bits(self.bits, self.dim))

    def values(self) -> np.ndarray:
        """The dequantized vector :math:`Q(x_i)` (float64)."""
        if self.quantizer == "none":
            return np.frombuffer(self.payload, dtype="<f8").astype(np.float64)
        codes = _unpack(self.payload, self.bits, self.dim)
        if self.quantizer == "sign":
            return self.norm * np.where(codes == 1, 1.0, -1.0)
        s = float(levels(self.bits))
        sign_bit = np.uint64(1) << np.uint64(self.bits - 1)
        level = (codes & (sign_bit - np.uint64(1))).astype(np.float64)
        sign = np.where(codes & sign_bit, -1.0, 1.0)
        return self.norm * sign * level / s


def _payload_bytes(bits: int, dim: int) -> int:
    return -(-bits * dim // 8)


def _pack(codes: np.ndarray, bits: int) -> bytes:
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    matrix = ((codes[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    return np.packbits(matrix.ravel()).tobytes()


def _unpack(payload: bytes, bits: int, dim: int) -> np.ndarray:
    flat = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=bits * dim)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    return (flat.reshape(dim, bits).astype(np.uint64) << shifts).sum(axis=1, dtype=np.uint64)


def float32_norm_up(x: np.ndarray) -> float:
    """``||x||`` as a float32 value that is >= the float64 norm."""
    exact = float(np.linalg.norm(x))
    rounded = np.float32(exact)
    if float(rounded) < exact:
        rounded = np.nextafter(rounded, np.float32(np.inf))
    return float(rounded)


# ---------------------------------------------------------------- encode / decode
def partitions_of(scheme, worker: int) -> np.ndarray:
    """Indices of the partitions worker `worker` holds (sorted)."""
    row = sp.csr_array(scheme.encoding)[[worker]]
    return np.sort(row.indices[row.data != 0])


def _worker_iv(scheme, worker) -> int:
    n = scheme.encoding.shape[0]
    if isinstance(worker, bool) or not isinstance(worker, (int, np.integer)) or not 0 <= worker < n:
        raise InputError(f"`worker` must be an integer in [0, {n - 1}], got {worker!r}.")
    return int(worker)


def worker_message_vector(scheme, worker: int, partial_gradients) -> np.ndarray:
    """``x_i = sum_j b_ij g_j`` from the worker's partial gradients.

    `partial_gradients` is a mapping ``{partition: g_j}`` covering the worker's
    partitions, or an array with one row per held partition (in increasing
    partition order, see :func:`partitions_of`), or the full ``K x d`` array.
    """
    worker = _worker_iv(scheme, worker)
    row = sp.csr_array(scheme.encoding)[[worker]].toarray().ravel()
    held = np.flatnonzero(row)  # = partitions_of(scheme, worker)
    if held.size == 0:
        raise InputError(f"worker {worker} holds no partition: it has nothing to send.")
    if isinstance(partial_gradients, Mapping):
        missing = [int(j) for j in held if int(j) not in partial_gradients]
        if missing:
            raise InputError(f"`partial_gradients` lacks partition {missing[0]} held by worker {worker}.")
        rows = [np.asarray(partial_gradients[int(j)], dtype=np.float64) for j in held]
        grads = np.vstack(rows) if rows else np.zeros((0, 0))
    else:
        grads = np.asarray(partial_gradients, dtype=np.float64)
        k = scheme.encoding.shape[1]
        if grads.ndim != 2 or grads.shape[0] not in (held.size, k):
            raise InputError(
                f"`partial_gradients` must have one row per held partition ({held.size}) or per "
                f"partition ({k}), got shape {grads.shape}."
            )
        if grads.shape[0] == k and held.size != k:
            grads = grads[held]
    if grads.size and not np.all(np.isfinite(grads)):
        raise InputError("`partial_gradients` must be finite.")
    x = np.zeros(grads.shape[1])
    for coeff, g in zip(row[held], grads, strict=True):  # fixed order: reproducible
        x += coeff * g
    return x


def encode(scheme, worker: int, partial_gradients, *, rng=None) -> Message:
    """Quantize worker `worker`'s coded gradient into a :class:`Message`.

    Parameters
    ----------
    scheme : Design or Scheme
        Its ``encoding``, ``bits`` and ``quantizer`` are used.
    worker : int
    partial_gradients : mapping or array
        See :func:`worker_message_vector`.
    rng : None, int or numpy.random.Generator
        Draws one uniform per coordinate (``rng.random(d)``).

    Examples
    --------
    >>> from gcdesign import design, load_example
    >>> d = design(load_example("toy-n8"), bits_per_worker=4)
    >>> g = np.ones((d.partitions, 10))
    >>> msg = encode(d, 0, g, rng=0)
    >>> Message.from_bytes(msg.to_bytes()) == msg
    True
    """
    x = worker_message_vector(scheme, worker, partial_gradients)
    bits = int(np.asarray(scheme.bits)[worker])
    quantizer = getattr(scheme, "quantizer", "stochastic")
    dim = x.size
    if quantizer == "none":
        payload = np.asarray(x, dtype="<f8").tobytes()
        return Message(worker, dim, 64, "none", float32_norm_up(x), payload)
    if bits == 0:
        raise InputError(f"worker {worker} is idle (0 bits): it sends nothing.")
    rng = np.random.default_rng(rng)
    norm = float32_norm_up(x)
    u = rng.random(dim)
    if norm == 0.0:
        codes = np.zeros(dim, dtype=np.uint64) if quantizer != "sign" else np.ones(dim, dtype=np.uint64)
        return Message(worker, dim, bits, quantizer, 0.0, _pack(codes, bits))
    if quantizer == "sign":
        if bits != 1:
            raise InputError(f"the sign quantizer sends 1 bit per coordinate, worker {worker} has {bits}.")
        codes = (u < 0.5 * (1.0 + x / norm)).astype(np.uint64)
        return Message(worker, dim, 1, "sign", norm, _pack(codes, 1))
    if bits < 2:
        raise InputError(f"the stochastic quantizer needs >= 2 bits, worker {worker} has {bits}.")
    s = float(levels(bits))
    y = s * np.abs(x) / norm
    low = np.floor(y)
    xi = np.minimum(np.where(u < y - low, low + 1.0, low), s)  # y <= s up to rounding
    negative = (x < 0) & (xi > 0)
    codes = xi.astype(np.uint64) | (negative.astype(np.uint64) << np.uint64(bits - 1))
    return Message(worker, dim, bits, "stochastic", norm, _pack(codes, bits))


def decode(scheme, messages: Iterable[Message | bytes]) -> np.ndarray:
    """The master's estimate ``ghat = sum_i a_i Q(x_i)`` from the messages that arrived.

    The decoder weights come from ``scheme.decode_weights(arrived)``, so
    arrival-dependent decoders (least squares, ...) work as well.
    """
    parsed = [m if isinstance(m, Message) else Message.from_bytes(m) for m in messages]
    n = scheme.encoding.shape[0]
    bits = np.asarray(scheme.bits)
    arrived = np.zeros(n, dtype=bool)
    dims = {m.dim for m in parsed}
    if len(dims) > 1:
        raise InputError(f"messages disagree on the dimension: {sorted(dims)}.")
    for m in parsed:
        if not 0 <= m.worker < n:
            raise InputError(f"message from worker {m.worker}, but the scheme has workers 0..{n - 1}.")
        if arrived[m.worker]:
            raise InputError(f"two messages from worker {m.worker}.")
        if m.quantizer != "none" and m.bits != bits[m.worker]:
            raise InputError(
                f"message from worker {m.worker} has {m.bits} bits, the scheme says {bits[m.worker]}."
            )
        arrived[m.worker] = True
    if not parsed:
        raise InputError("`messages` is empty: nothing to decode (the dimension is unknown).")
    weights = np.asarray(scheme.decode_weights(arrived), dtype=np.float64)
    estimate = np.zeros(parsed[0].dim)
    for m in sorted(parsed, key=lambda m: m.worker):
        estimate += weights[m.worker] * m.values()
    return estimate


__all__ = [
    "MAGIC",
    "Message",
    "decode",
    "encode",
    "float32_norm_up",
    "partitions_of",
    "worker_message_vector",
]
