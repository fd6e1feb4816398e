"""``gcdesign latency``: expected round time and speedup of tolerating stragglers."""

from __future__ import annotations

from .args import MAX_COUNT, SEED, Number, NumberList, UsageError, add_json, count
from .output import print_json

STRAGGLERS_ALLOWED = "integers in [0, N - 1] separated by commas"


def latency_arguments(p) -> None:
    p.add_argument(
        "--workers",
        required=True,
        metavar="N",
        type=Number("workers", integer=True, low=1),
        help="number of workers N",
    )
    p.add_argument(
        "--rate",
        required=True,
        metavar="MU",
        type=Number("rate", low=0, low_open=True),
        help="exponential rate mu of a round time",
    )
    p.add_argument(
        "--stragglers",
        required=True,
        metavar="S",
        type=NumberList(Number("stragglers", integer=True), STRAGGLERS_ALLOWED),
        help="tolerance s, or a comma-separated list like 0,10,20",
    )
    p.add_argument(
        "--shift",
        default=0.0,
        metavar="T0",
        type=Number("shift", low=0),
        help="shift t0 of a shifted exponential (default 0)",
    )
    p.add_argument(
        "--load-aware", action="store_true", help="a code tolerating s stragglers runs at load s + 1"
    )
    p.add_argument(
        "--trials",
        default=0,
        metavar="T",
        type=count("trials", 2, also=(0,), allowed="0 or an integer in [2, 10^9]"),
        help="also simulate T rounds per row (default 0)",
    )
    p.add_argument("--rng", default=None, metavar="SEED", type=SEED, help="seed of the simulation")
    add_json(p)


def run_latency(args) -> int:
    from ..latency import expected_kth_time, latency_table

    workers, rate, shift, trials = args.workers, args.rate, args.shift, args.trials
    if trials and workers > MAX_COUNT:
        raise UsageError(f"`workers` must be at most 10^9 to simulate rounds (`trials`), got {workers}.")
    for s in args.stragglers:
        if not 0 <= s < workers:
            allowed = STRAGGLERS_ALLOWED.replace("N - 1]", f"N - 1] = [0, {workers - 1}]")
            shown = ",".join(map(str, args.stragglers))
            raise UsageError(f"`stragglers` must be {allowed}, got {shown!r}.")
    rows = latency_table(
        workers,
        args.stragglers,
        rate=rate,
        shift=shift,
        load_aware=args.load_aware,
        trials=trials,
        rng=args.rng,
    )
    uncoded = expected_kth_time(workers, workers, rate=rate, shift=shift)
    if args.json:
        print_json(
            {
                "workers": workers,
                "rate": rate,
                "shift": shift,
                "load_aware": args.load_aware,
                "uncoded_time": uncoded,
                "rows": rows,
            }
        )
        return 0
    model = "exponential" if shift == 0 else f"shifted exponential (t0 = {shift:g})"
    print(f"N = {workers} workers, {model} round times, rate mu = {rate:g}")
    print(f"uncoded (wait for all {workers}, load 1): expected time {uncoded:.4f}")
    header = f"{'s':>6} {'wait for':>9} {'load':>6} {'E[time]':>10} {'speedup':>8}"
    if trials:
        header += f" {'simulated':>10} {'+/- se':>8}"
    print(header)
    for r in rows:
        line = (
            f"{r['stragglers']:>6} {r['wait_for']:>9} {r['load']:>6g} {r['expected_time']:>10.4f} "
            f"{r['speedup']:>7.2f}x"
        )
        if trials:
            line += f" {r['simulated_time']:>10.4f} {r['simulated_standard_error']:>8.4f}"
        print(line)
    return 0


__all__ = [
    "STRAGGLERS_ALLOWED",
    "latency_arguments",
    "run_latency",
]
