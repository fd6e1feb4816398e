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
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._files import atomic_write_text, check_fields, check_version, newer_minor, read_json, read_text
from ._validate import InputError, choice, positive_int, probabilities, real, real_array, show_value
from ._validate import names as _names

PROFILE_FORMAT = "gcdesign.profile"
PROFILE_VERSION = "1.0"

PROFILE_FIELDS = ("straggler_probs", "dim", "partitions", "names")
"""A profile's fields: in a profile file after ``format`` and ``version``, in a design file's ``profile``."""

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
        names = tuple(f"w{i}" for i in range(p.size)) if names is None else _names("names", names, p.size)
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

        References
        ----------
        .. [1] Song and Choi, "Communication-Efficient Approximate Gradient Coding for Distributed
           Learning in Heterogeneous Systems", 2026: section V-A (probabilistic straggler
           modeling, shifted exponential round times); docs/math.md, section 8.
        """
        choice("latency model", model, LATENCY_MODELS)
        rates = real_array("rates", rates, low=0, low_open=True, min_size=1)
        deadline = real("deadline", deadline, low=0, low_open=True)
        shift = real("shift", shift, low=0)
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
        deadline = real("deadline", deadline, low=0, low_open=True)
        smoothing = real("smoothing", smoothing, low=0)
        if isinstance(round_times, (str, os.PathLike)):
            names, columns = read_traces_csv(round_times)
            source = f"traces file {str(round_times)!r}"
        elif isinstance(round_times, dict):
            names = list(_names("round_times keys", list(round_times), len(round_times)))
            source = "`round_times`"
            columns = [_times(f"round_times[{k!r}]", v, ndim=1) for k, v in round_times.items()]
        else:
            arr = _times("round_times", round_times, ndim=2)
            source = "`round_times`"
            if arr.size == 0:
                raise InputError(
                    f"`round_times` must be a 2-D array (rounds x workers), got shape {arr.shape}."
                )
            names = [f"w{i}" for i in range(arr.shape[1])]
            columns = list(arr.T)
        if not names:
            raise InputError("`round_times` has no worker.")
        probs = []
        for name, col in zip(names, columns, strict=True):
            observed = col[~np.isnan(col)]
            if observed.size == 0:
                raise InputError(f"{source}: worker {name!r} has no observed round time.")
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
        """The profile of a JSON object (the inverse of :meth:`to_dict`); every field is checked.

        ``format`` and ``version`` may be omitted (a hand-written profile); a
        field this version does not know is refused (a typo such as
        ``"partiton"`` would otherwise silently give K = N).
        """
        if not isinstance(data, dict):
            raise InputError(f"profile: expected a JSON object, got {show_value(data)}.")
        fmt = data.get("format", PROFILE_FORMAT)
        if fmt != PROFILE_FORMAT:
            raise InputError(f"profile: `format` is {show_value(fmt)}, expected {PROFILE_FORMAT!r}.")
        version = data.get("version", PROFILE_VERSION)
        check_version(version, PROFILE_VERSION, "profile")
        newer = newer_minor(version, PROFILE_VERSION)
        check_fields(data, ("format", "version", *PROFILE_FIELDS), "profile", newer=newer)
        missing = [k for k in ("straggler_probs", "dim") if k not in data]
        if missing:
            raise InputError(f"profile: missing field(s) {', '.join(f'`{k}`' for k in missing)}.")
        try:
            return cls(
                data["straggler_probs"],
                dim=data["dim"],
                partitions=data.get("partitions"),
                names=data.get("names"),
            )
        except InputError as exc:
            raise InputError(f"profile: {exc}") from None


def save_profile(profile: ClusterProfile, path) -> Path:
    """Write a profile to JSON (atomically)."""
    return atomic_write_text(path, json.dumps(profile.to_dict(), indent=1, allow_nan=False))


def load_profile(path) -> ClusterProfile:
    """Read a profile from JSON."""
    return ClusterProfile.from_dict(read_json(path, what="profile"))


def _times(name: str, value, *, ndim: int) -> np.ndarray:
    """Round times: numbers >= 0, NaN for a missing observation, inf for a worker that never answered."""
    return real_array(name, value, ndim=ndim, low=0, allow_nan=True, finite=False)


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+]?inf(inity)?", re.IGNORECASE)
LONG_HEADER = ("worker", "round", "time")


def read_traces_csv(path) -> tuple[list[str], list[np.ndarray]]:
    """Read round times from CSV, long or wide format.

    Long format: a header naming the columns ``worker``, ``round`` and ``time``
    (any order, any case), one observation per row; a (worker, round) pair may
    appear once. Wide format: one column per worker (unique names) and one row
    per round, optionally with a ``round`` column that labels the rows (it is
    not a worker). Times are decimal numbers >= 0; an empty cell or ``nan`` is
    a missing observation and ``inf`` a worker that never answered.

    Returns worker names and one array of times per worker (NaN where missing).
    """
    where = f"traces file {str(path)!r}"
    text = read_text(path, what="traces")
    reader = csv.reader(_io.StringIO(text))
    rows = []
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                rows.append((reader.line_num, [c.strip() for c in row]))
    except csv.Error as exc:
        raise InputError(f"{where}, line {reader.line_num}: not readable as CSV ({exc}).") from None
    if len(rows) < 2:
        raise InputError(f"{where}: needs a header row and at least one row.")
    header = rows[0][1]
    lowered = [h.lower() for h in header]

    def number(cell: str, line: int, column: str) -> float:
        if cell == "" or cell.lower() == "nan":
            return math.nan
        if not _NUMBER.fullmatch(cell):
            raise InputError(f"{where}, line {line}, column {column!r}: {show_value(cell)} is not a number.")
        value = float(cell)
        if math.isinf(value) and "inf" not in cell.lower():
            raise InputError(f"{where}, line {line}, column {column!r}: {cell} is too large for a float.")
        if value < 0:
            raise InputError(
                f"{where}, line {line}, column {column!r}: a round time must be >= 0, got {cell}."
            )
        return value

    def round_label(cell: str, line: int) -> int:
        if not re.fullmatch(r"[+-]?\d{1,18}", cell):
            raise InputError(f"{where}, line {line}: round {show_value(cell)} is not an integer.")
        return int(cell)

    def fields(line: int, row: list, expected: int) -> None:
        if len(row) != expected:
            raise InputError(
                f"{where}, line {line}: expected {expected} fields like the header, got {len(row)}."
            )

    if sorted(lowered) == sorted(LONG_HEADER):
        col = {name: lowered.index(name) for name in LONG_HEADER}
        times: dict[str, dict[int, float]] = {}
        seen: dict[tuple[str, int], int] = {}
        for line, row in rows[1:]:
            fields(line, row, 3)
            worker = row[col["worker"]]
            if worker == "":
                raise InputError(f"{where}, line {line}: the worker name is empty.")
            rnd = round_label(row[col["round"]], line)
            if (worker, rnd) in seen:
                raise InputError(
                    f"{where}: worker {show_value(worker)} round {rnd} appears twice, "
                    f"on lines {seen[worker, rnd]} and {line}."
                )
            seen[worker, rnd] = line
            times.setdefault(worker, {})[rnd] = number(row[col["time"]], line, "time")
        names = list(times)
        return names, [np.array([times[n][r] for r in sorted(times[n])]) for n in names]
    if any(h in ("worker", "time") for h in lowered):
        raise InputError(
            f"{where}: the header {show_value(','.join(header))} mixes the formats; the long format "
            "needs exactly the columns worker, round, time (any order)."
        )
    round_col = lowered.index("round") if "round" in lowered else None
    if lowered.count("round") > 1:
        raise InputError(f"{where}: the header has more than one `round` column.")
    workers = [i for i in range(len(header)) if i != round_col]
    if not workers:
        raise InputError(f"{where}: the header names no worker column.")
    first: dict[str, int] = {}
    for i in workers:
        if header[i] == "":
            raise InputError(f"{where}: column {i + 1} of the header has no worker name.")
        if header[i] in first:
            raise InputError(
                f"{where}: worker {show_value(header[i])} names columns {first[header[i]] + 1} and {i + 1}; "
                "wide format needs one unique name per worker column."
            )
        first[header[i]] = i
    data = []
    round_lines: dict[int, int] = {}
    for line, row in rows[1:]:
        fields(line, row, len(header))
        if round_col is not None:
            rnd = round_label(row[round_col], line)
            if rnd in round_lines:
                raise InputError(
                    f"{where}: round {rnd} appears twice, on lines {round_lines[rnd]} and {line}."
                )
            round_lines[rnd] = line
        data.append([number(row[i], line, header[i]) for i in workers])
    arr = np.array(data, dtype=np.float64).reshape(len(data), len(workers))
    return [header[i] for i in workers], list(arr.T)


# ---------------------------------------------------------------- examples
MOBILENET_V3_SMALL_PARAMS = 2_542_856


def paper_rates(n: int = 50, *, high: float = 2.0, rng=2026) -> np.ndarray:
    """The paper's straggling rates ``mu_i ~ U(0.01, high)``, drawn from `rng` (2026: paper-n50's)."""
    return np.random.default_rng(rng).uniform(0.01, high, size=positive_int("n", n))


def paper_profile(
    n: int = 50, *, dim: int = MOBILENET_V3_SMALL_PARAMS, high: float = 2.0, deadline: float = 1.1, rng=2026
) -> ClusterProfile:
    """The paper's cluster: round times ``1 + Exp(mu_i)`` (:func:`paper_rates`) against `deadline`.

    The defaults give the ``paper-n50`` example; the studies vary `n`, `dim` and `high`.
    """
    rates = paper_rates(n, high=high, rng=rng)
    return ClusterProfile.from_latency_model(
        "shifted-exponential", rates=rates, deadline=deadline, shift=1.0, dim=dim
    )


def _paper_n50() -> tuple[ClusterProfile, dict]:
    return paper_profile(50), {"bits_per_worker": 7}


def classes_n48_probs(mean_p: float = 0.3, ratio=(3.0, 2.0, 1.0)) -> np.ndarray:
    """Three equal classes whose utilities are in ratio 3:2:1 at equal bits.

    With equal bits and the balanced quantization model (c = 1) every worker has
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
        {"bits_per_worker": 6, "allocator": "equal", "quantization": "balanced", "bucket_size": None},
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


EXAMPLE_TRACES = "traces-n8.csv"
EXAMPLE_TRACE_RATES = (4.0, 3.0, 3.0, 2.0, 2.0, 1.0, 0.5, 0.25)


def make_example_traces(*, rounds: int = 200, rng=2026) -> str:
    """The CSV text of the bundled traces: 8 workers, shifted exponential round times.

    Worker ``node-i`` takes ``1 + Exp(mu_i)`` seconds per round with ``mu`` =
    4, 3, 3, 2, 2, 1, 0.5, 0.25 (the guide's cluster), in long format
    (``worker,round,time``), times rounded to 1e-4 s. The shipped file
    (:func:`example_traces_path`) is this function's output with its defaults.
    """
    rounds = positive_int("rounds", rounds)
    gen = np.random.default_rng(rng)
    rates = np.array(EXAMPLE_TRACE_RATES)
    times = 1.0 + gen.exponential(1.0 / rates, size=(rounds, rates.size))
    lines = ["worker,round,time"]
    for r in range(rounds):
        lines += [f"node-{i},{r},{times[r, i]:.4f}" for i in range(rates.size)]
    return "\n".join(lines) + "\n"


def example_traces_path() -> Path:
    """Path of the bundled example traces CSV (see :func:`make_example_traces`).

    Examples
    --------
    >>> prof = ClusterProfile.from_traces(example_traces_path(), deadline=1.5, dim=1000)
    >>> prof.n_workers, prof.names[0]
    (8, 'node-0')
    """
    from importlib.resources import files

    return Path(str(files("gcdesign") / "examples" / EXAMPLE_TRACES))


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


__all__ = [
    "EXAMPLE_TRACES",
    "EXAMPLE_TRACE_RATES",
    "LATENCY_MODELS",
    "LONG_HEADER",
    "MOBILENET_V3_SMALL_PARAMS",
    "PROFILE_FIELDS",
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "ClusterProfile",
    "classes_n48_probs",
    "example_traces_path",
    "list_examples",
    "load_example",
    "load_profile",
    "make_example_traces",
    "paper_profile",
    "paper_rates",
    "read_traces_csv",
    "save_profile",
]
