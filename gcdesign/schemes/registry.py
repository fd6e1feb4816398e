"""The scheme registry: :data:`SCHEMES`, :func:`register_scheme`, :func:`make_scheme`.

A registration is all a scheme needs to appear in ``make_scheme``, ``gcdesign evaluate
--compare``, the studies' tables and legends (its label and line style) and, with
``training=True``, the training studies (docs/extending.md, section 2). The built-in codes
register when :mod:`gcdesign.schemes` is imported (:mod:`~gcdesign.schemes.baselines`, then
:mod:`~gcdesign.schemes.exact`); the registration order is the order of the training studies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .._validate import InputError, choice
from .protocol import Scheme


@dataclass(frozen=True)
class SchemeEntry:
    """A registered scheme: its factory and how studies show it (see :func:`register_scheme`)."""

    name: str
    factory: Callable[..., Scheme]
    label: str
    style: Mapping[str, object]
    description: str
    training: bool = False


#: name -> :class:`SchemeEntry`; factory(profile, budget, *, rng=None, replication=2, **options) -> Scheme
SCHEMES: dict[str, SchemeEntry] = {}


def register_scheme(
    name: str,
    factory: Callable[..., Scheme],
    *,
    label: str,
    style: Mapping[str, object] | None = None,
    description: str | None = None,
    training: bool = False,
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
    training : bool
        Whether the training studies (convergence, bits, heterogeneity) train it by default
        (:func:`training_schemes`), in the order of registration.
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"`name` must be a non-empty string, got {name!r}.")
    if name in SCHEMES:
        raise InputError(f"`name` = {name!r}: a scheme of that name is already registered; choose another.")
    if not callable(factory):
        raise InputError(f"`factory` of scheme {name!r} must be callable, got {factory!r}.")
    if description is None:
        description = (factory.__doc__ or "").strip().split("\n")[0]
    if not isinstance(training, bool):
        raise InputError(f"`training` of scheme {name!r} must be True or False, got {training!r}.")
    style = MappingProxyType(dict(style or {}))
    entry = SchemeEntry(name, factory, str(label), style, str(description), training)
    SCHEMES[name] = entry
    return entry


def make_scheme(name: str, profile, budget: int, *, rng=None, replication: int = 2, **options):
    """Build the registered scheme `name` for `profile` at total bit budget `budget`."""
    factory = SCHEMES[choice("scheme", name, SCHEMES)].factory
    return factory(profile, budget, rng=rng, replication=replication, **options)


def training_schemes() -> tuple[str, ...]:
    """The registered schemes the training studies train by default, in registration order.

    >>> training_schemes()[:3]
    ('centralized', 'joint', 'osgc')
    """
    return tuple(name for name, entry in SCHEMES.items() if entry.training)


__all__ = [
    "SCHEMES",
    "SchemeEntry",
    "make_scheme",
    "register_scheme",
    "training_schemes",
]
