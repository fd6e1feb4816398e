r"""Runtime for training code: encode a worker's message, decode the master's estimate.

A worker ``i`` holding the partitions ``j`` with ``b_ij != 0`` computes
``x_i = sum_j b_ij g_j`` and sends :math:`Q_{b_i}(x_i)` as a :class:`Message`
(docs/math.md, sections 2 and 2c):

* **stochastic** (``2 <= b <= 32``): the coordinates split into buckets of ``beta``
  consecutive coordinates (the scheme's ``bucket_size``; None: one bucket), and each
  bucket's norm travels as one **float32**, rounded *up* to the next float32 when the
  float64 norm is not representable, so ``|x_k| <= norm`` and every level fits; the
  quantizer uses these float32 norms, so the message is exactly unbiased for the value
  that travels. Then ``b`` bits per coordinate, packed MSB first without padding between
  coordinates: one sign bit (1 = negative) followed by ``b - 1`` bits of the level
  ``xi_k`` in ``0..s``, ``s = 2^(b-1) - 1``;
* **sign** (``b = 1``): one float32 norm and one bit per coordinate (1 = +1);
* **none** (``b = 32``): the coordinates as float32 (round to nearest), no norm.

The payload is :func:`gcdesign.quantization.payload_bits`: ``b d + 32 ceil(d / beta)``,
``d + 32`` and ``32 d`` bits (:attr:`Message.payload_bits`); the header adds 28 bytes and
the codes are padded to a whole byte.

Wire format, version 2 (little-endian), :meth:`Message.to_bytes`::

    offset    size            field
    0         4               magic b"GCQM"
    4         1               format version (2)
    5         1               quantizer: 0 stochastic, 1 sign, 2 none
    6         1               bits per coordinate b (stochastic 2..32, sign 1, none 32)
    7         1               reserved (0)
    8         4               worker index (uint32)
    12        8               dimension d (uint64, >= 1)
    20        8               bucket size beta (uint64; 0: one bucket)
    28        4 m             m float32 norms: stochastic ceil(d / beta) (1 without
                              buckets), sign 1, none 0
    28 + 4 m  ceil(b d / 8)   packed codes; none: d float32 values

Version 1 (written before buckets; still read): a 24-byte header ``magic, version (1),
quantizer, bits, reserved, worker (uint32), d (uint64), norm (float32)``, then the same
codes; its unquantized messages carried float64 values (``b = 64``), which a version-2
message can hold too (it is what :meth:`Message.to_bytes` writes for them).

Every message is checked when it is built or read (:class:`Message`): a norm that is
NaN, infinite or negative, a payload of the wrong length, an unknown version, quantizer
or magic, or bits that do not fit the quantizer raise
:class:`~gcdesign._validate.InputError` naming the field, and :func:`decode` checks the
headers against the scheme (worker, bits, quantizer, bucket size, dimension).

The numba kernels of :mod:`gcdesign._codec_kernels` do the work; each has a numpy twin
drawing the same counter-based uniforms, so a message is bit-identical whichever made it.
:func:`decode` forms ``ghat = sum_i a_i Q(x_i)`` over the arrived messages with the
scheme's decoder for that arrival pattern (fixed or arrival-dependent), accumulating
each message into the estimate in place.
"""

from __future__ import annotations

import numbers
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from . import _codec_kernels as kernels
from ._validate import InputError
from .quantization import NORM_BITS, QUANTIZER_SPECS, quantizer_spec
from .schemes import check_scheme

MAGIC = b"GCQM"
WIRE_VERSION = 2
READ_VERSIONS = (1, 2)
_HEADER = struct.Struct("<4sBBBBIQQ")  # version 2: magic, version, quantizer, bits, reserved, worker, d, beta
_HEADER_V1 = struct.Struct("<4sBBBxIQf")  # version 1: magic, version, quantizer, bits, pad, worker, d, norm
_V1_BITS = {"none": (64,)}  # besides the table's bits: version-1 unquantized messages carried float64 values
_UINT32, _UINT64 = 2**32, 2**64
_MESSAGE_TYPES = (bytes, bytearray, memoryview)


@dataclass(frozen=True, eq=False)
class Message:
    """One worker's quantized message, checked when it is built.

    Attributes
    ----------
    worker : int
    dim : int
        The dimension ``d >= 1``.
    bits : int
        Bits per coordinate: 2..32 (stochastic), 1 (sign), 32 (none: float32 values; 64 for
        the float64 values of a version-1 message).
    quantizer : {"stochastic", "sign", "none"}
    norms : numpy.ndarray
        The norms as sent: read-only float32, one per bucket (stochastic), one (sign), none
        (unquantized).
    payload : bytes or memoryview
        The packed codes (``ceil(bits * dim / 8)`` bytes), or the float32 values: bytes, or a
        read-only byte memoryview (what :func:`encode` and :meth:`from_bytes` keep, to avoid
        copying a large payload).
    bucket_size : int or None
        The bucket size ``beta`` of a stochastic message (None: one bucket).

    Two messages are equal when their bytes on the wire are.
    """

    worker: int
    dim: int
    bits: int
    quantizer: str
    norms: np.ndarray
    payload: bytes = field(repr=False)
    bucket_size: int | None = None

    def __post_init__(self):
        n_norms, n_payload = _layout(self.worker, self.dim, self.bits, self.quantizer, self.bucket_size)
        norms = _check_norms(self.norms, n_norms)
        payload = self.payload
        if isinstance(payload, bytearray):
            payload = bytes(payload)
        elif isinstance(payload, memoryview):
            payload = payload if payload.readonly and payload.format == "B" else payload.tobytes()
        elif not isinstance(payload, bytes):
            raise InputError(f"message `payload` must be bytes, got {type(payload).__name__}.")
        if len(payload) != n_payload:
            raise InputError(
                f"message payload has {len(payload)} bytes, expected {n_payload} for d = {self.dim}, "
                f"b = {self.bits} ({self.quantizer})."
            )
        if self.quantizer == "none":
            values = np.frombuffer(payload, dtype="<f4" if self.bits == 32 else "<f8")
            bad = ~np.isfinite(values)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"message value[{k}] = {float(values[k])!r} is not finite (a corrupted message?)."
                )
        object.__setattr__(self, "worker", int(self.worker))
        object.__setattr__(self, "dim", int(self.dim))
        object.__setattr__(self, "bits", int(self.bits))
        object.__setattr__(self, "bucket_size", None if self.bucket_size is None else int(self.bucket_size))
        object.__setattr__(self, "norms", norms)
        object.__setattr__(self, "payload", payload)

    # ------------------------------------------------------------ bytes
    def to_bytes(self) -> bytes:
        """The message on the wire (format version 2, see the module docstring)."""
        header = _HEADER.pack(
            MAGIC,
            WIRE_VERSION,
            quantizer_spec(self.quantizer).code,
            self.bits,
            0,
            self.worker,
            self.dim,
            0 if self.bucket_size is None else self.bucket_size,
        )
        return b"".join((header, self.norms.astype("<f4").tobytes(), self.payload))

    @classmethod
    def from_bytes(cls, data) -> Message:
        """Parse a message (format version 2, or 1); InputError naming the field if it is malformed.

        `data` must be ``bytes`` (or a bytearray / memoryview of bytes).
        """
        if not isinstance(data, _MESSAGE_TYPES):
            raise InputError(
                f"a message must be bytes (the output of Message.to_bytes), got {type(data).__name__}."
            )
        if not isinstance(data, bytes):
            data = memoryview(data).tobytes()
        if len(data) < 5:
            raise InputError(f"message: {len(data)} bytes is shorter than any header.")
        if data[:4] != MAGIC:
            raise InputError(f"message: bad magic {data[:4]!r} (expected {MAGIC!r}).")
        version = data[4]
        if version not in READ_VERSIONS:
            raise InputError(
                f"message: unsupported format version {version} (this runtime reads versions "
                f"{', '.join(map(str, READ_VERSIONS))})."
            )
        header = _HEADER_V1 if version == 1 else _HEADER
        if len(data) < header.size:
            raise InputError(
                f"message: {len(data)} bytes is shorter than the {header.size}-byte version-{version} header."
            )
        if version == 1:
            _, _, qcode, bits, worker, dim, norm = header.unpack_from(data)
            reserved, beta = 0, 0
        else:
            _, _, qcode, bits, reserved, worker, dim, beta = header.unpack_from(data)
        if qcode >= len(QUANTIZER_SPECS):
            known = ", ".join(f"{q.code} {q.name}" for q in QUANTIZER_SPECS)
            raise InputError(f"message: unknown quantizer code {qcode} ({known}).")
        if reserved:
            raise InputError(f"message: reserved byte is {reserved}, expected 0.")
        quantizer = QUANTIZER_SPECS[qcode].name
        bucket_size = beta or None
        n_norms, n_payload = _layout(worker, dim, bits, quantizer, bucket_size)
        body = header.size + (4 * n_norms if version == 2 else 0)
        if len(data) != body + n_payload:
            raise InputError(
                f"message: payload has {len(data) - body} bytes, expected {n_payload} for d = {dim}, "
                f"b = {bits} ({quantizer})."
            )
        if version == 1:
            norms = np.array([norm] if n_norms else [], dtype=np.float32)
        else:
            norms = np.frombuffer(data, dtype="<f4", count=n_norms, offset=header.size)
        return cls(worker, dim, bits, quantizer, norms, memoryview(data)[body:], bucket_size)

    # ------------------------------------------------------------ properties
    @property
    def nbytes(self) -> int:
        """Size on the wire: ``len(self.to_bytes())``."""
        return _HEADER.size + 4 * self.norms.size + len(self.payload)

    @property
    def payload_bits(self) -> int:
        """Bits of the model's payload: ``b d`` plus 32 per norm (the wire without header and padding).

        Equals :func:`gcdesign.quantization.payload_bits` for every message :func:`encode` makes.
        """
        return NORM_BITS * self.norms.size + self.bits * self.dim

    @property
    def norm(self) -> float:
        """The norm as sent: the one float32 norm, or (buckets) the norm of the bucket norms."""
        if self.quantizer == "none":
            return float(np.linalg.norm(self.values()))
        return float(np.sqrt(np.sum(np.square(self.norms.astype(np.float64)))))

    def values(self) -> np.ndarray:
        """The dequantized vector :math:`Q(x_i)` (float64)."""
        out = np.zeros(self.dim)
        self.accumulate_into(out)
        return out

    def accumulate_into(self, out: np.ndarray, weight: float = 1.0) -> np.ndarray:
        """Add ``weight * Q(x_i)`` to `out` in place (float64, shape (d,)) and return it."""
        _check_out(out, self.dim)
        kernels.accumulate_message(
            self.payload,
            self.bits,
            quantizer_spec(self.quantizer).code,
            _bucket(self),
            self.norms,
            float(weight),
            out,
        )
        return out

    def __reduce__(self):  # pickles as its bytes on the wire (the payload may be a memoryview)
        return Message.from_bytes, (self.to_bytes(),)

    def __eq__(self, other):
        if not isinstance(other, Message):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    def __hash__(self):
        return hash(self.to_bytes())


def _layout(worker, dim, bits, quantizer, bucket_size) -> tuple[int, int]:
    """Check the header fields of a message; return (number of norms, payload bytes)."""
    spec = quantizer_spec(quantizer, what="message quantizer")
    for name, value, top in (("worker", worker, _UINT32), ("dim", dim, _UINT64)):
        low = 0 if name == "worker" else 1
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value < top:
            raise InputError(f"message `{name}` must be an integer in [{low}, {top - 1}], got {value!r}.")
    legacy = _V1_BITS.get(quantizer, ())
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or bits not in (*spec.bits, *legacy):
        span = " or ".join((spec.bits_text, *map(str, legacy)))
        raise InputError(
            f"message `bits` = {bits!r} does not fit the {quantizer!r} quantizer: it must be {span}."
        )
    if bucket_size is not None:
        if not spec.buckets:
            raise InputError(
                f"message `bucket_size` = {bucket_size!r}: only stochastic messages have buckets."
            )
        if (
            isinstance(bucket_size, bool)
            or not isinstance(bucket_size, numbers.Integral)
            or not (1 <= bucket_size < _UINT64)
        ):
            raise InputError(f"message `bucket_size` must be None or an integer >= 1, got {bucket_size!r}.")
    if not spec.norms:
        return 0, bits // 8 * dim
    n_norms = 1 if bucket_size is None else -(-dim // bucket_size)
    return n_norms, -(-bits * dim // 8)


def _check_norms(norms, count: int) -> np.ndarray:
    arr = np.asarray(norms)
    if arr.shape != (count,) or arr.dtype.kind != "f":
        raise InputError(
            f"message `norms` must be {count} float32 values, got shape {arr.shape} ({arr.dtype})."
        )
    bad = ~(np.isfinite(arr) & (arr >= 0))
    if bad.any():
        c = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"message `norms[{c}]` = {float(arr[c])!r}: a norm must be a finite number >= 0 "
            "(a corrupted message?)."
        )
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)  # a new array: the message's own, read-only
    if not np.array_equal(out, arr):
        c = int(np.flatnonzero(out != arr)[0])
        raise InputError(f"message `norms[{c}]` = {float(arr[c])!r} is not a float32 value.")
    out.setflags(write=False)
    return out


def _bucket(message: Message) -> int:
    """Coordinates per norm: the bucket size capped at d (one bucket: d)."""
    beta = message.bucket_size
    return message.dim if beta is None else min(beta, message.dim)


def _check_out(out, dim: int) -> None:
    if (
        not isinstance(out, np.ndarray)
        or out.dtype != np.float64
        or out.shape != (dim,)
        or not out.flags.c_contiguous
        or not out.flags.writeable
    ):
        shape = getattr(out, "shape", None)
        raise InputError(
            f"`out` must be a writeable contiguous float64 array of shape ({dim},), got "
            f"{type(out).__name__} {shape} {getattr(out, 'dtype', '')}."
        )


def _frozen_bytes(array: np.ndarray) -> memoryview:
    """A read-only byte view of a fresh array the caller gives up (no copy of a large payload)."""
    raw = array.view(np.uint8)
    raw.setflags(write=False)
    return memoryview(raw)


def float32_norm_up(x: np.ndarray) -> float:
    """``||x||`` as a float32 value that is >= the float64 norm."""
    return float(kernels.round_up_float32(np.linalg.norm(x)))


def stream_key(rng) -> np.uint64:
    """The 64-bit key of a message's uniforms: one draw from ``np.random.default_rng(rng)``."""
    return np.random.default_rng(rng).integers(0, _UINT64, dtype=np.uint64)


# ---------------------------------------------------------------- encode / decode
def partitions_of(scheme, worker: int) -> np.ndarray:
    """Indices of the partitions worker `worker` holds (sorted)."""
    return _encoding_row(scheme, _worker_iv(scheme, worker))[0]


def _encoding_row(scheme, worker: int) -> tuple[np.ndarray, np.ndarray]:
    """(held partitions in increasing order, their coefficients b_ij != 0) of one worker."""
    enc = scheme.encoding
    if enc.format != "csr" or not enc.has_canonical_format:
        enc = sp.csr_array(enc, copy=True)
        enc.sum_duplicates()
    lo, hi = enc.indptr[worker], enc.indptr[worker + 1]
    cols, vals = enc.indices[lo:hi], enc.data[lo:hi]
    keep = vals != 0
    return cols[keep].astype(np.intp), np.asarray(vals[keep], dtype=np.float64)


def _worker_iv(scheme, worker) -> int:
    n = scheme.encoding.shape[0]
    if isinstance(worker, bool) or not isinstance(worker, (int, np.integer)) or not 0 <= worker < n:
        raise InputError(f"`worker` must be an integer in [0, {n - 1}], got {worker!r}.")
    return int(worker)


def worker_message_vector(scheme, worker: int, partial_gradients, *, check_finite: bool = True) -> np.ndarray:
    """``x_i = sum_j b_ij g_j`` from the worker's partial gradients.

    `partial_gradients` is a mapping ``{partition: g_j}`` covering the worker's
    partitions, or an array with one row per held partition (in increasing
    partition order, see :func:`partitions_of`), or the full ``K x d`` array.
    With `check_finite` (default) non-finite gradients are refused here;
    :func:`encode` skips this pass and refuses them through the norms of ``x_i``.
    """
    worker = _worker_iv(scheme, worker)
    held, coeffs = _encoding_row(scheme, worker)
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
    if check_finite and grads.size and not np.all(np.isfinite(grads)):
        raise InputError("`partial_gradients` must be finite.")
    x = coeffs[0] * grads[0]
    for coeff, g in zip(coeffs[1:], grads[1:], strict=True):  # fixed order: reproducible
        x += coeff * g
    return x


def encode(scheme, worker: int, partial_gradients, *, rng=None) -> Message:
    """Quantize worker `worker`'s coded gradient into a :class:`Message`.

    Parameters
    ----------
    scheme : Design or Scheme
        Its ``encoding``, ``bits``, ``quantizer`` and ``bucket_size`` are used.
    worker : int
    partial_gradients : mapping or array
        See :func:`worker_message_vector`.
    rng : None, int or numpy.random.Generator
        Draws one 64-bit key (:func:`stream_key`); coordinate ``k`` is rounded with the
        ``k``-th uniform of the counter-based stream of that key, so the message does not
        depend on how the work is split. Give every worker its own seed (or share one
        Generator): two messages encoded with the same seed use the same uniforms.

    Examples
    --------
    >>> from gcdesign import design, load_example
    >>> d = design(load_example("toy-n8"), bits_per_worker=4)
    >>> g = np.ones((d.partitions, 10))
    >>> msg = encode(d, 0, g, rng=0)
    >>> Message.from_bytes(msg.to_bytes()) == msg
    True
    >>> int(d.bits[0]), msg.payload_bits  # b d + one float32 norm
    (8, 112)
    """
    scheme = check_scheme(scheme)
    x = worker_message_vector(scheme, worker, partial_gradients, check_finite=False)
    return encode_vector(scheme, worker, x, rng=rng)


def encode_vector(scheme, worker: int, x, *, rng=None) -> Message:
    """Quantize worker `worker`'s coded gradient ``x_i`` itself (already combined) into a :class:`Message`.

    What :func:`encode` does after forming ``x_i = sum_j b_ij g_j``; for callers that form
    ``x_i`` another way (one backward pass over weighted samples, :mod:`gcdesign.torch`).
    `x` is a 1-D float64 array (used in place, no copy; other float types are widened
    once). Same `rng` rule as :func:`encode`: the same vector and seed give the same bytes.
    """
    scheme = check_scheme(scheme)
    worker = _worker_iv(scheme, worker)
    x = np.asarray(x)
    if x.ndim != 1 or x.dtype.kind != "f":
        raise InputError(f"`x` must be a 1-D float array, got shape {x.shape} ({x.dtype}).")
    bits = int(scheme.bits[worker])
    quantizer = scheme.quantizer
    if bits == 0:
        raise InputError(f"worker {worker} is idle (0 bits): it sends nothing.")
    if x.size == 0:
        raise InputError("`partial_gradients` have no coordinates (d = 0): there is nothing to send.")
    if quantizer == "none":
        values, finite = kernels.encode_float32(x)
        if not finite:
            raise InputError(
                f"worker {worker}'s coded gradient is not finite or exceeds the float32 range (max 3.4e38)."
            )
        return Message(worker, x.size, 32, "none", np.empty(0, np.float32), _frozen_bytes(values))
    beta = scheme.bucket_size
    bucket = x.size if beta is None else min(int(beta), x.size)
    code = quantizer_spec(quantizer).code
    norms, payload = kernels.encode_message(x, bits, code, bucket, stream_key(rng))
    if not np.all(np.isfinite(norms)):
        raise InputError(
            f"worker {worker}'s coded gradient is not finite or has a norm beyond the float32 range "
            "(max 3.4e38)."
        )
    beta = None if beta is None else int(beta)
    return Message(worker, x.size, bits, quantizer, norms, _frozen_bytes(payload), beta)


def decode(scheme, messages: Iterable[Message | bytes], *, dim: int | None = None, out=None) -> np.ndarray:
    """The master's estimate ``ghat = sum_i a_i Q(x_i)`` from the messages that arrived.

    The decoder weights come from ``scheme.decode_weights(arrived)``, so
    arrival-dependent decoders (least squares, ...) work as well.

    Parameters
    ----------
    scheme : Design or Scheme
    messages : iterable of bytes or Message
        The messages that arrived (any order, at most one per worker). Bytes are parsed with
        :meth:`Message.from_bytes`; every header is checked against the scheme (worker,
        quantizer, bits, bucket size) and the dimensions must agree.
    dim : int, optional
        The expected dimension d (then `messages` may be empty: the estimate is 0).
    out : numpy.ndarray, optional
        A float64 array of shape (d,) that receives the estimate (overwritten), so a
        round loop reuses one buffer.

    Returns
    -------
    numpy.ndarray
        The estimate (`out` when given).
    """
    scheme = check_scheme(scheme)
    if isinstance(messages, (*_MESSAGE_TYPES, Message)):
        raise InputError(
            f"`messages` must be a list of messages (bytes or Message), got one {type(messages).__name__}: "
            "wrap it in a list."
        )
    try:
        items = list(messages)
    except TypeError:
        raise InputError(
            f"`messages` must be an iterable of messages (bytes or Message), got {type(messages).__name__}."
        ) from None
    parsed = []
    for index, item in enumerate(items):
        if isinstance(item, Message):
            parsed.append(item)
        elif isinstance(item, _MESSAGE_TYPES):
            try:
                parsed.append(Message.from_bytes(item))
            except InputError as err:
                raise InputError(f"`messages[{index}]`: {err}") from None
        else:
            raise InputError(f"`messages[{index}]` must be bytes or a Message, got {type(item).__name__}.")
    if out is not None:
        dim = getattr(out, "size", None) if dim is None else dim
    if dim is not None:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
            raise InputError(f"`dim` must be an integer >= 1, got {dim!r}.")
    elif parsed:
        dim = parsed[0].dim
    else:
        raise InputError("`messages` is empty: nothing to decode (pass `dim` to get the zero estimate).")
    n = scheme.encoding.shape[0]
    bits = np.asarray(scheme.bits)
    arrived = np.zeros(n, dtype=bool)
    for m in parsed:
        _check_against(scheme, m, bits, n, dim)
        if arrived[m.worker]:
            raise InputError(f"two messages from worker {m.worker}.")
        arrived[m.worker] = True
    if out is None:
        out = np.zeros(dim)
    else:
        _check_out(out, dim)
        out[...] = 0.0
    if not parsed:
        return out
    weights = np.asarray(scheme.decode_weights(arrived), dtype=np.float64)
    if weights.shape != (n,) or not np.all(np.isfinite(weights[arrived])):
        raise InputError(f"`{scheme.name}.decode_weights` must return {n} finite weights, got {weights!r}.")
    for m in sorted(parsed, key=lambda m: m.worker):  # fixed order: reproducible sums
        if weights[m.worker] != 0.0:
            m.accumulate_into(out, weights[m.worker])
    return out


def _check_against(scheme, m: Message, bits: np.ndarray, n: int, dim: int) -> None:
    """A message's header must fit the scheme and the dimension."""
    if m.worker >= n:
        raise InputError(f"message from worker {m.worker}, but the scheme has workers 0..{n - 1}.")
    if m.quantizer != scheme.quantizer:
        raise InputError(
            f"message from worker {m.worker} uses the {m.quantizer!r} quantizer, "
            f"the scheme {scheme.quantizer!r}."
        )
    want = int(bits[m.worker])
    if want == 0:
        raise InputError(f"message from worker {m.worker}, who is idle in the scheme (0 bits).")
    if m.quantizer != "none" and m.bits != want:
        raise InputError(f"message from worker {m.worker} has {m.bits} bits, the scheme says {want}.")
    if m.bucket_size != scheme.bucket_size:
        raise InputError(
            f"message from worker {m.worker} has bucket size {m.bucket_size}, "
            f"the scheme {scheme.bucket_size}."
        )
    if m.dim != dim:
        raise InputError(f"message from worker {m.worker} has d = {m.dim}, expected d = {dim}.")


__all__ = [
    "MAGIC",
    "WIRE_VERSION",
    "Message",
    "decode",
    "encode",
    "encode_vector",
    "float32_norm_up",
    "partitions_of",
    "stream_key",
    "worker_message_vector",
]
