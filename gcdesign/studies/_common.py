"""Shared pieces of the studies: progress bar, CSV, confidence intervals, plotting, runs."""

from __future__ import annotations

import csv
import io
import math
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..profile import ClusterProfile
from ..schemes import SCHEMES

_LINE_DEFAULTS = {"color": None, "linestyle": "-", "linewidth": 1.4}


@dataclass
class StudyResult:
    """What a study wrote: file paths, the summary text and the run time (``wall_time``, s)."""

    name: str
    files: list[Path] = field(default_factory=list)
    summary: str = ""
    wall_time: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Deprecated name of :attr:`wall_time` (warns; removed in the next release)."""
        warnings.warn(
            "StudyResult.seconds is deprecated and will be removed in the next release; "
            "use StudyResult.wall_time.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.wall_time


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a TTY (and `enabled`)."""

    def __init__(self, total: int, desc: str, *, enabled: bool = True, stream=None):
        self.total = max(int(total), 1)
        self.desc = desc
        self.count = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.count += n
        if self.enabled:
            frac = min(self.count / self.total, 1.0)
            bar = "#" * int(30 * frac)
            elapsed = time.perf_counter() - self.start
            self.stream.write(f"\r{self.desc:<14} [{bar:<30}] {self.count}/{self.total} {elapsed:6.1f}s")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Write `rows` (dicts with the same keys) as CSV; floats with full precision."""
    from .._files import atomic_write_text

    if not rows:
        raise ValueError("no rows to write")
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return atomic_write_text(path, text.getvalue())


def mean_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval (0 for one value)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if values.size < 2:
        return mean, 0.0
    from scipy.stats import t

    half = float(t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return mean, half


def diff_ci(a, b, level: float = 0.95) -> tuple[float, float]:
    """Mean of ``a - b`` and its Welch confidence half-width (independent samples)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return float(a.mean() - b.mean()), 0.0
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    from scipy.stats import t

    return float(a.mean() - b.mean()), float(t.ppf(0.5 + level / 2, dof) * se)


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 6.0, height: float = 4.2):
    """A matplotlib Figure with Agg canvas (no pyplot state), and its axes array."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig, path: Path) -> Path:
    """Write `fig` as PNG, atomically (an OS refusal is a FileSystemError naming `path`)."""
    from .._files import atomic_write

    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110))


def scheme_label(name: str) -> str:
    """A scheme's label in tables and legends: the one it was registered with (else its name).

    An error-feedback name (``"bgc+ef"``) gets its scheme's label and ``" + EF"``.
    """
    from ..training import scheme_variant

    base, feedback = scheme_variant(name)
    entry = SCHEMES.get(base)
    label = entry.label if entry is not None else base
    return label + " + EF" if feedback else label


def style(name: str) -> dict:
    """matplotlib keywords of a scheme's curves: its registered style (dotted under EF), and its label."""
    from ..training import scheme_variant

    base, feedback = scheme_variant(name)
    entry = SCHEMES.get(base)
    line = dict(entry.style) if entry is not None else {}
    if feedback:
        line = {**line, "linestyle": ":"}
    return {**_LINE_DEFAULTS, **line, "label": scheme_label(name)}


#: The nonconvex setting of the training studies (issue 11): the digits MLP, one ReLU
#: hidden layer as wide as `dim` asks, N = K = 50 workers, mini-batch SGD.
MLP_DIM_FULL = 100_000
MLP_DIM_QUICK = 2_000


def mlp_setting(quick: bool):
    """``(problem, n_workers)`` of the training studies: the digits MLP at d >= 1e5 (quick: 2e3)."""
    from ..training import digits_mlp_problem

    dim = MLP_DIM_QUICK if quick else MLP_DIM_FULL
    return digits_mlp_problem(dim=dim, partitions=50, rng=0), 50


def with_error_feedback(names) -> list[str]:
    """`names` and the error-feedback variant of every baseline in it (not of centralized, joint)."""
    from ..training import EF_SUFFIX

    names = list(names)
    return names + [n + EF_SUFFIX for n in names if n not in ("centralized", "joint")]


BLOW_UP = 10.0  # a run whose final loss exceeds BLOW_UP x its initial loss diverged
LOSS_AXIS_TOP = 20.0  # loss axes of the training figures end here; diverged runs sit at the top


def diverged(history) -> bool:
    """The run diverged: its loss overflowed (the harness stops and fills the rest with inf),
    or its final loss (:func:`final_loss`) ended above ``BLOW_UP`` times its initial loss."""
    if not bool(np.isfinite(history.loss[-1])):
        return True
    return final_loss(history) > BLOW_UP * float(history.loss[0])


def final_accuracy(history, fraction: float = 0.1) -> float:
    """Mean held-out accuracy over the last `fraction` of the rounds (0 after a divergence)."""
    if history.test_accuracy is None:
        return float("nan")
    tail = max(1, int(round(fraction * history.rounds)))
    return float(np.nan_to_num(np.mean(history.test_accuracy[-tail:]), nan=0.0))


def verdict(d: float, h: float, *, lower_is_better: bool = True) -> str:
    """Joint against a competitor from the interval ``d +- h`` of (competitor - joint)."""
    if not np.isfinite(d):
        return "joint better (competitor diverged)" if d > 0 else "joint worse (joint diverged)"
    better = d - h > 0 if lower_is_better else d + h < 0
    worse = d + h < 0 if lower_is_better else d - h > 0
    return "joint better" if better else ("joint worse" if worse else "tied")


def band(ax, x, runs: np.ndarray, name: str, *, low: float = 10, high: float = 90) -> None:
    """Mean line over runs (rows) with a shaded 10-90 percentile band."""
    runs = np.asarray(runs, dtype=np.float64)
    kw = style(name)
    ax.plot(x, runs.mean(axis=0), **kw)
    if runs.shape[0] > 1:
        lo, hi = np.percentile(runs, [low, high], axis=0)
        ax.fill_between(x, lo, hi, color=kw["color"], alpha=0.15, linewidth=0)


def run_schemes(
    problem,
    profile: ClusterProfile,
    budget: int,
    names: Iterable[str],
    *,
    seeds: list[int],
    rounds: int,
    optimizer,
    progress: Progress | None = None,
    stragglers=None,
    workers=None,
) -> dict[str, list]:
    """Train every scheme in `names` once per seed; the seed also draws the scheme's random code.

    A name ``"<scheme>+ef"`` trains that scheme with error feedback.
    The runs (scheme x seed) are independent tasks, each with its own seed, mapped by
    `workers` (:func:`gcdesign.parallel.parallel_map`: None serial, an int a spawn
    process pool, a map-like callable, a Dask client), so the histories are the same
    whatever runs them. A name ``"<scheme>+ef"`` trains that scheme with
    error feedback (docs/math.md, section 12). Returns ``{name: [History, ...]}``.
    """
    names = list(names)
    options = {"rounds": rounds, "optimizer": optimizer, "stragglers": stragglers}
    tasks = [(problem, (name, profile, budget), seed, options) for name in names for seed in seeds]
    histories = iter(train_runs(tasks, workers=workers, progress=progress))
    return {name: [next(histories) for _ in seeds] for name in names}


def train_run(task):
    """One training run, ``(problem, scheme, seed, options) -> History`` (a task for ``workers``).

    `scheme` is a scheme, or ``(name, profile, budget)``: then
    :func:`~gcdesign.training.training_scheme` builds it with the run's seed, which also
    draws its random code; a name ``"<scheme>+ef"``, or ``error_feedback=True`` in
    `options`, trains with error feedback. `options` are the other keywords of
    :func:`~gcdesign.training.train`; the run's seed is its ``rng``.
    """
    from ..training import scheme_variant, train, training_scheme

    problem, scheme, seed, options = task
    options = dict(options)
    feedback = bool(options.pop("error_feedback", False))
    if isinstance(scheme, tuple):
        name, profile, budget = scheme
        base, named_feedback = scheme_variant(name)
        feedback = feedback or named_feedback
        scheme = training_scheme(base, profile, budget, rng=seed)
    return train(problem, scheme, rng=seed, error_feedback=feedback, **options)


def train_runs(tasks: list, *, workers=None, progress: Progress | None = None) -> list:
    """:func:`train_run` over `tasks`, run by `workers`; histories in task order."""
    from ..parallel import parallel_map

    update = None if progress is None else progress.update
    return parallel_map(train_run, tasks, workers=workers, progress=update)


def final_loss(history, fraction: float = 0.1) -> float:
    """Mean loss over the last `fraction` of the rounds (smooths the round-to-round noise)."""
    tail = max(1, int(round(fraction * history.rounds)))
    return float(np.mean(history.loss[-tail:]))


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
