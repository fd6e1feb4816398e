"""Cluster profiles: per-worker straggler probabilities, model dimension, partitions.

A :class:`ClusterProfile` is the only input the designer needs about a cluster.
It can be written by hand, derived from a latency model and a deadline
(docs/math.md, section 8), estimated from observed round times, loaded from
JSON, or taken from the bundled examples (:func:`load_example`).
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._files import atomic_write_text, check_version, read_json
from ._validate import InputError, choice, positive_int, probabilities

PROFILE_FORMAT = "gcdesign.profile"
PROFILE_VERSION = "1.0"

LATENCY_MODELS = ("exponential", "shifted-exponential")


@dataclass(frozen=True, eq=False, init=False)
class ClusterProfile:
    """Straggler probabilities of N workers, the model dimension and K partitions.

    Parameters
    ----------
    straggler_probs : array_like, shape (N,)
        Probability ``p_i`` in [0, 1] that worker ``i`` misses a round.
        At least one worker must have ``p_i < 1``.
    dim : int
        Model dimension ``d`` (number of gradient coordinates), ``d >= 1``.
    partitions : int, optional
        Number of data partitions ``K >= 1``. Defaults to ``N``.
    names : sequence of str, optional
        Worker names (unique), e.g. host names. Defaults to ``w0, w1, ...``.

    Examples
    --------
    >>> prof = ClusterProfile([0.1, 0.2, 0.5], dim=1000)
    >>> prof.n_workers, prof.partitions
    (3, 3)
    """

    straggler_probs: np.ndarray
    dim: int
    partitions: int
    names: tuple[str, ...]

    def __init__(self, straggler_probs, *, dim, partitions=None, names=None):
        p = probabilities("straggler_probs", straggler_probs)
        if np.all(p == 1.0):
            raise InputError(
                "`straggler_probs`: every worker has p = 1 (always late); "
                "at least one worker must have p < 1."
            )
        dim = positive_int("dim", dim)
        partitions = p.size if partitions is None else positive_int("partitions", partitions)
        if names is None:
            names = tuple(f"w{i}" for i in range(p.size))
        else:
            names = tuple(str(n) for n in names)
            if len(names) != p.size:
                raise InputError(f"`names` has {len(names)} entries but there are {p.size} workers.")
            if len(set(names)) != len(names):
                raise InputError("`names` must be unique.")
        p = p.copy()
        p.setflags(write=False)
        object.__setattr__(self, "straggler_probs", p)
        object.__setattr__(self, "dim", dim)
        object.__setattr__(self, "partitions", partitions)
        object.__setattr__(self, "names", names)

    @property
    def n_workers(self) -> int:
        """Number of workers N."""
        return int(self.straggler_probs.size)

    def __repr__(self) -> str:
        p = self.straggler_probs
        return (
            f"ClusterProfile(N={self.n_workers}, K={self.partitions}, dim={self.dim}, "
            f"p in [{p.min():.4g}, {p.max():.4g}])"
        )

    def __eq__(self, other) -> bool:
        if not isinstance(other, ClusterProfile):
            return NotImplemented
        return (
            self.dim == other.dim
            and self.partitions == other.partitions
            and self.names == other.names
            and np.array_equal(self.straggler_probs, other.straggler_probs)
        )

    __hash__ = None  # mutable-array content: not hashable

    # ------------------------------------------------------------------ models
    @classmethod
    def from_latency_model(
        cls,
        model: str,
        *,
        rates,
        deadline: float,
        shift: float = 0.0,
        dim: int,
        partitions: int | None = None,
        names=None,
    ) -> ClusterProfile:
        r"""Straggler probabilities from a round-time model and a deadline.

        ``"exponential"``: :math:`T_i \sim \mathrm{Exp}(\mu_i)`, :math:`p_i = e^{-\mu_i \tau}`.
        ``"shifted-exponential"``: :math:`T_i = t_0 + \mathrm{Exp}(\mu_i)`,
        :math:`p_i = e^{-\mu_i (\tau - t_0)}` for :math:`\tau > t_0`, else 1.

        Parameters
        ----------
        model : {"exponential", "shifted-exponential"}
        rates : array_like, shape (N,)
            Rates :math:`\mu_i > 0`.
        deadline : float
            Round deadline :math:`\tau > 0`.
        shift : float
            Minimum round time :math:`t_0 \ge 0` (shifted model only).
        """
        choice("latency model", model, LATENCY_MODELS)
        rates = np.asarray(rates, dtype=np.float64)
        if rates.ndim != 1 or rates.size == 0 or not np.all(np.isfinite(rates)) or np.any(rates <= 0):
            raise InputError("`rates` must be a non-empty 1-D array of finite numbers > 0.")
        deadline = float(deadline)
        if not math.isfinite(deadline) or deadline <= 0:
            raise InputError(f"`deadline` must be a finite number > 0, got {deadline!r}.")
        shift = float(shift)
        if not math.isfinite(shift) or shift < 0:
            raise InputError(f"`shift` must be a finite number >= 0, got {shift!r}.")
        if model == "exponential":
            if shift != 0.0:
                raise InputError("`shift` applies only to the 'shifted-exponential' model.")
            p = np.exp(-rates * deadline)
        else:
            slack = deadline - shift
            p = np.exp(-rates * slack) if slack > 0 else np.ones_like(rates)
        return cls(p, dim=dim, partitions=partitions, names=names)

    @classmethod
    def from_traces(
        cls,
        round_times,
        *,
        deadline: float,
        dim: int,
        partitions: int | None = None,
        smoothing: float = 1.0,
    ) -> ClusterProfile:
        """Estimate straggler probabilities from observed round times.

        Parameters
        ----------
        round_times : str, Path, dict or array_like
            A CSV file (long format with header ``worker,round,time``, or wide
            format with one column per worker and one row per round), a dict
            ``{worker_name: [times...]}``, or an array of shape (rounds, N).
            Missing observations (empty cells, NaN) are skipped; ``inf`` means
            the worker never answered that round.
        deadline : float
            A worker straggles in a round whose time exceeds ``deadline``.
        smoothing : float
            Additive (Laplace) smoothing ``s``:
            ``p_i = (late_i + s) / (rounds_i + 2 s)``; the default 1 keeps every
            estimate strictly inside (0, 1). Use 0 for raw frequencies.
        """
        deadline = float(deadline)
        if not math.isfinite(deadline) or deadline <= 0:
            raise InputError(f"`deadline` must be a finite number > 0, got {deadline!r}.")
        smoothing = float(smoothing)
        if not math.isfinite(smoothing) or smoothing < 0:
            raise InputError(f"`smoothing` must be a finite number >= 0, got {smoothing!r}.")
        if isinstance(round_times, (str, os.PathLike)):
            names, columns = read_traces_csv(round_times)
        elif isinstance(round_times, dict):
            names = [str(k) for k in round_times]
            columns = [np.asarray(v, dtype=np.float64).ravel() for v in round_times.values()]
        else:
            arr = np.asarray(round_times, dtype=np.float64)
            if arr.ndim != 2 or arr.size == 0:
                raise InputError(
                    f"`round_times` must be a 2-D array (rounds x workers), got shape {arr.shape}."
                )
            names = [f"w{i}" for i in range(arr.shape[1])]
            columns = list(arr.T)
        probs = []
        for name, col in zip(names, columns, strict=True):
            if np.any(col[~np.isnan(col)] < 0):
                raise InputError(f"round times of worker {name!r} must be >= 0.")
            observed = col[~np.isnan(col)]
            if observed.size == 0:
                raise InputError(f"worker {name!r} has no observed round time.")
            late = int(np.count_nonzero(observed > deadline))
            probs.append((late + smoothing) / (observed.size + 2 * smoothing))
        return cls(np.array(probs), dim=dim, partitions=partitions, names=names)

    # -------------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "straggler_probs": self.straggler_probs.tolist(),
            "dim": self.dim,
            "partitions": self.partitions,
            "names": list(self.names),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ClusterProfile:
        if not isinstance(data, dict):
            raise InputError("profile: expected a JSON object.")
        missing = [k for k in ("straggler_probs", "dim") if k not in data]
        if missing:
            raise InputError(f"profile: missing field(s) {', '.join(missing)}.")
        fmt = data.get("format", PROFILE_FORMAT)
        if fmt != PROFILE_FORMAT:
            raise InputError(f"profile: `format` is {fmt!r}, expected {PROFILE_FORMAT!r}.")
        check_version(data.get("version", PROFILE_VERSION), PROFILE_VERSION, "profile")
        return cls(
            data["straggler_probs"],
            dim=data["dim"],
            partitions=data.get("partitions"),
            names=data.get("names"),
        )


def save_profile(profile: ClusterProfile, path) -> Path:
    """Write a profile to JSON (atomically)."""
    return atomic_write_text(path, json.dumps(profile.to_dict(), indent=1, allow_nan=False))


def load_profile(path) -> ClusterProfile:
    """Read a profile from JSON."""
    return ClusterProfile.from_dict(read_json(path, what="profile"))


def read_traces_csv(path) -> tuple[list[str], list[np.ndarray]]:
    """Read round times from CSV, long (``worker,round,time``) or wide format.

    Returns worker names and one array of times per worker (NaN where missing).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"traces file {str(path)!r}: {exc.strerror}.") from None
    rows = [r for r in csv.reader(_io.StringIO(text)) if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise InputError(f"traces file {str(path)!r}: needs a header row and at least one row.")
    header = [h.strip() for h in rows[0]]

    def number(cell: str, line: int) -> float:
        cell = cell.strip()
        if cell == "" or cell.lower() == "nan":
            return math.nan
        try:
            return float(cell)
        except ValueError:
            raise InputError(f"traces file {str(path)!r}, line {line}: {cell!r} is not a number.") from None

    if [h.lower() for h in header] == ["worker", "round", "time"]:
        times: dict[str, dict[str, float]] = {}
        for line, row in enumerate(rows[1:], start=2):
            if len(row) != 3:
                raise InputError(
                    f"traces file {str(path)!r}, line {line}: expected 3 fields "
                    f"(worker,round,time), got {len(row)}."
                )
            worker, rnd, t = row[0].strip(), row[1].strip(), number(row[2], line)
            times.setdefault(worker, {})[rnd] = t
        names = list(times)
        return names, [np.array(list(times[n].values())) for n in names]
    if len(set(header)) != len(header) or any(h == "" for h in header):
        raise InputError(
            f"traces file {str(path)!r}: wide format needs one unique, non-empty worker "
            "name per column (or use the long format header worker,round,time)."
        )
    data = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InputError(
                f"traces file {str(path)!r}, line {line}: expected {len(header)} fields, got {len(row)}."
            )
        data.append([number(c, line) for c in row])
    arr = np.array(data, dtype=np.float64)
    return header, list(arr.T)


# ---------------------------------------------------------------- examples
MOBILENET_V3_SMALL_PARAMS = 2_542_856


def _paper_n50() -> tuple[ClusterProfile, dict]:
    rng = np.random.default_rng(2026)
    rates = rng.uniform(0.01, 2.0, size=50)
    prof = ClusterProfile.from_latency_model(
        "shifted-exponential",
        rates=rates,
        deadline=1.1,
        shift=1.0,
        dim=MOBILENET_V3_SMALL_PARAMS,
    )
    return prof, {"bits_per_worker": 7}


def classes_n48_probs(mean_p: float = 0.3, ratio=(3.0, 2.0, 1.0)) -> np.ndarray:
    """Three equal classes whose utilities are in ratio 3:2:1 at equal bits.

    With equal bits and the balanced kappa policy (c = 1) every worker has
    ``delta = mean(p)``; the utility ``(1 - p) / (p + mean(p))`` is then in ratio
    3:2:1 across the classes, so the optimal masses are 1.5, 1 and 0.5: single
    workers of the middle class and pairs across the outer classes carry whole
    partitions, and the graph splits into many components.
    """
    from scipy.optimize import brentq

    ratio = np.asarray(ratio, dtype=np.float64)

    def class_probs(t):
        u = t * ratio
        return (1.0 - u * mean_p) / (1.0 + u)

    t = brentq(lambda t: class_probs(t).mean() - mean_p, 1e-6, 1.0 / mean_p / ratio.max())
    return np.repeat(class_probs(t), 16)


def _classes_n48() -> tuple[ClusterProfile, dict]:
    p = classes_n48_probs()
    names = np.array([f"{cls}-{i:02d}" for cls in ("fast", "mid", "slow") for i in range(16)])
    # workers are listed as a cluster inventory would list them, not sorted by class
    shuffle = np.random.default_rng(48).permutation(48)
    p, names = p[shuffle], names[shuffle].tolist()
    return (
        ClusterProfile(p, dim=1_000_000, names=names),
        # solved for the paper's balanced scaling with one bucket: record it with the example
        {"bits_per_worker": 6, "allocator": "equal", "kappa": "balanced", "bucket_size": None},
    )


def _toy_n8() -> tuple[ClusterProfile, dict]:
    p = np.array([0.05, 0.1, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8])
    return ClusterProfile(p, dim=1000), {"bits_per_worker": 4}


_EXAMPLES = {
    "paper-n50": (
        _paper_n50,
        "The paper's setting: N = K = 50, shifted exponential (t0 = 1, tau = 1.1), "
        "rates ~ U(0.01, 2) (seed 2026), MobileNetV3-Small dim, 7 bits/worker.",
    ),
    "classes-n48": (
        _classes_n48,
        "Three hardware classes of 16 workers (same p within a class); equal bits give "
        "masses 1.5 / 1 / 0.5 and a code that splits into many components.",
    ),
    "toy-n8": (_toy_n8, "Eight workers, p from 0.05 to 0.8, dim 1000, 4 bits/worker."),
}


def list_examples() -> dict[str, str]:
    """Names of the bundled example profiles with a one-line description."""
    return {name: desc for name, (_, desc) in _EXAMPLES.items()}


def load_example(name: str, *, with_defaults: bool = False):
    """A bundled example profile by name (see :func:`list_examples`).

    With ``with_defaults=True`` also return the example's recommended design
    settings (``bits_per_worker`` and possibly ``allocator``).
    """
    choice("example", name, _EXAMPLES)
    profile, defaults = _EXAMPLES[name][0]()
    return (profile, dict(defaults)) if with_defaults else profile
