"""``gcdesign study NAME``: run a reproducible study (figures, CSV, summary)."""

from __future__ import annotations

import os
import sys

from .args import SEED, UsageError, check_scheduler, process_count, scheduler_address
from .paths import output_dir

#: ``--workers``: a process count, or -1 for every core (gcdesign.parallel).
WORKERS = process_count("workers", every_core=True)


def study_arguments(p) -> None:
    from ..studies import STUDIES

    names = ", ".join(STUDIES)
    p.description = f"Run a study and write its PNG figures, CSV and markdown summary. Studies: {names}."
    p.add_argument("name", metavar="NAME", help=f"one of: {names}")
    p.add_argument(
        "--out",
        metavar="DIR",
        type=output_dir("out"),
        help="output directory (default ./gcdesign-studies/NAME)",
    )
    p.add_argument("--quick", action="store_true", help="the small version (under two minutes)")
    p.add_argument("--rng", type=SEED, default=0, metavar="SEED", help="seed of the study (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=WORKERS,
        default=-1,
        metavar="N",
        help="processes (spawn) running the study's independent runs; -1: every core (default), 1: serial",
    )
    where.add_argument(
        "--scheduler",
        type=scheduler_address,
        metavar="ADDRESS",
        help="run on the dask.distributed cluster at ADDRESS (tcp://host:8786)",
    )


def run_study(args) -> int:
    from ..studies import STUDIES
    from ..studies import run_study as run_named_study

    if args.name not in STUDIES:
        raise UsageError(f"Unknown study {args.name!r}; choose one of: {', '.join(STUDIES)}.")
    if args.scheduler is not None:
        check_scheduler(args.scheduler)  # one line within seconds, before any work
    out = args.out
    if out is None:  # the default directory is checked like a given one
        out = output_dir("out")(os.path.join("gcdesign-studies", args.name))
    result = run_named_study(
        args.name,
        out,
        quick=args.quick,
        rng=args.rng,
        progress=not args.no_progress,
        workers=None if args.scheduler is not None else args.workers,
        scheduler=args.scheduler,
    )
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"study {args.name}: {result.wall_time:.1f} s, wrote")
    for path in result.files:
        print(f"  {path}")
    return 0


__all__ = [
    "WORKERS",
    "run_study",
    "study_arguments",
]
