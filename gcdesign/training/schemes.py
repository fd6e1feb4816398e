"""The schemes the harness knows by name: the centralized reference, the joint design, the baselines.

A name may carry the suffix :data:`EF_SUFFIX` (``"bgc+ef"``): the same scheme trained
with error feedback (``train(..., error_feedback=True)``, docs/math.md section 12).
:func:`scheme_variant` splits such a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .._validate import InputError, read_only, read_only_sparse
from ..profile import ClusterProfile
from ..quantization import MAX_BITS

#: The schemes the harness knows by name, in plotting order. All but
#: ``"centralized"`` and ``"joint"`` come from :func:`gcdesign.schemes.make_scheme`.
TRAINING_SCHEMES = (
    "centralized",
    "joint",
    "osgc",
    "sgc",
    "sgc-1bit",
    "bgc",
    "ehd",
    "od",
    "is-sgd",
    "exact-cyclic",
)

#: Appended to a scheme name for its error-feedback variant, e.g. ``"sgc+ef"``.
EF_SUFFIX = "+ef"


def scheme_variant(name: str) -> tuple[str, bool]:
    """``(scheme name, error_feedback)`` for a study name: ``"bgc+ef"`` -> ``("bgc", True)``.

    >>> scheme_variant("bgc+ef"), scheme_variant("joint")
    (('bgc', True), ('joint', False))
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"a scheme name must be a non-empty string, got {name!r}.")
    if name.endswith(EF_SUFFIX) and len(name) > len(EF_SUFFIX):
        return name[: -len(EF_SUFFIX)], True
    return name, False


@dataclass(frozen=True, eq=False)
class Centralized:
    """The ideal reference: the exact gradient every round, no stragglers, no quantization.

    A scheme like any other (it satisfies :class:`gcdesign.schemes.SchemeLike`): the
    uncoded layout of the profile's N workers and K partitions (partition j is held by
    worker ``j N // K`` alone), ``straggler_probs`` 0, ``quantizer`` ``"none"`` with 32
    bits per coordinate (0 for a worker that holds no partition), one bucket, and the
    fixed decoding 1 on every worker that holds data, so ``sum_i a_i x_i = sum_j g_j``.
    Every worker has ``p_i = 0``, so the round loop waits for all of them: with
    :class:`gcdesign.latency.RoundTimes` a round lasts ``max_i T_i``.

    Examples
    --------
    >>> from gcdesign import ClusterProfile
    >>> from gcdesign.schemes import check_scheme
    >>> ref = check_scheme(Centralized(ClusterProfile([0.1, 0.5, 0.2], dim=4, partitions=6)))
    >>> ref.encoding.toarray().astype(int).tolist()
    [[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]]
    >>> ref.bits.tolist(), ref.straggler_probs.tolist(), ref.quantizer
    ([32, 32, 32], [0.0, 0.0, 0.0], 'none')
    """

    profile: ClusterProfile
    name: str = "centralized"
    encoding: sp.csr_array = field(init=False)
    bits: np.ndarray = field(init=False)
    straggler_probs: np.ndarray = field(init=False)
    quantizer: str = field(init=False)
    bucket_size: int | None = field(init=False)
    decoding: np.ndarray = field(init=False)
    local_decoder: bool = field(init=False)

    def __post_init__(self):
        n, k = self.profile.n_workers, self.profile.partitions
        owner = np.arange(k) * n // k
        encoding = sp.csr_array((np.ones(k), (owner, np.arange(k))), shape=(n, k))
        holds = np.bincount(owner, minlength=n) > 0
        object.__setattr__(self, "encoding", read_only_sparse(encoding))
        object.__setattr__(self, "bits", read_only(np.where(holds, MAX_BITS, 0)))
        object.__setattr__(self, "straggler_probs", read_only(np.zeros(n)))
        object.__setattr__(self, "decoding", read_only(holds.astype(np.float64)))
        object.__setattr__(self, "quantizer", "none")
        object.__setattr__(self, "bucket_size", None)
        object.__setattr__(self, "local_decoder", True)  # a fixed decoder is local
        from ..schemes import check_scheme

        check_scheme(self, name="centralized")

    def decode_weights(self, arrived) -> np.ndarray:
        """The fixed decoding on the workers flagged in `arrived` (0 elsewhere)."""
        return np.where(np.asarray(arrived, dtype=bool), self.decoding, 0.0)


def training_scheme(
    name: str, profile: ClusterProfile, budget: int, *, rng=None, replication: int = 2, **options
):
    """A scheme for :func:`train` by name (see :data:`TRAINING_SCHEMES`).

    ``"centralized"`` is :class:`Centralized`; ``"joint"`` is
    :func:`gcdesign.design` with its default, the paper's ``"heuristic"``
    allocator, unless options say otherwise (``allocator``, ``quantization``, ... are
    passed on); every other name goes to :func:`gcdesign.schemes.make_scheme`.
    An error-feedback name (``"sgc+ef"``) is refused: build
    ``scheme_variant(name)[0]`` and train it with ``error_feedback=True``.
    """
    base, feedback = scheme_variant(name)
    if feedback:
        raise InputError(
            f"{name!r} is the error-feedback variant of {base!r}: build training_scheme({base!r}, ...) "
            "and pass error_feedback=True to train."
        )
    if name == "centralized":
        return Centralized(profile)
    if name == "joint":
        from ..design import design

        return design(profile, budget, **options)
    from ..schemes import make_scheme

    return make_scheme(name, profile, budget, rng=rng, replication=replication, **options)


def available_schemes(names=TRAINING_SCHEMES) -> tuple[list[str], list[str]]:
    """Split `names` into those the harness can build now and those not registered (yet).

    Error-feedback variants (``"sgc+ef"``) count as available when their scheme is.
    """
    from .. import schemes as _schemes  # importing it registers the baselines and exact codes

    ok, missing = [], []
    for name in names:
        base = scheme_variant(name)[0]
        (ok if base in ("centralized", "joint") or base in _schemes.SCHEMES else missing).append(name)
    return ok, missing


__all__ = [
    "EF_SUFFIX",
    "TRAINING_SCHEMES",
    "Centralized",
    "available_schemes",
    "scheme_variant",
    "training_scheme",
]
