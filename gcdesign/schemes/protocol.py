"""The Scheme protocol and its one validator (what every consumer checks a scheme with).

A *scheme* is anything that satisfies :class:`SchemeLike`; the fields are described in
:mod:`gcdesign.schemes`. :func:`check_scheme` is the one validator every consumer calls
(evaluation, Monte Carlo, training, runtime, cluster, studies); :class:`Scheme` is the
plain implementation (it checks itself when built).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from .._validate import InputError, read_only, read_only_sparse
from ..quantization import quantizer_spec

SCHEME_FIELDS = (
    "name",
    "encoding",
    "bits",
    "straggler_probs",
    "quantizer",
    "bucket_size",
    "decoding",
    "local_decoder",
    "decode_weights",
)


@runtime_checkable
class SchemeLike(Protocol):
    """What a scheme is (see the module docstring for the meaning of each field)."""

    name: str
    encoding: sp.csr_array
    bits: np.ndarray
    straggler_probs: np.ndarray
    quantizer: str
    bucket_size: int | None
    decoding: np.ndarray | None
    local_decoder: bool

    def decode_weights(self, arrived) -> np.ndarray: ...


def check_scheme(scheme, *, name: str = "scheme"):
    """Check that `scheme` satisfies :class:`SchemeLike` and is consistent; return it.

    Raises :class:`~gcdesign._validate.InputError` naming the first field that is missing
    or wrong (shape, range, quantizer name, bits for that quantizer, ...).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from gcdesign.schemes import Scheme
    >>> Scheme(name="x", encoding=sp.eye_array(8, format="csr"), bits=np.full(5, 4),
    ...        straggler_probs=np.full(8, 0.1), decoding=np.ones(8))
    Traceback (most recent call last):
    ...
    gcdesign._validate.InputError: `scheme.bits` must have shape (8,) (one entry per worker), got (5,).
    """
    for attr in SCHEME_FIELDS:
        if not hasattr(scheme, attr):
            raise InputError(
                f"`{name}` has no `{attr}`: a scheme needs {', '.join(SCHEME_FIELDS)} "
                "(see gcdesign.schemes.SchemeLike)."
            )
    if not isinstance(scheme.name, str) or not scheme.name:
        raise InputError(f"`{name}.name` must be a non-empty string, got {scheme.name!r}.")
    enc = scheme.encoding
    if not sp.issparse(enc) or enc.ndim != 2 or min(enc.shape) < 1:
        raise InputError(f"`{name}.encoding` must be a two-dimensional scipy.sparse matrix (N x K).")
    n = enc.shape[0]
    if not np.all(np.isfinite(enc.data)):
        raise InputError(f"`{name}.encoding` must have finite entries.")
    for attr in ("bits", "straggler_probs"):
        value = np.asarray(getattr(scheme, attr))
        if value.shape != (n,):
            raise InputError(
                f"`{name}.{attr}` must have shape ({n},) (one entry per worker), got {value.shape}."
            )
    p = np.asarray(scheme.straggler_probs)
    bad = ~((p >= 0.0) & (p <= 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"`{name}.straggler_probs[{i}]` = {float(p[i])!r} is not a probability in [0, 1].")
    quantizer = scheme.quantizer
    spec = quantizer_spec(quantizer, where=f" in `{name}`")
    bits = np.asarray(scheme.bits)
    if bits.dtype.kind not in "iu":
        raise InputError(f"`{name}.bits` must be integers, got dtype {bits.dtype}.")
    bad = (bits != 0) & ((bits < spec.bits[0]) | (bits > spec.bits[-1]))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"`{name}.bits[{i}]` = {int(bits[i])} is not allowed with quantizer {quantizer!r}: "
            f"each entry must be 0 (idle) or {spec.bits_text}."
        )
    beta = scheme.bucket_size
    if beta is not None and (isinstance(beta, bool) or not isinstance(beta, int | np.integer) or beta < 1):
        raise InputError(f"`{name}.bucket_size` must be None or an integer >= 1, got {beta!r}.")
    if beta is not None and not spec.buckets:
        raise InputError(f"`{name}.bucket_size` applies to the stochastic quantizer only, not {quantizer!r}.")
    if scheme.decoding is not None:
        a = np.asarray(scheme.decoding)
        if a.shape != (n,) or not np.all(np.isfinite(a)):
            raise InputError(f"`{name}.decoding` must be None or a finite array of shape ({n},).")
    if not isinstance(scheme.local_decoder, bool | np.bool_):
        raise InputError(f"`{name}.local_decoder` must be a bool, got {scheme.local_decoder!r}.")
    if not callable(scheme.decode_weights):
        raise InputError(f"`{name}.decode_weights` must be callable (arrived mask -> weights).")
    return scheme


@dataclass(frozen=True, eq=False)
class Scheme:
    """A gradient code with a fixed or an arrival-dependent linear decoder.

    Parameters
    ----------
    name : str
    encoding : sparse (N x K)
    bits : int array (N,)
    straggler_probs : array (N,)
    decoding : array (N,), optional
        Fixed decoder (weights of the arrived workers).
    decoder : callable, optional
        ``decoder(arrived_mask) -> a`` for arrival-dependent decoding
        (least squares, exact-code recovery, ...). Exactly one of `decoding`
        and `decoder` is given.
    quantizer : {"stochastic", "sign", "none"}
    bucket_size : int or None
        Bucket length of the stochastic quantizer (None: one bucket).
    description : str
    local_decoder : bool
        True when the decoder's weights on each connected component of the
        worker-partition graph depend only on the arrivals in that component
        (least squares, one-message-per-group decoders). The exact evaluator
        then enumerates arrival patterns component by component.

    The arrays are stored read-only, and the scheme is checked with
    :func:`check_scheme` when it is built.
    """

    name: str
    encoding: sp.csr_array
    bits: np.ndarray
    straggler_probs: np.ndarray
    decoding: np.ndarray | None = None
    decoder: Callable[[np.ndarray], np.ndarray] | None = None
    quantizer: str = "stochastic"
    bucket_size: int | None = None
    description: str = ""
    local_decoder: bool = False

    def __post_init__(self):
        if not sp.issparse(self.encoding):
            raise InputError("`scheme.encoding` must be a scipy.sparse matrix (N x K).")
        object.__setattr__(self, "encoding", read_only_sparse(self.encoding))
        object.__setattr__(self, "bits", read_only(np.asarray(self.bits, dtype=np.int64)))
        object.__setattr__(
            self, "straggler_probs", read_only(np.asarray(self.straggler_probs, dtype=np.float64))
        )
        if (self.decoding is None) == (self.decoder is None):
            raise InputError("a scheme needs exactly one of `decoding` and `decoder`.")
        if self.decoding is not None:
            object.__setattr__(self, "decoding", read_only(np.asarray(self.decoding, dtype=np.float64)))
        check_scheme(self)

    @property
    def n_workers(self) -> int:
        return int(self.encoding.shape[0])

    @property
    def partitions(self) -> int:
        return int(self.encoding.shape[1])

    def decode_weights(self, arrived) -> np.ndarray:
        arrived = np.asarray(arrived, dtype=bool)
        if self.decoding is not None:
            return np.where(arrived, self.decoding, 0.0)
        return np.where(arrived, self.decoder(arrived), 0.0)


def with_bucket_size(scheme, bucket_size: int | None):
    """`scheme` with its stochastic quantizer in buckets of `bucket_size` (None: one bucket).

    Comparisons quantize every scheme the same way: a baseline compared with a bucketed
    design gets the design's buckets. Sign and unquantized schemes are returned as they are.
    """
    import dataclasses

    check_scheme(scheme)
    if not quantizer_spec(scheme.quantizer).buckets or scheme.bucket_size == bucket_size:
        return scheme
    return dataclasses.replace(scheme, bucket_size=bucket_size)


__all__ = [
    "SCHEME_FIELDS",
    "Scheme",
    "SchemeLike",
    "check_scheme",
    "with_bucket_size",
]
