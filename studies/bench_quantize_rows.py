"""The training harness's quantizer: the codec's numba kernel against the numpy reference, same rows.

    python studies/bench_quantize_rows.py [--dims 2000,100000] [--rows 50] [--repeats 15] [--out DIR]

For each case, N rows of d normal coordinates (the coded messages of one round of the MLP
studies: N = 50, d = 2,000 quick, about 100,000 full) are quantized by
:func:`gcdesign.quantization.quantize_rows` (numpy, the reference) and by
:func:`gcdesign._codec_kernels.quantize_rows_numba` (what ``train`` calls), both with
``rng=seed``, so both draw the same uniforms (``rng.random((N, d))``, included in both
times). The two are timed alternately, `--repeats` times each after a warm-up that compiles
the kernel; the table shows the median ms of each and the median of the per-repeat ratios
numpy / numba. Every pair of outputs is checked bit for bit first. One BLAS thread, as in
``train``. Timings on a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from gcdesign._codec_kernels import quantize_rows_numba
from gcdesign.parallel import single_blas_thread
from gcdesign.quantization import quantize_rows
from gcdesign.studies._common import markdown_table, write_csv

CASES = (  # (label, quantizer, bits per row, bucket size)
    ("stochastic b=3", "stochastic", 3, None),
    ("stochastic b=8, buckets of 512", "stochastic", 8, 512),
    ("sign", "sign", 1, None),
)


def bench(dim: int, n_rows: int, repeats: int) -> list[dict]:
    x = np.random.default_rng(0).normal(size=(n_rows, dim))
    rows = []
    for label, quantizer, bits, bucket in CASES:
        b = np.full(n_rows, bits)

        def reference(seed, b=b, quantizer=quantizer, bucket=bucket):
            return quantize_rows(x, b, quantizer=quantizer, bucket_size=bucket, rng=seed)

        def kernel(seed, b=b, quantizer=quantizer, bucket=bucket):
            return quantize_rows_numba(x, b, quantizer=quantizer, bucket_size=bucket, rng=seed)

        if reference(1).tobytes() != kernel(1).tobytes():  # also the warm-up (compiles the kernel)
            raise AssertionError(f"{label}, d = {dim}: the kernel differs from the reference")
        t_ref, t_numba = [], []
        for rep in range(repeats):
            for fn, times in ((reference, t_ref), (kernel, t_numba)):
                t0 = time.perf_counter()
                fn(rep)
                times.append(time.perf_counter() - t0)
        ratios = np.array(t_ref) / np.array(t_numba)
        rows.append(
            {
                "dim": dim,
                "rows": n_rows,
                "case": label,
                "numpy_ms": 1e3 * float(np.median(t_ref)),
                "numba_ms": 1e3 * float(np.median(t_numba)),
                "ratio_median": float(np.median(ratios)),
                "ratio_min": float(ratios.min()),
                "ratio_max": float(ratios.max()),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="2000,100000")
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, BLAS: one thread (as in train)")
    rows = []
    with single_blas_thread():
        for dim in (int(d) for d in args.dims.split(",")):
            rows += bench(dim, args.rows, args.repeats)
    print(f"load after {os.getloadavg()[0]:.1f}")
    header = ["d", "N", "case", "numpy ms", "numba ms", "numpy / numba (median)", "min", "max"]
    print(
        markdown_table(
            header,
            [
                [r["dim"], r["rows"], r["case"], f"{r['numpy_ms']:.2f}", f"{r['numba_ms']:.2f}"]
                + [f"{r['ratio_median']:.2f}", f"{r['ratio_min']:.2f}", f"{r['ratio_max']:.2f}"]
                for r in rows
            ],
        )
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        print(write_csv(args.out / "bench_quantize_rows.csv", rows))


if __name__ == "__main__":
    main()
