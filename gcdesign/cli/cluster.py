"""``gcdesign cluster``: coded training on digits on a Dask cluster, against uncoded wait-for-all."""

from __future__ import annotations

import math
import sys

import numpy as np

from .._validate import InputError
from .args import SEED, Number, add_json, check_scheduler, check_wait, process_count, scheduler_address
from .output import print_json
from .paths import input_file, output_file


def cluster_arguments(parser) -> None:
    """The arguments of ``gcdesign cluster`` (numbers parsed by the CLI's one number type)."""
    src = parser.add_argument_group("code (one of)")
    src.add_argument("--example", metavar="NAME", help="design for a bundled example profile")
    src.add_argument("--design", type=input_file, metavar="FILE", help="a design file (.json or .npz)")
    positive = {"low": 0, "low_open": True}
    add = parser.add_argument
    add(
        "--workers",
        type=process_count("workers"),
        default=2,
        metavar="W",
        help="Dask worker processes of the LocalCluster (default 2)",
    )
    add(
        "--deadline",
        type=Number("deadline", **positive),
        required=True,
        metavar="TAU",
        help="round deadline in time units",
    )
    add("--rounds", type=Number("rounds", integer=True, low=1), required=True, metavar="R")
    add(
        "--scheduler",
        type=scheduler_address,
        metavar="ADDRESS",
        help="run on the Dask scheduler at tcp://HOST:PORT instead of a LocalCluster",
    )
    add(
        "--time-unit",
        type=Number("time-unit", **positive),
        default=0.25,
        metavar="U",
        help="seconds per time unit (default 0.25)",
    )
    add(
        "--shift",
        type=Number("shift", low=0),
        default=None,
        metavar="T0",
        help="delay shift t0 (default deadline / 2)",
    )
    add(
        "--bits-per-worker",
        type=Number("bits-per-worker", **positive),
        default=None,
        metavar="X",
        help="with --example (default: the example's)",
    )
    add("--problem", default="logistic", help="digits problem: logistic (default), softmax, least-squares")
    add("--lr", type=Number("lr", **positive), default=0.5, help="gradient-descent step (default 0.5)")
    add(
        "--target-loss",
        type=Number("target-loss"),
        default=None,
        metavar="L",
        help="default: the best loss both runs reach",
    )
    add("--no-baseline", action="store_true", help="skip uncoded wait-for-all")
    add("--real", action="store_true", help="no emulated delays: only real slowness")
    add(
        "--traces",
        type=output_file("traces", suffixes=(".csv",)),
        metavar="FILE",
        help="write the measured round times (CSV, long format)",
    )
    add("--rng", type=SEED, default=0, help="seed (default 0)")
    add_json(parser, help="print the results as JSON")


def _code_and_problem(args):
    """The design to run (an example's or a file's) and the digits problem it trains."""
    from ..design import design
    from ..io import load_design
    from ..profile import ClusterProfile, load_example
    from ..training import digits_problem

    if args.example is None:
        code = load_design(args.design)
        return code, digits_problem(args.problem, partitions=code.partitions)
    profile, defaults = load_example(args.example, with_defaults=True)
    bits = defaults.get("bits_per_worker", 4) if args.bits_per_worker is None else args.bits_per_worker
    problem = digits_problem(args.problem, partitions=profile.partitions)
    profile = ClusterProfile(
        profile.straggler_probs, dim=problem.dim, partitions=profile.partitions, names=profile.names
    )
    options = {k: v for k, v in defaults.items() if k != "bits_per_worker"}
    return design(profile, bits_per_worker=bits, **options), problem


def _train_both(args, code, problem, shift):
    """The coded run and (unless --no-baseline) uncoded wait-for-all, on one cluster."""
    from ..cluster import delay_rates, train, uncoded_scheme
    from ..cluster.dask import dask_client
    from ..training import gd

    deadline = args.deadline
    rates = None if args.real else delay_rates(code.straggler_probs, deadline=deadline, shift=shift)
    common = {
        "rounds": args.rounds,
        "time_unit": args.time_unit,
        "rng": args.rng,
        "optimizer": gd(args.lr),
        "emulate": not args.real,
        "shift": shift,
        "rates": rates,
    }
    with dask_client(args.workers, args.scheduler) as client:
        where = args.workers if args.scheduler is None else "the"
        print(
            f"coded: {code.n_workers} logical workers on {where} Dask workers, "
            f"deadline {deadline:g}, {args.rounds} rounds",
            file=sys.stderr,
        )
        coded = train(problem, code, deadline=deadline, workers=client, **common)
        if args.no_baseline:
            return coded, None
        print("uncoded wait-for-all on the same cluster", file=sys.stderr)
        return coded, train(problem, uncoded_scheme(code), deadline=math.inf, workers=client, **common)


def _summary(args, code, problem, coded, baseline) -> dict:
    """The result of ``gcdesign cluster`` (what --json prints)."""
    from ..cluster import straggler_table, time_to_loss

    if args.target_loss is not None:
        target = args.target_loss
    else:
        target = (
            float(coded.loss.min()) if baseline is None else float(max(coded.loss.min(), baseline.loss.min()))
        )
    overhead_ms = 1e3 * coded.overhead
    unit = args.time_unit
    return {
        "scheme": coded.scheme,
        "workers": code.n_workers,
        "rounds": args.rounds,
        "deadline": args.deadline,
        "time_unit": unit,
        "stragglers": straggler_table(coded, code.straggler_probs),
        "overhead_ms": {
            "median": float(np.median(overhead_ms)),
            "p95": float(np.percentile(overhead_ms, 95)),
        },
        "final_loss": float(coded.loss[-1]),
        "optimal_loss": problem.optimal_loss,
        "target_loss": target,
        "coded_seconds_to_target": time_to_loss(coded, target),
        "uncoded_seconds_to_target": None if baseline is None else time_to_loss(baseline, target),
        "uncoded_final_loss": None if baseline is None else float(baseline.loss[-1]),
        "coded_seconds": float(coded.wall_time[-1] * unit),
        "uncoded_seconds": None if baseline is None else float(baseline.wall_time[-1] * unit),
    }


def _print_summary(result: dict) -> None:
    print(f"{'workers':<28} {'p':>7} {'realized':>9} {'99% interval':>17}")
    for row in result["stragglers"]:
        label = row["workers"] if len(row["workers"]) <= 28 else row["workers"][:25] + "..."
        flag = "" if row["inside"] else "  outside"
        print(
            f"{label:<28} {row['p']:7.3f} {row['realized']:9.3f}  [{row['low']:.3f}, {row['high']:.3f}]{flag}"
        )
    o = result["overhead_ms"]
    print(f"overhead beyond the deadline: median {o['median']:.2f} ms, p95 {o['p95']:.2f} ms")
    print(f"final loss {result['final_loss']:.6f} (optimum {result['optimal_loss']:.6f})")
    line = f"wall clock to loss {result['target_loss']:.6f}: coded {result['coded_seconds_to_target']:.2f} s"
    t_unc = result["uncoded_seconds_to_target"]
    if t_unc is not None:
        line += f", uncoded wait-for-all {t_unc:.2f} s"
        if math.isfinite(t_unc) and result["coded_seconds_to_target"] > 0:
            line += f" ({t_unc / result['coded_seconds_to_target']:.2f}x)"
    print(line)


def run_cluster(args) -> int:
    """``gcdesign cluster``: coded training on digits on a Dask cluster, against uncoded wait-for-all."""
    if (args.example is None) == (args.design is None):
        raise InputError("give exactly one of --example NAME and --design FILE.")
    if args.design is not None and args.bits_per_worker is not None:
        raise InputError("--bits-per-worker goes with --example; a --design file has its bits already.")
    check_wait(args.deadline, args.time_unit)
    if args.scheduler is not None:
        check_scheduler(args.scheduler)  # one line within seconds, before any work
    shift = 0.5 * args.deadline if args.shift is None else args.shift
    if shift >= args.deadline:
        raise InputError(f"`shift` must be below the deadline {args.deadline:g}, got {shift:g}.")
    code, problem = _code_and_problem(args)
    coded, baseline = _train_both(args, code, problem, shift)
    if args.traces:
        coded.write_traces(args.traces)
    result = _summary(args, code, problem, coded, baseline)
    if args.json:
        print_json(result)  # a target never reached is "inf"
    else:
        _print_summary(result)
    return 0


__all__ = ["cluster_arguments", "run_cluster"]
