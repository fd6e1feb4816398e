"""``gcdesign evaluate``: exact and Monte-Carlo error of a design, optionally against baselines."""

from __future__ import annotations

import sys

from .._validate import InputError
from .args import SEED, Number, add_json, count, name_list
from .output import print_json, yes_no
from .paths import input_file

BIAS_NOTE = (
    "bias: ||mean decoded gradient - g|| over the MC rounds; bias bound: an unbiased scheme stays "
    "below it with probability 1 - 1e-3; biased: E[decoded] != g by the exact check "
    "(where exact is n/a: bias > bias bound, marked MC)"
)


def evaluate_arguments(p) -> None:
    p.description = (
        "Exact expected error and a Monte-Carlo estimate on synthetic gradients of "
        "dimension --dim, for the design in FILE and optionally for baseline schemes."
    )
    p.add_argument("file", metavar="FILE", type=input_file, help="a design (.json or .npz)")
    p.add_argument(
        "--trials",
        default=2000,
        metavar="T",
        type=count("trials", 2),
        help="Monte-Carlo rounds (default 2000)",
    )
    p.add_argument(
        "--dim",
        default=1000,
        metavar="d",
        type=count("dim", 1),
        help="dimension of the gradients (default 1000)",
    )
    p.add_argument("--rng", default=0, metavar="S", type=SEED, help="seed (default 0)")
    p.add_argument("--compare", default=None, metavar="SCHEMES", help="scheme names (a,b,...) or 'all'")
    p.add_argument(
        "--replication",
        default=2,
        metavar="R",
        type=Number("replication", integer=True, low=1),
        help="baselines' replication (default 2)",
    )
    add_json(p, "print the rows as JSON")


def _biased(row: dict) -> str:
    """The exact verdict where there is one, else the Monte-Carlo test's, marked (MC)."""
    if row["unbiased"] is not None:
        return yes_no(not row["unbiased"])
    return f"{yes_no(row['biased'])} (MC)"


def _error(row) -> float:
    """The row's mean squared error: exact where known, else the Monte-Carlo mean."""
    return (
        row["exact_relative_error"] if row["exact_relative_error"] is not None else row["mc_relative_error"]
    )


def _is_biased(row) -> bool:
    return row["unbiased"] is False if row["unbiased"] is not None else bool(row["biased"])


def _ranking_line(rows) -> str:
    """Rows sorted by error: who is lowest among the unbiased, and which biased ones beat it."""
    unbiased = [r for r in rows if not _is_biased(r)]
    if not unbiased:
        return "ranking: every scheme here is biased."
    best = unbiased[0]
    ahead = [r["scheme"] for r in rows if _is_biased(r) and _error(r) < _error(best)]
    line = f"lowest error among the unbiased schemes: {best['scheme']}"
    if ahead:
        line += f"; lower mean squared error but biased (E[ghat] != g, so SGD drifts): {', '.join(ahead)}"
    return line + " (rows sorted by error, lowest first)."


def run_evaluate(args) -> int:
    from ..evaluation import EvaluationError, expected_error, synthetic_gradients
    from ..io import load_design
    from ..montecarlo import monte_carlo_error
    from ..schemes import SCHEMES, make_scheme, with_bucket_size

    trials, dim, seed = args.trials, args.dim, args.rng
    every = args.compare is not None and args.compare.strip() == "all"
    names: list[str] = []
    if args.compare is not None:
        names = name_list(args.compare, "compare", "scheme", SCHEMES, skip=("joint",))
    result = load_design(args.file)
    profile = result.profile
    grads = synthetic_gradients(profile.partitions, dim, rng=seed)
    schemes = [("design", result)]
    for n in names:
        try:
            scheme = make_scheme(n, profile, result.budget, rng=seed, replication=args.replication)
            schemes.append((n, with_bucket_size(scheme, result.bucket_size)))
        except InputError as exc:
            if not every:
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
        print_json(
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
        f"synthetic gradients d = {dim} (seed {seed}), {trials} Monte-Carlo rounds; every stochastic "
        f"quantizer in buckets of {result.bucket_size or 'd (one norm)'}, as the design's"
    )
    rows = sorted(rows, key=_error)
    print("scheme         exact rel. err  MC rel. err      +- SE       bias bias bound  biased")
    for r in rows:
        exact = "n/a" if r["exact_relative_error"] is None else f"{r['exact_relative_error']:.5g}"
        print(
            f"{r['scheme']:<14} {exact:>14} {r['mc_relative_error']:>12.5g} "
            f"{r['mc_relative_standard_error']:>10.2g} {r['bias']:>10.3g} {r['bias_bound']:>10.3g}  "
            f"{_biased(r)}"
        )
    print(BIAS_NOTE)
    if len(rows) > 1:
        print(_ranking_line(rows))
    if any(r["exact_relative_error"] is None for r in rows):
        print("n/a: arrival-dependent decoder with too many arrival patterns for the exact value (MC only)")
    return 0


__all__ = [
    "BIAS_NOTE",
    "evaluate_arguments",
    "run_evaluate",
]
