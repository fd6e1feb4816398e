"""Command-line interface: ``gcdesign COMMAND ...`` (also ``python -m gcdesign``).

Results go to stdout (a table for people, ``--json`` for machines), progress
and warnings to stderr. Exit codes: 0 success, 2 bad input (one line naming
the field), 1 internal error.

Each subcommand is one ``_add_NAME(subparsers)`` function that registers its
parser and sets ``func``; :data:`COMMANDS` lists them in help order.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._validate import InputError


class UsageError(InputError):
    """Bad command-line usage (exit code 2)."""


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, allow_nan=False, default=_jsonable))


def _jsonable(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"`{name}` must be a number, got {text!r}.") from None


def _load_profile_arg(args):
    """The profile from --example or --profile, with the example's defaults."""
    from .profile import load_example, load_profile

    if (args.example is None) == (args.profile is None):
        raise UsageError("give exactly one of --example NAME and --profile FILE.")
    if args.example is not None:
        return load_example(args.example, with_defaults=True)
    return load_profile(args.profile), {}


def _budget_args(args, defaults: dict) -> dict:
    if args.budget is not None and args.bits_per_worker is not None:
        raise UsageError("give at most one of --budget and --bits-per-worker.")
    if args.budget is not None:
        budget = _number(args.budget, "budget")
        if not budget.is_integer():
            raise UsageError(f"`budget` must be an integer number of bits, got {args.budget!r}.")
        return {"budget": int(budget)}
    if args.bits_per_worker is not None:
        return {"bits_per_worker": _number(args.bits_per_worker, "bits-per-worker")}
    if "bits_per_worker" in defaults:
        return {"bits_per_worker": defaults["bits_per_worker"]}
    raise UsageError("give --budget B (total bits) or --bits-per-worker X.")


def _kappa_arg(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _add_profile_source(parser) -> None:
    src = parser.add_argument_group("cluster profile (one of)")
    src.add_argument("--example", metavar="NAME", help="a bundled example (see `gcdesign examples`)")
    src.add_argument("--profile", metavar="FILE", help="a profile JSON file")


def _add_budget(parser) -> None:
    parser.add_argument("--budget", metavar="B", help="total bits per coordinate over all workers")
    parser.add_argument("--bits-per-worker", metavar="X", help="average bits per worker (B = X N)")
    parser.add_argument(
        "--kappa",
        default="balanced",
        type=_kappa_arg,
        help="kappa policy: balanced (default), raw, none, or a number",
    )
    parser.add_argument("--kappa-c", type=float, default=1.0, help="c of the balanced policy")
    parser.add_argument("--b-min", type=int, default=2, help="fewest bits per worker (default 2)")
    parser.add_argument("--b-max", type=int, default=32, help="most bits per worker (default 32)")
    parser.add_argument(
        "--allow-idle", action="store_true", help="let a worker take 0 bits (no data, sends nothing)"
    )


# ------------------------------------------------------------------- design
def _add_design(sub) -> None:
    p = sub.add_parser("design", help="design the optimal code for a cluster and export it")
    _add_profile_source(p)
    _add_budget(p)
    p.add_argument(
        "--allocator", default=None, help="bit allocator (default: the example's or the package default)"
    )
    p.add_argument("--construction", default="segment", help="segment (default) or hub")
    p.add_argument("--order", default="grouped", help="grouped (default) or index")
    p.add_argument("-o", "--output", metavar="FILE", help="write the design (.json or .npz)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_design)


def _cmd_design(args) -> int:
    from .design import DEFAULT_ALLOCATOR, design
    from .io import _suffix, save_design

    if args.output is not None:
        _suffix(args.output)  # fail on a bad name before any work
    profile, defaults = _load_profile_arg(args)
    allocator = args.allocator or defaults.get("allocator", DEFAULT_ALLOCATOR)
    result = design(
        profile,
        **_budget_args(args, defaults),
        allocator=allocator,
        construction=args.construction,
        order=args.order,
        kappa=args.kappa,
        kappa_c=args.kappa_c,
        b_min=args.b_min,
        b_max=args.b_max,
        allocator_options={"allow_idle": True} if args.allow_idle else None,
    )
    if args.output is not None:
        save_design(result, args.output)
    summary = result.summary()
    if args.output is not None:
        summary["output"] = str(args.output)
    if args.json:
        _print_json(summary)
    else:
        print(format_summary(summary))
    return 0


def format_summary(s: dict) -> str:
    """The human-readable summary of a design."""
    lines = [
        f"workers N       {s['workers']}",
        f"partitions K    {s['partitions']}",
        f"dimension d     {s['dim']}",
        f"budget B        {s['budget']} bits ({s['bits_per_worker']:.3g} per worker)",
        f"kappa           {s['kappa']:.6g}  ({s['options'].get('kappa_policy')})",
        f"error bound     {s['bound']:.6g} x G^2",
        f"load            {s['load']:.4f} partitions/worker (nnz {s['nnz']} <= N+K-1 = "
        f"{s['workers'] + s['partitions'] - 1})",
        f"components      {s['components']}",
        f"allocator       {s['options'].get('allocator')}",
        "bits histogram",
    ]
    hist = s["bits_histogram"]
    top = max(hist.values())
    for b, count in sorted(hist.items()):
        bar = "#" * max(1, round(40 * count / top))
        lines.append(f"  {b:>3} bits  {count:>6}  {bar}")
    for title, key in (("most reliable", "most_reliable"), ("least reliable", "least_reliable")):
        lines.append(title)
        for w in s[key]:
            lines.append(f"  {w['worker']:<12} p={w['p']:.4f}  bits={w['bits']:<3} mass={w['mass']:.4f}")
    if "output" in s:
        lines.append(f"written to      {s['output']}")
    return "\n".join(lines)


# ----------------------------------------------------------------- allocate
def _add_allocate(sub) -> None:
    p = sub.add_parser("allocate", help="choose bits per worker; --compare runs every allocator")
    _add_profile_source(p)
    _add_budget(p)
    p.add_argument("--method", default=None, help="allocator (default: the package default, heuristic)")
    p.add_argument(
        "--compare", action="store_true", help="run every allocator: objective, gap to the DP optimum, time"
    )
    p.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT time limit in seconds (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_allocate)


def _cmd_allocate(args) -> int:
    import numpy as np

    from .allocation import ALLOCATORS, allocate_bits
    from .design import DEFAULT_ALLOCATOR, resolve_budget

    profile, defaults = _load_profile_arg(args)
    budget = resolve_budget(profile.n_workers, **_budget_args(args, defaults))
    if not args.time_limit > 0:
        raise UsageError(f"`time-limit` must be a number > 0 seconds, got {args.time_limit!r}.")
    if args.compare and args.method is not None:
        raise UsageError("give either --method M or --compare, not both.")
    common = dict(kappa=args.kappa, kappa_c=args.kappa_c, b_min=args.b_min, b_max=args.b_max)

    def options(method):
        opts = {"allow_idle": True} if args.allow_idle else {}
        if method == "cpsat":
            opts["time_limit"] = args.time_limit
        return opts

    def run(method):
        # warm-up on a two-worker copy: loads the numba kernels so the time is the solver's own
        if method != "cpsat":
            from .profile import ClusterProfile

            tiny = ClusterProfile([0.1, 0.2], dim=profile.dim)
            allocate_bits(tiny, 2 * args.b_min, method=method, **{**common, "kappa": 1.0})
        return allocate_bits(profile, budget, method=method, options=options(method), **common)

    if not args.compare:
        result = run(args.method or DEFAULT_ALLOCATOR)
        values, counts = np.unique(result.bits, return_counts=True)
        record = {
            "method": result.method,
            "budget": budget,
            "objective": result.objective,
            "optimal": result.optimal,
            "kappa": result.kappa,
            "wall_time": result.wall_time,
            "message": result.message,
            "bits_histogram": {int(v): int(c) for v, c in zip(values, counts, strict=True)},
            "bits": {name: int(b) for name, b in zip(profile.names, result.bits, strict=True)},
        }
        if args.json:
            _print_json(record)
            return 0
        print(f"method      {result.method}")
        print(f"budget B    {budget} bits ({budget / profile.n_workers:.3g} per worker)")
        print(f"objective   {result.objective:.12g}  (optimal: {result.optimal})")
        print(f"kappa       {result.kappa:.6g}")
        print(f"time        {1e3 * result.wall_time:.3f} ms")
        print(f"message     {result.message}")
        print("bits histogram")
        for b, count in record["bits_histogram"].items():
            print(f"  {b:>3} bits  {count:>6}")
        return 0

    methods = ["dp"] + sorted(m for m in ALLOCATORS if m != "dp")
    results = {m: run(m) for m in methods}
    best = results["dp"].objective
    rows = [
        {
            "method": m,
            "objective": r.objective,
            "gap": (best - r.objective) / abs(best) if best else 0.0,
            "time_ms": 1e3 * r.wall_time,
            "optimal": r.optimal,
            "message": r.message,
        }
        for m, r in results.items()
    ]
    kappa = results["dp"].kappa
    if args.json:
        _print_json({"budget": budget, "workers": profile.n_workers, "kappa": kappa, "rows": rows})
        return 0
    print(f"N = {profile.n_workers}, B = {budget}, kappa = {kappa:.6g}; gap = (F_dp - F) / F_dp")
    print(f"{'method':<12} {'objective':>20} {'rel. gap':>10} {'time ms':>10}  optimal")
    for r in rows:
        print(
            f"{r['method']:<12} {r['objective']:>20.12g} {r['gap']:>10.2e} {r['time_ms']:>10.3f}  "
            f"{r['optimal']}"
        )
    return 0


# ----------------------------------------------------------------- examples
def _add_examples(sub) -> None:
    p = sub.add_parser("examples", help="list the bundled example profiles")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_examples)


def _cmd_examples(args) -> int:
    from .profile import list_examples, load_example

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
        _print_json(rows)
    else:
        for r in rows:
            print(
                f"{r['name']:<12} N={r['workers']:<4} K={r['partitions']:<4} d={r['dim']:<8} "
                f"{r['description']}"
            )
    return 0


# ------------------------------------------------------------------ profile
def _add_profile(sub) -> None:
    p = sub.add_parser("profile", help="estimate a profile from observed round times (CSV)")
    p.add_argument(
        "--traces",
        required=True,
        metavar="FILE",
        help="CSV: long (worker,round,time) or wide (one column per worker)",
    )
    p.add_argument("--deadline", required=True, type=float, help="round deadline tau")
    p.add_argument("--dim", required=True, type=int, help="model dimension d")
    p.add_argument("--partitions", type=int, default=None, help="K (default N)")
    p.add_argument("--smoothing", type=float, default=1.0, help="additive smoothing (default 1)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the profile JSON here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_profile)


def _cmd_profile(args) -> int:
    from .profile import ClusterProfile, save_profile

    prof = ClusterProfile.from_traces(
        args.traces,
        deadline=args.deadline,
        dim=args.dim,
        partitions=args.partitions,
        smoothing=args.smoothing,
    )
    if args.output:
        save_profile(prof, args.output)
    if args.json:
        _print_json(prof.to_dict())
    else:
        print(f"workers N {prof.n_workers}, partitions K {prof.partitions}, dim {prof.dim}")
        for name, p in zip(prof.names, prof.straggler_probs, strict=True):
            print(f"  {name:<16} p={p:.4f}")
        if args.output:
            print(f"written to {args.output}")
    return 0


# --------------------------------------------------------------------- show
def _add_show(sub) -> None:
    p = sub.add_parser("show", help="validate a design file and print its summary")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_show)


def _cmd_show(args) -> int:
    from .io import load_design

    summary = load_design(args.file).summary()
    if args.json:
        _print_json(summary)
    else:
        print(format_summary(summary))
    return 0


COMMANDS = [_add_design, _add_allocate, _add_examples, _add_profile, _add_show]


# ------------------------------------------------------------------ latency
def _add_latency(sub) -> None:
    p = sub.add_parser("latency", help="expected round time and speedup of s-straggler tolerance")
    p.add_argument("--workers", required=True, metavar="N", help="number of workers N")
    p.add_argument("--rate", required=True, metavar="MU", help="exponential rate mu of a round time")
    p.add_argument(
        "--stragglers", required=True, metavar="S", help="tolerance s, or a comma-separated list like 0,10,20"
    )
    p.add_argument("--shift", default="0", metavar="T0", help="shift t0 of a shifted exponential (default 0)")
    p.add_argument(
        "--load-aware", action="store_true", help="a code tolerating s stragglers runs at load s + 1"
    )
    p.add_argument("--trials", default="0", metavar="T", help="also simulate T rounds per row (default 0)")
    p.add_argument("--rng", default=None, metavar="SEED", help="seed of the simulation")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_latency)


def _integer(text: str, name: str, allowed: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise UsageError(f"`{name}` must be {allowed}, got {text!r}.") from None


def _cmd_latency(args) -> int:
    import math

    from .latency import expected_kth_time, latency_table

    workers = _int_arg(args.workers, "workers", 1)
    rate = _number(args.rate, "rate")
    if not (math.isfinite(rate) and rate > 0):
        raise UsageError(f"`rate` must be a finite number > 0, got {args.rate!r}.")
    shift = _number(args.shift, "shift")
    if not (math.isfinite(shift) and shift >= 0):
        raise UsageError(f"`shift` must be a finite number >= 0, got {args.shift!r}.")
    allowed = f"integers in [0, N - 1] = [0, {workers - 1}] separated by commas"
    stragglers = [_integer(part, "stragglers", allowed) for part in args.stragglers.split(",")]
    for s in stragglers:
        if not 0 <= s < workers:
            raise UsageError(f"`stragglers` must be {allowed}, got {args.stragglers!r}.")
    trials = _integer(args.trials, "trials", "an integer >= 0")
    if trials < 0 or trials == 1:
        raise UsageError(f"`trials` must be 0 or an integer >= 2, got {trials}.")
    seed = None if args.rng is None else _integer(args.rng, "rng", "an integer seed >= 0")
    if seed is not None and seed < 0:
        raise UsageError(f"`rng` must be an integer seed >= 0, got {seed}.")
    rows = latency_table(
        workers, stragglers, rate=rate, shift=shift, load_aware=args.load_aware, trials=trials, rng=seed
    )
    uncoded = expected_kth_time(workers, workers, rate=rate, shift=shift)
    if args.json:
        _print_json(
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
            line += f" {r['simulated_time']:>10.4f} {r['simulated_stderr']:>8.4f}"
        print(line)
    return 0


COMMANDS.append(_add_latency)


# -------------------------------------------------------------------- study
def _add_study(sub) -> None:
    from .studies import STUDIES

    names = ", ".join(STUDIES)
    p = sub.add_parser(
        "study",
        help="run a reproducible study (figures, CSV, summary)",
        description=f"Run a study and write its PNG figures, CSV and markdown summary. Studies: {names}.",
    )
    p.add_argument("name", metavar="NAME", help=f"one of: {names}")
    p.add_argument("--out", metavar="DIR", help="output directory (default ./gcdesign-studies/NAME)")
    p.add_argument("--quick", action="store_true", help="the small version (under two minutes)")
    p.add_argument("--rng", type=int, default=0, metavar="SEED", help="seed of the study (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        default="-1",
        metavar="N",
        help="processes (spawn) running the study's independent runs; -1: every core (default), 1: serial",
    )
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on the dask.distributed cluster at ADDRESS (tcp://host:8786)"
    )
    p.set_defaults(func=_cmd_study)


def _cmd_study(args) -> int:
    from .studies import STUDIES, run_study

    if args.name not in STUDIES:
        raise UsageError(f"Unknown study {args.name!r}; choose one of: {', '.join(STUDIES)}.")
    workers = None
    if args.scheduler is None:
        try:
            workers = int(args.workers)
        except ValueError:
            workers = 0
        if not (workers == -1 or workers >= 1):
            raise UsageError(f"`workers` must be an integer >= 1 or -1 (every core), got {args.workers!r}.")
    result = run_study(
        args.name,
        args.out,
        quick=args.quick,
        rng=args.rng,
        progress=not args.no_progress,
        workers=workers,
        scheduler=args.scheduler,
    )
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"study {args.name}: {result.seconds:.1f} s, wrote")
    for path in result.files:
        print(f"  {path}")
    return 0


COMMANDS.append(_add_study)


# ----------------------------------------------------------------- evaluate
def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="exact and Monte-Carlo error of a design (and of baselines at the same budget)",
        description="Exact expected error and a Monte-Carlo estimate on synthetic gradients of "
        "dimension --dim, for the design in FILE and optionally for baseline schemes.",
    )
    p.add_argument("file", metavar="FILE", help="a design (.json or .npz)")
    p.add_argument("--trials", default="2000", metavar="T", help="Monte-Carlo rounds (default 2000)")
    p.add_argument("--dim", default="1000", metavar="d", help="dimension of the gradients (default 1000)")
    p.add_argument("--rng", default="0", metavar="S", help="seed (default 0)")
    p.add_argument("--compare", default=None, metavar="SCHEMES", help="scheme names (a,b,...) or 'all'")
    p.add_argument("--replication", default="2", metavar="R", help="baselines' replication (default 2)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=_cmd_evaluate)


def _int_arg(text: str, name: str, minimum: int) -> int:
    from ._validate import positive_int

    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"`{name}` must be an integer >= {minimum}, got {text!r}.") from None
    return positive_int(name, value, minimum=minimum)


def _cmd_evaluate(args) -> int:
    from .evaluation import EvaluationError, expected_error, synthetic_gradients
    from .io import load_design
    from .montecarlo import monte_carlo_error
    from .schemes import SCHEMES, make_scheme

    trials = _int_arg(args.trials, "trials", 2)
    dim = _int_arg(args.dim, "dim", 1)
    seed = _int_arg(args.rng, "rng", 0)
    replication = _int_arg(args.replication, "replication", 1)
    names: list[str] = []
    if args.compare is not None:
        if args.compare.strip() == "all":
            names = [n for n in sorted(SCHEMES) if n != "joint"]
        else:
            names = [n.strip() for n in args.compare.split(",") if n.strip()]
            if not names:
                raise UsageError("`compare` must list scheme names separated by commas, or be 'all'.")
            for n in names:
                if n not in SCHEMES:
                    valid = ", ".join(sorted(SCHEMES))
                    raise UsageError(f"Unknown scheme {n!r} in `compare`; choose from: {valid}.")
    result = load_design(args.file)
    profile = result.profile
    grads = synthetic_gradients(profile.partitions, dim, rng=seed)
    schemes = [("design", result)]
    for n in names:
        try:
            schemes.append((n, make_scheme(n, profile, result.budget, rng=seed, replication=replication)))
        except InputError as exc:
            if args.compare.strip() != "all":
                raise
            print(f"note: skipped {n}: {exc}", file=sys.stderr)
    if dim != profile.dim:
        print(
            f"note: gradients of dimension {dim} (the profile says {profile.dim}); the quantization "
            "error is evaluated at this dimension.",
            file=sys.stderr,
        )
    rows = []
    for label, scheme in schemes:
        try:
            exact = expected_error(scheme, grads)
        except EvaluationError:
            exact = None
        mc = monte_carlo_error(scheme, grads, trials=trials, rng=seed)
        rows.append(
            {
                "scheme": label,
                "bits": int(scheme.bits.sum()),
                "exact_error": None if exact is None else exact.error,
                "exact_relative_error": None if exact is None else exact.relative_error,
                "unbiased": None if exact is None else exact.unbiased,
                "bound": None if exact is None else exact.bound,
                "mc_error": mc.mean,
                "mc_standard_error": mc.standard_error,
                "mc_relative_error": mc.relative_error,
                "mc_relative_standard_error": mc.relative_standard_error,
                "bias": mc.bias,
                "bias_bound": mc.bias_bound,
                "biased": mc.biased,
            }
        )
    if args.json:
        _print_json(
            {
                "file": str(args.file),
                "workers": profile.n_workers,
                "partitions": profile.partitions,
                "budget": result.budget,
                "dim": dim,
                "trials": trials,
                "rng": seed,
                "rows": rows,
            }
        )
        return 0
    print(
        f"{args.file}: N = {profile.n_workers}, K = {profile.partitions}, budget {result.budget} bits; "
        f"synthetic gradients d = {dim} (seed {seed}), {trials} Monte-Carlo rounds"
    )
    print("scheme         exact rel. err  MC rel. err      +- SE       bias bias bound  biased")
    for r in rows:
        exact = "n/a" if r["exact_relative_error"] is None else f"{r['exact_relative_error']:.5g}"
        print(
            f"{r['scheme']:<14} {exact:>14} {r['mc_relative_error']:>12.5g} "
            f"{r['mc_relative_standard_error']:>10.2g} {r['bias']:>10.3g} {r['bias_bound']:>10.3g}  "
            f"{'yes' if r['biased'] else 'no'}"
        )
    if any(r["exact_relative_error"] is None for r in rows):
        print("n/a: arrival-dependent decoder with too many arrival patterns for the exact value (MC only)")
    return 0


COMMANDS.append(_add_evaluate)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        self.exit(2, f"gcdesign: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gcdesign",
        description="Design unbiased, quantized gradient codes for heterogeneous clusters.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"gcdesign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"gcdesign: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("gcdesign: interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
