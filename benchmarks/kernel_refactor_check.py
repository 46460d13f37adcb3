"""Old vs new Triton kernel (issue 15's readability refactor): same results, no speed lost, on one CUDA GPU.

    python benchmarks/kernel_refactor_check.py            # n=16384, B=1 H=16 D=128 bf16, every anchor pattern
    OUT=/some/dir python benchmarks/kernel_refactor_check.py   # also writes $OUT/kernel_refactor.json

OLD is `benchmarks/_old_block_sparse_flash.py` (the kernel before the refactor, loaded as a module of
`saattn_edu.accel` so its relative imports resolve); NEW is `saattn_edu/accel/block_sparse_flash.py`. Both share
`block_plan.py`, so they run the very same plans. The script
1. checks old and new against an fp32 dense masked reference (forward and dq, dk, dv) at n=2048 for every anchor,
2. checks new against old at n=16384 (forward and gradients: bitwise equal, else their relative difference),
3. times both with `triton.testing.do_bench` (median), forward and forward+backward, in ABBA order (old, new, new,
   old: drift cancels; the better median of each kernel counts), and prints a markdown table.
Patterns are RECIPES.md's anchors, built by benchmarks/gpu_attention.py (its code is reused here).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEVICE = "cuda"  # a dry run of the logic may set "cpu" (the kernels then run interpreted; do_bench cannot run)
sys.path.insert(0, HERE)  # gpu_attention (which puts the repository root on the path itself)


def _require_gpu() -> None:
    """Stop with a one-line reason before anything loads the kernels (without a GPU they would be interpreted)."""
    try:
        import torch
    except ImportError:
        sys.exit("kernel_refactor_check: torch is not installed")
    if not torch.cuda.is_available():
        sys.exit("kernel_refactor_check: no GPU (torch.cuda.is_available() is False): this script times the Triton "
                 "kernel on a CUDA device; run it on the GPU machine")
    try:
        import triton  # noqa: F401
    except ImportError:
        sys.exit("kernel_refactor_check: Triton is not installed (pip install triton)")


def load_old():
    """The pre-refactor kernel file as `saattn_edu.accel._old_block_sparse_flash`."""
    import saattn_edu.accel  # noqa: F401  (the parent package of the relative imports)

    name = "saattn_edu.accel._old_block_sparse_flash"
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "_old_block_sparse_flash.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def kernels() -> dict:
    """{"old": fn, "new": fn}, each fn(pattern) -> attention(q, k, v) through that kernel file."""
    from saattn_edu.accel import block_sparse_flash as new
    from saattn_edu.accel.permute import strided_flash, strided_passes
    from saattn_edu.patterns.sparse_transformer import Strided

    old = load_old()

    def old_fn(pattern):
        if not isinstance(pattern, Strided):
            return lambda q, k, v: old.block_sparse_flash(q, k, v, pattern)

        def strided(q, k, v):  # permute.strided_flash with the old autograd.Function (the passes are plain data)
            q, k, v = old.check_qkv(q, k, v)
            passes = strided_passes(pattern, q.shape[2], pattern.stride, q.device)
            return old.BlockSparseFlash.apply(q, k, v, passes, 1.0 / math.sqrt(q.shape[-1]))

        return strided

    def new_fn(pattern):
        if isinstance(pattern, Strided):
            return lambda q, k, v: strided_flash(q, k, v, pattern)
        return lambda q, k, v: new.block_sparse_flash(q, k, v, pattern)

    return {"old": old_fn, "new": new_fn}


def outputs(fn, q, k, v, do) -> list:
    """[o, dq, dk, dv] of fn."""
    import torch

    o = fn(q, k, v)
    return [o.detach()] + [g.detach() for g in torch.autograd.grad(o, (q, k, v), do)]


def check_reference(fns, n=2048, H=16, D=128) -> list:
    """Both kernels vs fp32 autograd of dense masked attention (gpu_attention.dense_ref), relative errors."""
    import torch
    from gpu_attention import anchor_patterns, dense_ref, inputs, rel_err

    rows = []
    for name, p in anchor_patterns().items():
        q, k, v, do = inputs(1, H, n, D, torch.bfloat16)
        qf, kf, vf = (t.detach().float().requires_grad_() for t in (q, k, v))
        ref = outputs(lambda a, b, c: dense_ref(a, b, c, torch.as_tensor(p.mask(n), device=DEVICE)), qf, kf, vf,
                      do.float())
        row = {"pattern": name, "n": n}
        for label, make in fns.items():
            row[f"{label}_rel_err_o_dq_dk_dv"] = [rel_err(a, b) for a, b in zip(outputs(make(p), q, k, v, do), ref)]
        rows.append(row)
        print(f"reference n={n} {name:20s} " + "  ".join(
            f"{label}: " + " ".join(f"{e:.1e}" for e in row[f"{label}_rel_err_o_dq_dk_dv"]) for label in fns),
            flush=True)
    return rows


def check_old_vs_new(fns, p, q, k, v, do) -> dict:
    """New against old on the timed inputs: bitwise equality, else relative differences of o, dq, dk, dv."""
    from gpu_attention import rel_err

    old, new = outputs(fns["old"](p), q, k, v, do), outputs(fns["new"](p), q, k, v, do)
    return {"bitwise_equal_o_dq_dk_dv": [bool((a == b).all()) for a, b in zip(new, old)],
            "rel_diff_o_dq_dk_dv": [rel_err(a, b) for a, b in zip(new, old)]}


def time_pair(fns, p, q, k, v, do, backward: bool) -> dict:
    """do_bench medians in ABBA order; {"old": best, "new": best, "runs": {...}} in ms."""
    from gpu_attention import bench

    runs = {"old": [], "new": []}
    for label in ("old", "new", "new", "old"):
        runs[label].append(bench(fns[label](p), q, k, v, do, backward))
    return {"old": min(runs["old"]), "new": min(runs["new"]), "runs": runs}


def measure(fns, n=16384, B=1, H=16, D=128) -> list:
    import torch
    from gpu_attention import anchor_patterns, count_pairs, inputs

    q, k, v, do = inputs(B, H, n, D, torch.bfloat16)
    rows = []
    for name, p in anchor_patterns().items():
        t = time.perf_counter()
        for make in fns.values():  # compile both kernels and build the plans before timing
            outputs(make(p), q, k, v, do)
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        row = {"pattern": name, "n": n, "pairs": count_pairs(p, n, DEVICE), "setup_s": time.perf_counter() - t}
        row.update(check_old_vs_new(fns, p, q, k, v, do))
        for mode in ("fwd", "fwdbwd"):
            row[mode] = time_pair(fns, p, q, k, v, do, mode == "fwdbwd")
            flops = (4.0 if mode == "fwd" else 14.0) * row["pairs"] * D * B * H  # fwd+bwd counts 3.5x forward
            row[mode]["tflops"] = {label: flops / (row[mode][label] * 1e-3) / 1e12 for label in fns}
            row[mode]["new_over_old"] = row[mode]["new"] / row[mode]["old"]
        rows.append(row)
        print(f"n={n} {name:20s} fwd old {row['fwd']['old']:.3f} new {row['fwd']['new']:.3f} ms "
              f"({row['fwd']['new_over_old']:.3f}x); fwd+bwd old {row['fwdbwd']['old']:.3f} "
              f"new {row['fwdbwd']['new']:.3f} ms ({row['fwdbwd']['new_over_old']:.3f}x); "
              f"bitwise equal o,dq,dk,dv {row['bitwise_equal_o_dq_dk_dv']}", flush=True)
    return rows


def table(rows) -> str:
    """Markdown: old and new medians (ms and TF/s on computed pairs), new/old (< 1: the new kernel is faster)."""
    lines = ["| pattern | fwd old ms | fwd new ms | new/old | fwd+bwd old ms | fwd+bwd new ms | new/old "
             "| new TF/s fwd, fwd+bwd | o, dq, dk, dv bitwise equal |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        f, fb = r["fwd"], r["fwdbwd"]
        equal = ", ".join("yes" if e else f"no ({d:.1e})"
                          for e, d in zip(r["bitwise_equal_o_dq_dk_dv"], r["rel_diff_o_dq_dk_dv"]))
        lines.append(f"| {r['pattern']} | {f['old']:.3f} | {f['new']:.3f} | {f['new_over_old']:.3f} "
                     f"| {fb['old']:.3f} | {fb['new']:.3f} | {fb['new_over_old']:.3f} "
                     f"| {f['tflops']['new']:.0f}, {fb['tflops']['new']:.0f} | {equal} |")
    return "\n".join(lines)


def summarize(reference, rows, tolerance: float) -> dict:
    """ok when no pattern is slower by more than `tolerance`, results agree and the reference error did not grow."""
    worst_ref = max(max(r["new_rel_err_o_dq_dk_dv"]) - max(r["old_rel_err_o_dq_dk_dv"]) for r in reference)
    slower = [(r["pattern"], m, round(r[m]["new_over_old"], 3)) for r in rows for m in ("fwd", "fwdbwd")
              if r[m]["new_over_old"] > 1 + tolerance]
    differ = [r["pattern"] for r in rows if max(r["rel_diff_o_dq_dk_dv"]) > 1e-2]
    return {"slower_than_old": slower, "results_differ": differ, "new_minus_old_ref_err": worst_ref,
            "ok": not slower and not differ and worst_ref <= 1e-3}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16384, help="sequence length of the timed table")
    ap.add_argument("--check-n", type=int, default=2048, help="sequence length of the dense-reference check")
    ap.add_argument("--tolerance", type=float, default=0.03, help="new/old above 1 + this counts as slower")
    args = ap.parse_args(argv)
    _require_gpu()
    import torch
    import triton

    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
            "B": 1, "H": 16, "D": 128, "dtype": "bfloat16", "n": args.n}
    print(meta, flush=True)
    fns = kernels()
    reference = check_reference(fns, n=args.check_n)
    rows = measure(fns, n=args.n)
    md = table(rows)
    print("\n" + md + "\n")
    verdict = summarize(reference, rows, args.tolerance)
    print("verdict:", verdict, flush=True)
    if os.environ.get("OUT"):
        path = os.path.join(os.environ["OUT"], "kernel_refactor.json")
        with open(path, "w") as f:
            json.dump({"meta": meta, "reference": reference, "rows": rows, "table": md, "verdict": verdict}, f,
                      indent=1)
        print("wrote", path)
    return 0 if verdict["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
