"""CPU benchmark of the NumPy references: sliding-window sparse attention against dense attention.

    python benchmarks/cpu_reference.py                 # n = 4k..64k, dense up to 16k, then n = 1,000,000
    python benchmarks/cpu_reference.py --big 0         # skip the million-token run
    taskset -c 0,1 python benchmarks/cpu_reference.py  # as on a 2-core machine

With threadpoolctl installed, sparse_attention runs one chunk per core (BLAS limited to one thread each);
without it, chunks run one after the other and BLAS alone uses the cores (about 2x slower on 2 cores).

Prints a table (n, dense s, sparse s, ratio, peak MB) and the fitted log-log slope of the sparse times, then the
million-token run, measured in a fresh process so its peak memory (tracemalloc: NumPy buffers including q, k, v
and the output; ru_maxrss: the whole process) is not inflated by the dense runs before it. What it shows:
- dense_attention grows as n² in time and memory (it materialises the n×n scores);
- sparse_attention with a window grows linearly (slope ≈ 1) and handles a million tokens in bounded memory.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.complexity import fit_power_law, time_fn
from saattn_edu.reference.sparse import _blas_limiter


def make_inputs(n: int, d: int, seed: int = 0):
    """Fresh fp32 standard-normal q, k, v (n, d), drawn directly in fp32 (no fp64 temporaries)."""
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((n, d), dtype=np.float32) for _ in range(3))


def sparse_peak_mb(q, k, v, pattern) -> float:
    """Peak NumPy memory of one sparse call beyond its inputs (tracemalloc), in MB."""
    tracemalloc.start()
    R.sparse_attention(q, k, v, pattern)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def sweep(ns, dense_max: int, pattern, d: int, repeats: int):
    """One row per n: dense and sparse medians (s), their ratio and the sparse call's peak memory."""
    rows = []
    for n in ns:
        q, k, v = make_inputs(n, d)
        sparse = time_fn(R.sparse_attention, q, k, v, pattern, warmup=1, repeats=repeats).median
        dense = None
        if n <= dense_max:
            dense = time_fn(R.dense_attention, q, k, v, warmup=0, repeats=max(1, repeats // 2)).median
        rows.append({"n": n, "dense_s": dense, "sparse_s": sparse, "peak_mb": sparse_peak_mb(q, k, v, pattern)})
        print(_row(rows[-1]), flush=True)
    return rows


def _row(r) -> str:
    dense = f"{r['dense_s']:10.3f}" if r["dense_s"] is not None else f"{'-':>10}"
    ratio = f"{r['dense_s'] / r['sparse_s']:8.1f}x" if r["dense_s"] is not None else f"{'-':>9}"
    return f"{r['n']:>9,} {dense} {r['sparse_s']:10.3f} {ratio} {r['peak_mb']:9.1f}"


def one_big_run(n: int, d: int, window: int, causal: bool) -> dict:
    """Time one sparse call at length n, with peak memory including the inputs and output."""
    tracemalloc.start()
    q, k, v = make_inputs(n, d)
    start = time.perf_counter()
    out = R.sparse_attention(q, k, v, P.SlidingWindow(window, causal=causal))
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.isfinite(out).all()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: kilobytes
    return {"n": n, "seconds": seconds, "tracemalloc_peak_mb": peak / 1e6, "maxrss_mb": maxrss_kb / 1e3}


def big_run_in_subprocess(args) -> dict:
    cmd = [sys.executable, __file__, "--one", str(args.big), "--d", str(args.d), "--window", str(args.window)]
    cmd += ["--causal"] if args.causal else []
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ns", type=int, nargs="+", default=[4096, 8192, 16384, 32768, 65536])
    parser.add_argument("--dense-max", type=int, default=16384, help="largest n timed with dense_attention")
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--causal", action="store_true", help="causal window (0 <= i-j < window)")
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big", type=int, default=1_000_000, help="length of the single long run (0: skip)")
    parser.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)  # internal: the long run itself
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_big_run(args.one, args.d, args.window, args.causal)))
        return
    pattern = P.SlidingWindow(args.window, causal=args.causal)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = "threads per core" if _blas_limiter() is not None else "one thread (no threadpoolctl)"
    print(f"{pattern}, d={args.d}, fp32, {cores} cores, sparse in {threads}, median of {args.repeats} runs")
    print(f"{'n':>9} {'dense s':>10} {'sparse s':>10} {'ratio':>9} {'peak MB':>9}")
    rows = sweep(args.ns, args.dense_max, pattern, args.d, args.repeats)
    slope, const = fit_power_law([r["n"] for r in rows], [r["sparse_s"] for r in rows])
    span = f"n = {rows[0]['n']:,}..{rows[-1]['n']:,}"
    print(f"fitted sparse slope (log-log, {span}): {slope:.3f}  (t ≈ {const:.3g}·n^{slope:.2f})")
    if args.big:
        big = big_run_in_subprocess(args)
        print(
            f"n = {big['n']:,}: sparse {big['seconds']:.2f} s, peak {big['tracemalloc_peak_mb']:.0f} MB "
            f"(tracemalloc, incl. q, k, v, out), max RSS {big['maxrss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
