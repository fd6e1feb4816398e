"""Runtime message codec at the paper's model size: encode and decode-accumulate against a copy.

Setting: d = 2,542,856 (MobileNetV3-Small), one worker sending its gradient (a one-partition
scheme, coefficient 1), b in {2, 4, 9} with one norm, b = 4 with buckets of 512, and the
sign (b = 1) and unquantized (float32) messages. One thread (``NUMBA_NUM_THREADS=1``).

For each case, the median over --repeats runs (after a warm-up that compiles the kernels) of

* ``copy``: ``x.copy()`` of the same float64 array (8 d bytes read and written);
* ``encode``: ``runtime.encode(scheme, 0, g, rng=seed).to_bytes()``, end to end (forming
  ``x_i``, bucket norms, stochastic rounding, bit packing, the bytes on the wire);
* ``decode``: ``runtime.decode(scheme, [wire], out=estimate)``, end to end (parsing and
  checking the bytes, unpacking, scaling and accumulating into the float64 estimate);
* ``enc kernel`` / ``dec kernel``: the numba part alone (``_codec_kernels.encode_message`` /
  ``accumulate_message``);

each as wall-clock and as CPU time of the thread (``time.thread_time``; on a shared machine
the wall clock also counts the time other jobs hold the core). Ratios are to the copy of the
same clock. The goals (issue 12): encode <= 10x and decode-accumulate <= 4x the copy.

    NUMBA_NUM_THREADS=1 python studies/bench_codec.py [--dim 2542856] [--repeats 7] [--quick]

The same script runs against the version-1 runtime (only the public API is used; the
kernel columns and the bucketed row are skipped there): put that checkout on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from gcdesign import runtime  # noqa: E402
from gcdesign.schemes import Scheme  # noqa: E402

DIM = 2_542_856
CASES = [
    (2, "stochastic", None),
    (4, "stochastic", None),
    (9, "stochastic", None),
    (4, "stochastic", 512),
    (1, "sign", None),
    (32, "none", None),
]


def one_worker(bits: int, quantizer: str, bucket_size) -> Scheme:
    return Scheme(
        name="bench",
        encoding=sp.eye_array(1, format="csr"),
        bits=np.array([bits]),
        straggler_probs=np.zeros(1),
        decoding=np.ones(1),
        quantizer=quantizer,
        bucket_size=bucket_size,
    )


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median wall seconds, median thread CPU seconds) over `repeats` calls after one warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - w)
    return float(np.median(wall)), float(np.median(cpu))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=DIM)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="d = 100,000 and 5 repeats")
    args = parser.parse_args(argv)
    dim, repeats = (100_000, 5) if args.quick else (args.dim, max(args.repeats, 5))
    v2 = getattr(runtime, "WIRE_VERSION", 1) >= 2
    kernels = None
    if v2:
        from gcdesign import _codec_kernels as kernels
    g = np.random.default_rng(0).standard_normal((1, dim))
    x = g[0]
    estimate = np.zeros(dim)
    copy = timed(x.copy, repeats)
    load = os.getloadavg()
    print(
        f"d = {dim:,}, {repeats} repeats (medians), NUMBA_NUM_THREADS = {os.environ['NUMBA_NUM_THREADS']}, "
        f"wire version {getattr(runtime, 'WIRE_VERSION', 1)}; load average {load[0]:.1f} {load[1]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    print(
        f"copy of the float64 array ({8 * dim / 1e6:.1f} MB): wall {copy[0] * 1e3:.2f} ms, "
        f"cpu {copy[1] * 1e3:.2f} ms"
    )
    head = (
        f"{'quantizer':<11}{'b':>3}{'beta':>6}{'wire MB':>9}{'vs f64':>8} | "
        f"{'encode ms':>10}{'x copy':>7}{'cpu x':>7}{'kernel x':>9} | "
        f"{'decode ms':>10}{'x copy':>7}{'cpu x':>7}{'kernel x':>9}"
    )
    print(head)
    print("-" * len(head))
    for bits, quantizer, beta in CASES:
        if beta is not None and not v2:
            continue
        scheme = one_worker(bits, quantizer, beta)
        seed = [bits, 1]
        wire = runtime.encode(scheme, 0, g, rng=seed).to_bytes()

        def encode(scheme=scheme, seed=seed):
            return runtime.encode(scheme, 0, g, rng=seed).to_bytes()

        def decode(scheme=scheme, wire=wire):
            return runtime.decode(scheme, [wire], out=estimate) if v2 else runtime.decode(scheme, [wire])

        enc, dec = timed(encode, repeats), timed(decode, repeats)
        enc_k = dec_k = (float("nan"), float("nan"))
        if v2 and quantizer != "none":
            msg = runtime.Message.from_bytes(wire)
            args = (bits, kernels.quantizer_spec(quantizer).code, dim if beta is None else min(beta, dim))

            def encode_kernel(args=args):
                return kernels.encode_message(x, *args, 7)

            def decode_kernel(args=args, msg=msg):
                return kernels.accumulate_message(msg.payload, *args, msg.norms, 0.5, estimate)

            enc_k, dec_k = timed(encode_kernel, repeats), timed(decode_kernel, repeats)
        size = f"{len(wire) / 1e6:>9.3f}{len(wire) / (8 * dim):>8.3f}"
        row = f"{quantizer:<11}{bits:>3}{beta or '-':>6}{size} | "
        for (wall, cpu), (_, kernel) in ((enc, enc_k), (dec, dec_k)):
            ratios = f"{wall / copy[0]:>7.1f}{cpu / copy[1]:>7.1f}{kernel / copy[1]:>9.1f}"
            row += f"{wall * 1e3:>10.2f}{ratios} | "
        print(row.rstrip(" |"))
    print("x copy: wall-clock ratio; cpu x: thread-CPU ratio; kernel x: numba part alone (thread CPU).")
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
