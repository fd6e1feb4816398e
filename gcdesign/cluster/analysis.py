"""Reading a cluster run: straggler frequencies against the profile, time to a target loss,
and the uncoded baseline to compare with."""

from __future__ import annotations

import math

import numpy as np

from ..profile import ClusterProfile
from ..training import History
from .history import ClusterHistory


def uncoded_scheme(scheme):
    """Uncoded wait-for-all on the same cluster: partition j on worker ``j mod N``, ``a = 1``,
    the scheme's total bits split equally (``is-sgd`` of :mod:`gcdesign.schemes`)."""
    from ..schemes import make_scheme

    profile = ClusterProfile(scheme.straggler_probs, dim=1, partitions=scheme.encoding.shape[1])
    budget = max(int(np.asarray(scheme.bits).sum()), 2 * profile.n_workers)
    return make_scheme("is-sgd", profile, budget)


def time_to_loss(history: History, target: float) -> float:
    """Seconds of measured wall clock until the loss first reaches `target` (inf if never)."""
    hit = np.flatnonzero(history.loss <= target)
    unit = getattr(history, "time_unit", 1.0)
    return float(history.wall_time[hit[0]] * unit) if hit.size else math.inf


def straggler_table(history: ClusterHistory, straggler_probs, *, groups: int | None = None) -> list[dict]:
    """Realized straggler frequency against the profile's p, per worker or per group of workers.

    Workers are grouped by p (sorted, `groups` equal groups; default: per
    worker up to 16 workers, else 8 groups). Each row carries the binomial 99%
    interval of the late count under p and whether the realized count is inside.
    """
    from scipy import stats

    p = np.asarray(straggler_probs, dtype=np.float64)
    n = p.size
    groups = (n if n <= 16 else 8) if groups is None else min(int(groups), n)
    order = np.argsort(p, kind="stable")
    rounds = history.on_time.shape[0]
    rows = []
    for members in np.array_split(order, groups):
        late = int((~history.on_time[:, members]).sum())
        trials = rounds * members.size
        # a sum of binomials with different p: its normal 99% interval (exact binomial for one worker)
        if members.size == 1:
            low, high = stats.binom.interval(0.99, rounds, p[members[0]])
        else:
            mean = rounds * p[members].sum()
            sd = math.sqrt(rounds * float(np.sum(p[members] * (1 - p[members]))))
            low, high = mean - 2.576 * sd, mean + 2.576 * sd
        rows.append(
            {
                "workers": ",".join(history.names[i] for i in members),
                "p": float(p[members].mean()),
                "realized": late / trials,
                "low": max(low, 0.0) / trials,
                "high": min(high, trials) / trials,
                "inside": bool(low <= late <= high),
            }
        )
    return rows


__all__ = ["straggler_table", "time_to_loss", "uncoded_scheme"]
