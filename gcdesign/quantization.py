r"""The quantizer: stochastic (optionally bucketed) and sign, with exact variances and payloads.

This module is the one home of the quantizer (docs/math.md, sections 2, 2b, 2c):
:data:`QUANTIZER_SPECS` is THE table (for each quantizer its name, wire code, allowed
bits, levels, buckets and norms; :data:`QUANTIZERS` the names) that schemes, the runtime,
payloads and the kernels read; :func:`quantize_rows` is the numpy reference (the numba
kernels of the training harness, the runtime codec and Monte Carlo are its twins, and
round with the one routine :func:`gcdesign._rounding.stochastic_level`, whose numpy twin
is :func:`stochastic_levels`), :func:`row_variances` the exact variance,
:func:`payload_bits` the wire size. Adding a quantizer: docs/extending.md, section 4.

One sign bit plus ``b - 1`` magnitude bits give :math:`s(b) = 2^{b-1} - 1`
levels. For :math:`x \ne 0`, coordinate :math:`k`:

.. math::

    y_k = s |x_k| / \|x\|_2, \quad
    \xi_k = \lfloor y_k \rfloor + \mathrm{Bernoulli}(y_k - \lfloor y_k \rfloor), \quad
    Q(x)_k = \|x\|_2 \, \mathrm{sign}(x_k) \, \xi_k / s.

The quantizer is unbiased and :math:`E\|Q(x)-x\|^2 \le \delta_{raw}(b) \|x\|^2`
with :math:`\delta_{raw}(b) = d / (4 s(b)^2)`. The design uses
:math:`\delta_i = \delta(b_i)` of a quantization model (:class:`QuantizationModel`),
e.g. :math:`\kappa \, \delta_{raw}(b_i)` with the factor :math:`\kappa` of the paper's
scaling (docs/math.md, section 2).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._validate import (
    MAX_BITS,
    InputError,
    check_bit_range,
    check_bucket_size,
    generator,
    real,
    real_array,
    show_value,
)

QUANTIZATION_MODELS = ("tight", "raw", "balanced", "calibrated", "none")
NORM_BITS = 32  # the norm travels as one float32
# MAX_BITS (from _validate): a float32 coordinate, the most a message spends per coordinate


def levels(bits) -> np.ndarray | float:
    """Number of magnitude levels :math:`s(b) = 2^{b-1} - 1` (float; b may be fractional)."""
    return np.exp2(np.asarray(bits, dtype=np.float64) - 1.0) - 1.0


def _one_level(bits) -> np.ndarray | float:
    r"""One level, whatever the bits: the sign quantizer's :math:`\pm\|x\|` (and an exact message)."""
    return np.ones_like(np.asarray(bits, dtype=np.float64))


# ------------------------------------------------------------------ the quantizer spec
@dataclass(frozen=True)
class Quantizer:
    """One row of :data:`QUANTIZER_SPECS`: what the rest of the package knows about a quantizer.

    Attributes
    ----------
    name : str
        The value of ``scheme.quantizer``.
    code : int
        The wire code: byte 5 of a runtime message header, and the switch of the numba
        kernels (Monte Carlo, codec, training).
    bits : range
        The bits per coordinate a sending worker may use (0, an idle worker, is always allowed).
    levels : callable
        ``levels(bits) -> s``: the number of magnitude levels at ``bits`` (float, vectorized).
    buckets : bool
        Whether it takes a bucket size (one norm per bucket of ``beta`` coordinates).
    norms : bool
        Whether a message carries float32 norms (:data:`NORM_BITS` each) besides its codes.
    """

    name: str
    code: int
    bits: range
    levels: Callable
    buckets: bool
    norms: bool

    @property
    def bits_text(self) -> str:
        """The allowed bits in words: ``"in [2, 32]"`` or ``"1"``."""
        lo, hi = self.bits[0], self.bits[-1]
        return f"{lo}" if lo == hi else f"in [{lo}, {hi}]"


#: THE quantizer table, in wire-code order (docs/extending.md shows how to add a row).
#: A new quantizer is one row here plus its kernels: the numpy reference (:func:`quantize_rows`,
#: :func:`row_variances`) and the numba twins (``_mc_kernels.simulate_rounds``,
#: ``_codec_kernels.encode_codes`` / ``accumulate_codes`` / ``quantize_values``).
QUANTIZER_SPECS = (
    Quantizer("stochastic", 0, range(2, MAX_BITS + 1), levels, buckets=True, norms=True),
    Quantizer("sign", 1, range(1, 2), _one_level, buckets=False, norms=True),
    Quantizer("none", 2, range(MAX_BITS, MAX_BITS + 1), _one_level, buckets=False, norms=False),
)
QUANTIZER = {q.name: q for q in QUANTIZER_SPECS}  # name -> Quantizer
QUANTIZERS = tuple(QUANTIZER)  # the names, in wire-code order
assert all(q.code == i for i, q in enumerate(QUANTIZER_SPECS)), "codes are the row numbers"


def quantizer_spec(name, *, what: str = "quantizer", where: str = "") -> Quantizer:
    """The :class:`Quantizer` called `name`; InputError ``Unknown {what} {name!r}{where}`` if none."""
    if not isinstance(name, str) or name not in QUANTIZER:
        raise InputError(f"Unknown {what} {name!r}{where}; choose one of: {', '.join(QUANTIZERS)}.")
    return QUANTIZER[name]


# The one numba rounding routine (stochastic_level, sign_draw), the twin of stochastic_levels
# below, lives in gcdesign._rounding: `import gcdesign` stays free of numba.


def _bucket_dim(dim: int, bucket_size: int | None) -> int:
    """Length of the longest bucket: the dimension the per-bucket bounds see."""
    return dim if bucket_size is None else min(int(bucket_size), int(dim))


def delta_raw(bits, dim: int, bucket_size: int | None = None) -> np.ndarray | float:
    """Worst-case relative variance bound :math:`d / (4 s(b)^2)` of the b-bit quantizer.

    With buckets of length ``beta`` the bound is :math:`\beta / (4 s^2)` (docs/math.md,
    section 2c). ``bits`` may be an array and fractional (``B / N``); it must exceed 1.
    Zero bits (an idle worker, which sends nothing) gives ``inf``.

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: section II-B (the quantization model and its
       variance bound); docs/math.md, sections 2 and 2c.
    """
    b = np.asarray(bits, dtype=np.float64)
    if b.size and not np.all(b <= MAX_BITS):  # NaN too
        raise InputError(f"`bits` must be at most {MAX_BITS} bits per coordinate, got {show_value(bits)}.")
    eff = _bucket_dim(dim, check_bucket_size(bucket_size))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(b > 1.0, eff / (4.0 * np.square(levels(b))), np.inf)
    return float(out) if out.ndim == 0 else out


def delta_tight(bits, dim: int, bucket_size: int | None = None) -> np.ndarray | float:
    r"""The tight bound :math:`\min(d / (4 s^2), \sqrt{d} / s)`, valid for every x (section 2b).

    With buckets, :math:`\min(\beta / (4 s^2), \sqrt{\beta} / s)` (section 2c). Zero bits: ``inf``.

    References
    ----------
    .. [1] D. Alistarh, D. Grubic, J. Li, R. Tomioka and M. Vojnovic, "QSGD: Communication-Efficient
       SGD via Gradient Quantization and Encoding", NeurIPS 2017: Lemma 3.1 (the same shape of
       bound); docs/math.md, section 2b.

    Examples
    --------
    >>> round(delta_tight(2, 10**6), 6), round(delta_raw(2, 10**6), 6)
    (1000.0, 250000.0)
    """
    b = np.asarray(bits, dtype=np.float64)
    eff = _bucket_dim(dim, bucket_size)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = levels(b)
        out = np.where(b > 1.0, np.minimum(eff / (4.0 * np.square(s)), math.sqrt(eff) / s), np.inf)
    return float(out) if out.ndim == 0 else out


def error_factors(bits, model, dim: int, bucket_size: int | None = None) -> np.ndarray:
    r"""Per-worker design factors :math:`\delta_i` of a quantization model.

    `model` is a :class:`QuantizationModel` or a number ``kappa`` (then
    :math:`\delta_i = \kappa\,\delta_{raw}(b_i)`). ``inf`` for an idle worker (0 bits: it
    sends nothing and gets mass 0), and 0 for every other worker under the "none" model.
    """
    if not isinstance(model, QuantizationModel):
        model = QuantizationModel("scaled", kappa=float(model))
    return model.delta(bits, dim, bucket_size)


def quantize(x, bits: int, *, bucket_size: int | None = None, rng=None) -> np.ndarray:
    """Stochastic b-bit quantization of the vector `x` (one row of :func:`quantize_rows`).

    Returns the dequantized vector :math:`Q_b(x)` (float64). ``bits >= 2``;
    ``bits = 1`` is the sign quantizer of :func:`quantize_sign`.
    """
    bits = _check_bits(bits)
    x = real_array("x", x, ndim=None)
    bucket_size = check_bucket_size(bucket_size)
    rows = quantize_rows(x.reshape(1, -1), [bits], bucket_size=bucket_size, rng=generator(rng))
    return rows.reshape(x.shape)


def quantization_variance(x, bits: int, *, bucket_size: int | None = None) -> float:
    r"""Exact :math:`E\|Q_b(x) - x\|^2 = (\|x\|^2 / s^2) \sum_k f_k (1 - f_k)` (per bucket with buckets)."""
    bits = _check_bits(bits)
    x = real_array("x", x, ndim=None).reshape(1, -1)
    return float(row_variances(x, [bits], "stochastic", check_bucket_size(bucket_size))[0])


def quantize_sign(x, *, rng=None) -> np.ndarray:
    r"""1-bit sign quantizer: :math:`\|x\| h_k`, :math:`P(h_k = 1) = (1 + x_k/\|x\|)/2`."""
    x = np.asarray(x, dtype=np.float64)
    return quantize_rows(x.reshape(1, -1), [1], rng=rng).reshape(x.shape)


def sign_quantization_variance(x) -> float:
    r"""Exact variance of the sign quantizer.

    :math:`E\|Q(x)-x\|^2 = \sum_k (\|x\|^2 - x_k^2) = (d - 1)\|x\|^2`.
    """
    x = np.asarray(x, dtype=np.float64).reshape(1, -1)
    return float(row_variances(x, [1], "sign")[0])


def payload_bits(bits, dim: int, quantizer: str = "stochastic", bucket_size: int | None = None):
    """Bits one message occupies on the wire (docs/math.md, sections 2 and 2c).

    * ``"stochastic"``: ``b d`` plus one float32 norm per bucket,
      ``b d + 32 ceil(d / beta)`` (``beta = None``: one bucket, ``b d + 32``);
    * ``"sign"``: ``d + 32`` (one bit per coordinate plus the norm);
    * ``"none"``: ``32 d``, a float32 per coordinate (the paper's count; the runtime
      sends exactly this).

    Idle workers (``b = 0``) send nothing. `bits` may be an array (one entry per worker).

    Examples
    --------
    >>> payload_bits(4, 1000)
    4032
    >>> payload_bits(4, 1000, bucket_size=512)
    4064
    >>> payload_bits([0, 32], 10, "none").tolist()
    [0, 320]
    """
    b = np.asarray(bits, dtype=np.int64)
    spec = quantizer_spec(quantizer)
    buckets = 1 if bucket_size is None or not spec.buckets else -(-dim // bucket_size)
    if spec.norms:
        out = np.where(b > 0, NORM_BITS * buckets + b * dim, 0)
    else:  # the values themselves, one float32 each
        out = np.where(b > 0, MAX_BITS * dim, 0)
    return int(out) if out.ndim == 0 else out


def coordinate_norms(x: np.ndarray, bucket_size: int | None = None) -> np.ndarray:
    """The norm each coordinate is quantized against: its bucket's norm, per row.

    `x` is (n, d). Returns (n, 1) for one bucket (``bucket_size`` None or >= d), else
    (n, d) with ``||x_c||`` repeated over the coordinates of bucket ``c``.
    """
    norms = row_bucket_norms(x, bucket_size)
    if norms.shape[1] == 1:
        return norms
    return np.repeat(norms, bucket_size, axis=1)[:, : x.shape[1]]


def row_bucket_norms(x: np.ndarray, bucket_size: int | None = None) -> np.ndarray:
    """The norm of every bucket of every row of `x` (n, d): (n, ceil(d / bucket_size)) float64.

    One column when ``bucket_size`` is None or >= d. These are the norms
    :func:`quantize_rows` quantizes against (:func:`coordinate_norms` spreads them over
    the coordinates), the same floats wherever they are computed.
    """
    n, d = x.shape
    if bucket_size is None or bucket_size >= d:
        return np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    buckets = -(-d // bucket_size)
    padded = np.zeros((n, buckets * bucket_size))
    padded[:, :d] = x
    blocks = padded.reshape(n, buckets, bucket_size)
    return np.sqrt(np.einsum("ijk,ijk->ij", blocks, blocks))


def quantize_rows(
    x, bits, *, quantizer: str = "stochastic", bucket_size: int | None = None, rng=None, uniforms=None
) -> np.ndarray:
    """Quantize every row of `x` with its own bit width, all at once (the numpy reference).

    Row i with ``bits[i] >= 2`` gets the stochastic quantizer (bucketed when
    `bucket_size` is given, docs/math.md section 2c), ``bits[i] == 1`` the sign
    quantizer; ``quantizer="none"`` returns `x` unchanged (as float64). The
    uniforms come from ``rng.random(x.shape)`` unless given (`uniforms`, same
    shape as `x`: the runtime passes its counter-based stream). With the same
    generator the result equals quantizing the rows one after the other with
    :func:`quantize` / :func:`quantize_sign`.

    Examples
    --------
    >>> x = np.array([[3.0, -4.0], [0.0, 0.0]])
    >>> quantize_rows(x, [2, 2], rng=0)  # s = 1: each coordinate becomes 0 or +-||x||
    array([[ 0., -5.],
           [ 0.,  0.]])
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if quantizer == "none" or x.shape[0] == 0:
        return x.copy()
    bits = np.asarray(bits)
    u = np.random.default_rng(rng).random(x.shape) if uniforms is None else np.asarray(uniforms)
    sign_rows = bits == 1
    norms = coordinate_norms(x, None if sign_rows.all() else bucket_size)
    safe = np.where(norms > 0, norms, 1.0)
    s = np.where(sign_rows, 1.0, levels(np.maximum(bits, 2)))
    out = np.sign(x) * stochastic_levels(x, s[:, None], safe, u) * (norms / s[:, None])
    if sign_rows.any():
        row_norms = coordinate_norms(x[sign_rows])
        xs = x[sign_rows] / np.where(row_norms > 0, row_norms, 1.0)
        out[sign_rows] = row_norms * np.where(u[sign_rows] < 0.5 * (1.0 + xs), 1.0, -1.0)
    out[np.broadcast_to(norms == 0, x.shape)] = 0.0
    return out


def stochastic_levels(x, s, norms, uniforms) -> np.ndarray:
    r"""The integer levels :math:`\xi_k = \min(\lfloor y_k \rfloor + [u_k < \{y_k\}], s)` (float64).

    ``y_k = |x_k| (s / norm_k)`` with `norms` the (positive) norm each coordinate is
    quantized against and `uniforms` the draws; all arguments broadcast. This is the
    rounding step shared by :func:`quantize_rows` and the runtime codec's numpy twin
    (which quantizes against the float32 norms that travel), and the numpy twin of
    :func:`gcdesign._rounding.stochastic_level`, which every numba kernel calls (same
    clip to ``s``).

    Examples
    --------
    >>> stochastic_levels(np.array([3.0, -4.0]), 1.0, 5.0, np.array([0.5, 0.9])).tolist()
    [1.0, 0.0]
    """
    y = np.abs(x) * (s / norms)  # the reciprocal first, as the numba routine does
    low = np.floor(y)
    return np.minimum(low + (uniforms < y - low), s)


def row_variances(x, bits, quantizer: str = "stochastic", bucket_size: int | None = None) -> np.ndarray:
    r"""Exact :math:`V_i = E\|Q(x_i) - x_i\|^2` for every row of `x` (vectorized).

    Stochastic: ``sum_c (||x_c||^2 / s^2) sum_{k in c} f_k (1 - f_k)`` (one bucket:
    ``(||x||^2 / s^2) sum_k f_k (1 - f_k)``); sign: ``(d - 1) ||x||^2``; none: 0.
    Idle workers (0 bits) send nothing: 0.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    bits = np.asarray(bits)
    norm_sq = np.einsum("ij,ij->i", x, x)
    out = np.zeros(x.shape[0])
    if quantizer == "none":
        return out
    if quantizer == "sign":
        return np.where(bits > 0, (x.shape[1] - 1) * norm_sq, 0.0)
    active = (bits >= 2) & (norm_sq > 0)
    if not active.any():
        return out
    rows = x[active]
    s = np.asarray(levels(bits[active]), dtype=np.float64)
    norms = coordinate_norms(rows, bucket_size)
    y = s[:, None] * np.abs(rows) / np.where(norms > 0, norms, 1.0)
    f = y - np.floor(y)
    if norms.shape[1] == 1:
        out[active] = norm_sq[active] / s**2 * np.sum(f * (1.0 - f), axis=1)
    else:
        out[active] = np.sum(np.square(norms) * f * (1.0 - f), axis=1) / s**2
    return out


#: The fields of each kind of model in a design file beyond ``kind`` and ``kappa``: (required,
#: optional). docs/schema/design.schema.json says the same.
MODEL_FIELDS = {
    "tight": ((), ()),
    "raw": ((), ()),
    "balanced": (("c",), ()),
    "calibrated": (("table", "dim", "samples"), ("bucket_size",)),
    "none": ((), ()),
    "scaled": ((), ()),
}
#: The kinds whose ``kappa`` is fixed.
FIXED_KAPPA = {"tight": 1.0, "raw": 1.0, "calibrated": 1.0, "none": 0.0}


@dataclass(frozen=True)
class QuantizationModel:
    r"""A quantization model: maps (bits, dim, bucket size) to the design factor :math:`\delta(b)`.

    The design minimizes the Lemma 1 objective with :math:`\delta_i = \delta(b_i)`
    (docs/math.md, sections 2, 2b, 2c, 2d), so the model decides what "optimal" means.

    Attributes
    ----------
    kind : {"tight", "raw", "balanced", "calibrated", "none", "scaled"}
        ``"tight"``: :math:`\min(d/(4s^2), \sqrt d / s)`, a bound valid for every gradient;
        ``"raw"``: :math:`d / (4 s^2)`; ``"balanced"``: the paper's practical scaling
        :math:`\kappa\,\delta_{raw}` with :math:`\kappa = c\,\bar p / \delta_{raw}(B/N)` (kept
        for fidelity to the paper: it is not an error model); ``"calibrated"``: measured from
        sample vectors (:func:`calibrate_quantization`); ``"none"``: 0 (the OSGC structure);
        ``"scaled"``: an explicit ``kappa`` times :math:`\delta_{raw}`.
    kappa : float
        The factor on the base bound (1 for tight, raw and calibrated; 0 for none).
    c : float or None
        The balanced policy's constant.
    table : tuple of float or None
        Calibrated: :math:`\delta(b)` for ``b = 0 .. 32`` (``nan`` where not measured).
    dim, bucket_size, samples : int or None
        Calibrated: the dimension and bucket size of the samples, and how many there were.
    """

    kind: str
    kappa: float = 1.0
    c: float | None = None
    table: tuple | None = None
    dim: int | None = None
    bucket_size: int | None = None
    samples: int | None = None

    @property
    def label(self) -> str:
        if self.kind == "balanced":
            return f"balanced (c = {self.c:g})"
        if self.kind == "scaled":
            return f"kappa = {self.kappa:g}"
        if self.kind == "calibrated":
            return f"calibrated ({self.samples} samples, d = {self.dim})"
        return self.kind

    def delta(self, bits, dim: int, bucket_size: int | None = None) -> np.ndarray:
        r"""Per-worker :math:`\delta_i` for the bit widths `bits` (``inf`` where 0 bits)."""
        b = np.asarray(bits)
        idle = b == 0
        safe = np.where(idle, 2, b)
        if self.kind == "none" or (self.kind in ("scaled", "balanced") and self.kappa == 0.0):
            delta = np.zeros(b.shape)
        elif self.kind == "tight":
            delta = delta_tight(safe, dim, bucket_size)
        elif self.kind == "calibrated":
            if dim != self.dim or bucket_size != self.bucket_size:
                raise InputError(
                    f"the calibrated quantization model was measured at d = {self.dim}, bucket size "
                    f"{self.bucket_size}; it cannot serve d = {dim}, bucket size {bucket_size}."
                )
            table = np.asarray(self.table, dtype=np.float64)
            delta = table[np.clip(np.asarray(safe, dtype=np.int64), 0, MAX_BITS)]
            if np.any(np.isnan(np.where(idle, 0.0, delta))):
                bad = int(np.asarray(safe)[~idle & np.isnan(delta)].flat[0])
                raise InputError(f"the calibrated quantization model has no value at {bad} bits.")
        else:  # raw, balanced, scaled
            delta = self.kappa * delta_raw(safe, dim, bucket_size)
        return np.where(idle, np.inf, delta)

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "kappa": self.kappa}
        for key in ("c", "dim", "bucket_size", "samples"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.table is not None:
            out["table"] = [None if math.isnan(v) else v for v in self.table]
        return out

    @classmethod
    def from_dict(cls, data) -> QuantizationModel:
        """The model a design file's ``quantization`` object describes, every field checked.

        Each kind has exactly its fields (:data:`MODEL_FIELDS`): a field of another kind, a
        missing one or a ``kappa`` that the kind fixes (1 for tight, raw and calibrated, 0
        for none) is refused with one line naming ``quantization.FIELD``.
        """
        if not isinstance(data, dict):
            raise InputError(f"`quantization` must be an object, got {type(data).__name__}.")
        kind = data.get("kind")
        if not isinstance(kind, str) or kind not in MODEL_FIELDS:
            raise InputError(
                f"`quantization.kind` = {show_value(kind)}; choose one of: {', '.join(MODEL_FIELDS)}."
            )
        required, optional = MODEL_FIELDS[kind]
        for key in data:
            if key not in ("kind", "kappa", *required, *optional):
                raise InputError(f"`quantization.{key}` is not a field of the {kind} model.")
        for key in ("kappa", *required):
            if data.get(key) is None:
                raise InputError(f"`quantization.{key}` is missing: the {kind} model needs it.")
        for key in optional:
            if key in data and data[key] is None:  # absent means none; the package never writes null
                raise InputError(f"`quantization.{key}` is null; leave the field out instead.")
        kappa = real("quantization.kappa", data["kappa"], low=0)
        if kind in FIXED_KAPPA and kappa != FIXED_KAPPA[kind]:
            raise InputError(
                f"`quantization.kappa` = {kappa!r}; the {kind} model has kappa = {FIXED_KAPPA[kind]!r}."
            )
        table = data.get("table")
        if kind == "calibrated":
            if not isinstance(table, list) or len(table) != MAX_BITS + 1:
                raise InputError(f"`quantization.table` must be a list of {MAX_BITS + 1} numbers or nulls.")
            table = tuple(
                math.nan if v is None else real(f"quantization.table[{i}]", v, low=0)
                for i, v in enumerate(table)
            )
        elif table is not None:
            raise InputError(f"`quantization.table` applies to the calibrated model only, not {kind!r}.")
        ints = {}
        for key in ("dim", "bucket_size", "samples"):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(f"`quantization.{key}` must be an integer >= 1, got {value!r}.")
            ints[key] = value
        c = data.get("c")
        if c is not None:
            c = real("quantization.c", c, low=0, low_open=True)
        return cls(kind, kappa=kappa, c=c, table=table, **ints)


def resolve_quantization(
    model, straggler_probs, budget: float, dim: int, *, bucket_size: int | None = None, c: float = 1.0
) -> QuantizationModel:
    r"""The :class:`QuantizationModel` named by `model`, with its constants resolved.

    Parameters
    ----------
    model : str, float or QuantizationModel
        ``"tight"``, ``"raw"``, ``"balanced"``, ``"none"``, a number ``kappa >= 0`` (or a
        string holding one: the scaled raw bound), or a model (e.g. from
        :func:`calibrate_quantization`), returned as is.
    straggler_probs, budget, dim, bucket_size
        What the balanced policy needs: :math:`\kappa = c\,\bar p / \delta_{raw}(B/N; \beta)`.
    c : float
        Constant of the balanced policy (default 1; the authors' code uses 0.005).

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: section V-B (the practical scaling of the error
       balance, ``"balanced"``); docs/math.md, section 2.

    Examples
    --------
    >>> resolve_quantization("tight", [0.1, 0.2], 8, 1000).kind
    'tight'
    >>> resolve_quantization("-1", [0.1], 4, 10)
    Traceback (most recent call last):
    ...
    gcdesign._validate.InputError: `kappa` must be a finite number >= 0, got '-1'.
    """
    if isinstance(model, QuantizationModel):
        return model
    if isinstance(model, numbers.Real) and not isinstance(model, bool):
        return QuantizationModel("scaled", kappa=real("kappa", model, low=0))
    if isinstance(model, str) and model not in QUANTIZATION_MODELS:
        try:
            value = float(model)
        except ValueError:
            value = None
        if value is not None:  # a number written as text: checked outside the parse
            if not math.isfinite(value) or value < 0:
                raise InputError(f"`kappa` must be a finite number >= 0, got {model!r}.")
            return QuantizationModel("scaled", kappa=value)
    if model not in QUANTIZATION_MODELS or model == "calibrated":
        hint = (
            " (build a calibrated model with gcdesign.calibrate_quantization)"
            if model == "calibrated"
            else ""
        )
        raise InputError(
            f"Unknown quantization model {model!r}{hint}; choose one of: tight, raw, balanced, none, "
            "or a number kappa >= 0."
        )
    if model == "raw":
        return QuantizationModel("raw")
    if model == "tight":
        return QuantizationModel("tight")
    if model == "none":
        return QuantizationModel("none", kappa=0.0)
    c = real("kappa_c", c, low=0)
    if c == 0:
        raise InputError("`kappa_c` must be a finite number > 0, got 0.")
    p = np.asarray(straggler_probs, dtype=np.float64)
    avg_bits = budget / p.size
    if avg_bits <= 1.0:
        raise InputError(f"the balanced quantization model needs B / N > 1 bit, got {avg_bits!r}.")
    kappa = c * float(p.mean()) / float(delta_raw(avg_bits, dim, bucket_size))
    return QuantizationModel("balanced", kappa=kappa, c=c)


def calibrate_quantization(
    samples, *, b_min: int = 2, b_max: int = MAX_BITS, bucket_size: int | None = None
) -> QuantizationModel:
    r"""A quantization model measured from sample vectors (docs/math.md, section 2d).

    :math:`\delta_{cal}(b) = \sum_t V_b(x^{(t)}) / \sum_t \|x^{(t)}\|^2` with :math:`V_b` the
    exact variance of the (bucketed) quantizer, for every ``b`` in ``[b_min, b_max]``.
    `samples` is an (m, d) array of vectors of the kind workers send (coded messages or
    partition gradients from a few real rounds); rows of any scale pool, since
    :math:`V_b(c x) = c^2 V_b(x)`. The result is accepted by :func:`gcdesign.design` and
    stored in the design file.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> model = calibrate_quantization(rng.normal(size=(20, 4096)), b_max=8)
    >>> model.kind, model.dim, round(float(model.delta([4], 4096)[0]), 1)
    ('calibrated', 4096, 6.3)
    """
    x = real_array("samples", samples, ndim=None)  # bool, complex, text, NaN, inf: refused by position
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or x.size == 0:
        raise InputError(f"`samples` must be a two-dimensional array (m x d), got shape {x.shape}.")
    b_min, b_max = check_bit_range(b_min, b_max)
    bucket_size = check_bucket_size(bucket_size)
    # delta is a ratio of sums of squares: one common scale changes nothing, and dividing by the
    # largest |x| keeps samples near 1e200 from overflowing and subnormal ones from underflowing
    scale = float(np.max(np.abs(x)))
    if scale == 0.0:
        raise InputError("`samples` are all zero: nothing to calibrate on.")
    x = x / scale
    total = float(np.einsum("ij,ij->", x, x))
    table = np.full(MAX_BITS + 1, np.nan)
    for b in range(b_min, b_max + 1):
        table[b] = float(row_variances(x, np.full(x.shape[0], b), "stochastic", bucket_size).sum()) / total
    return QuantizationModel(
        "calibrated",
        table=tuple(table.tolist()),
        dim=int(x.shape[1]),
        bucket_size=None if bucket_size is None else int(bucket_size),
        samples=int(x.shape[0]),
    )


def _check_bits(bits) -> int:
    """Bits of the stochastic quantizer: an integer in its allowed widths ([2, 32])."""
    allowed = QUANTIZER["stochastic"].bits
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, numbers.Integral) or bits not in allowed:
        raise InputError(
            f"`bits` must be an integer {QUANTIZER['stochastic'].bits_text}, got {show_value(bits)}."
        )
    return int(bits)


__all__ = [
    "MAX_BITS",
    "NORM_BITS",
    "QUANTIZATION_MODELS",
    "QUANTIZERS",
    "QuantizationModel",
    "calibrate_quantization",
    "coordinate_norms",
    "delta_raw",
    "delta_tight",
    "error_factors",
    "levels",
    "payload_bits",
    "quantization_variance",
    "quantize",
    "quantize_rows",
    "quantize_sign",
    "resolve_quantization",
    "row_variances",
    "sign_quantization_variance",
    "stochastic_levels",
]
