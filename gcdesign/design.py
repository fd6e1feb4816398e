"""The design pipeline: allocation -> structure -> construction -> Design.

Read top to bottom, :func:`design` is the whole method of the package:

1. choose bits per worker (:func:`gcdesign.allocation.allocate_bits`);
2. turn bits into quantization error factors ``delta_i = delta(b_i)`` of the quantization model;
3. compute the optimal worker masses in closed form (:mod:`gcdesign.structure`);
4. lay them out as a sparse nonnegative encoding (:mod:`gcdesign.construction`);
5. decode with inverse-propensity weights ``a_i = 1 / (1 - p_i)``.

A :class:`Design` satisfies the scheme protocol (:class:`gcdesign.schemes.SchemeLike`)
with real fields, so the evaluator, the training harness, the runtime and the
studies take it like any other scheme.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field, fields

import numpy as np
import scipy.sparse as sp

from ._validate import (
    UNSET,
    InputError,
    check_bit_range,
    check_bucket_size,
    check_budget,
    choice,
    options_dict,
    read_only,
    read_only_sparse,
    renamed_keyword,
)
from .allocation import AUTO, Allocation, allocate_bits
from .construction import count_components, group_workers, hub_layout, segment_layout
from .profile import ClusterProfile
from .quantization import QuantizationModel, error_factors
from .structure import UNBIASED_TOL, error_bound, optimal_structure

CONSTRUCTIONS = ("segment", "hub")
ORDERS = ("grouped", "index")
DEFAULT_ALLOCATOR = AUTO  # the exact DP where it is cheap, the certified solver beyond
# The quantization model and bucket size design() optimizes for by default, chosen by
# measured exact error (`gcdesign study quantization`, docs/studies/quantization.md).
DEFAULT_QUANTIZATION = "raw"
DEFAULT_BUCKET_SIZE = 512


class DesignError(InputError):
    """A design that breaks one of its invariants (e.g. a tampered file)."""


@dataclass(frozen=True, eq=False)
class Design:
    """A joint gradient code: encoding, decoding and bits, with the numbers behind them.

    Attributes
    ----------
    profile : ClusterProfile
    encoding : scipy.sparse.csr_array (N x K)
        ``b_ij``: worker i sends ``Q_{b_i}(sum_j b_ij g_j)``.
    decoding : ndarray (N,)
        ``a_i``; the master's estimate is ``sum_i a_i I_i Q(x_i)``.
    bits : ndarray of int (N,)
    budget : int
    delta : ndarray (N,)
        ``delta(b_i)`` of the quantization model (inf for an idle worker).
    row_mass : ndarray (N,)
        ``Y_i = (1 - p_i) a_i sum_j b_ij``.
    bound : float
        Lemma 1 bound per unit ``G^2``: ``K^2 / S``.
    load : float
        nnz / N, the average number of partitions per worker.
    components : int
        Connected components of the worker-partition graph.
    options : mapping (read-only)
        The options that produced the design (allocator, construction, ...).
    allocation : Allocation or None
        The allocator's full result (None for a design loaded from a file).
    quantization : QuantizationModel
        The model that maps bits to ``delta`` (tight, raw, balanced, calibrated, ...).
    kappa : float
        ``quantization.kappa``: the paper's scaling factor :math:`\\kappa` of
        :math:`\\delta_i = \\kappa\\,\\delta_{raw}(b_i)` under the raw (1), balanced and
        scaled models, 0 under none (docs/math.md, section 2); 1 under tight and
        calibrated, whose :math:`\\delta` is no multiple of :math:`\\delta_{raw}`.
    name, quantizer, bucket_size, local_decoder
        The scheme protocol's fields: ``"joint"``, ``"stochastic"``, the bucket length
        of the quantizer (None: one norm per message), ``False`` (a fixed decoder).

    The arrays are read-only: a design cannot be edited into one that breaks (U).
    """

    profile: ClusterProfile
    encoding: sp.csr_array
    decoding: np.ndarray
    bits: np.ndarray
    budget: int
    delta: np.ndarray
    row_mass: np.ndarray
    bound: float
    load: float
    components: int
    options: types.MappingProxyType = field(default_factory=dict)
    allocation: Allocation | None = None
    quantization: QuantizationModel = QuantizationModel("raw")
    name: str = "joint"
    quantizer: str = "stochastic"
    bucket_size: int | None = None
    local_decoder: bool = False

    def __post_init__(self):
        object.__setattr__(self, "encoding", read_only_sparse(self.encoding))
        for attr in ("decoding", "bits", "delta", "row_mass"):
            object.__setattr__(self, attr, read_only(getattr(self, attr)))
        object.__setattr__(self, "options", types.MappingProxyType(dict(self.options)))

    def __reduce__(self):
        # a mappingproxy does not pickle (process pools, Dask): rebuild through __init__, read-only again
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return (_rebuild, (self.__class__, values | {"options": dict(self.options)}))

    @property
    def kappa(self) -> float:
        return self.quantization.kappa

    # ---------------------------------------------------------- scheme interface

    @property
    def straggler_probs(self) -> np.ndarray:
        return self.profile.straggler_probs

    @property
    def n_workers(self) -> int:
        return self.profile.n_workers

    @property
    def partitions(self) -> int:
        return self.profile.partitions

    def decode_weights(self, arrived) -> np.ndarray:
        """Decoder for a round in which the workers flagged in `arrived` answered."""
        return np.where(np.asarray(arrived, dtype=bool), self.decoding, 0.0)

    @property
    def nnz(self) -> int:
        return int(self.encoding.nnz)

    def effective_weights(self) -> sp.csr_array:
        """``w_ij = a_i b_ij`` (CSR)."""
        return sp.csr_array(sp.diags_array(self.decoding) @ self.encoding)

    def summary(self) -> dict:
        """The numbers a person reads first (also what ``gcdesign design --json`` prints)."""
        p = self.profile.straggler_probs
        values, counts = np.unique(self.bits, return_counts=True)
        order = np.argsort(p, kind="stable")
        pick = lambda idx: [  # noqa: E731
            {
                "worker": self.profile.names[i],
                "p": float(p[i]),
                "bits": int(self.bits[i]),
                "mass": float(self.row_mass[i]),
            }
            for i in idx
        ]
        return {
            "workers": self.n_workers,
            "partitions": self.partitions,
            "dim": self.profile.dim,
            "budget": self.budget,
            "bits_per_worker": self.budget / self.n_workers,
            "kappa": self.kappa,
            "quantization": self.quantization.label,
            "bucket_size": self.bucket_size,
            "bound": self.bound,
            "load": self.load,
            "nnz": self.nnz,
            "components": self.components,
            "bits_histogram": {int(v): int(c) for v, c in zip(values, counts, strict=True)},
            "most_reliable": pick(order[:3]),
            "least_reliable": pick(order[::-1][:3]),
            "options": dict(self.options),
            # which allocator ran (``auto`` picks one) and whether its bits are proven optimal
            "allocation": None
            if self.allocation is None
            else {"method": self.allocation.method, "optimal": self.allocation.optimal},
        }

    # ---------------------------------------------------------------- checks
    def validate(self, *, tol: float = UNBIASED_TOL) -> Design:
        """Check the invariants; raise :class:`DesignError` naming the first one broken.

        (U) ``sum_i (1 - p_i) a_i b_ij = 1`` for every partition (to `tol`);
        nonnegative weights (except the hub layout); bits within
        ``[b_min, b_max]`` (0 allowed for idle workers) summing to the budget;
        shapes consistent.
        """
        n, k = self.n_workers, self.partitions
        enc = self.encoding
        if enc.shape != (n, k):
            raise DesignError(f"`encoding` has shape {enc.shape}, expected ({n}, {k}).")
        if self.decoding.shape != (n,) or self.bits.shape != (n,):
            raise DesignError(f"`decoding` and `bits` must have shape ({n},).")
        if not (np.all(np.isfinite(enc.data)) and np.all(np.isfinite(self.decoding))):
            raise DesignError("`encoding` and `decoding` must be finite.")
        p = self.profile.straggler_probs
        column = ((1.0 - p) * self.decoding) @ enc
        worst = float(np.max(np.abs(column - 1.0)))
        if not worst <= tol:
            j = int(np.argmax(np.abs(column - 1.0)))
            raise DesignError(
                f"unbiasedness (U) fails: partition {j} has total weight {float(column[j])!r} "
                f"(must be 1 within {tol:g})."
            )
        if self.options.get("construction", "segment") != "hub":
            if np.any(enc.data < 0) or np.any(self.decoding < 0):
                raise DesignError("weights must be nonnegative (segment construction).")
        b_min = int(self.options.get("b_min", 2))
        b_max = int(self.options.get("b_max", 32))
        bits = self.bits
        idle = bits == 0
        if np.any(~idle & ((bits < b_min) | (bits > b_max))):
            i = int(np.flatnonzero(~idle & ((bits < b_min) | (bits > b_max)))[0])
            raise DesignError(f"`bits[{i}]` = {bits[i]} is outside [{b_min}, {b_max}].")
        if np.any(idle) and not self.options.get("allow_idle", False):
            raise DesignError("a worker has 0 bits but idle workers are not allowed.")
        if idle.any() and enc[np.flatnonzero(idle)].nnz:
            raise DesignError("an idle worker (0 bits) must hold no data.")
        if int(bits.sum()) != self.budget:
            raise DesignError(f"bits sum to {int(bits.sum())}, not the budget {self.budget}.")
        return self


def _rebuild(cls, values: dict):
    """Unpickle a :class:`Design` (its options travel as a plain dict)."""
    return cls(**values)


def resolve_budget(n: int, budget=None, bits_per_worker=None) -> int:
    """The total budget from `budget` or `bits_per_worker` (exactly one of them)."""
    if (budget is None) == (bits_per_worker is None):
        raise InputError("give exactly one of `budget` (total bits) and `bits_per_worker`.")
    if budget is not None:
        return budget
    try:
        total = float(bits_per_worker) * n
    except (TypeError, ValueError):
        raise InputError(f"`bits_per_worker` must be a number, got {bits_per_worker!r}.") from None
    if not math.isfinite(total) or not total.is_integer():
        raise InputError(
            f"`bits_per_worker` = {bits_per_worker!r} times N = {n} is not a whole number of bits."
        )
    return int(total)


def design(
    profile: ClusterProfile,
    budget: int | None = None,
    *,
    bits_per_worker: float | None = None,
    allocator: str = DEFAULT_ALLOCATOR,
    construction: str = "segment",
    order: str = "grouped",
    quantization=DEFAULT_QUANTIZATION,
    kappa_c: float = 1.0,
    bucket_size: int | None = DEFAULT_BUCKET_SIZE,
    b_min: int = 2,
    b_max: int = 32,
    allocator_options: dict | None = None,
    kappa=UNSET,
) -> Design:
    """Design the optimal unbiased quantized gradient code for `profile`.

    Parameters
    ----------
    profile : ClusterProfile
    budget : int, optional
        Total bits per coordinate over all workers (``N b_min <= B <= N b_max``).
    bits_per_worker : float, optional
        Alternative to `budget`: ``B = bits_per_worker * N`` (must be whole).
    allocator : str
        Bit allocation method (see :data:`gcdesign.allocation.ALLOCATORS`); the
        default ``"auto"`` runs the exact DP where it is cheap and the certified
        solver beyond (:func:`gcdesign.allocation.resolve_method`).
    construction : {"segment", "hub"}
        Sparse layout of the optimal masses.
    order : {"grouped", "index"}
        Worker order on the segment axis: ``"grouped"`` puts workers whose
        masses sum to whole numbers together so the code splits into components.
    quantization : str, float or QuantizationModel
        The quantization model the design is optimal for: ``"tight"``, ``"raw"``,
        ``"balanced"`` (the paper's scaling, with constant `kappa_c`), ``"none"``, a
        number kappa on the raw bound, or a model from
        :func:`gcdesign.calibrate_quantization` (see
        :func:`gcdesign.quantization.resolve_quantization`).
    kappa_c : float
        The balanced policy's constant ``c`` in :math:`\\kappa = c\\,\\bar p / \\delta_{raw}(B/N)`.
    bucket_size : int, optional
        Bucket length of the stochastic quantizer (docs/math.md, section 2c); None: one
        norm per message.
    b_min, b_max : int
        Allowed bits per worker.
    allocator_options : dict, optional
        Passed to the allocator (e.g. ``{"allow_idle": True}``).
    kappa
        Deprecated name of `quantization` (warns; removed in the next release).

    References
    ----------
    .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
       Learning in Heterogeneous Systems", 2026: Theorem 1 (structure), Proposition 1 (the bit
       allocation loses no optimality), section III-A (the sparse construction); docs/math.md,
       sections 3 to 6.

    Examples
    --------
    >>> from gcdesign import load_example
    >>> d = design(load_example("toy-n8"), bits_per_worker=4)
    >>> d.nnz <= d.n_workers + d.partitions - 1
    True
    """
    quantization = renamed_keyword(
        "design", "kappa", kappa, "quantization", quantization, DEFAULT_QUANTIZATION
    )
    if not isinstance(profile, ClusterProfile):
        raise InputError("`profile` must be a ClusterProfile.")
    choice("construction", construction, CONSTRUCTIONS)
    choice("order", order, ORDERS)
    b_min, b_max = check_bit_range(b_min, b_max)
    n, k = profile.n_workers, profile.partitions
    allocator_options = options_dict("allocator_options", allocator_options)
    allow_idle = bool(allocator_options.get("allow_idle", False))
    budget = check_budget(resolve_budget(n, budget, bits_per_worker), n, b_min, b_max, allow_idle=allow_idle)
    bucket_size = check_bucket_size(bucket_size)
    # 1. bits
    allocation = allocate_bits(
        profile,
        budget,
        method=allocator,
        quantization=quantization,
        kappa_c=kappa_c,
        bucket_size=bucket_size,
        b_min=b_min,
        b_max=b_max,
        options=allocator_options,
    )
    bits = allocation.bits
    # 2. quantization error factors (inf for idle workers: they get mass 0)
    delta = error_factors(bits, allocation.quantization, profile.dim, bucket_size)
    # 3. optimal masses
    structure = optimal_structure(profile, delta)
    # 4. sparse layout
    if order == "grouped":
        axis_order = np.concatenate(group_workers(structure.row_mass))
    else:
        axis_order = np.arange(n)
    if construction == "segment":
        alpha = segment_layout(structure.row_mass, k, order=axis_order)
    else:
        alpha = hub_layout(structure.row_mass, k, order=axis_order)
    # 5. inverse-propensity decoding: a_i b_ij = w_ij, b_ij = alpha_ij
    p = profile.straggler_probs
    used = structure.row_mass > 0
    decoding = np.zeros(n)
    decoding[used] = 1.0 / (1.0 - p[used])
    options = {
        "allocator": allocator,
        "construction": construction,
        "order": order,
        "quantization": quantization if isinstance(quantization, str) else allocation.quantization.kind,
        "kappa_c": float(kappa_c),
        "b_min": b_min,
        "b_max": b_max,
        "allow_idle": allow_idle,
    }
    return assemble_design(
        profile,
        alpha,
        decoding,
        bits,
        budget,
        delta,
        structure.bound,
        options,
        allocation,
        quantization=allocation.quantization,
        bucket_size=bucket_size,
    )


def assemble_design(
    profile: ClusterProfile,
    encoding,
    decoding: np.ndarray,
    bits: np.ndarray,
    budget: int,
    delta: np.ndarray,
    bound: float,
    options: dict,
    allocation: Allocation | None = None,
    *,
    quantization: QuantizationModel,
    bucket_size: int | None = None,
) -> Design:
    """A validated :class:`Design` from its parts; derives row masses, load and components.

    Shared by :func:`design` and the loader in :mod:`gcdesign.io`, so a design
    read from a file is built exactly as a fresh one.
    """
    encoding = sp.csr_array(encoding)
    p = profile.straggler_probs
    return Design(
        profile=profile,
        encoding=encoding,
        decoding=decoding,
        bits=bits,
        budget=budget,
        delta=delta,
        row_mass=((1.0 - p) * decoding) * np.asarray(encoding.sum(axis=1)).ravel(),
        bound=bound,
        load=encoding.nnz / profile.n_workers,
        components=count_components(encoding),
        options=options,
        allocation=allocation,
        quantization=quantization,
        bucket_size=bucket_size,
    ).validate()


# ---------------------------------------------------------------- other probabilities
def layout_error(design, straggler_probs) -> float:
    r"""Lemma 1 bound (per unit :math:`G^2`) of `design`'s layout and bits under `straggler_probs`.

    The decoder is re-weighted to stay unbiased under the new probabilities,
    :math:`a'_i = a_i (1 - p_i) / (1 - \hat p_i)` (so :math:`\sum_i (1-\hat p_i) a'_i
    b_{ij} = 1` still holds; nothing moves), and

    .. math:: E(D; \hat p) = \sum_i (1 - \hat p_i)(\hat p_i + \delta_i)\,(a'_i s_i)^2,
              \qquad s_i = \sum_j b_{ij}.

    Under the design's own probabilities it is the design's bound.
    """
    p_hat = np.asarray(straggler_probs, dtype=np.float64)
    return _layout_error(design, p_hat, _reweighted_decoding(design, p_hat))


def _layout_error(design, p_hat, decoding) -> float:
    row_sum = decoding * np.asarray(design.encoding.sum(axis=1)).ravel()
    return error_bound(p_hat, design.delta, row_sum)


def _reweighted_decoding(design, p_hat) -> np.ndarray:
    p = design.straggler_probs
    used = design.decoding != 0
    out = np.zeros_like(p_hat)
    out[used] = design.decoding[used] * (1.0 - p[used]) / (1.0 - p_hat[used])
    return out


def profile_like(design, straggler_probs) -> ClusterProfile:
    """`design`'s profile (dimension, partitions, names) with other straggling probabilities."""
    prof = design.profile
    return ClusterProfile(straggler_probs, dim=prof.dim, partitions=prof.partitions, names=prof.names)


def reweight(design, straggler_probs):
    """`design` with its decoder re-weighted for `straggler_probs` (same layout, same bits; no data moves)."""
    p_hat = np.asarray(straggler_probs, dtype=np.float64)
    decoding = _reweighted_decoding(design, p_hat)
    return assemble_design(
        profile_like(design, p_hat),
        design.encoding,
        decoding,
        design.bits,
        design.budget,
        design.delta,
        _layout_error(design, p_hat, decoding),
        dict(design.options),
        quantization=design.quantization,
        bucket_size=design.bucket_size,
    )


__all__ = [
    "CONSTRUCTIONS",
    "DEFAULT_ALLOCATOR",
    "DEFAULT_BUCKET_SIZE",
    "DEFAULT_QUANTIZATION",
    "ORDERS",
    "Design",
    "DesignError",
    "assemble_design",
    "design",
    "layout_error",
    "profile_like",
    "resolve_budget",
    "reweight",
]
