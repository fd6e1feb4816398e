"""The schemes the harness knows by name: the centralized reference, the joint design, the baselines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..profile import ClusterProfile

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


@dataclass(frozen=True, eq=False)
class Centralized:
    """The ideal reference: the exact gradient every round, no stragglers, no quantization.

    It still carries the profile so the simulated clock can charge it the
    wait-for-everyone round time (see :class:`RoundTimes`).
    """

    profile: ClusterProfile
    name = "centralized"
    quantizer = "none"

    @property
    def straggler_probs(self) -> np.ndarray:
        return np.zeros(self.profile.n_workers)

    @property
    def n_workers(self) -> int:
        return self.profile.n_workers

    @property
    def partitions(self) -> int:
        return self.profile.partitions


def training_scheme(
    name: str, profile: ClusterProfile, budget: int, *, rng=None, replication: int = 2, **options
):
    """A scheme for :func:`train` by name (see :data:`TRAINING_SCHEMES`).

    ``"centralized"`` is :class:`Centralized`; ``"joint"`` is
    :func:`gcdesign.design` with its default, the paper's ``"heuristic"``
    allocator, unless options say otherwise (``allocator``, ``kappa``, ... are
    passed on); every other name goes to :func:`gcdesign.schemes.make_scheme`.
    """
    if name == "centralized":
        return Centralized(profile)
    if name == "joint":
        from ..design import design

        return design(profile, budget, **options)
    from ..schemes import make_scheme

    return make_scheme(name, profile, budget, rng=rng, replication=replication, **options)


def available_schemes(names=TRAINING_SCHEMES) -> tuple[list[str], list[str]]:
    """Split `names` into those the harness can build now and those not registered (yet)."""
    from .. import schemes as _schemes  # importing it registers the baselines and exact codes

    ok, missing = [], []
    for name in names:
        (ok if name in ("centralized", "joint") or name in _schemes.SCHEMES else missing).append(name)
    return ok, missing
