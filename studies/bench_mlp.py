"""Per-round cost of the training harness on the MLP problem, with and without quantization.

Setting: the digits MLP (one ReLU hidden layer, width from ``mlp_width`` for the target d),
N = K = 50 workers with the paper's profile, mini-batch SGD (8 samples per partition).
"quantized": the joint design at B/N = 3 (stochastic quantizer); "unquantized": the same
encoding and decoder sending float32 coordinates (quantizer "none"). A round of ``train``
is: arrivals, the K partition gradients (one forward/backward pass), encoding, quantization,
decoding, the SGD step, and the record (loss and gradient on the 1438 training images,
accuracy on the 359 held-out ones).

    python studies/bench_mlp.py [--dims 100000,1000000] [--rounds 5] [--repeats 3] [--out DIR]

ms per round = (time of a run of 2R rounds - time of a run of R rounds) / R (set-up and
the initial record cancel), median over the repeats; ``T(2R)/2R`` keeps the set-up and the
initial record in (an upper bound, steadier on a busy machine); the components are medians
of the public calls that make up a round ("quantize" quantizes all N rows; a round
quantizes only the messages that arrived, about N (1 - mean p)).
``train`` computes on one BLAS thread (the same history on any thread count), and so
do the components here. Timings on a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from gcdesign import design
from gcdesign.parallel import single_blas_thread
from gcdesign.profile import paper_profile
from gcdesign.quantization import quantize_rows
from gcdesign.schemes import Scheme
from gcdesign.studies._common import markdown_table, write_csv
from gcdesign.training import digits_mlp_problem, sgd, train

N_WORKERS = 50
BITS_PER_WORKER = 3
BATCH = 8


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def bench(dim: int, rounds: int, repeats: int) -> list[dict]:
    problem = digits_mlp_problem(dim=dim, partitions=N_WORKERS, rng=0)
    profile = paper_profile(N_WORKERS, dim=problem.dim)
    joint = design(profile, BITS_PER_WORKER * N_WORKERS)
    floats = Scheme(
        "joint-float",
        joint.encoding,
        np.where(joint.bits > 0, 32, 0),
        joint.straggler_probs,
        decoding=joint.decoding,
        quantizer="none",
    )
    opt = sgd(0.1, batch_size=BATCH)
    theta = problem.initial_point()
    grads = problem.partition_gradients(theta, batch_size=BATCH, rng=0)
    enc = joint.encoding.toarray()

    def gradients():
        return problem.partition_gradients(theta, batch_size=BATCH, rng=1)

    def record():
        return problem.loss_and_gradient(theta), problem.test_accuracy(theta)

    common = {
        "gradients_ms": _median_ms(gradients, repeats),
        "encode_ms": _median_ms(lambda: enc @ grads, repeats),
        "record_ms": _median_ms(record, repeats),
    }
    coded = enc @ grads
    rows = []
    for label, scheme in (("quantized", joint), ("unquantized", floats)):
        per_round, whole = [], []
        for rep in range(repeats):
            t0 = time.perf_counter()
            train(problem, scheme, rounds=rounds, optimizer=opt, rng=rep)
            t1 = time.perf_counter()
            train(problem, scheme, rounds=2 * rounds, optimizer=opt, rng=rep)
            t2 = time.perf_counter()
            per_round.append(((t2 - t1) - (t1 - t0)) / rounds)
            whole.append((t2 - t1) / (2 * rounds))
        quantize_ms = _median_ms(
            lambda s=scheme: quantize_rows(coded, s.bits, quantizer=s.quantizer, rng=2), repeats
        )
        rows.append(
            {
                "dim": problem.dim,
                "hidden": problem.layer_sizes[1],
                "scheme": label,
                "ms_per_round": 1e3 * float(np.median(per_round)),
                "ms_per_round_min": 1e3 * float(np.min(per_round)),
                "ms_per_round_with_setup": 1e3 * float(np.median(whole)),
                **common,
                "quantize_ms": quantize_ms,
                "partition_gradients_mb": grads.nbytes / 2**20,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="100000,1000000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, BLAS: one thread (as in train)")
    rows = []
    with single_blas_thread():  # train computes on one BLAS thread; time its parts the same way
        for dim in (int(d) for d in args.dims.split(",")):
            rows += bench(dim, args.rounds, args.repeats)
    header = ["d", "hidden", "scheme", "ms/round (median)", "min", "T(2R)/2R"]
    header += ["gradients", "encode", "quantize (all N rows)", "record"]
    print(
        markdown_table(
            header,
            [
                [r["dim"], r["hidden"], r["scheme"]]
                + [
                    f"{r[k]:.0f}"
                    for k in (
                        "ms_per_round",
                        "ms_per_round_min",
                        "ms_per_round_with_setup",
                        "gradients_ms",
                        "encode_ms",
                        "quantize_ms",
                        "record_ms",
                    )
                ]
                for r in rows
            ],
        )
    )
    for dim in sorted({r["dim"] for r in rows}):
        q, f = (
            next(r for r in rows if r["dim"] == dim and r["scheme"] == s)
            for s in ("quantized", "unquantized")
        )
        print(
            f"d = {dim}: quantization adds {q['ms_per_round'] - f['ms_per_round']:.0f} ms a round "
            f"({q['ms_per_round'] / f['ms_per_round']:.2f}x)"
        )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        print("wrote", write_csv(args.out / "bench_mlp.csv", rows))


if __name__ == "__main__":
    main()
