"""CPU benchmark of the NumPy references: `R.sparse_attention` for every pattern family from 16k to 1M tokens.

    python benchmarks/cpu_reference.py                       # every family, n = 16k, 64k, 256k, 1M; 60 s a point
    python benchmarks/cpu_reference.py --families window bigbird --ns 16384 65536
    python benchmarks/cpu_reference.py --dense 16384         # also dense_attention at n <= 16k, for the ratio
    taskset -c 0,1 python benchmarks/cpu_reference.py        # as on a 2-core machine

Every point runs in a fresh process with a time limit (a point that runs out prints "> limit" and the larger n
of that family are skipped), so one slow point neither inflates the next one's memory nor stalls the table.
Columns: seconds of one call (inputs drawn before the clock starts; fresh standard-normal fp32, never zeros),
pairs/s = num_pairs(n) / seconds (and per CPU-second: the process's CPU time over both cores, which a busy
machine does not inflate), and the peak memory of the whole process (ru_maxrss: inputs, output and
everything NumPy allocated). The last column is the fitted log-log slope of time against n over the points that
finished (in brackets: of CPU time, which other jobs on a shared machine disturb much less). Sparse Transformer's
strided and fixed patterns have O(n²/stride) pairs (every row sees every stride-th key, or every summary key), so
their time grows with slope ~1.5-2 whatever the kernel: pairs/s is their measure.
A point whose pairs could not finish in the limit even at `--max-rate` pairs/s (Fixed(256, 32) at 1M: 6.9·10¹⁰
pairs) is not run: its cell gives the pair count. The load average is printed before and after (the machine may
be shared: wall times then grow, pairs per CPU-second much less).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.complexity import fit_power_law
from saattn_edu.reference.sparse import _blas_limiter

FAMILIES = {  # the table, one pattern per family
    "window": lambda: P.SlidingWindow(256, causal=True),
    "window+global": lambda: P.SlidingWindow(256, causal=True) | P.GlobalTokens([0]),
    "longformer": lambda: P.Longformer(512, global_indices=[0, 1, 2, 3]),
    "bigbird": lambda: P.BigBird(block=64, window_blocks=3, global_blocks=2, random_blocks=3),
    "strided": lambda: P.Strided(256),
    "fixed": lambda: P.Fixed(256, 32),
    "sinks": lambda: P.AttentionSinks(4, 256),
    "dilated": lambda: P.DilatedWindow(128, 4, causal=True),
    "random": lambda: P.RandomPattern(8, seed=0),
}
DEFAULT_FAMILIES = list(FAMILIES)


def make_inputs(n: int, d: int, seed: int = 0):
    """Fresh fp32 standard-normal q, k, v (n, d), drawn directly in fp32 (no fp64 temporaries)."""
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((n, d), dtype=np.float32) for _ in range(3))


def one_point(family: str, n: int, d: int, dense: bool) -> dict:
    """Time one sparse_attention call (and optionally dense_attention) at length n, in this process."""
    pattern = FAMILIES[family]()
    R.sparse_attention(*make_inputs(4096, d, seed=1), pattern)  # warm-up: imports, thread pool, BLAS init
    q, k, v = make_inputs(n, d)
    start, cpu = time.perf_counter(), time.process_time()
    out = R.dense_attention(q, k, v, mask=pattern.mask(n)) if dense else R.sparse_attention(q, k, v, pattern)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert np.isfinite(out).all()
    pairs = pattern.num_pairs(n)
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: kilobytes
    return {"family": family, "n": n, "seconds": seconds, "cpu_seconds": cpu, "pairs": pairs,
            "maxrss_mb": maxrss_kb / 1e3}


def point_in_subprocess(family: str, n: int, args, dense: bool = False):
    """One point in a fresh process; None when it runs past the time limit."""
    cmd = [sys.executable, __file__, "--one", family, str(n), "--d", str(args.d)] + (["--dense-one"] if dense else [])
    try:
        result = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=args.limit)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def family_rows(family: str, args):
    """Points of one family in increasing n, stopping at the first that runs out of time."""
    rows = []
    for n in args.ns:
        pairs = FAMILIES[family]().num_pairs(n)
        if pairs > args.limit * args.max_rate:  # impossible by arithmetic: say so instead of running it
            rows.append({"family": family, "n": n, "seconds": None, "pairs": pairs, "skipped": True})
            break
        r = point_in_subprocess(family, n, args)
        rows.append(r or {"family": family, "n": n, "seconds": None})
        if r is None:
            break
    return rows


def _cell(r) -> str:
    if r is None:
        return "—"
    if r.get("skipped"):
        return f"not run: {r['pairs']:.1e} pairs"
    if r["seconds"] is None:
        return "> limit"
    rate, per_cpu = r["pairs"] / r["seconds"] / 1e6, r["pairs"] / max(r["cpu_seconds"], 1e-9) / 1e6
    return f"{r['seconds']:.2f} s, {rate:.0f} M/s ({per_cpu:.0f} per CPU-s), {r['maxrss_mb']:.0f} MB"


def print_table(table: dict, ns) -> None:
    print("| pattern | " + " | ".join(f"n = {n:,}" for n in ns) + " | slope (CPU) |")
    print("|---|" + "---|" * (len(ns) + 1))
    for family, rows in table.items():
        by_n = {r["n"]: r for r in rows}
        done = [r for r in rows if r["seconds"] is not None]
        slope = "—"
        if len(done) > 1:
            ns_done = [r["n"] for r in done]
            wall, cpu = (fit_power_law(ns_done, [r[key] for r in done])[0] for key in ("seconds", "cpu_seconds"))
            slope = f"{wall:.2f} ({cpu:.2f})"
        cells = " | ".join(_cell(by_n.get(n)) for n in ns)
        name = repr(FAMILIES[family]()).replace("|", "\\|")  # a union's bar would split the markdown cell
        print(f"| `{name}` | {cells} | {slope} |", flush=True)


def _load() -> str:
    """1, 5 and 15 minute load averages (other jobs on the machine), or '?' where the OS has none."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ns", type=int, nargs="+", default=[16384, 65536, 262144, 1048576])
    parser.add_argument("--families", nargs="+", default=DEFAULT_FAMILIES, choices=sorted(FAMILIES))
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per point (each in its own process)")
    parser.add_argument("--max-rate", type=float, default=5e8,
                        help="pairs/s no point beats: points with more than limit × this pairs are not run")
    parser.add_argument("--dense", type=int, default=0, help="also time dense_attention for n <= this")
    parser.add_argument("--json", default="", help="write the rows to this file")
    parser.add_argument("--one", nargs=2, default=None, help=argparse.SUPPRESS)  # internal: one point
    parser.add_argument("--dense-one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_point(args.one[0], int(args.one[1]), args.d, args.dense_one)))
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = "one thread per core" if _blas_limiter() is not None else "one thread (no threadpoolctl)"
    print(f"R.sparse_attention, d={args.d}, fp32, {cores} cores, {threads}, one process per point, "
          f"{args.limit:.0f} s limit; cells: time, pairs/s (per CPU-second), peak RSS")
    print(f"load average before: {_load()}", flush=True)
    table = {}
    for family in args.families:
        table[family] = family_rows(family, args)
        print(f"  {family}: " + ", ".join(f"{r['n']}: {_cell(r)}" for r in table[family]), flush=True)
    print(f"load average after: {_load()}")
    print_table(table, args.ns)
    for n in (n for n in args.ns if n <= args.dense):
        r = point_in_subprocess("window", n, args, dense=True)
        print(f"dense_attention at n = {n:,}: {_cell(r)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)


if __name__ == "__main__":
    main()
