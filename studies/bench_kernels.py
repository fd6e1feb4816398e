"""Kernels against their limits: the exact DP and the Monte-Carlo estimator, each beside its
counterpart in the same process.

* **DP** (``gcdesign.allocation._kernels.dp_forward``) at N workers, B = 4N, bits in [2, 32],
  against a *bare max-plus loop* written here: the same recurrence over the full N x (R + 1)
  x L rectangle, its inner loop on contiguous slices in a function of its own (the form LLVM
  vectorizes). Figures are ns per DP cell (the DP computes only the reachable window, so its
  cells are counted exactly) and the ratio bare / DP per cell (1 = as fast as the bare loop).
* **Monte Carlo** (``monte_carlo_error``, on 1 and on 2 numba threads) on our design of paper-n50
  (B = 350, buckets of 512, d = 10^4 synthetic gradients), against (a) a vectorized numpy
  simulation written here (arrivals, stochastic rounding of the arrived messages with numpy's
  generator, decode, squared error; same quantizer, same bucket norms), per trial; and (b) a
  *bare counter-based RNG loop* written here, on the same threads: the kernel's splitmix64
  uniforms (the same function of key and counter, converted to a float in [0, 1) as
  ``_mc_kernels.uniform`` does), one per real draw of the kernel (every coordinate of every
  arrived message), added into a buffer of one bucket (512) as the kernel adds its quantized
  values into the estimate, and summed at the end so that nothing is dead code. The ratio
  kernel / bare is draws per second of the kernel over those of the bare loop (1 = the kernel
  costs no more than drawing its random numbers); the kernel's time is the whole
  ``monte_carlo_error`` call (arrivals, decoding weights and the summary included). A second
  bare loop draws the same uniforms with its state stepped by one addition (``z += golden``),
  as the kernel's draw loop does: one multiplication fewer per draw, the strictest counterpart.

Every figure is the median of --repeats runs after a warm-up, timed by ``time.perf_counter``
(wall: the kernels run on numba's threads) with the load average printed beside it; each ratio
is the median of the ratios of runs made in turn (kernel, counterpart, kernel, ...), which holds
better than a ratio of medians on a shared machine.
``--before DIR`` runs the same measurements on another source tree (``git archive REV | tar
-x -C DIR``) in a subprocess beside this tree's, so "before" and "after" come from one run.

    python studies/bench_kernels.py [--n 10000] [--trials 10000] [--repeats 5] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------- bare loops (the counterparts)
def bare_kernels():
    import numba

    from gcdesign._jit import njit  # cache=False: numba.njit itself

    @njit(cache=False)
    def relax(src, dst, row, u, l):
        for r in range(dst.size):
            v = src[r] + u
            if v > dst[r]:
                dst[r] = v
                row[r] = l

    @njit(cache=False)
    def max_plus(table, steps, residual, choice):
        n, n_levels = table.shape
        prev = np.zeros(residual + 1)
        cur = np.empty(residual + 1)
        for i in range(n):
            cur[:] = -np.inf
            row = choice[i]
            for l in range(n_levels):
                s = steps[l]
                relax(
                    prev[0 : residual + 1 - s], cur[s : residual + 1], row[s : residual + 1], table[i, l], l
                )
            prev, cur = cur, prev
        return prev[residual]

    golden = np.uint64(0x9E3779B97F4A7C15)
    mix1 = np.uint64(0xBF58476D1CE4E5B9)
    mix2 = np.uint64(0x94D049BB133111EB)

    @njit(cache=False, inline="always")
    def unit(z):
        # splitmix64's finalizer of state z, as a uniform in [0, 1) (53 bits)
        z = (z ^ (z >> np.uint64(30))) * mix1
        z = (z ^ (z >> np.uint64(27))) * mix2
        z = z ^ (z >> np.uint64(31))
        return (z >> np.uint64(11)) * (1.0 / 9007199254740992.0)

    @njit(cache=False)
    def rng_block(buf, key, base):
        # the kernel's uniforms, added into a bucket-sized buffer (no reduction: vectorizable)
        for j in range(buf.size):
            buf[j] += unit(key + (base + np.uint64(j) + np.uint64(1)) * golden)

    @njit(cache=False)
    def rng_block_stepped(buf, key, base):
        # the same uniforms, the state stepped by one addition (z += golden) as the kernel's
        # draw loop does since its states form a Weyl sequence: the strictest counterpart
        z = key + (base + np.uint64(1)) * golden
        for j in range(buf.size):
            buf[j] += unit(z)
            z += golden

    def make_loop(block):
        @njit(cache=False, parallel=True)
        def loop(keys, per_key):
            out = np.zeros(keys.size)
            for c in numba.prange(keys.size):
                buf = np.zeros(512)
                for b in range(per_key // 512):
                    block(buf, keys[c], np.uint64(b * 512))
                out[c] = buf.sum()
            return out

        return loop

    return max_plus, make_loop(rng_block), make_loop(rng_block_stepped)


def dp_cells(n, residual, steps):
    """Cells the windowed DP computes: sum over workers and levels of the window length."""
    max_step = int(steps[-1])
    total = 0
    for i in range(n):
        lo = max(0, residual - (n - 1 - i) * max_step)
        hi = min(residual, (i + 1) * max_step)
        total += int(np.maximum(hi - np.maximum(lo, steps) + 1, 0).sum())
    return total


def paired_times(fa, fb, repeats, cpu=False):
    """Run `fa` and `fb` in turn (after a warm-up of each): both lists of times. Pairs taken close
    together see the same machine load, so their ratios are steadier than the two medians.
    `cpu`: also both lists of CPU times of the process (every thread; what a run cost, whether
    or not the loaded machine let it run), returned after the wall times."""
    fa()
    fb()
    ta, tb, ca, cb = [], [], [], []
    for _ in range(repeats):
        for fn, times, cpus in ((fa, ta, ca), (fb, tb, cb)):
            c, t = time.process_time(), time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
    if cpu:
        return np.array(ta), np.array(tb), np.array(ca), np.array(cb)
    return np.array(ta), np.array(tb)


def median_time(fn, repeats):
    fn()  # warm-up (compiles)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def numpy_simulation(code, grads, trials, rng):
    """A vectorized numpy Monte Carlo of the same quantized, coded round: returns the mean error."""
    from gcdesign.quantization import levels

    x = code.encoding @ grads  # (N, d) messages
    n, d = x.shape
    beta = code.bucket_size or d
    nb = -(-d // beta)
    pad = nb * beta - d
    xp = np.pad(x, ((0, 0), (0, pad))).reshape(n, nb, beta)
    norms = np.sqrt((xp * xp).sum(axis=2))  # (N, nb)
    s = np.asarray(levels(code.bits), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(norms[:, :, None] > 0, s[:, None, None] * np.abs(xp) / norms[:, :, None], 0.0)
    low = np.floor(y)
    frac = y - low
    scale = np.where(norms > 0, norms / s[:, None], 0.0)[:, :, None] * np.sign(xp)
    target = grads.sum(axis=0)
    p = code.straggler_probs
    a = code.decoding
    errors = np.empty(trials)
    batch = 16
    for t0 in range(0, trials, batch):
        tb = min(batch, trials - t0)
        arrived = rng.random((tb, n)) >= p
        tt, ii = np.nonzero(arrived)
        u = rng.random((ii.size, nb, beta))
        q = (low[ii] + (u < frac[ii])) * scale[ii]  # (arrived, nb, beta)
        ghat = np.zeros((tb, nb * beta))
        np.add.at(ghat, tt, (a[ii][:, None, None] * q).reshape(ii.size, -1))
        dev = ghat[:, :d] - target
        errors[t0 : t0 + tb] = (dev * dev).sum(axis=1)
    return float(errors.mean())


def measure(args) -> dict:
    """Every figure of this tree (run in a child process with this tree first on the path)."""
    import numba

    from gcdesign import design, load_example, monte_carlo_error
    from gcdesign.allocation import allowed_levels, utility_table
    from gcdesign.allocation._kernels import dp_forward
    from gcdesign.allocation.instances import straggler_probs
    from gcdesign.evaluation import synthetic_gradients
    from gcdesign.quantization import resolve_quantization

    max_plus, rng_loop, rng_loop_stepped = bare_kernels()
    out = {"numba_threads": numba.get_num_threads()}
    # ------------------------------------------------------------------ DP
    n = args.n
    levels = allowed_levels(2, 32)
    steps = levels - levels[0]
    p = straggler_probs(np.random.default_rng(0), n, "paper")
    model = resolve_quantization("raw", p, 4 * n, 10**6, bucket_size=512)
    table = utility_table(p, model, 10**6, levels, 512)
    residual = 4 * n - 2 * n
    choice = np.empty((n, residual + 1), dtype=np.int8)
    ta, tb = paired_times(
        lambda: dp_forward(table, steps, residual, choice),
        lambda: max_plus(table, steps, residual, choice),
        args.repeats,
    )
    cells_dp = dp_cells(n, residual, steps)
    cells_bare = n * int(np.maximum(residual + 1 - steps, 0).sum())
    out["dp"] = {
        "n": n,
        "dp_s": float(np.median(ta)),
        "bare_s": float(np.median(tb)),
        "dp_ns_per_cell": 1e9 * float(np.median(ta)) / cells_dp,
        "bare_ns_per_cell": 1e9 * float(np.median(tb)) / cells_bare,
        "ratio": float(np.median((tb / cells_bare) / (ta / cells_dp))),  # median of the paired ratios
    }
    # ------------------------------------------------------------ Monte Carlo
    code = design(load_example("paper-n50"), 350, bucket_size=512)
    grads = synthetic_gradients(code.partitions, args.dim, rng=1)
    trials = args.trials
    draws = trials * args.dim * float((1.0 - code.straggler_probs).sum())  # expected real draws
    keys = np.arange(1, 65, dtype=np.uint64) * np.uint64(0x2545F4914F6CDD1D)
    per_key = int(draws // keys.size) // 512 * 512
    np_trials = max(trials // 20, 50)
    with_threads = numba.get_num_threads()
    out["mc"] = {"trials": trials, "dim": args.dim, "draws": draws}
    for threads in (1, 2):
        numba.set_num_threads(min(threads, with_threads))
        ta, tb, ca, cb = paired_times(
            lambda: monte_carlo_error(code, grads, trials=trials, rng=2),
            lambda: rng_loop(keys, per_key),
            args.repeats,
            cpu=True,
        )
        ts_a, ts_b, cs_a, cs_b = paired_times(
            lambda: monte_carlo_error(code, grads, trials=trials, rng=2),
            lambda: rng_loop_stepped(keys, per_key),
            args.repeats,
            cpu=True,
        )
        tn, tk = paired_times(
            lambda: numpy_simulation(code, grads, np_trials, np.random.default_rng(3)),
            lambda: monte_carlo_error(code, grads, trials=np_trials * 10, rng=2),
            3,
        )
        t_mc, t_rng = float(np.median(ta)), float(np.median(tb))
        out["mc"][str(threads)] = {
            "threads": numba.get_num_threads(),
            "kernel_s": t_mc,
            "kernel_us_per_trial": 1e6 * t_mc / trials,
            "numpy_us_per_trial": 1e6 * float(np.median(tn)) / np_trials,
            "kernel_ns_per_draw": 1e9 * t_mc / draws,
            "bare_rng_ns_per_draw": 1e9 * t_rng / (per_key * keys.size),
            # paired ratios: numpy per trial over the kernel's; bare RNG per draw over the kernel's
            "speedup_vs_numpy": float(np.median((tn / np_trials) / (tk / (np_trials * 10)))),
            "ratio_to_bare_rng": float(np.median((tb / (per_key * keys.size)) / (ta / draws))),
            # the same ratio in CPU seconds: the work per draw, whatever the load let the runs have
            "cpu_ratio_to_bare_rng": float(np.median((cb / (per_key * keys.size)) / (ca / draws))),
            # against the bare loop with the state stepped by an addition (one multiply fewer)
            "stepped_rng_ns_per_draw": 1e9 * float(np.median(ts_b)) / (per_key * keys.size),
            "ratio_to_stepped_rng": float(np.median((ts_b / (per_key * keys.size)) / (ts_a / draws))),
            "cpu_ratio_to_stepped_rng": float(np.median((cs_b / (per_key * keys.size)) / (cs_a / draws))),
        }
    numba.set_num_threads(with_threads)
    return out


def child(src: Path, argv: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), NUMBA_NUM_THREADS="2")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *argv]
    result = subprocess.run(cmd, env=env, cwd=src, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="DP workers (B = 4N; default 10^4)")
    parser.add_argument("--trials", type=int, default=10_000, help="Monte-Carlo trials (default 10^4)")
    parser.add_argument("--dim", type=int, default=10_000, help="gradient dimension (default 10^4)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (default 5)")
    parser.add_argument("--before", default=None, help="another source tree, measured beside this one")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args)))
        return
    passthrough = ["--n", str(args.n), "--trials", str(args.trials), "--dim", str(args.dim)]
    passthrough += ["--repeats", str(args.repeats)]
    trees = ([("before", Path(args.before).resolve())] if args.before else []) + [("after", HERE)]
    results = {}
    for label, src in trees:
        load = os.getloadavg()[0]
        results[label] = child(src, passthrough)
        results[label]["load"] = (load, os.getloadavg()[0])
    print(f"{os.cpu_count()} cores; medians of {args.repeats}; load average before/after each tree's run")
    print(f"\nexact DP, N = {args.n}, B = 4N, bits 2..32 (ns per cell; ratio = bare / DP, target >= 0.8)")
    print(f"{'tree':>7} {'DP ns/cell':>11} {'bare ns/cell':>13} {'ratio':>6} {'DP s':>7} {'load':>10}")
    for label, r in results.items():
        d = r["dp"]
        print(
            f"{label:>7} {d['dp_ns_per_cell']:>11.3f} {d['bare_ns_per_cell']:>13.3f} {d['ratio']:>6.2f} "
            f"{d['dp_s']:>7.3f} {r['load'][0]:>4.1f}/{r['load'][1]:<4.1f}"
        )
    print(
        f"\nMonte Carlo, paper-n50 design, B = 350, buckets of 512, d = {args.dim}, {args.trials} trials"
        "\n(speedup = numpy us per trial / kernel's, target >= 10 on 2 threads; ratio = bare RNG ns per "
        "draw / kernel's, target >= 0.7, in wall and in CPU seconds)"
    )
    print(
        f"{'tree':>7} {'threads':>7} {'kernel us/trial':>16} {'numpy us/trial':>15} {'speedup':>8} "
        f"{'kernel ns/draw':>15} {'bare ns/draw':>13} {'ratio':>6} {'cpu ratio':>9} {'load':>10}"
    )
    for threads in ("1", "2"):
        for label, r in results.items():
            m = r["mc"][threads]
            print(
                f"{label:>7} {m['threads']:>7} {m['kernel_us_per_trial']:>16.1f} "
                f"{m['numpy_us_per_trial']:>15.1f} {m['speedup_vs_numpy']:>8.1f} "
                f"{m['kernel_ns_per_draw']:>15.3f} {m['bare_rng_ns_per_draw']:>13.3f} "
                f"{m['ratio_to_bare_rng']:>6.2f} {m['cpu_ratio_to_bare_rng']:>9.2f} "
                f"{r['load'][0]:>4.1f}/{r['load'][1]:<4.1f}"
            )
    print(
        "\nthe same kernel against the bare loop whose state is stepped by an addition (z += golden),"
        " as the kernel's draw loop does: the strictest counterpart"
    )
    print(f"{'tree':>7} {'threads':>7} {'stepped ns/draw':>16} {'ratio':>6} {'cpu ratio':>9}")
    for threads in ("1", "2"):
        for label, r in results.items():
            m = r["mc"][threads]
            if "ratio_to_stepped_rng" in m:
                print(
                    f"{label:>7} {m['threads']:>7} {m['stepped_rng_ns_per_draw']:>16.3f} "
                    f"{m['ratio_to_stepped_rng']:>6.2f} {m['cpu_ratio_to_stepped_rng']:>9.2f}"
                )
    if "before" in results:
        print("\nafter / before, in this run:")
        d_b, d_a = results["before"]["dp"], results["after"]["dp"]
        print(f"  DP ratio to the bare loop: {d_b['ratio']:.2f} -> {d_a['ratio']:.2f}")
        for threads in ("1", "2"):
            m_b, m_a = results["before"]["mc"][threads], results["after"]["mc"][threads]
            print(
                f"  Monte Carlo, {threads} thread(s): ratio to the bare RNG loop "
                f"{m_b['ratio_to_bare_rng']:.2f} -> "
                f"{m_a['ratio_to_bare_rng']:.2f} (CPU: {m_b['cpu_ratio_to_bare_rng']:.2f} -> "
                f"{m_a['cpu_ratio_to_bare_rng']:.2f}); speedup vs numpy {m_b['speedup_vs_numpy']:.1f} -> "
                f"{m_a['speedup_vs_numpy']:.1f}; kernel {m_b['kernel_s'] / m_a['kernel_s']:.2f}x faster"
            )
    print(f"\nload average now: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
