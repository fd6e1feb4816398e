"""The schemes the harness trains, by name: the registered schemes and their error-feedback variants.

Every name is a scheme of the registry (:data:`gcdesign.schemes.SCHEMES`): the centralized
reference (:class:`Centralized`), the joint design and the baselines are all built by
:func:`gcdesign.schemes.make_scheme`. The training studies train the schemes registered with
``training=True`` (:func:`gcdesign.schemes.training_schemes`), in registration order.

A name may carry the suffix :data:`EF_SUFFIX` (``"bgc+ef"``): the same scheme trained
with error feedback (``train(..., error_feedback=True)``, docs/math.md section 12).
:func:`scheme_variant` splits such a name.
"""

from __future__ import annotations

from .._validate import InputError
from ..profile import ClusterProfile
from ..schemes import SCHEMES, make_scheme, training_schemes
from ..schemes.baselines import Centralized  # the harness's reference, re-exported

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


def training_scheme(
    name: str, profile: ClusterProfile, budget: int, *, rng=None, replication: int = 2, **options
):
    """A scheme for :func:`train` by name: :func:`gcdesign.schemes.make_scheme`.

    ``"centralized"`` is :class:`Centralized`; ``"joint"`` is :func:`gcdesign.design`
    (options such as ``allocator`` or ``quantization`` are passed on). An error-feedback name
    (``"sgc+ef"``) is refused: build ``scheme_variant(name)[0]`` and train it with
    ``error_feedback=True``.
    """
    base, feedback = scheme_variant(name)
    if feedback:
        raise InputError(
            f"{name!r} is the error-feedback variant of {base!r}: build training_scheme({base!r}, ...) "
            "and pass error_feedback=True to train."
        )
    return make_scheme(name, profile, budget, rng=rng, replication=replication, **options)


def available_schemes(names=None) -> tuple[list[str], list[str]]:
    """Split `names` into those the harness can build now and those not registered (yet).

    `names` defaults to :func:`gcdesign.schemes.training_schemes` (the training studies'
    schemes). Error-feedback variants (``"sgc+ef"``) count as available when their scheme is.
    """
    ok, missing = [], []
    for name in training_schemes() if names is None else names:
        (ok if scheme_variant(name)[0] in SCHEMES else missing).append(name)
    return ok, missing


__all__ = ["EF_SUFFIX", "Centralized", "available_schemes", "scheme_variant", "training_scheme"]
