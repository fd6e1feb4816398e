"""Reproducible studies: ``gcdesign study NAME [--out DIR] [--quick] [--workers N | --scheduler ADDRESS]``.

Each study is a module of this package with a function
``run(out: Path, *, quick: bool, rng, progress: bool, workers) -> StudyResult`` that
writes PNG figures, a CSV of the numbers and returns a markdown summary;
:func:`run_study` times it and writes ``NAME.md`` next to the other files.

Studies scale out: their independent runs (seeds x schemes x budgets ...) are tasks,
each with its own seed, mapped by ``workers`` (:mod:`gcdesign.parallel`: a spawn
process pool, a map-like callable, a Dask cluster). The CSVs are byte-identical
whatever runs them.
matplotlib (and, for the training studies, scikit-learn) are needed: the
``studies`` extra (``pip install 'gcdesign[studies]'``).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from .._validate import FileSystemError, choice
from ._common import StudyResult

STUDIES = {
    "allocators": "objective and solver time of every bit allocator vs the budget (N = 50, 100)",
    "convergence": "loss and test accuracy vs round of every scheme, its EF variant and centralized SGD, "
    "B/N = 2, 3, 5, 7 (digits MLP, d = 1e5), with a verdict per budget",
    "bits": "loss vs total bits delivered (the convergence runs), with the loss at a common bit total "
    "and a verdict",
    "adam": "Adam with and without two-track decoding, B/N = 2, 3, 5, 7, baselines with and without EF, "
    "paired verdicts",
    "heterogeneity": "final loss and accuracy vs the upper bound of the straggling parameters, every "
    "scheme and EF variant, with a verdict",
    "latency": "expected round time and speedup vs tolerated stragglers (order statistics)",
    "storage": "storage vs decoding error of random sparse approximate gradient codes (measured)",
    "deadline": "loss vs simulated wall-clock time for several round deadlines",
    "quantization_training": "training consequence of the quantization model: default vs balanced vs OSGC",
    "torch": "wall clock to a target test accuracy over torch.distributed: the joint design, uncoded, OSGC "
    "and SGC through the deadline gather vs DDP all-reduce (digits MLP in PyTorch, emulated delays)",
    "quantization": "exact error of the design under every quantization model and bucket size vs baselines",
    "drift": "static vs adaptive vs oracle designs on a drifting Dask cluster: time to target, data moved, "
    "false redesigns",
    "load": "load-blind vs load-aware designs on a Dask cluster whose compute time follows the load",
}


def run_study(
    name: str,
    out=None,
    *,
    quick: bool = False,
    rng=0,
    progress: bool = True,
    workers=None,
    scheduler=None,
) -> StudyResult:
    """Run the study `name`, writing its files into `out` (default ``./gcdesign-studies/NAME``).

    Parameters
    ----------
    name : str
        One of :data:`STUDIES`.
    out : str or Path, optional
        Output directory (created if missing).
    quick : bool
        The small version (under two minutes on two cores).
    rng : int
        Seed of everything random in the study.
    progress : bool
        Draw a progress bar on stderr (only when it is a terminal).
    workers : None, int, map-like callable or dask.distributed.Client
        Who runs the study's independent runs (:func:`gcdesign.parallel.parallel_map`):
        None or 1 serially, ``n >= 2`` a spawn pool of n processes (one pool for the
        whole study), -1 every core, a map-like callable (``Pool.map``, ``client.map``),
        a Client. The files are the same whatever runs them (timings aside).
    scheduler : str or dask.distributed.Client, optional
        Run on the dask.distributed cluster at this address instead of `workers`.
    """
    from .. import __version__
    from .._files import atomic_write_text, publish, staged_run
    from ..parallel import describe_workers, open_workers

    choice("study", name, STUDIES)
    out = Path(out) if out is not None else Path("gcdesign-studies") / name
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileSystemError(f"cannot create the output directory {str(out)!r}: {exc.strerror}.") from None
    module = importlib.import_module(f".{name}", __name__)
    # the files go to a private staging folder in `out` and move in only when all are written,
    # then the manifest: an interrupted or failed run leaves every earlier file as it was
    with staged_run(out, name) as stage:
        start = time.perf_counter()
        with open_workers(workers, scheduler=scheduler) as pool:
            result: StudyResult = module.run(stage, quick=quick, rng=rng, progress=progress, workers=pool)
        result.wall_time = time.perf_counter() - start
        mode = "quick (`--quick`)" if quick else "full"
        text = [f"# Study `{name}`", "", STUDIES[name] + ".", "", result.summary.strip(), ""]
        if result.notes:
            text += ["## Notes", ""] + [f"- {n}" for n in result.notes] + [""]
        ran_on = describe_workers(workers, scheduler)
        text += [f"Mode: {mode}; run time {result.wall_time:.1f} s ({ran_on}).", ""]
        text += ["Files: " + ", ".join(f"`{Path(f).name}`" for f in result.files), ""]
        result.files.append(atomic_write_text(stage / f"{name}.md", "\n".join(text)))
        settings = {
            "study": name,
            "quick": bool(quick),
            "rng": rng if isinstance(rng, int) else repr(rng),
            "ran_on": ran_on,
            "gcdesign": __version__,
            "seconds": round(result.wall_time, 3),
        }
        result.files = publish(stage, result.files, out / f"{name}.manifest.json", settings)
    return result


__all__ = ["STUDIES", "StudyResult", "run_study"]
