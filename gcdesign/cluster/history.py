"""The record of a cluster run: :class:`ClusterHistory`, its traces, and re-profiling from them.

:meth:`ClusterHistory.write_traces` writes the measured round times in the
long format (``worker,round,time``) that :meth:`ClusterProfile.from_traces`
reads; :meth:`ClusterHistory.profile` re-profiles the cluster from them
directly: measure, re-profile, redesign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._files import atomic_write_text
from ..profile import ClusterProfile
from ..training import History


@dataclass(frozen=True, eq=False)
class ClusterHistory(History):
    """A :class:`~gcdesign.History` measured on a cluster, with the per-worker record.

    ``wall_time`` is measured, in time units (seconds / ``time_unit``).

    Attributes
    ----------
    time_unit, deadline, shift : float
        ``u`` seconds, :math:`\\tau` and :math:`t_0` in time units (``deadline = inf``: wait for all).
    round_times : ndarray (rounds, N)
        Time from round start until the master learns that worker i's task
        finished, in time units; ``inf`` when it never did (dead worker, stale
        task, still running at the run's end). Late results are timed when they
        finish during the run, and never fetched.
    on_time : ndarray of bool (rounds, N)
        Received by the deadline (decoded, or a probe of an idle worker).
    delays : ndarray (rounds, N) or None
        The emulated :math:`D_i` (None without emulation).
    compute_times : ndarray (rounds, N)
        Seconds each task spent computing (NaN unless it was in time).
    start_offsets : ndarray (rounds, N)
        Seconds from the round start to the task starting on its worker (NaN
        unless in time; the emulation assumes synchronized clocks).
    overhead : ndarray (rounds,)
        Seconds from the decision point (the deadline, or the last arrival if
        all came earlier) to the start of the next round: decode, step, submit.
    placement : ndarray of object (rounds, N)
        Where each logical worker ran in each round, as the transport names it
        (a Dask worker address, a rank; None: lost).
    names : tuple of str
        Worker names (the profile's, for the traces).
    adaptation : tuple of dict
        With ``adapt``: one entry per design change, with its ``round``, ``action``
        (``"redesign"``, ``"reweight"``: only the decoder changed), the relative ``gain``
        and the ``required`` one, ``moved`` (partition copies of the layout chosen),
        ``moved_fresh`` (of a fresh layout), ``moved_transport`` (partitions sent to
        the transport's machines, each once per machine) and ``move_seconds``.
    final_design : Design or None
        With ``adapt``: the design in use at the end of the run.
    """

    time_unit: float = 1.0
    deadline: float = math.inf
    shift: float = 0.0
    round_times: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    on_time: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    delays: np.ndarray | None = None
    compute_times: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    start_offsets: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    overhead: np.ndarray = field(default_factory=lambda: np.zeros(0))
    placement: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=object))
    names: tuple = ()
    adaptation: tuple = ()
    final_design: object = None

    @property
    def straggler_frequency(self) -> np.ndarray:
        """Fraction of rounds in which each worker missed the deadline (N,)."""
        return 1.0 - self.on_time.mean(axis=0)

    def trace_rows(self) -> list[dict]:
        """The round times in the long trace format (``worker, round, time``)."""
        rounds, n = self.round_times.shape
        return [
            {"worker": self.names[i], "round": r, "time": float(self.round_times[r, i])}
            for r in range(rounds)
            for i in range(n)
        ]

    def write_traces(self, path):
        """Write :meth:`trace_rows` as CSV (atomically) for :meth:`ClusterProfile.from_traces`."""
        lines = ["worker,round,time"]
        lines += [f"{row['worker']},{row['round']},{row['time']!r}" for row in self.trace_rows()]
        return atomic_write_text(path, "\n".join(lines) + "\n")

    def profile(self, *, dim: int, partitions: int | None = None, smoothing: float = 1.0) -> ClusterProfile:
        """Re-profile the cluster from the measured round times (:meth:`ClusterProfile.from_traces`)."""
        times = {name: self.round_times[:, i] for i, name in enumerate(self.names)}
        return ClusterProfile.from_traces(
            times, deadline=self.deadline, dim=dim, partitions=partitions, smoothing=smoothing
        )


def record_fields(scheme, record, *, time_unit: float, deadline: float, shift: float) -> dict:
    """The :class:`ClusterHistory` fields of an engine record (:class:`.engine.RoundRecord`)."""
    n = scheme.encoding.shape[0]
    names = tuple(scheme.profile.names) if hasattr(scheme, "profile") else tuple(f"w{i}" for i in range(n))
    return {
        "scheme": str(scheme.name),
        "time_unit": time_unit,
        "deadline": deadline,
        "shift": shift,
        "round_times": record.round_times,
        "on_time": record.round_times <= deadline,
        "delays": record.delays,
        "compute_times": record.compute_times,
        "start_offsets": record.start_offsets,
        "overhead": record.overhead,
        "placement": record.placement,
        "names": names,
        "wall_time": record.wall_time / time_unit,
        "bits": record.bits,
        "arrived": np.concatenate([[0], record.arrived.sum(axis=1)]),
        "adaptation": record.adaptation,
        "final_design": record.final_scheme if record.adaptation else None,
    }


def iterate_metrics(problem, iterates, loss=None, accuracy=None) -> dict:
    """The :class:`History` fields of the models `iterates` (array (rounds + 1, d)).

    With a harness `problem`: loss, gradient norm, distance to the optimum;
    else ``loss(w)`` when given (NaN otherwise). ``test_accuracy`` from
    ``accuracy(w)``, or the problem's when it keeps a held-out split.
    """
    if accuracy is None and problem is not None:
        accuracy = problem.test_accuracy
    scores = None if accuracy is None else [accuracy(w) for w in iterates]
    test_accuracy = None if not scores or scores[0] is None else np.array(scores, dtype=np.float64)
    if problem is not None:
        return {
            "test_accuracy": test_accuracy,
            "loss": np.array([problem.loss(w) for w in iterates]),
            "grad_norm": np.array([np.linalg.norm(problem.gradient(w)) for w in iterates]),
            "distance": None
            if problem.optimum is None
            else np.linalg.norm(iterates - problem.optimum, axis=1),
            "optimal_loss": problem.optimal_loss,
            "problem": problem.name,
        }
    losses = np.array([loss(w) for w in iterates]) if loss is not None else np.full(len(iterates), math.nan)
    return {
        "test_accuracy": test_accuracy,
        "loss": losses,
        "grad_norm": np.full(len(iterates), math.nan),
        "distance": None,
        "optimal_loss": None,
        "problem": "gradient_fn",
    }


__all__ = ["ClusterHistory", "iterate_metrics", "record_fields"]
