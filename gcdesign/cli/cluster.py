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
        help="Dask worker processes of the LocalCluster, or torch host ranks to spawn (default 2)",
    )
    add(
        "--backend",
        choices=("dask", "torch"),
        default="dask",
        help="transport of the round engine: dask.distributed (default) or torch.distributed (gloo); "
        "under torchrun the ranks are the launch's",
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
    follow = parser.add_argument_group("following the cluster (docs/math.md, section 13)")
    follow.add_argument(
        "--adapt",
        action="store_true",
        help="re-profile online, test for drift, redesign on the closest layout (train(..., adapt=True))",
    )
    follow.add_argument(
        "--false-alarm",
        type=Number("false-alarm", low=0, high=0.5, low_open=True),
        default=0.01,
        metavar="ALPHA",
        help="drift test: on a stationary cluster, alarm probability in a tested round at most ALPHA "
        "(default 0.01)",
    )
    follow.add_argument(
        "--window",
        type=Number("window", integer=True, low=2),
        default=20,
        metavar="W",
        help="drift test: rounds in the window, and in the calibration after every alarm (default 20)",
    )
    follow.add_argument(
        "--redesign-threshold",
        type=Number("redesign-threshold", low=0),
        default=0.05,
        metavar="ETA",
        help="redesign when the current layout's error exceeds the new design's by this fraction "
        "(default 0.05)",
    )
    follow.add_argument(
        "--move-cost",
        type=Number("move-cost", low=0),
        default=0.0,
        metavar="C",
        help="relative error a redesign must also gain per copied fraction of the data (default 0)",
    )
    follow.add_argument(
        "--slow",
        type=_slowdown,
        action="append",
        default=[],
        metavar="I:F@R",
        help="emulate drift: worker I's delay rate divided by F from round R on (repeatable; "
        "default: no drift)",
    )
    add_json(parser, help="print the results as JSON")


def _slowdown(text: str) -> tuple[int, float, int]:
    """``I:F@R`` -> (worker, factor, round): worker I's delay rate divided by F from round R."""
    from .errors import ArgumentValueError

    try:
        worker, rest = text.split(":")
        factor, start = rest.split("@")
        spec = int(worker), float(factor), int(start)
    except ValueError:
        spec = None
    if spec is None or spec[0] < 0 or not (math.isfinite(spec[1]) and spec[1] > 0) or spec[2] < 0:
        raise ArgumentValueError(
            f"`slow` must be I:F@R (worker I >= 0, factor F > 0, round R >= 0), got {text!r}."
        )
    return spec


def _drifting_rates(rates, slowdowns, rounds: int):
    """`rates` (N,) as (rounds, N) with the --slow changes applied (or as is without any)."""
    if not slowdowns:
        return rates
    table = np.tile(rates, (rounds, 1))
    for worker, factor, start in slowdowns:
        if worker >= rates.size:
            raise InputError(
                f"`slow` names worker {worker}, but the design has {rates.size} (0..{rates.size - 1})."
            )
        table[start:, worker] /= factor
    return table


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
    if args.slow and args.real:
        raise InputError("`slow` changes emulated delays; it cannot be combined with --real.")
    if rates is not None:
        rates = _drifting_rates(rates, args.slow, args.rounds)
    adapt = None
    if args.adapt:
        from ..cluster.adaptive import AdaptOptions

        adapt = AdaptOptions(
            window=args.window,
            false_alarm=args.false_alarm,
            threshold=args.redesign_threshold,
            move_cost=args.move_cost,
        )
    common = {
        "rounds": args.rounds,
        "time_unit": args.time_unit,
        "rng": args.rng,
        "optimizer": gd(args.lr),
        "emulate": not args.real,
        "shift": shift,
        "rates": rates,
    }
    if args.backend == "torch":
        if args.scheduler is not None:
            raise InputError(
                "--scheduler is a Dask address; the torch backend takes --workers (or torchrun)."
            )
        from ..cluster.torch import is_host_rank

        note = (lambda text: None) if is_host_rank() else (lambda text: print(text, file=sys.stderr))
        note(
            f"coded: {code.n_workers} logical workers on torch host ranks, deadline {deadline:g}, "
            f"{args.rounds} rounds"
        )
        common["backend"] = "torch"
        coded = train(problem, code, deadline=deadline, workers=args.workers, adapt=adapt, **common)
        if args.no_baseline:  # (coded is None on a torchrun rank other than 0: it serves both runs)
            return coded, None
        note("uncoded wait-for-all on the same ranks")
        return coded, train(problem, uncoded_scheme(code), deadline=math.inf, workers=args.workers, **common)
    with dask_client(args.workers, args.scheduler) as client:
        where = args.workers if args.scheduler is None else "the"
        print(
            f"coded: {code.n_workers} logical workers on {where} Dask workers, "
            f"deadline {deadline:g}, {args.rounds} rounds",
            file=sys.stderr,
        )
        coded = train(problem, code, deadline=deadline, workers=client, adapt=adapt, **common)
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
        "adaptation": [{k: v for k, v in change.items() if k in ADAPT_FIELDS} for change in coded.adaptation],
    }


ADAPT_FIELDS = (
    "round",
    "cause",
    "drifted",
    "action",
    "gain",
    "required",
    "moved",
    "moved_fresh",
    "moved_transport",
)


_CAUSES = {"alarm": "drift", "calibrated": "drifted workers re-measured"}


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
    for change in result["adaptation"]:
        moved = ""
        if change["action"] == "redesign":
            moved = f", {change['moved']} partition copies (fresh layout {change['moved_fresh']})"
        print(
            f"after round {change['round']}: {_CAUSES[change.get('cause', 'alarm')]}; {change['action']} "
            f"(error gain {change['gain']:.1%}, "
            f"needed {change['required']:.1%}){moved}"
        )


def run_cluster(args) -> int:
    """``gcdesign cluster``: coded training on digits (Dask or torch), against uncoded wait-for-all."""
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
    if coded is None:  # a torchrun rank other than 0 served its logical workers: rank 0 reports
        return 0
    if args.traces:
        coded.write_traces(args.traces)
    result = _summary(args, code, problem, coded, baseline)
    if args.json:
        print_json(result)  # a target never reached is "inf"
    else:
        _print_summary(result)
    return 0


__all__ = ["cluster_arguments", "run_cluster"]
