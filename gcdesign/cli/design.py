"""``gcdesign design``, ``allocate`` and ``show``: a design, its bit allocation, a design file."""

from __future__ import annotations

from .args import (
    Number,
    UsageError,
    add_budget,
    add_json,
    add_profile_source,
    budget_args,
    load_profile_arg,
    quantization_args,
)
from .output import print_json, yes_no
from .paths import input_file, output_file


# ------------------------------------------------------------------- design
def design_arguments(p) -> None:
    from ..design import DEFAULT_ALLOCATOR
    from ..io import SUFFIXES

    add_profile_source(p)
    add_budget(p)
    p.add_argument(
        "--allocator",
        default=None,
        help=f"bit allocator (default: the example's, else {DEFAULT_ALLOCATOR}: the exact dp where it is "
        "cheap, certified beyond)",
    )
    p.add_argument("--construction", default="segment", help="segment (default) or hub")
    p.add_argument("--order", default="grouped", help="grouped (default) or index")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        type=output_file("output", suffixes=SUFFIXES),
        help="write the design (.json or .npz)",
    )
    add_json(p, "print the summary as JSON")


def run_design(args) -> int:
    from ..design import DEFAULT_ALLOCATOR, design
    from ..io import save_design

    profile, defaults = load_profile_arg(args)
    allocator = defaults.get("allocator", DEFAULT_ALLOCATOR) if args.allocator is None else args.allocator
    result = design(
        profile,
        **budget_args(args, defaults),
        allocator=allocator,
        construction=args.construction,
        order=args.order,
        kappa_c=args.kappa_c,
        b_min=args.b_min,
        b_max=args.b_max,
        allocator_options={"allow_idle": True} if args.allow_idle else None,
        **quantization_args(args, profile, defaults),
    )
    if args.output is not None:
        save_design(result, args.output)
    summary = result.summary()
    if args.output is not None:
        summary["output"] = str(args.output)
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary))
    return 0


def format_summary(s: dict) -> str:
    """The human-readable summary of a design."""
    allocator = str(s["options"].get("allocator"))
    ran = s.get("allocation")  # which allocator ran and whether it proved its bits optimal
    if ran:
        if ran["method"] != allocator:
            allocator += f" -> {ran['method']}"
        allocator += f" (optimal: {yes_no(ran['optimal'])})"
    lines = [
        f"workers N       {s['workers']}",
        f"partitions K    {s['partitions']}",
        f"dimension d     {s['dim']}",
        f"budget B        {s['budget']} bits ({s['bits_per_worker']:.3g} per worker)",
        f"quantization    {s['quantization']}, bucket size {s['bucket_size'] or 'none (one norm)'}"
        f"  (kappa {s['kappa']:.6g})",
        f"error bound     {s['bound']:.6g} x G^2",
        f"load            {s['load']:.4f} partitions/worker (nnz {s['nnz']} <= N+K-1 = "
        f"{s['workers'] + s['partitions'] - 1})",
        f"components      {s['components']}",
        f"allocator       {allocator}",
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
def allocate_arguments(p) -> None:
    from ..design import DEFAULT_ALLOCATOR

    add_profile_source(p)
    add_budget(p)
    p.add_argument(
        "--method",
        default=None,
        help=f"allocator (default {DEFAULT_ALLOCATOR}: the exact dp where it is cheap, certified beyond)",
    )
    p.add_argument(
        "--compare", action="store_true", help="run every allocator: objective, gap to the DP optimum, time"
    )
    p.add_argument(
        "--time-limit",
        type=Number("time-limit", low=0, low_open=True, allowed="a number > 0 seconds (finite)"),
        default=10.0,
        help="CP-SAT time limit in seconds (default 10)",
    )
    add_json(p, "print JSON")


def run_allocate(args) -> int:
    import numpy as np

    from ..allocation import ALLOCATORS, allocate_bits
    from ..design import DEFAULT_ALLOCATOR, resolve_budget

    profile, defaults = load_profile_arg(args)
    budget = resolve_budget(profile.n_workers, **budget_args(args, defaults))
    if args.compare and args.method is not None:
        raise UsageError("give either --method M or --compare, not both.")
    common = dict(
        kappa_c=args.kappa_c, b_min=args.b_min, b_max=args.b_max, **quantization_args(args, profile)
    )

    def options(method):
        opts = {"allow_idle": True} if args.allow_idle else {}
        if method == "cpsat":
            opts["time_limit"] = args.time_limit
        return opts

    def run(method):
        # warm-up on a two-worker copy: loads the numba kernels so the time is the solver's own
        if method != "cpsat":
            from ..profile import ClusterProfile

            tiny = ClusterProfile([0.1, 0.2], dim=profile.dim)
            spare = min(2 * args.b_min + 1, 2 * args.b_max)  # one bit to place: the kernels run
            allocate_bits(tiny, spare, method=method, **{**common, "quantization": 1.0, "bucket_size": None})
        return allocate_bits(profile, budget, method=method, options=options(method), **common)

    if not args.compare:
        result = run(DEFAULT_ALLOCATOR if args.method is None else args.method)
        values, counts = np.unique(result.bits, return_counts=True)
        record = {
            "method": result.method,
            "budget": budget,
            "objective": result.objective,
            "optimal": result.optimal,
            "kappa": result.kappa,
            "quantization": result.quantization.label,
            "wall_time": result.wall_time,
            "message": result.message,
            "bits_histogram": {int(v): int(c) for v, c in zip(values, counts, strict=True)},
            "bits": {name: int(b) for name, b in zip(profile.names, result.bits, strict=True)},
        }
        if args.json:
            print_json(record)
            return 0
        print(f"method      {result.method}")
        print(f"budget B    {budget} bits ({budget / profile.n_workers:.3g} per worker)")
        print(f"objective   {result.objective:.12g}  (higher is better; optimal: {yes_no(result.optimal)})")
        print(f"model       {result.quantization.label} (kappa {result.kappa:.6g})")
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
        print_json({"budget": budget, "workers": profile.n_workers, "kappa": kappa, "rows": rows})
        return 0
    print(
        f"N = {profile.n_workers}, B = {budget}, kappa = {kappa:.6g}; objective F = sum_i u_i(b_i), "
        "higher is better; gap = (F_dp - F) / F_dp; optimal: proven by the method"
    )
    print(f"{'method':<12} {'objective':>20} {'rel. gap':>10} {'time ms':>10}  optimal")
    for r in rows:
        print(
            f"{r['method']:<12} {r['objective']:>20.12g} {r['gap']:>10.2e} {r['time_ms']:>10.3f}  "
            f"{yes_no(r['optimal'])}"
        )
    return 0


# --------------------------------------------------------------------- show
def show_arguments(p) -> None:
    p.add_argument("file", metavar="FILE", type=input_file)
    add_json(p)


def run_show(args) -> int:
    from ..io import load_design

    summary = load_design(args.file).summary()
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary))
    return 0


__all__ = [
    "allocate_arguments",
    "design_arguments",
    "format_summary",
    "run_allocate",
    "run_design",
    "run_show",
    "show_arguments",
]
