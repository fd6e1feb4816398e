"""Random allocation instances shared by the tests and studies/bench_allocators.py.

Not part of the public API. One instance is a gradient-coding utility table:
straggler probabilities from one of four families, a model dimension, a quantization
model (raw or balanced), a budget and a bit range, optionally with the idle level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quantization import resolve_quantization
from . import allowed_levels, utility_table

FAMILIES = ("uniform", "paper", "classes", "late")


@dataclass(frozen=True)
class Instance:
    table: np.ndarray
    levels: np.ndarray
    budget: int
    probs: np.ndarray
    description: dict


def straggler_probs(rng: np.random.Generator, n: int, family: str) -> np.ndarray:
    """``p`` for `n` workers: uniform U(0.01, 0.95); the paper's shifted exponential
    (rates U(0.01, 2), deadline 0.1 after the shift); three hardware classes; or
    uniform with about 10% nearly-always-late workers (p in [0.97, 0.999])."""
    if family == "uniform":
        return rng.uniform(0.01, 0.95, n)
    if family == "paper":
        return np.exp(-rng.uniform(0.01, 2.0, n) * 0.1)
    if family == "classes":
        values = rng.uniform(0.02, 0.9, 3)
        return values[rng.integers(0, 3, n)]
    if family == "late":
        p = rng.uniform(0.01, 0.9, n)
        late = rng.random(n) < 0.1
        p[late] = rng.uniform(0.97, 0.999, late.sum())
        return p
    raise ValueError(family)


def class_probs(rng, n: int, classes: int, noise: float = 0.0) -> np.ndarray:
    """``p`` for `n` workers of a few hardware classes: `classes` probabilities drawn from
    U(0.02, 0.9), class shares from a flat Dirichlet (every class gets at least one worker
    when ``n >= classes``), workers in random order; then a share `noise` of the workers (drawn
    at random) gets a probability of its own from U(0.01, 0.95) -- a few big classes plus
    unique workers."""
    rng = np.random.default_rng(rng)
    values = rng.uniform(0.02, 0.9, classes)
    sizes = rng.multinomial(n - min(n, classes), rng.dirichlet(np.ones(classes)))
    sizes[: min(n, classes)] += 1
    p = rng.permutation(np.repeat(values, sizes))
    own = rng.random(n) < noise
    p[own] = rng.uniform(0.01, 0.95, int(own.sum()))
    return p


def random_instance(
    rng,
    *,
    n: int | None = None,
    n_range: tuple[int, int] = (5, 100),
    bits_per_worker: float | None = None,
    b_max: int | None = None,
    allow_idle: bool | None = None,
    family: str | None = None,
) -> Instance:
    """A random gradient-coding allocation instance (arguments left None are drawn)."""
    rng = np.random.default_rng(rng)
    n = int(rng.integers(n_range[0], n_range[1] + 1)) if n is None else n
    family = FAMILIES[rng.integers(len(FAMILIES))] if family is None else family
    b_min = 2
    b_max = int(rng.choice([8, 16, 32, 32, 32])) if b_max is None else b_max
    allow_idle = bool(rng.random() < 0.2) if allow_idle is None else allow_idle
    if bits_per_worker is None:
        bits_per_worker = rng.uniform(2.0, min(12.0, b_max))
    budget = int(np.clip(round(bits_per_worker * n), n * b_min, n * b_max))
    p = straggler_probs(rng, n, family)
    dim = int(10 ** rng.uniform(3, 7))
    name = ["balanced", "balanced", "raw"][rng.integers(3)]
    c = float(rng.choice([1.0, 0.1, 0.005]))
    model = resolve_quantization(name, p, budget, dim, c=c)
    levels = allowed_levels(b_min, b_max, allow_idle=allow_idle)
    table = utility_table(p, model, dim, levels)
    description = {
        "n": n,
        "budget": budget,
        "family": family,
        "b_max": b_max,
        "allow_idle": allow_idle,
        "dim": dim,
        "quantization": name,
        "kappa_c": c,
        "kappa": model.kappa,
    }
    return Instance(table, levels, budget, p, description)


__all__ = [
    "FAMILIES",
    "Instance",
    "class_probs",
    "random_instance",
    "straggler_probs",
]
