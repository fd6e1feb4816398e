"""Codes to compare against, all behind the interface of a :class:`~gcdesign.Design`.

A *scheme* exposes

* ``name`` (str), ``encoding`` (scipy.sparse CSR, N x K: worker i computes
  ``x_i = sum_j encoding[i, j] g_j``), ``bits`` (int array (N,): bits per
  coordinate of worker i's message; 1 means the sign quantizer, 0 that the
  worker sends nothing), ``straggler_probs`` (N,), ``quantizer``
  (``"stochastic"``, ``"sign"`` or ``"none"`` for unquantized messages);
* ``decoding``: the fixed decoding vector (N,) when the decoder does not depend
  on who arrived, else None;
* ``decode_weights(arrived) -> a`` (N,): the decoder for a round in which the
  workers flagged in the boolean mask ``arrived`` answered; the estimate is
  ``sum_i a_i Q(x_i)`` (zero weight on the missing workers).

:class:`Scheme` is the plain implementation; :func:`make_scheme` builds the
registered baselines by name (see :data:`SCHEMES`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import scipy.sparse as sp

from .._validate import InputError, choice


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
    description : str
    local_decoder : bool
        True when the decoder's weights on each connected component of the
        worker-partition graph depend only on the arrivals in that component
        (least squares, one-message-per-group decoders). The exact evaluator
        then enumerates arrival patterns component by component.
    """

    name: str
    encoding: sp.csr_array
    bits: np.ndarray
    straggler_probs: np.ndarray
    decoding: np.ndarray | None = None
    decoder: Callable[[np.ndarray], np.ndarray] | None = None
    quantizer: str = "stochastic"
    description: str = ""
    local_decoder: bool = False

    def __post_init__(self):
        object.__setattr__(self, "encoding", sp.csr_array(self.encoding))
        object.__setattr__(self, "bits", np.asarray(self.bits, dtype=np.int64))
        object.__setattr__(self, "straggler_probs", np.asarray(self.straggler_probs, dtype=np.float64))
        if (self.decoding is None) == (self.decoder is None):
            raise InputError("a scheme needs exactly one of `decoding` and `decoder`.")
        if self.decoding is not None:
            object.__setattr__(self, "decoding", np.asarray(self.decoding, dtype=np.float64))
        if self.quantizer not in ("stochastic", "sign", "none"):
            raise InputError(f"Unknown quantizer {self.quantizer!r}; choose stochastic, sign, none.")

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


@dataclass(frozen=True)
class SchemeEntry:
    """A registered scheme: its factory and how studies show it (see :func:`register_scheme`)."""

    name: str
    factory: Callable[..., Scheme]
    label: str
    style: Mapping[str, object]
    description: str


#: name -> :class:`SchemeEntry`; factory(profile, budget, *, rng=None, replication=2, **options) -> Scheme
SCHEMES: dict[str, SchemeEntry] = {}


def register_scheme(
    name: str,
    factory: Callable[..., Scheme],
    *,
    label: str,
    style: Mapping[str, object] | None = None,
    description: str | None = None,
) -> SchemeEntry:
    """Make `factory` available as ``make_scheme(name, ...)``, in studies and in ``--compare``.

    Parameters
    ----------
    name : str
        Registry key; a name already registered is refused (InputError).
    factory : callable
        ``factory(profile, budget, *, rng=None, replication=2, **options) -> Scheme``.
    label : str
        Legend and table label in the studies.
    style : mapping, optional
        matplotlib line keywords of its curves (``color``, ``linestyle``,
        ``linewidth``, ...); default: the next colour of the cycle, a solid line.
    description : str, optional
        One line for listings; default the first line of the factory's docstring.
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"`name` must be a non-empty string, got {name!r}.")
    if name in SCHEMES:
        raise InputError(f"`name` = {name!r}: a scheme of that name is already registered; choose another.")
    if not callable(factory):
        raise InputError(f"`factory` of scheme {name!r} must be callable, got {factory!r}.")
    if description is None:
        description = (factory.__doc__ or "").strip().split("\n")[0]
    entry = SchemeEntry(name, factory, str(label), MappingProxyType(dict(style or {})), str(description))
    SCHEMES[name] = entry
    return entry


def make_scheme(name: str, profile, budget: int, *, rng=None, replication: int = 2, **options):
    """Build the registered scheme `name` for `profile` at total bit budget `budget`."""
    factory = SCHEMES[choice("scheme", name, SCHEMES)].factory
    return factory(profile, budget, rng=rng, replication=replication, **options)


__all__ = ["SCHEMES", "Scheme", "SchemeEntry", "make_scheme", "register_scheme"]

# importing these registers their schemes (baselines; exact-frc, exact-cyclic)
from . import baselines, exact  # noqa: E402,F401
