"""``gcdesign profile`` and ``examples``: a profile from round-time traces, the bundled profiles."""

from __future__ import annotations

import sys

from .args import Number, add_json
from .output import print_json
from .paths import input_file, output_file


# ------------------------------------------------------------------ profile
def profile_arguments(p) -> None:
    p.add_argument(
        "--traces",
        required=True,
        metavar="FILE",
        type=input_file,
        help="CSV: long (worker,round,time) or wide (one column per worker)",
    )
    p.add_argument(
        "--deadline",
        required=True,
        type=Number("deadline", low=0, low_open=True),
        help="round deadline tau",
    )
    p.add_argument("--dim", required=True, type=Number("dim", integer=True, low=1), help="model dimension d")
    p.add_argument(
        "--partitions", type=Number("partitions", integer=True, low=1), default=None, help="K (default N)"
    )
    p.add_argument(
        "--smoothing", type=Number("smoothing", low=0), default=1.0, help="additive smoothing (default 1)"
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", type=output_file("output"), help="write the profile JSON here"
    )
    add_json(p)


def run_profile(args) -> int:
    from ..profile import ClusterProfile, save_profile

    prof = ClusterProfile.from_traces(
        args.traces,
        deadline=args.deadline,
        dim=args.dim,
        partitions=args.partitions,
        smoothing=args.smoothing,
    )
    if args.output is not None:
        save_profile(prof, args.output)
    if args.json:
        print_json(prof.to_dict())
    else:
        print(f"workers N {prof.n_workers}, partitions K {prof.partitions}, dim {prof.dim}")
        for name, p in zip(prof.names, prof.straggler_probs, strict=True):
            print(f"  {name:<16} p={p:.4f}")
        if args.output is not None:
            print(f"written to {args.output}")
    return 0


# ----------------------------------------------------------------- examples
def examples_arguments(p) -> None:
    p.add_argument(
        "--traces",
        metavar="FILE",
        type=output_file("traces"),
        help="also write the bundled round-time traces (CSV, 8 workers) here",
    )
    add_json(p)


def run_examples(args) -> int:
    from .._files import atomic_write_text
    from ..profile import example_traces_path, list_examples, load_example

    if args.traces is not None:
        atomic_write_text(args.traces, example_traces_path().read_text())
        print(f"traces written to {args.traces}", file=sys.stderr)
    rows = []
    for name, desc in list_examples().items():
        prof, defaults = load_example(name, with_defaults=True)
        rows.append(
            {
                "name": name,
                "workers": prof.n_workers,
                "partitions": prof.partitions,
                "dim": prof.dim,
                **defaults,
                "description": desc,
            }
        )
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(
                f"{r['name']:<12} N={r['workers']:<4} K={r['partitions']:<4} d={r['dim']:<8} "
                f"{r['description']}"
            )
    return 0


__all__ = [
    "examples_arguments",
    "profile_arguments",
    "run_examples",
    "run_profile",
]
